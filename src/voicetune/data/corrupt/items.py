"""The items wrong_item changes: groups of interchangeable words (weekdays, months, cities, cards, cabins, colours,
medications ...), when a word really is an item of its group, and a sibling to put in its place."""

from __future__ import annotations

import random
import re

from voicetune.data.corrupt.amounts import MONTH_NAMES, WEEKDAYS
from voicetune.data.corrupt.numbers import ORDINAL_ALTERNATION, ORDINALS
from voicetune.data.corrupt.text import at_sentence_start

CITIES = [
    "Atlanta",
    "Austin",
    "Baltimore",
    "Boston",
    "Charlotte",
    "Chicago",
    "Cincinnati",
    "Cleveland",
    "Columbus",
    "Dallas",
    "Denver",
    "Detroit",
    "El Paso",
    "Harrisburg",
    "Honolulu",
    "Houston",
    "Indianapolis",
    "Jacksonville",
    "Kansas City",
    "Las Vegas",
    "Los Angeles",
    "Louisville",
    "Memphis",
    "Miami",
    "Milwaukee",
    "Minneapolis",
    "Nashville",
    "New Orleans",
    "New York",
    "Newark",
    "Oakland",
    "Oklahoma City",
    "Omaha",
    "Orlando",
    "Philadelphia",
    "Phoenix",
    "Pittsburgh",
    "Portland",
    "Raleigh",
    "Sacramento",
    "Salt Lake City",
    "San Antonio",
    "San Diego",
    "San Francisco",
    "San Jose",
    "Savannah",
    "Seattle",
    "Spokane",
    "St. Louis",
    "Tampa",
    "Tucson",
    "Tulsa",
    "Toronto",
    "Vancouver",
    "Montreal",
    "London",
    "Paris",
    "Madrid",
    "Lisbon",
    "Rome",
    "Berlin",
    "Dublin",
    "Cancun",
    "Mexico City",
    "Hue",
    "Hanoi",
]
COUNTRIES = [
    "Portugal",
    "Spain",
    "France",
    "Italy",
    "Germany",
    "Morocco",
    "Mexico",
    "Canada",
    "Japan",
    "Vietnam",
    "Ireland",
    "Greece",
    "Brazil",
]
SURNAMES = [
    "Patel",
    "Nguyen",
    "Garcia",
    "Murphy",
    "Chen",
    "Brooks",
    "Reyes",
    "Foster",
    "Hughes",
    "Bennett",
    "Carter",
    "Morales",
    "Sullivan",
    "Park",
    "Novak",
]
FIRST_NAMES = [
    "Karen",
    "Michael",
    "Sandra",
    "David",
    "Linda",
    "James",
    "Angela",
    "Robert",
    "Susan",
    "Kevin",
    "Maria",
    "Steven",
]
_MEDICATIONS = [
    "lisinopril",
    "metformin",
    "atorvastatin",
    "levothyroxine",
    "amlodipine",
    "zolpidem",
    "omeprazole",
    "sertraline",
    "losartan",
    "simvastatin",
    "gabapentin",
    "albuterol",
]
_COLORS = [
    "black",
    "white",
    "red",
    "blue",
    "navy",
    "green",
    "gray",
    "grey",
    "pink",
    "purple",
    "brown",
    "beige",
    "sage",
    "rust",
    "teal",
    "olive",
    "charcoal",
    "oatmeal",
    "ivory",
]

#: group: (members, case-sensitive, how a sibling is chosen: "adjacent" (ordered) or "any", strength)
ITEM_GROUPS: dict[str, tuple[list[str], bool, str, int]] = {
    "weekday": (WEEKDAYS, True, "adjacent", 2),
    "month": (MONTH_NAMES, True, "adjacent", 2),
    "city": (CITIES, True, "any", 2),
    "country": (COUNTRIES, True, "any", 2),
    "card": (["Visa", "Mastercard", "American Express", "Amex", "Discover"], True, "any", 2),
    "tier": (["Silver", "Gold", "Platinum"], True, "any", 2),
    "cabin": (["Economy", "Premium", "Business", "First Class"], True, "any", 2),
    "account": (["checking", "savings"], False, "any", 2),
    "seat": (["window", "aisle"], False, "any", 2),
    "size": (["small", "medium", "large", "extra large"], False, "any", 2),
    "color": (_COLORS, False, "any", 2),
    "medication": (_MEDICATIONS, False, "any", 2),
    "body": (["knee", "shoulder", "hip", "ankle", "wrist", "elbow"], False, "any", 2),
    "side": (["left", "right"], False, "any", 2),
    "relday": (["today", "tomorrow"], False, "any", 2),
    "format": (["hardcover", "paperback", "audiobook", "ebook"], False, "any", 2),
    "daypart": (["morning", "afternoon", "evening"], False, "any", 3),
    "ampm": (["a.m.", "p.m."], False, "any", 3),
    "channel": (["text", "email"], False, "any", 3),
}
GROUP_PATTERNS = {
    name: re.compile(
        rf"(?<![\w.-])({'|'.join(re.escape(m) for m in sorted(members, key=len, reverse=True))})(?![\w-])",
        0 if case_sensitive else re.I,
    )
    for name, (members, case_sensitive, _, _) in ITEM_GROUPS.items()
}
_GREY = {"gray", "grey"}
_PROPER_GROUPS = frozenset({"city", "country", "card", "weekday", "month"})  # capitalised wherever they are said
_DAY_AFTER = rf"\s+(?:the\s+)?(\d{{1,2}}|{ORDINAL_ALTERNATION})"
_ORDINAL_AFTER = re.compile(rf"\s+(?:the\s+)?(?:\d|{'|'.join(ORDINALS)})", re.I)


