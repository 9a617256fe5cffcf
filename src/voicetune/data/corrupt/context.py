"""The context a response is judged against: the turn's texts, and the amounts, times and days they state (to tell
a real figure from an invented one, and to find a plausible wrong one)."""

from __future__ import annotations

import re
from functools import lru_cache

from voicetune.quality.facts import MONEY, TIME, context_numbers, money_value, spoken_view
from voicetune.records import Turn

_HALF = re.compile(r"([AaPp])\.?\s?[Mm]")


def turn_texts(turn: Turn | None) -> tuple[str, ...]:
    """The texts a response may take facts from: the draft, the facts, the history, the tool results."""
    if turn is None:
        return ()
    texts = [turn.draft or "", *(turn.facts or []), *(message.text for message in turn.history), *turn.tool_results]
    return tuple(t for t in texts if t)


def draft_of(turn: Turn | None) -> str:
    return (turn.draft or "") if turn is not None else ""


def _hour_minute(text: str) -> tuple[int, int]:
    """``(hour, minute)`` of a written clock time as written ("19:05" -> (19, 5))."""
    match = re.match(r"\s*(\d{1,2})(?::(\d{2}))?", text)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)


@lru_cache(maxsize=4096)
def draft_money(draft: str) -> frozenset[int]:
    """Money amounts (in cents) a written draft states."""
    return frozenset(
        100 * dollars + cents for dollars, cents in (money_value(match.group(0)) for match in MONEY.finditer(draft))
    )


@lru_cache(maxsize=4096)
def draft_times(draft: str) -> frozenset[tuple[int, int]]:
    """Clock times (hour 1-12, minute) a written draft states."""
    found = {_hour_minute(match.group(0)) for match in TIME.finditer(draft)}
    found |= {(int(hour), int(minute)) for hour, minute in re.findall(r"\b(\d{1,2}):(\d{2})\b", draft)}
    return frozenset((hour % 12 or 12, minute) for hour, minute in found)


def draft_times_with_half(draft: str) -> frozenset[tuple[int, int, str]]:
    """Clock times a written draft states, with "am"/"pm" when it says which (or a 24-hour clock does)."""
    found = set()
    for match in TIME.finditer(draft):
        hour, minute = _hour_minute(match.group(0))
        half = _HALF.search(match.group(0))
        said = ("am" if half.group(1).lower() == "a" else "pm") if half else ("pm" if hour >= 13 else "")
        found.add((hour % 12 or 12, minute, said))
    return frozenset(found)


@lru_cache(maxsize=2048)
def known_numbers(texts: tuple[str, ...]) -> frozenset[str]:
    """Every number the texts state (canonical, as :func:`~voicetune.quality.facts.context_numbers`)."""
    return frozenset().union(*(context_numbers(text) for text in texts))


@lru_cache(maxsize=2048)
def known_times(texts: tuple[str, ...]) -> frozenset[tuple[int, int]]:
    """Every clock time (hour 1-12, minute) the texts state, in words or digits."""
    known: set[tuple[int, int]] = set()
    for text in texts:
        known |= {(hour % 12 or 12, minute) for hour, minute in spoken_view(text).times}
        known |= draft_times(text)
    return frozenset(known)


@lru_cache(maxsize=2048)
def known_days(texts: tuple[str, ...]) -> frozenset[int]:
    """Every day of a month the texts state."""
    known: set[int] = set()
    for text in texts:
        view = spoken_view(text)
        known |= {day for _, day in view.dates} | set(view.days)
        known |= {int(d) for d in re.findall(r"\b\d{4}-\d{2}-(\d{2})\b", text)}
        known |= {int(d) for d in re.findall(r"\b\d{1,2}/(\d{1,2})\b", text)}
    return frozenset(known)
