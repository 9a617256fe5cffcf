"""invent_number: change one number, amount, time or date to a nearby value that is nowhere in the context."""

from __future__ import annotations

import random

from voicetune.data.corrupt.amounts import KIND_RANK, Amount, amounts, fits_range, render, said_as, with_values
from voicetune.data.corrupt.context import draft_of, known_days, known_numbers, known_times, turn_texts
from voicetune.data.corrupt.text import Rewrite
from voicetune.records import Turn


def _nearby_money(cents_value: int) -> list[int]:
    """75 -> 85, 65, 80, 70, 95 dollars: a step of the figure's own size."""
    dollars, cents = divmod(cents_value, 100)
    if dollars == 0:
        return [max(1, cents + d) for d in (10, -10, 5, 20) if 0 < cents + d < 100]
    if dollars < 10:
        steps: tuple[int, ...] = (2, 3, -2, 5)
    elif dollars < 100:
        steps = (10, -10, 5, -5, 20) if dollars % 5 == 0 else (10, -10, 2, -2, 20)
    elif dollars < 1000:
        steps = (10, -10, 20, -20, 50) if dollars % 10 else (50, -50, 20, -20, 100)
    else:
        steps = (100, -100, 200, -200, 1000)
    return [(dollars + step) * 100 + cents for step in steps if dollars + step > 0]


def _nearby_time(amount: Amount, hour: int, minute: int) -> list[int | tuple[int, int]]:
    """7:45 -> 8:15, 7:15, 8:00, 7:30, 8:45; not across noon or midnight when the response says which half."""
    minutes = (hour % 12) * 60 + minute
    out: list[int | tuple[int, int]] = []
    for step in (30, -30, 15, -15, 60) if minute else (60, -60, 120, -120):
        new = minutes + step
        if amount.half and not 0 <= new < 720:
            continue  # "eleven forty-five a.m." must not become "twelve fifteen a.m."
        new_hour, new_minute = divmod(new % 720, 60)
        out.append((new_hour or 12, new_minute))
    return out


def _nearby_count(amount: Amount, n: int) -> list[int]:
    """3 -> 4, 5, 2, 6 days; 45 -> 50, 40, 55, 35; 1,200 -> 1,300, 1,100 ...; a percentage stays at most 100."""
    if amount.unit == "percent":
        steps: tuple[int, ...] = (5, -5, 10, -10)
    elif n < 10:
        steps = (1, 2, -1, 3)
    elif n < 20:
        steps = (5, -5, 10) if n % 5 == 0 else (2, -2, 3, -3)
    elif n < 100:
        steps = (5, -5, 10, -10) if n % 5 == 0 else (2, -2, 3, -3)
    else:
        step = 10 ** max(1, len(str(n)) - 2)
        steps = (step, -step, 2 * step, -2 * step)
    return [n + s for s in steps if n + s >= 2 and (amount.unit != "percent" or n + s <= 100)]


def _nearby(amount: Amount) -> list[int | tuple[int, int]]:
    """Plausible wrong values near ``amount``'s, most natural first (75 -> 85 dollars, 7:45 -> 8:15)."""
    if isinstance(amount.value, tuple):
        return _nearby_time(amount, *amount.value)
    if amount.kind == "money":
        return list(_nearby_money(amount.value))
    if amount.kind == "date":
        return [amount.value + d for d in (1, -1, 2, -2, 3, 7, -7) if 1 <= amount.value + d <= 28]
    if amount.kind == "count":
        return list(_nearby_count(amount, amount.value))
    return []


def _is_known(amount: Amount, value: int | tuple[int, int], texts: tuple[str, ...]) -> bool:
    """Whether ``value`` appears anywhere in ``texts`` (the context and the response)."""
    numbers = known_numbers(texts)
    if isinstance(value, tuple):
        hour, minute = value
        return value in known_times(texts) or bool(minute) and str(hour * 100 + minute) in numbers
    if amount.kind == "money":
        dollars, cents = divmod(value, 100)
        return str(dollars) in numbers or bool(cents) and f"{dollars}.{cents:02d}".rstrip("0") in numbers
    if amount.kind == "date":
        return value in known_days(texts)
    return str(value) in numbers


def _tier(amount: Amount) -> int:
    """Money first, then large counts, times, dates, and small counts last."""
    if amount.kind == "count":
        return 3 if amount.number > 10 else 4
    return KIND_RANK[amount.kind]


def invent_number(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """One amount (of the first tier that has one, drawn at random) moved to a nearby value the context lacks."""
    texts = turn_texts(turn) + (response,)
    by_tier: dict[int, list[Amount]] = {}
    for amount in amounts(response, draft_of(turn)):
        by_tier.setdefault(_tier(amount), []).append(amount)
    for level in sorted(by_tier):
        candidates = list(by_tier[level])
        rng.shuffle(candidates)
        for amount in candidates:
            if amount.kind == "time" and amount.in_range:
                continue
            for value in _nearby(amount):
                if value == amount.value or not fits_range(amount, value) or _is_known(amount, value, texts):
                    continue
                new = render(amount, value)
                if new and new != amount.text:
                    text = with_values(response, [(amount, new)])
                    why = (
                        f"Says {said_as(amount, value)} instead of {said_as(amount, amount.value)}; "
                        "that figure is nowhere in the draft."
                    )
                    return text, why
    return None
