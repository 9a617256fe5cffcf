"""The five voice-quality metrics: each fires on the problem it is for (with a finding that names it) and
stays quiet on a clean, natural spoken response. Also the speaking-time estimates."""

from __future__ import annotations

import shutil

import pytest

from voicetune.errors import VoicetuneError
from voicetune.quality import metrics
from voicetune.quality.config import (
    ClarityPenalties,
    ConcisenessPenalties,
    FaithfulnessPenalties,
    HumannessPenalties,
    NonRepetitionPenalties,
    ScorerConfig,
)
from voicetune.quality.facts import extract_facts
from voicetune.quality.findings import render
from voicetune.quality.speech import espeak_seconds, estimate_seconds, speaking_seconds

CLEAN = "Your refund of forty dollars is on its way, and you'll see it on your card in three to five days."


def _assert_clean(result):
    assert result.score >= 0.95, result
    assert result.reasons == ()


def _assert_fires(result, clean_result, *mentions):
    assert result.score < clean_result.score - 0.1, (result, clean_result)
    assert result.reasons, result
    text = " ".join(result.reasons).lower()
    for mention in mentions:
        assert mention.lower() in text, (mention, result.reasons)


def test_results_are_in_unit_range():
    nasty = ("**Note:** " + "I am happy to help. " * 30 + "https://x.io credit_card_1 ") * 3
    for result in (
        metrics.non_repetition(nasty),
        metrics.conciseness(nasty, estimate_seconds(nasty), 0),
        metrics.clarity(nasty),
        metrics.humanness(nasty),
        metrics.faithfulness(nasty, extract_facts("$5 and $7"), ("$5 and $7",), "$5 and $7"),
    ):
        assert 0.0 <= result.score < 1.0
        assert result.reasons


# ---------------------------------------------------------------------------------------------------------
# non_repetition

PREVIOUS = "Your flight to Denver leaves at seven forty-five tomorrow morning from gate twelve."


def test_non_repetition_clean():
    _assert_clean(metrics.non_repetition(CLEAN))
    _assert_clean(metrics.non_repetition(CLEAN, [PREVIOUS], "Okay, and when's my refund coming?"))


def test_non_repetition_same_sentence_twice():
    clean = metrics.non_repetition("Your refund is on its way to your card.")
    result = metrics.non_repetition("Your refund is on its way to your card. Your refund is on its way to your card.")
    _assert_fires(result, clean, "same thing twice")


def test_non_repetition_same_thing_in_other_words():
    clean = metrics.non_repetition("The refund goes back to your card within five business days.")
    result = metrics.non_repetition(
        "The refund goes back to your card within five business days, and within five business days the refund "
        "is back on your card."
    )
    _assert_fires(result, clean, "twice")


def test_non_repetition_like_i_said():
    clean = metrics.non_repetition("Your flight leaves at nine tomorrow morning.")
    result = metrics.non_repetition("Like I said, your flight leaves at nine tomorrow morning.")
    _assert_fires(result, clean, "like I said")


def test_non_repetition_copies_previous_agent_turn():
    clean = metrics.non_repetition(
        "You're all set, and I've texted you the boarding pass.", [PREVIOUS], "Great, thanks."
    )
    result = metrics.non_repetition(PREVIOUS, [PREVIOUS], "Great, thanks.")
    _assert_fires(result, clean, "last turn")


def test_non_repetition_allows_a_repeat_when_asked():
    result = metrics.non_repetition(PREVIOUS, [PREVIOUS], "Sorry, can you repeat that?")
    _assert_clean(result)
    _assert_clean(metrics.non_repetition(PREVIOUS, [PREVIOUS], "I didn't catch that, say it again?"))


def test_non_repetition_echoes_the_caller():
    request = "I want to change my flight to Denver to next Friday morning please"
    clean = metrics.non_repetition("Sure, there's a seven a.m. on Friday. Want it?", [], request)
    _assert_clean(clean)
    result = metrics.non_repetition(
        "So you want to change your flight to Denver to next Friday morning. Let me check.", [], request
    )
    _assert_fires(result, clean, "echoes the caller")


