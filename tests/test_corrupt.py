"""The corruption generator: each kind on a hand-written turn (exact text), its contract (differs from the
input, deterministic, None when it does not apply, errors for unknown kinds), the synthetic pairs it builds,
and the committed synthetic pairs file, which must equal a fresh regeneration."""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path

import pytest

from voicetune.data.builtin import builtin_turns
from voicetune.data.corrupt import JUDGE_KINDS, KINDS, REGISTRY, Corruption, corrupt, corruptions, synthetic_pairs
from voicetune.data.corrupt.amounts import amounts, unit_of
from voicetune.data.corrupt.numbers import say, say_two, segments
from voicetune.data.corrupt.text import article_for
from voicetune.data.corrupt.verbs import looks_participle, participle, past, third
from voicetune.quality.facts import SMALL_COUNT_LIMIT, context_numbers, invented_numbers, spoken_view
from voicetune.records import Message, Pair, Turn

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_FILE = REPO_ROOT / "src" / "voicetune" / "data" / "builtin" / "labelled_pairs_synthetic.jsonl"
SCRIPT = REPO_ROOT / "benchmarks" / "make_synthetic_pairs.py"


def _turn(draft: str, facts: list[str] | None = None, reference: str | None = None) -> Turn:
    return Turn(
        id="hand-01",
        domain="airline",
        history=[Message(role="user", text="Hi, I'm calling about my booking.")],
        draft=draft,
        facts=facts,
        reference=reference,
    )


# One hand-written turn per kind: (draft, facts, good spoken response, expected corrupted text).
EXAMPLES = {
    "negation": (
        "Good news: your refund of $75.00 has been approved. It will post in 3-5 business days.",
        None,
        "Good news, your refund's been approved. You'll see the seventy-five dollars in three to five business days.",
        "Good news, your refund's been approved. "
        "You won't see the seventy-five dollars in three to five business days.",
    ),
    "swap_amounts": (
        "Change fee: $75.00. Fare difference: $29.00.",
        None,
        "The change fee is seventy-five dollars, and the fare difference is twenty-nine dollars.",
        "The change fee is twenty-nine dollars, and the fare difference is seventy-five dollars.",
    ),
    "wrong_action": (
        "Your order #A123 has been cancelled and $45.00 refunded to your Visa ending 4417.",
        None,
        "Done, I've cancelled the order and refunded the forty-five dollars to your Visa.",
        "Done, I've confirmed the order and refunded the forty-five dollars to your Visa.",
    ),
    "wrong_item": (
        "Flight 418: Denver (DEN) -> Dallas (DFW), Friday 3/14, departs 7:45 AM.",
        None,
        "You're on the Friday flight from Denver to Dallas, leaving at seven forty-five in the morning.",
        "You're on the Friday flight from Dallas to Denver, leaving at seven forty-five in the morning.",
    ),
    "done_not_asked": (
        "The cancellation fee is $75.00. Would you like me to proceed with cancelling reservation KQ7LM2?",
        None,
        "Cancelling now comes with a seventy-five dollar fee. Should I go ahead and cancel it?",
        "Cancelling now comes with a seventy-five dollar fee. I've gone ahead and cancelled it.",
    ),
    "drop_fact": (
        "Your replacement card has shipped and will arrive by Friday, March 21. Expedited shipping fee: $15.00.",
        ["$15.00"],
        "Your replacement card is on its way and should arrive by Friday, March twenty-first. "
        "The faster shipping cost fifteen dollars.",
        "Your replacement card is on its way and should arrive by Friday, March twenty-first.",
    ),
    "invent_number": (
        "Flight SV 1190 departs 1:20 PM. Fare: $289.00.",
        None,
        "It leaves at one twenty in the afternoon, and the fare is two hundred eighty-nine dollars.",
        "It leaves at one twenty in the afternoon, and the fare is two hundred ninety-nine dollars.",
    ),
}

NUMBER_WORDS = set(
    "zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand".split()
)

FAILURE_CLASS = {
    "negation": "contradiction",
    "swap_amounts": "contradiction",
    "wrong_action": "contradiction",
    "wrong_item": "contradiction",
    "done_not_asked": "contradiction",
    "drop_fact": "dropped_fact",
    "invent_number": "invented",
}


