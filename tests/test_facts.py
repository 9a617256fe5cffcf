"""Must-convey facts: extraction from screen drafts, matching their spoken forms, typing given facts, and
numbers a response invents."""

from __future__ import annotations

import pytest

from voicetune.quality.facts import Fact, classify_fact, extract_facts, fact_conveyed, invented_numbers

DRAFT = """Thank you, Mia. I found order #W4923227 for user mia_li_3668, paid with credit_card_8554680.
Your refund of $1,095.55 will be issued on 2024-05-20. Flight HAT069 departs May 20th at 06:00 AM \
and the return leaves at 2:30 PM.
Questions? Call (555) 201-8890 or write to mia.li@example.com. Details: https://www.example.com/help/refunds"""


def _by_text(facts):
    return {fact.text: fact for fact in facts}


def test_extracts_the_facts_of_a_realistic_draft():
    facts = _by_text(extract_facts(DRAFT))
    expected = {
        "$1,095.55": "money",
        "06:00 AM": "time",
        "2:30 PM": "time",
        "2024-05-20": "date",
        "May 20th": "date",
        "HAT069": "code",
        "#W4923227": "code",
        "(555) 201-8890": "phone",
        "mia.li@example.com": "email",
        "Mia": "name",
    }
    for text, kind in expected.items():
        assert text in facts, f"{text} not extracted from the draft; got {sorted(facts)}"
        assert facts[text].kind == kind
        assert facts[text].required


def test_internal_ids_and_urls_are_not_facts():
    texts = " ".join(fact.text for fact in extract_facts(DRAFT))
    for never in ("mia_li_3668", "3668", "credit_card_8554680", "8554680", "example.com/help", "https", "refunds"):
        assert never not in texts


def test_facts_come_in_draft_order_without_duplicates():
    facts = extract_facts("Your code is HAT069. Again: HAT069. Fee $75 now and $75 again.")
    assert [f.text for f in facts] == ["HAT069", "$75"]


# Regression: the MONEY pattern swallowed a comma after an amount ('$75,').
def test_comma_after_an_amount_is_not_part_of_the_fact():
    assert [f.text for f in extract_facts("The fee is $75, and the fare is $121.")] == ["$75", "$121"]
    assert [f.text for f in extract_facts("It's $1,200, plus tax.")] == ["$1,200"]


def test_list_numbers_are_not_facts():
    draft = "Here are your options:\n1. Economy for $121\n2. Business for $499\n3) First for $1,200"
    facts = extract_facts(draft)
    assert [f.text for f in facts] == ["$121", "$499", "$1,200"]
    assert all(f.kind == "money" for f in facts)


def test_facts_after_the_third_enumeration_item_are_optional():
    draft = (
        "I found these flights:\n"
        "1. HAT001 at 06:00 AM for $121\n"
        "2. HAT002 at 08:30 AM for $135\n"
        "3. HAT003 at 11:15 AM for $150\n"
        "4. HAT004 at 2:30 PM for $175\n"
        "- HAT005 at 5:45 PM for $199\n"
        "Which one would you like? The fee is $25."
    )
    facts = _by_text(extract_facts(draft))
    for text in ("HAT001", "08:30 AM", "$150", "HAT003"):
        assert facts[text].required, text
    for text in ("HAT004", "2:30 PM", "$175", "HAT005", "5:45 PM", "$199"):
        assert not facts[text].required, text
    assert facts["$25"].required  # prose after the list ends the enumeration


def test_small_counts_and_salutations_are_not_facts():
    facts = extract_facts("Hi there, 1 passenger is booked. Thank you for calling.")
    assert [f.text for f in facts] == []


# ---------------------------------------------------------------------------------------------------------
# Spoken forms