def test_non_repetition_repeated_fact_from_last_turn():
    facts = extract_facts("Your confirmation code is HAT069.")
    clean = metrics.non_repetition("You're all set for Friday.", [], "ok")
    result = metrics.non_repetition("You're all set for Friday.", [], "ok", repeated_facts=facts)
    _assert_fires(result, clean, "HAT069")


# ---------------------------------------------------------------------------------------------------------
# conciseness

LONG = (
    "Thank you so much for reaching out! I'd be more than happy to help you with that today. "
    "Please note that I have gone ahead and looked into your account in order to find the information you need. "
    "Your refund of forty dollars has been processed and it will show up on your card within three to five business "
    "days. "
    "Please don't hesitate to reach out if you have any other questions. Is there anything else I can help you with "
    "today?"
)
CRISP = "Your forty-dollar refund went through; it'll show up on your card in three to five business days."


def test_conciseness_crisp_response_is_clean():
    _assert_clean(metrics.conciseness(CRISP, estimate_seconds(CRISP), 2))
    _assert_clean(metrics.conciseness(CLEAN, estimate_seconds(CLEAN), 2))


def test_conciseness_long_filler_response_fires():
    clean = metrics.conciseness(CRISP, estimate_seconds(CRISP), 2)
    result = metrics.conciseness(LONG, estimate_seconds(LONG), 2)
    _assert_fires(result, clean, "happy to help", "anything else", "budget")
    assert result.score < 0.3


def test_conciseness_time_over_budget_alone_costs():
    result = metrics.conciseness("words " * 10, 30.0, 1)  # budget 8.5 s
    assert result.score < 0.7
    assert "budget" in result.reasons[0]
    assert metrics.conciseness("words " * 10, 30.0, 10).score == 1.0  # ten facts earn 31 s


@pytest.mark.parametrize(
    "filler, mention",
    [
        ("Feel free to call back anytime.", "feel free"),
        ("I hope this helps.", "hope this helps"),
        ("Absolutely! ", "interjection"),
        ("Let me know if you have any other questions.", "let me know"),
    ],
)
def test_conciseness_each_filler_phrase_costs(filler, mention):
    response = f"{filler} Your refund went through." if filler.endswith(" ") else f"Your refund went through. {filler}"
    clean = metrics.conciseness("Your refund went through.", 2.0, 1)
    result = metrics.conciseness(response, 3.0, 1)
    assert result.score < clean.score
    assert mention in " ".join(result.reasons).lower()


# ---------------------------------------------------------------------------------------------------------
# clarity


def test_clarity_clean():
    _assert_clean(metrics.clarity("You're booked on the seven a.m. flight on May twentieth. Want a window seat?"))
    _assert_clean(metrics.clarity(CLEAN))


CLARITY_CASES = {
    "markdown bullets and bold": (
        "Here you go:\n- **Flight:** seven a.m.\n- **Seat:** window",
        ["markdown", "bullets"],
    ),
    "a header": ("## Your booking\nYou're on the seven a.m.", ["header"]),
    "a URL": ("You can find it at https://www.example.com/help anytime.", ["URL"]),
    "an internal id": ("I've charged credit_card_8554680 for the change.", ["internal id", "credit_card_8554680"]),
    "an ISO date": ("Your flight is on 2024-05-20 in the morning.", ["screen-format", "2024-05-20"]),
    "a 24-hour time with seconds": ("It leaves at 06:00:00 sharp.", ["screen-format"]),
    "a 45-word sentence": (
        "So what I can do for you today is move your booking to the later flight on Friday and then add the extra "
        "bag and the seat by the window and send a new receipt to the email we have on file for you now.",
        ["45-word sentence"],
    ),
    "a list of six items": (
        "Here are the options:\n- red\n- blue\n- green\n- yellow\n- black\n- white",
        ["enumerates 6 items"],
    ),
    "symbols read by name": ("Go to example underscore help slash refunds.", ["symbols"]),
    "written abbreviations": ("Your appt is approx two hrs long.", ["abbreviations"]),
}


