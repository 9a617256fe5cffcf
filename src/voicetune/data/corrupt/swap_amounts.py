"""swap_amounts: exchange two amounts the response states, or replace one with another figure from the draft."""

from __future__ import annotations

import random
import re

from voicetune.data.corrupt.amounts import (
    KIND_RANK,
    MONTH_NAMES,
    WEEKDAYS,
    Amount,
    amounts,
    fits_range,
    render,
    said_as,
    with_values,
)
from voicetune.data.corrupt.context import draft_money, draft_of, draft_times_with_half
from voicetune.data.corrupt.text import Rewrite, best_option
from voicetune.quality.facts import context_numbers
from voicetune.records import Turn
from voicetune.verbalize import inflect_engine

# Words between two amounts that leave them interchangeable: "one on the twenty-eighth, the other on the thirtieth".
_NEUTRAL_GAP = re.compile(
    r"(?i)\b(?:the|other|another|one|and|or|a|an|at|on|then|both|either|each|plus|"
    + "|".join(MONTH_NAMES + WEEKDAYS)
    + r")\b"
    r"|[\s,;:-]"
)
_MONTH_ABBREVIATIONS = [m[:3] for m in MONTH_NAMES]
#: ``((how far apart, 0 for a swap or 1 for a figure from the draft, kind rank), text, why)``.
_Option = tuple[tuple[int, int, int], str, str]


def _far_apart(a: object, b: object) -> int:
    """0 for two amounts of about one size, 1 when they differ by more than five times (a fee and a
    balance), 2 by more than fifty (a wire fee and a daily limit): the realistic mix-up is between
    figures of one size, and the last is never made."""
    if isinstance(a, int) and isinstance(b, int) and min(a, b) > 0:
        ratio = max(a, b) / min(a, b)
        return 2 if ratio > 50 else int(ratio > 5)
    return 0


def _swappable(response: str, a: Amount, b: Amount) -> bool:
    """Whether exchanging ``a`` and ``b`` says something different and still reads naturally."""
    if a.kind != b.kind or a.value == b.value or (a.kind == "count" and a.unit != b.unit):
        return False
    gap = response[a.end : b.start]
    if a.in_range and b.in_range and re.fullmatch(r"\s*(?:to|-|–|until|till|or|and)\s*", gap):
        return False  # the two ends of one range: "five to seven" -> "seven to five" is just odd
    if not _NEUTRAL_GAP.sub("", gap):
        return False  # "one on the twenty-eighth, the other on the thirtieth": swapping says the same thing
    if not (fits_range(a, b.value) and fits_range(b, a.value)):
        return False
    if a.kind == "time" and (a.half != b.half or a.in_range or b.in_range):
        return False  # "after three forty tonight", "from one to one" are not swaps anyone would make
    return not (a.kind == "date" and ((a.month is None) != (b.month is None) or a.in_range or b.in_range))


def _swaps(response: str, said: list[Amount]) -> list[_Option]:
    """Two amounts of one kind in the response, each said where the other was."""
    options: list[_Option] = []
    for i, a in enumerate(said):
        for b in said[i + 1 :]:
            if not _swappable(response, a, b):
                continue
            new_a, new_b = render(a, b.value), render(b, a.value)
            if not new_a or not new_b or new_a == a.text and new_b == b.text:
                continue
            text = with_values(response, [(a, new_a), (b, new_b)])
            why = (
                f"Swaps two figures: says {said_as(a, b.value)} where the draft has {said_as(a, a.value)}, "
                "and the other way round."
            )
            options.append(((_far_apart(a.value, b.value), 0, KIND_RANK[a.kind]), text, why))
    return options


def _draft_alternatives(amount: Amount, draft: str) -> list[int | tuple[int, int]]:
    """Other figures of the same kind in the draft, to put in place of ``amount``."""
    if amount.kind == "money":
        return sorted(draft_money(draft))
    if amount.kind == "time":
        times = draft_times_with_half(draft)
        return sorted(
            (hour, minute) for hour, minute, half in times if not amount.half or not half or half == amount.half
        )
    if amount.kind == "count" and amount.unit:
        unit = f"(?:{re.escape(inflect_engine().plural_noun(amount.unit))}|{re.escape(amount.unit)})"
        pattern = rf"(?<![\d.,])(\d{{1,3}}(?:,\d{{3}})+|\d+)[ -]{unit}\b"  # "3 days", not the 3 of "17.3 inches"
        return sorted({int(n.replace(",", "")) for n in re.findall(pattern, draft, re.I)} - {0, 1})
    if amount.kind == "date" and amount.month:
        days = {
            int(day) for month, day in re.findall(r"\b\d{4}-(\d{2})-(\d{2})\b", draft) if int(month) == amount.month
        }
        for month_name, day in re.findall(rf"\b({'|'.join(_MONTH_ABBREVIATIONS)})[a-z]*\.?\s+(\d{{1,2}})\b", draft):
            if _MONTH_ABBREVIATIONS.index(month_name) + 1 == amount.month:
                days.add(int(day))
        return sorted(days)
    return []


def _from_draft(response: str, said: list[Amount], draft: str) -> list[_Option]:
    """One amount replaced by a different figure of its kind from the draft."""
    options: list[_Option] = []
    values = {(a.kind, a.value) for a in said}
    said_numbers = context_numbers(response)
    for a in said:
        if a.kind == "time" and a.in_range:
            continue
        for value in _draft_alternatives(a, draft):
            if (a.kind, value) in values or value == a.value or not fits_range(a, value):
                continue
            if (
                isinstance(value, int)
                and a.kind in ("money", "count")
                and str(value // (100 if a.kind == "money" else 1)) in said_numbers
            ):
                continue  # already said for something else in this response
            new = render(a, value)
            if not new:
                continue
            text = with_values(response, [(a, new)])
            new_said = said_as(a, value)
            why = (
                f"Says {new_said} where the draft says {said_as(a, a.value)}; "
                f"{new_said} is a different figure in the draft."
            )
            options.append(((_far_apart(a.value, value), 1, KIND_RANK[a.kind]), text, why))
    return options


def swap_amounts(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """A swap within the response first, a figure taken from the draft next; figures of one size before figures
    far apart ("a fee of twenty-five thousand dollars" is a mix-up nobody would make)."""
    draft = draft_of(turn)
    said = list(amounts(response, draft))
    options = _swaps(response, said)
    if turn is not None and not any(rank[0] == 0 for rank, _, _ in options):
        options += _from_draft(response, said, draft)
    return best_option([o for o in options if o[1] != response and o[0][0] < 2], rng)
