"""wrong_item: replace an item, name, place or date with a different one from the context, or a sibling (the next
weekday, another city, another doctor)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from voicetune.data.corrupt.amounts import MONTH_NAMES, WEEKDAYS
from voicetune.data.corrupt.context import draft_of, turn_texts
from voicetune.data.corrupt.items import (
    CITIES,
    COUNTRIES,
    FIRST_NAMES,
    GROUP_PATTERNS,
    ITEM_GROUPS,
    SURNAMES,
    day_after,
    day_fits,
    group_ok,
    sibling,
)
from voicetune.data.corrupt.text import APOS, Rewrite, best_option, match_case, replace_with_article, tidy
from voicetune.quality.facts import Fact, extract_facts
from voicetune.quality.text import sentence_spans
from voicetune.records import Turn

_COMMON_HEADS = frozenset(
    "The This That Your Our A An It We You I If On In At For And But Or So Then Thanks Thank Hi Hello Good Happy "
    "Yes No Doctor Dr Mr Mrs Ms Miss Saint St Here There What When Where Which Who How Just Please Once Since "
    "Both All Each Every Its Their His Her My Sorry Great Perfect Nice Okay Right Not Only Also Still Let Now".split()
)
_TITLED = re.compile(r"\b(Doctor|Dr\.|Mr\.|Mrs\.|Ms\.|Miss)\s+((?:[A-Z][a-z]+\s+)?[A-Z][a-z'’-]+)")
_CAP_PHRASE = re.compile(
    r"\b([A-Z][a-z]+(?:\s+(?:[A-Z][a-z]+|One|Two|Three|Four|Five|Six|Seven|Eight|Nine|Ten|Hundred|Thousand)){1,2})\b"
)
_CLOSING = re.compile(
    r"^(?:Enjoy|Have a|Good luck|Thanks|Thank you|Take care|Safe travels|Happy|Glad|Congrat|Hope|I hope|Stay|Bye|"
    r"See you|Anytime|You're welcome|My pleasure)\b"
)
_VOCATIVE = re.compile(r"(?:^|[.!?]\s+|,\s+)([A-Z][a-z]+)(?=[.!?]|,\s)")


@dataclass
class _Options:
    """The ways to get an item wrong in one response: ``(priority, text, why)``, lower priority first."""

    response: str
    found: list[tuple[int, str, str]] = field(default_factory=list)

    def in_pleasantry(self, index: int) -> bool:
        return any(s <= index < e and _CLOSING.match(self.response[s:e]) for s, e in sentence_spans(self.response))

    def replace(self, priority: int, start: int, end: int, new: str, old: str) -> None:
        """Say ``new`` where the response says ``old``."""
        self._add(
            priority,
            replace_with_article(self.response, start, end, new),
            f"Says {new} instead of {old}; the draft says {old}.",
        )

    def exchange(self, priority: int, a: tuple[int, int, str], b: tuple[int, int, str], old: str, new: str) -> None:
        """Say each of two items where the other was."""
        first, later = sorted([a, b])
        text = replace_with_article(self.response, later[0], later[1], later[2], tidy_up=False)
        text = tidy(replace_with_article(text, first[0], first[1], first[2], tidy_up=False))
        self._add(priority, text, f"Mixes up {old} and {new}: the response puts each where the draft has the other.")

    def _add(self, priority: int, text: str, why: str) -> None:
        if text != self.response:
            self.found.append((priority, text, why))


def _group_options(options: _Options, group: str, context: str, draft: str, rng: random.Random) -> None:
    """Members of one group (weekdays, cities, cards, colours ...): two said exchanged, one replaced by another the
    context names, or by a sibling."""
    response = options.response
    pattern = GROUP_PATTERNS[group]
    _, case_sensitive, _, strength = ITEM_GROUPS[group]
    found = [
        m
        for m in pattern.finditer(response)
        if group_ok(group, response, m.start(), m.end(), draft + " " + response)
        and not options.in_pleasantry(m.start())
    ]
    if not found:
        return
    said = {m.group(1).lower() for m in found}
    cased: Callable[[str, str], str] = (lambda old, new: new) if case_sensitive else match_case
    distinct: dict[str, re.Match[str]] = {}
    for m in found:
        distinct.setdefault(m.group(1).lower(), m)
    if len(distinct) >= 2 and group not in ("daypart", "ampm", "channel", "color"):
        a, b = list(distinct.values())[:2]
        fits = (
            group != "month" or day_fits(b.group(1), response[a.end() :]) and day_fits(a.group(1), response[b.end() :])
        )
        if fits and {a.group(1).lower(), b.group(1).lower()} != {"gray", "grey"}:  # "April thirty-first" is no date
            ends = (
                (a.start(), a.end(), cased(a.group(1), b.group(1))),
                (b.start(), b.end(), cased(b.group(1), a.group(1))),
            )
            options.exchange(0, *ends, a.group(1), cased(a.group(1), b.group(1)))
    context_members = {
        m.group(1) for m in pattern.finditer(context) if group_ok(group, context, m.start(), m.end(), context)
    }
    target = rng.choice(found)
    old = target.group(1)
    alternatives = sorted(
        c
        for c in context_members
        if c.lower() not in said and c.lower() != old.lower() and not {c.lower(), old.lower()} <= {"gray", "grey"}
    )
    if group == "month":
        alternatives = [c for c in alternatives if day_fits(c, response[target.end() :])]
    if alternatives and group != "ampm":
        new = rng.choice(alternatives)
        options.replace(1, target.start(), target.end(), new if case_sensitive else match_case(old, new.lower()), old)
    day = day_after(response[target.end() :]) if group == "month" else None
    other = sibling(group, old, rng, said | {c.lower() for c in context_members}, day, response)
    if other:
        options.replace(strength, target.start(), target.end(), cased(old, other), old)


def _person(name: str) -> str:
    return re.sub(rf"{APOS}s$", "", name)


def _titled_options(options: _Options, context: str, rng: random.Random) -> None:
    """A titled name ("Doctor Helen Ruiz"): exchanged with another the response names, replaced by another from
    the context, or given a different surname."""
    response = options.response
    for match in _TITLED.finditer(response):
        title, name = match.group(1), _person(match.group(2))
        weak = 1 if options.in_pleasantry(match.start()) else 0
        surname = name.split()[-1]
        doctor = title in ("Doctor", "Dr.")
        others = sorted(
            {
                _person(m.group(2))
                for m in _TITLED.finditer(context + " " + response)
                if (m.group(1) in ("Doctor", "Dr.")) == doctor and _person(m.group(2)).split()[-1] != surname
            }
        )
        span = (match.start(2), match.start(2) + len(name))
        in_response = [o for o in others if o.split()[-1] in response]
        if in_response:
            other_match = re.search(rf"\b{re.escape(in_response[0])}\b", response)
            if other_match and other_match.start() > match.end():
                ends = (*span, in_response[0]), (other_match.start(), other_match.end(), name)
                options.exchange(weak * 3, *ends, name, in_response[0])
        elif others:
            options.replace(1 + weak * 2, *span, rng.choice(others), name)
        surname_pool = [s for s in SURNAMES if s not in context and s not in response and s[0] != surname[0]]
        if surname_pool:
            options.replace(2 + weak, *span, " ".join(name.split()[:-1] + [rng.choice(surname_pool)]), name)


def _abbreviates(a: str, b: str) -> bool:
    """Whether one word is the other's abbreviation ("St" / "Street", "Blvd" / "Boulevard")."""
    short, long = sorted((a.rstrip("."), b.rstrip(".")), key=len)
    return short[:1].lower() == long[:1].lower() and (len(short) <= 4 or long.lower().startswith(short.lower()))