@pytest.mark.parametrize("case", CLARITY_CASES, ids=list(CLARITY_CASES))
def test_clarity_fires(case):
    response, mentions = CLARITY_CASES[case]
    clean = metrics.clarity("You're booked on the seven a.m. flight. Want a window seat?")
    _assert_fires(metrics.clarity(response), clean, *mentions)


def test_clarity_inline_list_of_six_fires():
    clean = metrics.clarity("We have it in red and blue.")
    result = metrics.clarity("We have it in red, blue, green, yellow, black, and white.")
    _assert_fires(result, clean, "enumerates 6 items")


# Regression: inline lists were counted as commas + 1, missing the item after a final 'and'.
def test_clarity_counts_inline_list_without_oxford_comma():
    result = metrics.clarity("We have it in red, blue, green, yellow, black and white.")
    assert "enumerates 6 items in one turn" in result.reasons
    five = metrics.clarity("We have it in red, blue, green, yellow and white.")
    assert any("enumerates 5 items" in reason for reason in five.reasons)


def test_clarity_digits_cost_a_little():
    result = metrics.clarity("It's 75 dollars.")
    assert 0.9 <= result.score < 1.0
    assert "digits" in result.reasons[0]


# ---------------------------------------------------------------------------------------------------------
# humanness

WARM = "Sure thing, I've moved you to the later flight. You're all set, and I'll text you the details."

HUMANNESS_CASES = {
    "as an AI": ("As an AI language model, I can't see your account details right now.", ["as an AI"]),
    "apologize for any inconvenience": (
        "I apologize for any inconvenience this may have caused you today.",
        ["inconvenience"],
    ),
    "no contractions": (
        "I am sorry, but I do not see a booking and it is not in the system yet.",
        ["doesn't contract"],
    ),
    "kindly": ("Kindly hold the line while I check that booking for you.", ["kindly"]),
    "name four times": (
        "Okay Mia, I see it, Mia. Mia, your flight is fine. Thanks, Mia, have a good day.",
        ["'Mia' 4 times"],
    ),
    "stiff vocabulary": ("We will utilize your card on file to commence the refund.", ["stiff vocabulary"]),
    "apologises twice": ("Sorry about that. I'm so sorry, that shouldn't have happened.", ["apologises 2 times"]),
    "exclamations": ("Great! You're all set! Have a wonderful day! Bye now!", ["exclamation"]),
    "third person": ("The customer's refund has gone through.", ["third person"]),
}


def test_humanness_clean():
    _assert_clean(metrics.humanness(WARM))
    _assert_clean(metrics.humanness("Got it, Mia. Your flight's confirmed, and the bag's on there too."))
    _assert_clean(metrics.humanness("There it is."))  # cannot be contracted


@pytest.mark.parametrize("case", HUMANNESS_CASES, ids=list(HUMANNESS_CASES))
def test_humanness_fires(case):
    response, mentions = HUMANNESS_CASES[case]
    _assert_fires(metrics.humanness(response), metrics.humanness(WARM), *mentions)


# ---------------------------------------------------------------------------------------------------------
# faithfulness

DRAFT = "Your refund of $121 for order #W4923227 will arrive by May 20th."
FACTS = extract_facts(DRAFT)
CONTEXT = ("I'd like a refund for my order.", DRAFT)
FAITHFUL = "Your refund of one twenty-one for order W four nine two three two two seven arrives by May twentieth."


def test_faithfulness_all_facts():
    assert {f.kind for f in FACTS} == {"money", "code", "date"}
    _assert_clean(metrics.faithfulness(FAITHFUL, FACTS, CONTEXT, DRAFT))


def test_faithfulness_dropped_amount():
    clean = metrics.faithfulness(FAITHFUL, FACTS, CONTEXT, DRAFT)
    result = metrics.faithfulness(
        "Your refund for order W four nine two three two two seven arrives by May twentieth.", FACTS, CONTEXT, DRAFT
    )
    _assert_fires(result, clean, "drops the amount $121")
    # One of three required facts dropped: its share of them, times the configured cost of dropping a fact.
    assert result.score == pytest.approx(1 - ScorerConfig().faithfulness.dropped / 3, abs=0.01)


