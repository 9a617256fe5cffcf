"""drop_fact: remove the clause or sentence carrying a fact the caller needs (an amount, a date, a time, a code)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from voicetune.data.corrupt.amounts import amounts
from voicetune.data.corrupt.text import APOS, Rewrite, capitalised, shorten, tidy
from voicetune.quality.facts import Fact, fact_conveyed, turn_facts
from voicetune.quality.text import sentence_spans, words
from voicetune.records import Turn

_TYPED_KINDS = ("money", "time", "date", "code", "number", "composite", "phone", "email")
_CLAUSE_LIKE = re.compile(
    r"(?i)\b(?:is|are|was|were|be|been|have|has|had|can|will|would|could|should|do|does|did|get|gets|got|goes|comes|"
    rf"takes|found|see|need|needs|owe|pay|works|starts)\b|{APOS}(?:s|re|ve|ll|d|m)\b|\b(?:I|you|we|they|he|she|it)\s+\w+"
)
_TRAILING = re.compile(r"(?:,\s+(?:and|but|plus|with|then)\b|;\s+|,\s+(?=(?:and then|from)\b)|\s+—\s+)", re.I)
_SUBJECT_START = re.compile(
    rf"(?:(?i:I|you|we|they|he|she|there|the|your|our|my|his|her|their|both|each|every|all|one)|[A-Z][a-z]+)(?:{APOS}\w+)?\b"
)
_DANGLING_START = re.compile(
    r"(?i)^(?:so|but|or|which|though|while|because|that|it|this|they|those|these|then|if|plus|and)\b"
)
_YES_NO_QUESTION = re.compile(
    r"(?i)^\s*(?:can|could|would|will|do|does|did|is|are|what|which|when|where|how|who|shall|should)\b"
)
_LEANS_ON_BEFORE = re.compile(r"(?i)^(?:so|but|or|and|that one|those|it's in|which)\b")
_HEDGES = re.compile(r"(?i)\b(?:about|around|roughly|just|only|or|the)\b")


def _needed_facts(response: str, turn: Turn | None) -> list[Fact]:
    """The facts the turn requires (:func:`~voicetune.quality.facts.turn_facts`) that the response conveys, typed
    ones (amounts, dates, codes ...) first; names and internal ids are never dropped."""
    if turn is None:
        return []
    facts = [
        f
        for f in turn_facts(turn)
        if f.required and f.kind not in ("internal_id", "name") and fact_conveyed(f, response)
    ]
    typed = [f for f in facts if f.kind in _TYPED_KINDS]
    return typed or [f for f in facts if f.kind == "phrase"]


def _clause_cuts(sentence: str) -> list[int]:
    """Where the sentence's clauses start: trailing "and ..." clauses, and after a colon that ends a clause standing
    on its own ("Here it is: ..."), not a lead-in ("Her flight: ...")."""
    cuts = [m.start() for m in _TRAILING.finditer(sentence)]
    colon = re.search(r":\s+", sentence)
    if colon and _CLAUSE_LIKE.search(sentence[: colon.start()]) and not re.match(r"(?i)\s*just to\b", sentence):
        cuts = sorted([*cuts, colon.start()])
    return cuts


def _clause_removals(sentence: str) -> Iterator[tuple[str, str]]:
    """The sentence without one of its later clauses, or without its first when the rest stands on its own ("X, and
    you're upgraded." -> "You're upgraded."): ``(new sentence, what was removed)``."""
    body_end = len(sentence.rstrip(".!?"))
    bounds = [0, *_clause_cuts(sentence), body_end]
    for start, end in zip(bounds[1:-1], bounds[2:], strict=True):
        removed = sentence[start:end]
        if removed.lstrip().startswith(":") and end != body_end:
            continue  # "Here's the snag: X, and Y" without X is "Here's the snag, and Y"
        new_sentence = sentence[:start] + sentence[end:]
        if end == body_end and sentence.rstrip().endswith("?") and not _YES_NO_QUESTION.match(sentence[:start]):
            new_sentence = new_sentence.rstrip().rstrip("?") + "."  # the question went with the clause
        yield new_sentence, removed.strip(" ,;:—")
    if len(bounds) > 2:
        rest = sentence[bounds[1] :]
        lead = re.match(r"[,;:—]?\s*(?:(?:and|then)\s+)?", rest, re.I)
        remainder = rest[lead.end() :] if lead else rest
        stands_alone = (
            remainder
            and not sentence.rstrip().endswith("?")
            and not _DANGLING_START.match(remainder)
            and _CLAUSE_LIKE.search(remainder.split(",")[0])
            and _SUBJECT_START.match(remainder)
        )
        if stands_alone:
            yield capitalised(remainder), sentence[: bounds[1]].strip()


def _aside_removals(sentence: str) -> Iterator[tuple[str, str]]:
    """An amount between commas left out: "I can refund the lamp and the shipping, a hundred forty-three fifty, to
    your card" -> "... the shipping to your card"."""
    for m in re.finditer(r",\s+([^,]+),", sentence):
        inner = m.group(1)
        said = amounts(inner)
        leftover = inner
        for amount in said:
            leftover = leftover.replace(amount.text, " ")
        if said and all(a.kind in ("money", "time", "date") for a in said) and not _HEDGES.sub("", leftover).strip():
            yield sentence[: m.start()] + " " + sentence[m.end() :].lstrip(), inner


def _removals(response: str) -> list[tuple[str, str]]:
    """Shorter versions of a response, each without one clause or sentence: ``(text, what was removed)``.

    Clauses first, then whole sentences. Every version must still read as sentences, not fragments.
    """
    out: list[tuple[str, str]] = []
    sentences = sentence_spans(response)
    for s_start, s_end in sentences:
        sentence = response[s_start:s_end]
        for new_sentence, removed in [*_clause_removals(sentence), *_aside_removals(sentence)]:
            out.append((tidy(response[:s_start] + new_sentence + response[s_end:]), removed))
    if len(sentences) > 1:
        for index, (s_start, s_end) in enumerate(sentences):
            following = response[slice(*sentences[index + 1])] if index + 1 < len(sentences) else ""
            if following and _LEANS_ON_BEFORE.match(following):
                continue  # the next sentence leans on this one
            out.append((tidy(response[:s_start] + response[s_end:]), response[s_start:s_end].strip()))
    return out


def drop_fact(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """A needed fact (drawn at random) left out with the first clause or sentence that carries it alone."""
    facts = _needed_facts(response, turn)
    if not facts:
        return None
    rng.shuffle(facts)
    removals = _removals(response)
    for fact in facts:
        for text, removed in removals:
            if (
                text == response
                or fact_conveyed(fact, text)
                or len(words(text)) < 2
                or not fact_conveyed(fact, removed)
            ):
                continue
            if re.match(r"^(?:and|but|so|or|then|plus|which)\b", text, re.I) or text.rstrip().endswith((",", ":", ";")):
                continue
            shown = re.sub(r"^(?:and|but|so|plus|which|with|then|or)\s+", "", removed.rstrip(".!?"), flags=re.I)
            return text, f'Leaves out "{shorten(shown)}", which the caller needs (the draft gives {fact.text}).'
    return None