def _capitalised_ok(before: str, after: str) -> bool:
    """A capitalised common word inside a sentence is part of a name ("Forest Green", "Premium SMS Block") unless a
    number or a day follows it."""
    if re.search(r"[A-Z][\w-]*\s+$", before) or re.match(r"\s+[A-Z][A-Za-z]", after):
        return False
    return bool(_ORDINAL_AFTER.match(after))


def _common_group_ok(group: str, word: str, before: str, after: str, context: str) -> bool:
    """The rules for the everyday words: a side of the body, a size, an account, a seat, a channel."""
    if group == "side":
        return bool(re.search(r"\b(?:your|the|his|her|my|their)\s+$", before, re.I)) and bool(
            re.match(
                r"\s+(?:knee|hand|side|arm|leg|ear|eye|foot|shoulder|hip|wrist|ankle|elbow|lane|turn|lung|kidney|breast)\b",
                after,
            )
        )
    if group == "size":
        return bool(re.search(r"\bsize", context, re.I)) and not re.match(
            r"\s+(?:fee|amount|number|print|business|bill|one|ones|charge|stuff)\b", after
        )
    if group == "account":
        return (
            bool(re.match(r"\s+(?:account|ending)\b", after))
            or bool(re.search(r"\b(?:your|the|from|to|into|Federal|Everyday|Joint|Basic|Premier|Student)\s+$", before))
            and not re.match(r"\s+(?:whether|if|that|the|your|on|in)\b", after)
        )
    if group == "channel":
        after_article = bool(re.search(r"\b(?:a|an|the|by|via)\s+$", before))
        if word == "text":
            return after_article and not re.match(r"\s+(?:with|from)\b", after)
        return after_article and not re.match(r"\s+(?:from|called|address)\b", after)
    return True


def group_ok(group: str, text: str, start: int, end: int, context: str) -> bool:
    """Whether a match really is an item of its group here ("left" the side, not "left" the verb)."""
    before, after = text[:start], text[end:]
    word = text[start:end].lower()
    if group not in _PROPER_GROUPS and text[start].isupper() and not at_sentence_start(text, start):
        return _capitalised_ok(before, after)
    if group == "seat":
        return (
            bool(re.search(r"\bseat|\baisle\b|\bby the window", text, re.I))
            and not re.match(r"\s+(?:seat\s+)?(?:of|to)\b", after)
            and not re.search(r"(?:-day|day|delivery|time|grace|booking|service|return)\s+$", before)
        )
    if group == "daypart":
        return bool(
            re.search(
                r"\b(?:in the|this|tomorrow|Friday|Monday|Tuesday|Wednesday|Thursday|Saturday|Sunday|a|one)\s+$",
                before,
                re.I,
            )
        ) or bool(re.match(r"\s+(?:window|slot|flight|appointment)", after))
    if group == "color":
        return not re.match(r"\s+(?:and|or)\s+white\b", after) and not re.search(
            r"\b(?:in the|black and|white and)\s+$", before
        )
    if group == "relday":
        return not re.search(r"\b(?:the rest of|as of|same as|as)\s+$", before)
    if group == "cabin" and word == "business":
        return not re.match(r"\s+days?\b", after)
    if group == "body":
        return bool(re.search(r"\b(?:left|right|your|the|his|her)\s+$", before))
    return _common_group_ok(group, word, before, after, context)


def _day_value(said: str) -> int:
    return int(said) if said.isdigit() else ORDINALS[said.lower()]


def day_after(text: str) -> int | None:
    """The day said at the start of ``text`` (right after a month name: " fourteenth", " the 3rd")."""
    following = re.match(_DAY_AFTER, text, re.I)
    return _day_value(following.group(1)) if following else None


def _month_length(month: str) -> int:
    return 29 if month == "February" else 30 if month in ("April", "June", "September", "November") else 31


def day_fits(month: str, after: str) -> bool:
    """Whether the day said right after a month name ("thirty-first") exists in ``month``."""
    following = re.match(_DAY_AFTER + r"\b", after, re.I)
    return not following or _day_value(following.group(1)) <= _month_length(month)


def sibling(
    group: str, value: str, rng: random.Random, avoid: set[str], day: int | None = None, text: str = ""
) -> str | None:
    """Another member of ``value``'s group (the next or previous one for an ordered group), none of ``avoid`` or
    ``text``; for a month, one that has ``day``."""
    members, _, how, _ = ITEM_GROUPS[group]
    current = {m.lower(): m for m in members}.get(value.lower(), value)
    if how == "adjacent":
        i = members.index(current)
        options = [members[(i + 1) % len(members)], members[(i - 1) % len(members)]]
        if group == "month" and day is not None:
            options = [o for o in options if day <= _month_length(o)]
    else:
        options = [m for m in members if m.lower() != current.lower()]
        if group == "color" and current.lower() in _GREY:
            options = [m for m in options if m not in _GREY]
    options = [o for o in options if o.lower() not in avoid and not re.search(rf"\b{re.escape(o)}\b", text, re.I)]
    return rng.choice(options) if options else None