def _phrase_options(options: _Options, draft: str, rng: random.Random) -> None:
    """Names and plans sharing a first word ("Essentials Five" / "Essentials Ten"): two said exchanged, or one
    replaced by another the draft names."""
    response = options.response
    phrases: dict[str, list[re.Match[str]]] = {}
    for match in _CAP_PHRASE.finditer(response):
        head = match.group(1).split()[0]
        if head not in _COMMON_HEADS and head not in MONTH_NAMES and head not in WEEKDAYS:
            phrases.setdefault(head, []).append(match)
    for head, matches in phrases.items():
        distinct: dict[str, re.Match[str]] = {}
        for m in matches:
            distinct.setdefault(m.group(1), m)
        if len(distinct) >= 2:
            a, b = list(distinct.values())[:2]
            options.exchange(
                0, (a.start(), a.end(), b.group(1)), (b.start(), b.end(), a.group(1)), a.group(1), b.group(1)
            )
            continue
        said = matches[0].group(1)
        in_context = sorted(
            {
                m.group(1)
                for m in _CAP_PHRASE.finditer(draft)
                if m.group(1).split()[0] == head and m.group(1) not in distinct and not re.search(r"\d", m.group(1))
            }
        )
        in_context = [
            c
            for c in in_context
            if len(c.split()) == len(said.split())
            and c not in response
            and not _abbreviates(c.split()[1], said.split()[1])  # "Pell St" is "Pell Street"
        ]
        if in_context:
            options.replace(1, matches[0].start(), matches[0].end(), rng.choice(in_context), said)


def _context_names(turn: Turn | None) -> list[Fact]:
    """The caller's (and other people's) first names the draft uses: "Thank you, Keisha", "Hi Dorothy"."""
    if turn is None:
        return []
    found = [f for f in extract_facts(turn.draft or "") if f.kind == "name"]
    titled = {m.group(2).split()[-1] for m in _TITLED.finditer(" ".join(turn_texts(turn)))}
    return [f for f in found if f.text not in titled and f.text not in CITIES and f.text not in COUNTRIES]


def _name_options(options: _Options, turn: Turn | None, context: str, rng: random.Random) -> None:
    """The caller's first name, said to them, replaced by another."""
    names = {f.text for f in _context_names(turn)}
    for match in _VOCATIVE.finditer(options.response):
        if match.group(1) in names:
            pool = [n for n in FIRST_NAMES if n not in context and n[0] != match.group(1)[0]]
            if pool:
                options.replace(3, match.start(1), match.end(1), rng.choice(pool), match.group(1))
            break


def wrong_item(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """One of the most natural item mix-ups, drawn at random: two items exchanged first, then one from the context,
    then a sibling."""
    draft = draft_of(turn)
    context = " ".join(turn_texts(turn))
    options = _Options(response)
    for group in GROUP_PATTERNS:
        _group_options(options, group, context, draft, rng)
    _titled_options(options, context, rng)
    _phrase_options(options, draft, rng)
    _name_options(options, turn, context, rng)
    return best_option(options.found, rng)