def test_faithfulness_invented_price():
    result = metrics.faithfulness(
        "Your refund of a hundred and fifty dollars for order W four nine two three two two seven arrives by May "
        "twentieth.",
        FACTS,
        CONTEXT,
        DRAFT,
    )
    assert result.score <= 0.5
    assert any("$150" in reason for reason in result.reasons)


def test_faithfulness_invented_price_even_with_every_fact():
    result = metrics.faithfulness(FAITHFUL + " Shipping was twelve dollars.", FACTS, CONTEXT, DRAFT)
    assert result.score <= 0.5
    assert any("$12" in reason for reason in result.reasons)


ASKING_DRAFT = "I see two orders on your account, #W4923227 and #W7654321. Which order would you like to return?"


def test_faithfulness_keeps_the_drafts_question():
    facts = extract_facts(ASKING_DRAFT)
    good = metrics.faithfulness(
        "I see two orders, W four nine two three two two seven and W seven six five four three two one. Which one are "
        "you returning?",
        facts,
        (ASKING_DRAFT,),
        ASKING_DRAFT,
    )
    _assert_clean(good)
    bad = metrics.faithfulness(
        "I see two orders, W four nine two three two two seven and W seven six five four three two one. I can't "
        "return the order.",
        facts,
        (ASKING_DRAFT,),
        ASKING_DRAFT,
    )
    assert bad.score < good.score
    assert any("ask" in reason for reason in bad.reasons)


def test_faithfulness_offer_question_may_become_a_statement():
    draft = "Your bag fee is $35. Would you like me to add it now?"
    result = metrics.faithfulness(
        "The bag's thirty-five dollars; I can add it now if you like.", extract_facts(draft), (draft,), draft
    )
    _assert_clean(result)


def test_faithfulness_unrelated_response_to_a_substantial_draft():
    draft = "Your replacement router shipped today and should arrive before the weekend with prepaid return packaging."
    result = metrics.faithfulness("Great, have a lovely afternoon.", extract_facts(draft), (draft,), draft)
    assert result.score <= 0.7
    assert any("nothing the draft says" in reason for reason in result.reasons)


def test_faithfulness_optional_facts_are_not_required():
    draft = "Options:\n1. $100\n2. $200\n3. $300\n4. $400\n5. $500"
    facts = extract_facts(draft)
    result = metrics.faithfulness(
        "There are five: one hundred, two hundred, or three hundred dollars, and two pricier ones.",
        facts,
        (draft,),
        draft,
    )
    _assert_clean(result)


# ---------------------------------------------------------------------------------------------------------
# speaking time


def test_estimate_seconds_grows_with_length():
    short = estimate_seconds("Your refund went through.")
    longer = estimate_seconds("Your refund went through, and it'll be on your card in three to five days.")
    longest = estimate_seconds(LONG)
    assert 0 < short < longer < longest
    assert estimate_seconds("") == 0.0
    assert estimate_seconds("It's $1,095.55.") > estimate_seconds("It's $5.")
    assert estimate_seconds("It's fine. Really.") > estimate_seconds("It's fine really")  # a pause at the break


def test_estimate_seconds_pace():
    twenty_words = " ".join(["hello"] * 20)
    assert estimate_seconds(twenty_words) == pytest.approx(8.0)
    assert estimate_seconds(twenty_words, words_per_minute=300) == pytest.approx(4.0)
    assert speaking_seconds(twenty_words) == estimate_seconds(twenty_words)


def test_speaking_seconds_unknown_engine():
    with pytest.raises(VoicetuneError, match="festival"):
        speaking_seconds("hello there", engine="festival")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_seconds_is_a_positive_duration():
    short = espeak_seconds("Your refund went through.")
    longer = espeak_seconds("Your refund went through, and you'll see it on your card in three to five business days.")
    assert 0 < short < longer < 30
    assert espeak_seconds("   ") == 0.0
    assert speaking_seconds("Your refund went through.", engine="espeak") == short