def test_kinds_in_order_and_the_judge_uses_the_faithfulness_ones():
    assert list(KINDS) == [
        "negation",
        "swap_amounts",
        "wrong_action",
        "wrong_item",
        "done_not_asked",
        "drop_fact",
        "invent_number",
        "repeat_sentence",
    ]
    assert JUDGE_KINDS == tuple(KINDS)[:7]
    assert all(isinstance(description, str) and description for description in KINDS.values())


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_each_kind_on_a_hand_written_turn(kind):
    draft, facts, response, expected = EXAMPLES[kind]
    result = corrupt(response, _turn(draft, facts), kind, random.Random(0))
    assert isinstance(result, Corruption)
    assert result.text == expected
    assert result.kind == kind
    assert result.quality == "faithfulness"
    assert result.failure_class == FAILURE_CLASS[kind]
    assert result.why and result.why.endswith(".") and "\n" not in result.why


def test_numbers_in_digits_are_kept_in_digits():
    turn = _turn("Change fee: $75. Fare difference: $29. Departs 7:45 AM on March 14.")
    response = "The change fee is $75 and your flight leaves at 7:45 AM on March 14."
    assert (
        corrupt(response, turn, "invent_number", random.Random(0)).text
        == "The change fee is $85 and your flight leaves at 7:45 AM on March 14."
    )
    assert (
        corrupt(response, turn, "swap_amounts", random.Random(0)).text
        == "The change fee is $29 and your flight leaves at 7:45 AM on March 14."
    )


def test_a_kind_that_does_not_apply_gives_none():
    turn = _turn("Your seat is 14A.")
    assert corrupt("You're in fourteen A.", turn, "done_not_asked", random.Random(0)) is None
    assert corrupt("You're in fourteen A.", turn, "swap_amounts", random.Random(0)) is None
    assert corrupt("", turn, "negation", random.Random(0)) is None


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError) as error:
        corrupt("Hello.", None, "shuffle", random.Random(0))
    assert "shuffle" in str(error.value)
    for kind in KINDS:
        assert kind in str(error.value)
    with pytest.raises(ValueError):
        corruptions("Hello.", None, kinds=("negation", "shuffle"))
    with pytest.raises(ValueError):
        synthetic_pairs([], kinds=("shuffle",))


def test_invent_number_says_a_number_the_draft_does_not_have():
    draft, facts, response, _ = EXAMPLES["invent_number"]
    result = corrupt(response, _turn(draft, facts), "invent_number", random.Random(0))
    assert "299" not in context_numbers(draft)
    assert set(invented_numbers(result.text, (draft,))) - set(invented_numbers(response, (draft,))) == {"$299"}


def test_corruptions_lists_every_kind_that_applies_and_is_deterministic():
    draft, facts, response, _ = EXAMPLES["swap_amounts"]
    turn = _turn(draft, facts)
    first = corruptions(response, turn, seed=3)
    assert first == corruptions(response, turn, seed=3)
    assert [c.kind for c in first] == [k for k in KINDS if k in {c.kind for c in first}]
    assert {"negation", "swap_amounts", "invent_number"} <= {c.kind for c in first}
    assert all(c.text != response for c in first)
    assert [c.kind for c in corruptions(response, turn, kinds=("invent_number",), seed=3)] == ["invent_number"]