MUST_MATCH = [
    ("$1,095.55", "money", "1,095 dollars and 55 cents"),
    ("$1,095.55", "money", "one thousand ninety-five dollars and fifty-five cents"),
    ("$1,095.55", "money", "It comes to ten ninety-five fifty-five."),
    ("$1,095.55", "money", "$1,095.55"),
    ("$1,095.55", "money", "one thousand and ninety-five dollars, fifty-five cents"),
    ("$121", "money", "a hundred and twenty-one dollars"),
    ("$121", "money", "one hundred twenty-one dollars"),
    ("$121", "money", "That's one twenty-one."),
    ("$75.00", "money", "seventy-five dollars"),
    ("$19.99", "money", "nineteen ninety-nine"),
    ("$1,000", "money", "a thousand dollars"),
    ("06:00 AM", "time", "6 in the morning"),
    ("06:00 AM", "time", "It leaves at six a.m."),
    ("06:00 AM", "time", "six o'clock"),
    ("12:00 PM", "time", "We close at noon."),
    ("12:00 AM", "time", "It resets at midnight."),
    ("2:30 PM", "time", "half past two"),
    ("2:30 PM", "time", "two thirty"),
    ("2:30 PM", "time", "two thirty in the afternoon"),
    ("14:30", "time", "two thirty p.m."),
    ("10:00 AM", "time", "anywhere from ten to noon"),
    ("9:00 PM", "time", "I've got you down at nine tonight."),
    ("12:30 AM", "time", "twelve thirty a.m."),
    ("2:45 PM", "time", "quarter to three"),
    ("6:05 PM", "time", "six oh five p.m."),
    ("7:45 AM", "time", "seven forty-five"),
    ("2024-05-20", "date", "May twentieth"),
    ("2024-05-20", "date", "the twentieth of May"),
    ("2024-05-20", "date", "on May 20"),
    ("May 20th", "date", "on May twentieth"),
    ("5/17", "date", "Friday, May seventeenth"),
    ("#W4923227", "code", "W4923227"),
    ("#W4923227", "code", "W four nine two three two two seven"),
    ("HAT069", "code", "H A T zero six nine"),
    ("HAT069", "code", "H A T, then oh six nine"),
    ("HAT069", "code", "H-A-T-0-6-9"),
    ("KQ7LM2", "code", "K Q seven L M two"),
    ("(555) 201-8890", "phone", "five five five, two oh one, eight eight nine zero"),
    ("(555) 201-8890", "phone", "555-201-8890"),
    ("(555) 201-8890", "phone", "five five five, two zero one, double eight nine zero"),
    ("mia.li@example.com", "email", "mia dot li at example dot com"),
    ("mia.li@example.com", "email", "mia.li@example.com"),
    ("Mia", "name", "Thanks, Mia."),
    ("25%", "number", "twenty-five percent"),
    ("12", "number", "twelve"),
]

MUST_NOT_MATCH = [
    ("$1,095.55", "money", "one thousand ninety-five dollars and fifteen cents"),
    ("$1,095.55", "money", "one thousand ninety-five dollars"),
    ("$1,095.55", "money", "ten ninety-five"),
    ("$121", "money", "a hundred and fifty dollars"),
    ("$121", "money", "one twenty-two"),
    ("$5", "money", "five hundred dollars"),
    ("06:00 AM", "time", "seven in the morning"),
    ("06:00 AM", "time", "It leaves at sixteen hundred."),
    ("12:00 PM", "time", "midnight"),
    ("2:30 PM", "time", "three thirty"),
    ("2:30 PM", "time", "two forty"),
    ("2:30 PM", "time", "half past two in the morning"),
    ("7:45 AM", "time", "seven forty-five in the evening"),
    ("2024-05-20", "date", "May twenty-first"),
    ("2024-05-20", "date", "June twentieth"),
    ("May 20th", "date", "May second"),
    ("#W4923227", "code", "W four nine two three two two eight"),
    ("#W4923227", "code", "W four nine two three"),
    ("HAT069", "code", "H A T zero six eight"),
    ("HAT069", "code", "H A T zero nine six"),
    ("(555) 201-8890", "phone", "five five five, two oh one, eight eight nine one"),
    ("mia.li@example.com", "email", "mia at example dot com"),
    ("Mia", "name", "Thanks, Maya."),
]


