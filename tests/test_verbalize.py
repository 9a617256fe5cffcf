"""The draft said faithfully (draft+voicetune): markdown gone, structure into sentences, codes, amounts, times
and dates spoken, nothing dropped; the guard's fallback and a baseline system."""

from __future__ import annotations

import pytest

from voicetune.errors import VoicetuneError
from voicetune.quality.facts import classify_fact, fact_conveyed
from voicetune.verbalize import speak_draft

FIELDS = """Thank you, Mia! Here are the details:

- **Reservation ID:** H8Q05L
- **Flight:** HAT069, departing **06:00 AM EST** on 2024-05-20
- **Total:** $1,121.50

| Flight | Departure |
|---|---|
| HAT136 | 4:30 PM CDT |

Outage ID OUT-48213. Call 1-800-555-0199 or visit https://northgate.com/claims. 20% off, the 3rd option, \
7–10 days. 😊"""


def test_codes_times_dates_and_amounts_are_spoken_not_mangled():
    said = speak_draft(FIELDS)
    assert "H 8 Q, 0 5 L" in said and "liters" not in said  # Pipecat: "H8Q05 liters"
    assert "O U T, 4 8 2, 1 3" in said  # Pipecat: "O U T-48213"
    assert "six a.m. Eastern" in said and "four thirty p.m. Central" in said  # Pipecat: "4:30 P M C D T"
    assert "May twentieth, twenty twenty-four" in said
    assert "one thousand, one hundred and twenty-one dollars and fifty cents" in said
    assert "northgate dot com slash claims" in said and "twenty percent" in said and "the third option" in said
    assert "seven to ten days" in said
    assert (
        speak_draft("Your plan is $74.99/month.")
        == "Your plan is seventy-four dollars and ninety-nine cents per month."
    )
    # a code block of sums (the blind read's one unusable draft+voicetune answer): no rule of dashes, minus said
    block = speak_draft("```\nFare:      $301.15\nCredit:   -$146.30\n-----------\nBalance:   $154.85\n```")
    assert block == (
        "Fare: three hundred and one dollars and fifteen cents. Credit: minus one hundred and forty-six dollars and "
        "thirty cents. "
        "Balance: one hundred and fifty-four dollars and eighty-five cents."
    )


def test_markdown_lists_tables_and_emoji_are_gone():
    said = speak_draft(FIELDS)
    for symbol in ("**", "|", "- ", "#", "😊", "http", ":**"):
        assert symbol not in said
    assert "The reservation ID is H 8 Q, 0 5 L." in said  # a field line becomes a sentence


def test_nothing_the_caller_needs_is_dropped():
    """Every typed fact of the draft is still conveyed, by the scorer's own matching."""
    said = speak_draft(FIELDS)
    for fact in (
        "H8Q05L",
        "HAT069",
        "HAT136",
        "$1,121.50",
        "06:00 AM",
        "4:30 PM",
        "2024-05-20",
        "OUT-48213",
        "1-800-555-0199",
    ):
        assert fact_conveyed(classify_fact(fact), said), fact


def test_lists_become_sentences():
    short = speak_draft("Please provide:\n\n- your full name\n- your date of birth\n- your zip code")
    assert short == "Please provide: your full name, your date of birth, and your zip code."
    steps = speak_draft(
        "1. Unplug the router for 30 seconds.\n2. Plug it back in.\n3. Wait until the light is solid green.\n"
        "4. Try to connect again.\n5. Restart your laptop.\n6. Call us back if it still fails."
    )
    assert (
        steps.startswith("First, unplug the router for thirty seconds. Second, plug it back in.")
        and "Sixth, call us" in steps
    )
    nested = speak_draft("1. **Flight HAT136**\n   - Departure: 07:00 PM\n   - Price: $152")
    assert nested == "Flight H A T, 1 3 6: departure seven p.m. and price one hundred and fifty-two dollars."


@pytest.mark.parametrize("draft", ["", "   ", "\x00", "**", "- \n- ", "| a |\n|---|", "#", "😊😊"])
def test_degenerate_drafts_say_nothing_rather_than_fail(draft):
    assert speak_draft(draft).strip(" .") == ""


def test_card_endings_and_internal_ids():
    said = speak_draft("Your card ending in 6042 (dc_harbor_90417) is frozen. I'll charge credit_card_7815846.")
    assert "6 0 4 2" in said and "dc_harbor" not in said and "underscore" not in said
    assert "credit card ending in 5 8 4 6" in said


def test_draft_voicetune_is_a_system_and_the_guard_falls_back_to_it(tmp_path):
    from voicetune.evaluate.systems import parse_system
    from voicetune.judge.decode import pick
    from voicetune.records import Turn

    assert parse_system("draft+voicetune").kind == "voicetune"
    turn = Turn(id="t", draft=FIELDS, facts=["$1,121.50"])
    refused = pick(turn, ["Sure thing."], guard=True, selector="rubric")  # drops the required amount
    assert refused.fallback and refused.text == speak_draft(FIELDS)


def test_prompt_numbers_lets_digits_come_only_from_the_prompt():
    import torch

    from voicetune.models.constrain import PromptNumbers, digit_runs
    from voicetune.models.loading import load_tokenizer

    assert digit_runs("$1,095.55 at 06:00") == {"1", "095", "95", "55", "06", "6", "00", "0"}
    tokenizer = load_tokenizer("smollm2-135m")
    prompt = "Draft reply: your refund of $145 posts on May 17."
    written = "Your refund of $1"
    ids = tokenizer(prompt + written, return_tensors="pt", add_special_tokens=False)["input_ids"]
    prompt_length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    processor = PromptNumbers(tokenizer, [prompt], prompt_length)
    scores = processor(ids, torch.zeros(1, len(tokenizer)))
    allowed = {
        tokenizer.decode([i])
        for i in range(len(tokenizer))
        if scores[0, i] == 0 and tokenizer.decode([i]).strip().isdigit()
    }
    assert "4" in allowed and "0" in allowed  # 14... (the prompt's 145) and 10 (a small count)
    assert "2" not in allowed and "9" not in allowed  # 12 and 19 are in no prompt number


def test_backends_that_cannot_constrain_numbers_refuse_rather_than_ignore():
    from voicetune.models.generate import HTTPBackend, SamplingConfig

    backend = HTTPBackend("http://127.0.0.1:9/v1", "m")
    with pytest.raises(VoicetuneError, match="needs a transformers model"):
        backend.generate([[{"role": "user", "content": "hi"}]], SamplingConfig(numbers_from_prompt=True))