# ---------------------------------------------------------------------------------------------------------
# findings and penalties sections


def test_each_finding_carries_its_kind_quality_and_penalty():
    nasty = ("**Note:** " + "I am happy to help. " * 30 + "https://x.io credit_card_1 ") * 3
    results = {
        "non_repetition": metrics.non_repetition(nasty),
        "conciseness": metrics.conciseness(nasty, estimate_seconds(nasty), 0),
        "clarity": metrics.clarity(nasty),
        "humanness": metrics.humanness(nasty),
    }
    for quality, result in results.items():
        assert all(f.quality == quality for f in result.findings)
        assert result.reasons == tuple(render(f) for f in result.findings)
        # the style qualities are 1 minus the sum of their findings' penalties, clamped
        assert result.score == round(max(0.0, 1.0 - sum(f.penalty for f in result.findings)), 4)
    assert {"markdown_emphasis", "url_read", "internal_id_read"} <= {f.kind for f in results["clarity"].findings}
    assert "filler" in {f.kind for f in results["conciseness"].findings}
    url = next(f for f in results["clarity"].findings if f.kind == "url_read")
    assert url.text == "https://x.io" and url.penalty == 0.25


def test_faithfulness_findings_account_for_the_score():
    result = metrics.faithfulness(
        "Your refund of a hundred and fifty dollars for order W four nine two three two two seven arrives by May "
        "twentieth.",
        FACTS,
        CONTEXT,
        DRAFT,
    )
    assert [(f.kind, f.text) for f in result.findings] == [("dropped_fact", "$121"), ("invented_amount", "$150")]
    assert result.findings[0].values == {"fact_kind": "money"}
    assert result.score == round(1.0 - sum(f.penalty for f in result.findings), 4)


def test_phrase_findings_name_the_phrase_said():
    result = metrics.humanness("Kindly hold the line while I check that booking for you.")
    (finding,) = result.findings
    assert (finding.kind, finding.text, result.reasons) == ("robotic_phrase", "kindly", ("says 'kindly'",))


def test_penalty_sections_are_parameters():
    response = "You can find it at https://www.example.com/help anytime."
    assert metrics.clarity(response, ClarityPenalties(url=0.0)).score > metrics.clarity(response).score
    long = "So what I can do is move your booking to the later flight on Friday and add the bag for you."
    assert metrics.clarity(long, ClarityPenalties(long_sentence_words=20)).score < metrics.clarity(long).score
    assert metrics.conciseness("words " * 10, 30.0, 1, ConcisenessPenalties(base_seconds=30.0)).score == 1.0
    shouty = "Great! You're all set! Have a wonderful day! Bye now!"
    assert metrics.humanness(shouty, HumannessPenalties(free_exclamations=4)).score == 1.0
    repeated = "Your refund is on its way to your card. Your refund is on its way to your card."
    assert (
        metrics.non_repetition(repeated, penalties=NonRepetitionPenalties(repeated_sentence=0.6)).score
        < metrics.non_repetition(repeated).score
    )
    invented = FAITHFUL + " Shipping was twelve dollars."
    assert (
        metrics.faithfulness(invented, FACTS, CONTEXT, DRAFT, FaithfulnessPenalties(invented_amount=0.1)).score == 0.9
    )


def test_penalty_sections_are_validated_and_frozen():
    with pytest.raises(ValueError):
        ClarityPenalties(url=-0.1)
    with pytest.raises(ValueError):
        ClarityPenalties(urls=0.1)
    with pytest.raises(ValueError):
        metrics.DEFAULT_CLARITY.url = 0.0


def test_pause_seconds_is_configurable():
    text = "It's fine. Really. Okay."
    assert (
        estimate_seconds(text, pause_seconds=0.0) < estimate_seconds(text) < estimate_seconds(text, pause_seconds=1.0)
    )
    assert speaking_seconds(text, "estimate", 150.0, 0.0) == estimate_seconds(text, pause_seconds=0.0)