@pytest.mark.parametrize("text, kind, response", MUST_MATCH, ids=[f"{t} ~ {r}" for t, _, r in MUST_MATCH])
def test_spoken_form_conveys_the_fact(text, kind, response):
    assert fact_conveyed(Fact(text, kind), response)


@pytest.mark.parametrize("text, kind, response", MUST_NOT_MATCH, ids=[f"{t} !~ {r}" for t, _, r in MUST_NOT_MATCH])
def test_wrong_or_partial_form_does_not_convey_the_fact(text, kind, response):
    assert not fact_conveyed(Fact(text, kind), response)


@pytest.mark.parametrize(
    "text, response",
    [
        ("06:00 AM", "It leaves at six p.m."),
        ("6:00 PM", "It leaves at six in the morning."),
        ("2:30 PM", "two thirty a.m."),
        ("12:00 AM", "It resets at noon."),
    ],
)
# Regression: 06:00 AM was matched by 'six p.m.' and 12:00 AM by 'noon' (hours compared modulo 12).
def test_wrong_half_of_the_day_does_not_convey_the_time(text, response):
    assert not fact_conveyed(Fact(text, "time"), response)


@pytest.mark.parametrize(
    "response",
    ["The routing number is 071 904 382.", "The routing number is oh seven one, nine oh four, three eight two."],
    ids=["written", "spoken"],
)
# Regression: '071 904 382' (a composite of numbers with a leading zero) matched nothing, not even itself;
# the built-in reference of banking-13-t01 lost to its draft because of it.
def test_digit_groups_with_a_leading_zero_convey_the_fact(response):
    assert fact_conveyed(classify_fact("071 904 382"), response)


def test_named_time_half_of_day_is_read_after_the_named_time():
    response = "You have two bags, and the flight is at half past two in the morning."
    assert fact_conveyed(Fact("2:30 AM", "time"), response)
    assert not fact_conveyed(Fact("2:30 PM", "time"), response)


def test_time_range_half_of_day_applies_to_its_start():
    response = "The technician can come any time from eight to ten a.m."
    assert fact_conveyed(Fact("8:00 AM", "time"), response)
    assert not fact_conveyed(Fact("8:00 PM", "time"), response)


def test_tonight_conveys_an_evening_time():
    assert fact_conveyed(Fact("9:00 PM", "time"), "I've got you down at nine tonight.")  # works: 'at' makes it a time
    assert fact_conveyed(Fact("9:00 PM", "time"), "Your table's booked for nine tonight.")


def test_written_fact_matches_itself_in_a_sentence():
    for fact in extract_facts(DRAFT):
        assert fact_conveyed(fact, f"For the record: {fact.text}."), fact


def test_extracted_facts_match_a_good_spoken_version():
    spoken = (
        "Thanks, Mia. Order W four nine two three two two seven gets a refund of ten ninety-five fifty-five on May "
        "twentieth. Flight H A T zero six nine leaves May twentieth at six in the morning, and the return's at two "
        "thirty. You can call five five five, two oh one, eight eight nine zero, or email mia dot li at example dot "
        "com."
    )
    missing = [fact.text for fact in extract_facts(DRAFT) if fact.required and not fact_conveyed(fact, spoken)]
    assert missing == []


# ---------------------------------------------------------------------------------------------------------
# Typing given facts


@pytest.mark.parametrize(
    "text, kind",
    [
        ("$1,095.55", "money"),
        ("06:00 AM", "time"),
        ("2024-05-20", "date"),
        ("HAT069", "code"),
        ("#W4923227", "code"),
        ("(555) 201-8890", "phone"),
        ("mia.li@example.com", "email"),
        ("Fri 5/17 2:30 PM", "composite"),
        ("non-refundable", "phrase"),
        ("change fee", "phrase"),
        ("Mia", "name"),
        ("Okafor", "name"),
    ],
)
def test_classify_fact_kind(text, kind):
    assert classify_fact(text).kind == kind