@pytest.fixture(scope="module")
def built():
    """The synthetic pairs file as the generator makes it now (text and counts), built once."""
    spec = importlib.util.spec_from_file_location("make_synthetic_pairs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(0)


@pytest.fixture(scope="module")
def pairs(built):
    text, _ = built
    return [Pair.model_validate_json(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def turns_by_id():
    return {turn.id: turn for turn in builtin_turns()}


def test_committed_file_equals_a_fresh_regeneration(built):
    text, _ = built
    assert SYNTHETIC_FILE.exists(), "run: .venv/bin/python benchmarks/make_synthetic_pairs.py"
    assert SYNTHETIC_FILE.read_text(encoding="utf-8") == text, (
        "labelled_pairs_synthetic.jsonl is out of date with the generator; rerun benchmarks/make_synthetic_pairs.py"
    )


def test_every_kind_is_covered_evenly(built):
    _, counts = built
    assert sum(counts.values()) >= 150
    assert set(counts) == set(JUDGE_KINDS)
    assert min(counts.values()) >= 15, counts


def test_synthetic_labels_point_to_the_reference(pairs, turns_by_id):
    ids = set()
    for pair in pairs:
        turn = turns_by_id[pair.meta["from_turn"]]
        kind = pair.meta["corruption"]
        assert pair.id == f"syn-{turn.id}-{kind}" and pair.id not in ids
        ids.add(pair.id)
        reference = pair.response_a if pair.meta["label"] == "a" else pair.response_b
        corrupted = pair.response_b if pair.meta["label"] == "a" else pair.response_a
        assert reference == turn.reference
        assert corrupted != turn.reference
        assert pair.meta["source"] == "synthetic"
        assert pair.meta["quality"] == "faithfulness"
        assert pair.meta["failure_class"] == FAILURE_CLASS[kind]
        assert pair.meta["why"]
        assert (pair.domain, pair.system, pair.draft, pair.facts) == (turn.domain, turn.system, turn.draft, turn.facts)
        assert pair.history == turn.history
        assert pair.tool_results == turn.tool_results
    assert {pair.meta["label"] for pair in pairs} == {"a", "b"}


def test_corrupted_responses_read_as_clean_text(pairs):
    for pair in pairs:
        corrupted = pair.response_b if pair.meta["label"] == "a" else pair.response_a
        assert corrupted == corrupted.strip() and corrupted[0].isupper() and corrupted[-1] in ".!?", corrupted
        assert "  " not in corrupted and " ," not in corrupted and " ." not in corrupted, corrupted
        assert not re.search(
            r"n't't|\b(?:a|an) (?:a|an)\b|\ba (?:eight|eleven|eighteen|eighty)|\ban (?:one|two|three|four|five|six|"
            r"seven|nine|ten|twelve|twenty|thirty|forty|fifty|sixty|seventy|ninety|hundred)\b",
            corrupted,
        ), corrupted
        assert not re.search(
            r"\b(?:February (?:thirtieth|thirty-first)|(?:April|June|September|November) thirty-first)\b", corrupted
        ), corrupted
        repeated = [w for w, again in re.findall(r"\b([a-z]{2,})\s+(\1)\b", corrupted) if w not in NUMBER_WORDS]
        assert not repeated, corrupted


def test_synthetic_pairs_are_deterministic_and_respect_kinds():
    turns = builtin_turns()[:40]
    first = synthetic_pairs(turns, seed=5)
    assert [p.model_dump() for p in first] == [p.model_dump() for p in synthetic_pairs(turns, seed=5)]
    only = synthetic_pairs(turns, seed=5, kinds=("swap_amounts", "invent_number"))
    assert only and {p.meta["corruption"] for p in only} <= {"swap_amounts", "invent_number"}
    two = synthetic_pairs(turns, seed=5, per_turn=2)
    assert len(two) > len(first)
    assert all(len({p.meta["corruption"] for p in two if p.meta["from_turn"] == t.id}) <= 2 for t in turns)
    assert synthetic_pairs([t.model_copy(update={"reference": None}) for t in turns]) == []


def test_invent_number_pairs_say_a_number_the_context_lacks(pairs, turns_by_id):
    """When the facts checker can tell (a new number above the small-count limit, not in the context), the
    corrupted response has an invented number the reference did not."""
    checked = 0
    for pair in pairs:
        if pair.meta["corruption"] != "invent_number":
            continue
        turn = turns_by_id[pair.meta["from_turn"]]
        reference = pair.response_a if pair.meta["label"] == "a" else pair.response_b
        corrupted = pair.response_b if pair.meta["label"] == "a" else pair.response_a
        context = tuple(
            t for t in [turn.draft or "", *(turn.facts or []), *(m.text for m in turn.history), *turn.tool_results] if t
        )
        known = set().union(*(context_numbers(t) for t in context))
        new = spoken_view(corrupted).numbers - spoken_view(reference).numbers
        if any(n not in known and float(n) > SMALL_COUNT_LIMIT for n in new):
            checked += 1
            invented = set(invented_numbers(corrupted, context)) - set(invented_numbers(reference, context))
            assert invented, (corrupted, new)
    assert checked >= 15


def test_repeat_sentence_says_the_most_informative_sentence_twice():
    response = "Sure. Your refund of forty two dollars goes back to the card on Friday. Anything else?"
    result = corrupt(response, None, "repeat_sentence", random.Random(0))
    assert result is not None and result.failure_class == "repetition" and result.quality == "non_repetition"
    assert result.text.startswith(response)
    assert result.text.lower().count("refund of forty two dollars goes back to the card on friday") == 2
    assert corrupt("Okay, got it.", None, "repeat_sentence", random.Random(0)) is None  # nothing with content


def test_the_registry_names_each_kind_its_function_and_failure_class():
    assert list(REGISTRY) == list(KINDS)
    for name, kind in REGISTRY.items():
        assert kind.name == name and callable(kind.make) and kind.description == KINDS[name]
    assert JUDGE_KINDS == tuple(name for name, kind in REGISTRY.items() if kind.quality == "faithfulness")
    assert {name: kind.failure_class for name, kind in REGISTRY.items() if name in JUDGE_KINDS} == FAILURE_CLASS
    # corrupt() makes the Corruption from the kind's (text, why) and the registry's quality and failure class
    text, why = REGISTRY["repeat_sentence"].make("Your refund of forty dollars is on its way.", None, random.Random(0))
    made = corrupt("Your refund of forty dollars is on its way.", None, "repeat_sentence", random.Random(0))
    assert made == Corruption("repeat_sentence", text, why, quality="non_repetition", failure_class="repetition")


def test_number_words_are_read_with_text2num_and_said_with_num2words():
    assert segments("seven forty-five") == ((7, False, 1), (45, False, 1))
    assert segments("four oh five") == ((4, False, 1), (5, True, 2))
    assert segments("a hundred and forty-three fifty") == (
        (143, False, 3),
        (50, False, 1),
    )  # "and" is no word of the count
    assert segments("one thousand two hundred sixty-eight") == ((1268, False, 5),)
    assert segments("zero two") == ((0, False, 1), (2, False, 1))  # digits read out, not "two"
    assert segments("forty five") == ((45, False, 2),)
    assert segments("hundred") is None
    assert say(1268) == "one thousand two hundred sixty-eight"
    assert say(105, a_style=True, and_style=True) == "a hundred and five"
    assert say(2005, and_style=True) == "two thousand and five"
    assert say_two(5) == "oh five" and say_two(45) == "forty-five"


def test_verb_forms_come_from_lemminflect_in_the_corpus_spelling():
    assert [past(v) for v in ("cancel", "send", "be", "cost", "label")] == [
        "cancelled",
        "sent",
        "was",
        "cost",
        "labelled",
    ]
    assert [participle(v) for v in ("freeze", "resend", "set", "withdraw")] == ["frozen", "resent", "set", "withdrawn"]
    assert [third(v) for v in ("apply", "have", "go", "match")] == ["applies", "has", "goes", "matches"]
    assert looks_participle("taken") and looks_participle("rebooked") and looks_participle("paid")
    assert not any(looks_participle(w) for w in ("set", "come", "seven", "kitchen", "need", ""))


def test_articles_come_from_inflect_and_figures_are_heard_as_said():
    assert [article_for(w) for w in ("hour", "MRI", "eighty-five dollars", "$85", "8:15", "eleven")] == ["an"] * 6
    assert [article_for(w) for w in ("one-time", "utility", "euro", "$75", "hundred")] == ["a"] * 5


def test_amounts_keep_units_and_ranges():
    found = amounts("It takes three to five business days, and the fee is $1,095.50.")
    assert [(a.kind, a.value, a.unit) for a in found] == [
        ("count", 3, "business day"),
        ("count", 5, "business day"),
        ("money", 109550, ""),
    ]
    assert found[0].high == 5 and found[1].low == 3
    assert unit_of("inches") == "inch" and unit_of("cases") == "case"


def test_a_figure_from_the_draft_is_a_whole_number_not_part_of_a_decimal():
    turn = _turn("Harbor Point is 4.2 miles away; Westbrook is 0.5 miles away.")
    response = "Harbor Point is about four miles off."
    result = corrupt(response, turn, "swap_amounts", random.Random(0))
    assert result is None  # not "two miles" (from 4.2) or "five miles" (from 0.5)


def test_drop_fact_needs_what_the_scorer_needs():
    draft, _, response, expected = EXAMPLES["drop_fact"]
    assert corrupt(response, _turn(draft, ["$15.00"]), "drop_fact", random.Random(0)).text == expected
    assert corrupt(response, _turn(draft, []), "drop_fact", random.Random(0)) is None  # facts: [] needs nothing
    assert corrupt(response, _turn(draft, None), "drop_fact", random.Random(0)) is not None  # facts from the draft
