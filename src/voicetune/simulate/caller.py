"""The simulated caller: what makes a turn hard to follow by ear, and when the caller asks to hear it again.

:func:`listening_load` measures a heard turn (pure, one job per term); :func:`repeat_probability` turns it
into the chance of "sorry, can you say that again?" (monotone: a longer or denser turn never lowers it);
:class:`RuleCaller` draws the decision from a common random number, so two systems that say the same thing
get the same decision. :func:`redundant_claims` finds what a turn says that the agent already said.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Protocol

from voicetune.quality.facts import fact_conveyed
from voicetune.quality.meaning import claims, content_stems, support
from voicetune.quality.text import MARKDOWN_LINE, compact, sentences, spoken_to_digits, words
from voicetune.simulate.config import CallerModel

#: Digit groups said apart belong together ("five five two seven" -> 5527): one information unit.
_NUMBER = re.compile(r"\d+(?:[\s,.:/-]\d+)*")
#: Tokens a voice reads badly, as written: markdown and symbols, URLs, e-mail addresses, long ids.
_UNSPEAKABLE_WRITTEN = re.compile(
    r"\*\*?|__|`|#{1,6}(?=\s)|\||https?://\S+|www\.\S+|\b\S+@\S+\.\w+|(?<![\w$])[<>=~^\\/]{1,2}(?![\w$])|"
    r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{8,}\b"
)
#: The same, as they come back through speech recognition.
_UNSPEAKABLE_SPOKEN = re.compile(
    r"\b(?:asterisks?|hash(?:tag)?|pound sign|slash|backslash|underscores?|pipe|bullet point|dot com|www)\b", re.I
)


@dataclass(frozen=True)
class Load:
    """What makes one heard turn hard to follow: information units, the longest sentence in words, list items
    and badly spoken tokens."""

    information: int
    longest_sentence: int
    list_items: int
    unspeakable: int


def information_units(text: str) -> int:
    """Numbers, amounts, dates, times and codes a listener must hold: digit groups once spoken numbers are
    digits, a group said digit by digit counting once."""
    return len(_NUMBER.findall(spoken_to_digits(text)))


def longest_sentence(text: str) -> int:
    """Words in the longest sentence (or line): the stretch a listener must hold before it resolves."""
    return max((len(words(s)) for s in sentences(text)), default=0)


def list_items(text: str) -> int:
    """Lines that are list items or headings (bullets, numbered lines, '#'), and table rows."""
    return len(MARKDOWN_LINE.findall(text)) + sum(1 for line in text.splitlines() if line.strip().startswith("|"))


def unspeakable_tokens(text: str) -> int:
    """Tokens a TTS voice reads badly: markdown and symbols, URLs, e-mail addresses, ids of eight or more
    letters and digits; and their traces in a transcript ("asterisk", "slash", "dot com")."""
    return len(_UNSPEAKABLE_WRITTEN.findall(text)) + len(_UNSPEAKABLE_SPOKEN.findall(text))


def listening_load(text: str) -> Load:
    """The :class:`Load` of a heard turn."""
    return Load(information_units(text), longest_sentence(text), list_items(text), unspeakable_tokens(text))


def repeat_probability(seconds: float, load: Load, model: CallerModel, attempt: int = 0) -> float:
    """The chance the caller asks to hear a turn again: ``1 - exp(-hazard)``, with
    ``hazard = seconds / model.repair_interval_seconds * (1 + extra)`` and ``extra`` the load beyond what a
    listener takes in without effort (see :class:`~voicetune.simulate.config.CallerModel`). Every term is
    non-negative and non-decreasing in its feature, so a longer or denser turn never lowers the chance. A
    repeat (``attempt`` 1, 2, ...) is multiplied by ``model.repeat_relief`` per repeat; past
    ``model.max_repeats`` the chance is 0."""
    if attempt > model.max_repeats - 1 or seconds <= 0:
        return 0.0
    extra = (
        model.info_weight * max(0, load.information - model.chunk_limit)
        + model.sentence_weight * max(0.0, load.longest_sentence - model.sentence_words) / 10.0
        + model.list_weight * load.list_items
        + model.unspeakable_weight * load.unspeakable
    )
    hazard = seconds / model.repair_interval_seconds * (1.0 + extra)
    return (1.0 - math.exp(-hazard)) * model.repeat_relief**attempt


def heard_fact(fact, heard: str, similarity: float | None = None) -> bool:
    """Whether the caller got ``fact`` from what they heard: said in any of its spoken or written forms
    (:func:`voicetune.quality.facts.fact_conveyed`, as the scorer checks), or, on the speech channel
    (``similarity`` given), written differently by the recogniser but close: some stretch of the transcript,
    letters and digits only, matches the fact's at ``similarity`` or more (difflib's ratio). Speech recognition
    writes "8.30 a.m." for "08:30 AM" and "g dot whitcombe at example dot org" for an address: heard. A name
    that comes back as another word ("Pruitt" as "per it") is not."""
    if fact_conveyed(fact, heard):
        return True
    if similarity is None:
        return False
    target, text = compact(spoken_to_digits(fact.text)), compact(spoken_to_digits(heard))
    if not target or not text:
        return False
    width = len(target)
    for size in (width - 1, width, width + 1, width + 2):
        for start in range(0, max(1, len(text) - size + 1)):
            if SequenceMatcher(None, target, text[start : start + size], autojunk=False).ratio() >= similarity:
                return True
    return False


def redundant_claims(text: str, earlier: Sequence[str], overlap: float, nli=None, rules=None) -> list[str]:
    """The claims (asserting sentences) of ``text`` that say again what the agent already said in ``earlier``
    turns of this call: at least ``overlap`` of a claim's content words (stems, numbers in spoken form) were
    said in one earlier turn, or, with an NLI model, an earlier turn entails it (at ``rules.entail_high`` or more). Not
    verbatim only: "your refund was processed" repeats "I've processed the refund". Each earlier turn is
    compared on its own: a claim that merely shares words with the call as a whole says nothing again."""
    found = claims(text)
    if not found or not earlier:
        return []
    said = [content_stems(spoken_to_digits(t)) for t in earlier]
    repeated = []
    for claim in found:
        stems = content_stems(spoken_to_digits(claim))
        if stems and any(len(stems & turn) >= overlap * len(stems) for turn in said):
            repeated.append(claim)
    if nli is not None and rules is not None:
        rest = [c for c in found if c not in repeated]
        repeated += [c.text for c in support(rest, list(earlier), nli, rules) if c.support >= rules.entail_high]
    return repeated


class Caller(Protocol):
    """Decides, after one agent turn, whether the caller asks to hear it again."""

    name: str

    def describe(self) -> dict: ...

    def wants_repeat(
        self,
        *,
        heard: str,
        seconds: float,
        attempt: int,
        u: float,
        conversation_id: str,
        seed: int,
        heard_so_far: Sequence[tuple[str, str]],
    ) -> bool: ...


class RuleCaller:
    """The default caller: :func:`repeat_probability` against a common random number ``u``."""

    name = "rules"

    def __init__(self, model: CallerModel):
        self.model = model

    def describe(self) -> dict:
        return {"caller": "rules", **self.model.model_dump()}

    def probability(self, heard: str, seconds: float, attempt: int) -> float:
        return repeat_probability(seconds, listening_load(heard), self.model, attempt)

    def wants_repeat(
        self,
        *,
        heard: str,
        seconds: float,
        attempt: int,
        u: float,
        conversation_id: str = "",
        seed: int = 0,
        heard_so_far: Sequence[tuple[str, str]] = (),
    ) -> bool:
        return u < self.probability(heard, seconds, attempt)