def test_classify_money_with_a_word():
    fact = classify_fact("$25 copay")
    kinds = {fact.kind} | {part.kind for part in fact.parts}
    assert "money" in kinds
    assert fact_conveyed(fact, "your copay is twenty-five dollars")
    assert not fact_conveyed(fact, "your copay is thirty-five dollars")


def test_composite_needs_every_part():
    fact = classify_fact("Fri 5/17 2:30 PM")
    assert {part.kind for part in fact.parts} == {"date", "time"}
    assert fact_conveyed(fact, "Friday, May seventeenth at two thirty")
    assert not fact_conveyed(fact, "Friday at two thirty")
    assert not fact_conveyed(fact, "May seventeenth")


def test_internal_id_given_as_fact_is_optional():
    fact = classify_fact("credit_card_8554680")
    assert fact.kind == "internal_id"
    assert not fact.required


def test_phrase_facts_count_half_and_match_loosely():
    fact = classify_fact("non-refundable")
    assert fact.weight == 0.5
    assert fact_conveyed(fact, "That ticket is non-refundable, I'm afraid.")
    assert not fact_conveyed(fact, "You'll get your money back.")


# ---------------------------------------------------------------------------------------------------------
# Invented numbers


CONTEXT = ("Your fare is $121 and the change fee is $100.", "How much will it be?")


def test_invented_price_is_flagged():
    assert invented_numbers("That'll be a hundred and fifty dollars.", CONTEXT) == ["$150"]
    assert invented_numbers("It's forty-seven dollars.", CONTEXT) == ["$47"]


def test_invented_large_number_is_flagged():
    assert invented_numbers("You have 2,500 miles left.", CONTEXT) == ["2500"]


@pytest.mark.parametrize(
    "response",
    [
        "That'll be a hundred and twenty-one dollars, plus the one hundred dollar fee.",
        "It's one twenty-one.",
        "$121 plus $100.",
        "You've got two bags and three passengers on the booking.",
        "Give me one second.",
    ],
)
def test_numbers_from_context_and_small_counts_are_not_flagged(response):
    assert invented_numbers(response, CONTEXT) == []


def test_numbers_the_context_states_in_spoken_form_are_known():
    context = ("The fare is one hundred twenty-one dollars, and you have twelve hundred miles.",)
    assert invented_numbers("It's $121, and you've got 1,200 miles.", context) == []


def test_clock_times_in_context_cover_both_12_and_24_hour_forms():
    context = ('{"flight": "HAT069", "dep": "14:30", "arr": "06:05"}',)
    assert invented_numbers("It leaves at two thirty and lands at six oh five.", context) == []
    assert invented_numbers("It leaves at fourteen thirty.", context) == []


def test_small_money_is_still_flagged():
    assert invented_numbers("It's five dollars.", CONTEXT) == ["$5"]


# ---------------------------------------------------------------------------------------------------------
# Configurable limits (ScorerConfig.facts and ScorerConfig.faithfulness)


def test_spoken_list_limit_and_trivial_count_are_parameters():
    draft = "Options:\n1. $100\n2. $200\n3. $300\n4. $400\n5. $500"
    assert [f.required for f in extract_facts(draft)] == [True, True, True, False, False]
    assert [f.required for f in extract_facts(draft, 1)] == [True, False, False, False, False]
    assert [f.required for f in extract_facts(draft, 5)] == [True] * 5
    assert [f.text for f in extract_facts("You have 2 bags.")] == ["2"]
    assert [f.text for f in extract_facts("You have 2 bags.", 3, 2)] == []


def test_small_count_limit_is_a_parameter():
    assert invented_numbers("You've got twelve bags.", CONTEXT) == ["12"]
    assert invented_numbers("You've got twelve bags.", CONTEXT, 12) == []
    assert invented_numbers("You've got two bags.", CONTEXT, 0) == ["2"]
    assert invented_numbers("It's five dollars.", CONTEXT, 100) == ["$5"]  # money is never a small count
