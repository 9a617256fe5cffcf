"""Meaning-level faithfulness: which sentences of a response the draft does not support.

Each *claim* of a response (a statement with content; not a question to the caller, an offer, a courtesy) is
checked against the turn's draft with an NLI model (:mod:`voicetune.quality.nli`). The draft is cut into
windows that fit the model, and a claim's support is its best entailment over the windows that share words
with it, so a claim drawing on two draft sentences in one window is still supported.

The two-label models we can run offline give a contradiction an entailment near 0.005 but a faithful
paraphrase only 0.1 to 0.6, and a neutral aside something in between, so support is used as a soft, graded
penalty on a log scale between ``entail_low`` and ``entail_high`` (``ScorerConfig.meaning``), never as a hard
threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from voicetune.quality.config import MeaningRules
from voicetune.quality.findings import Finding
from voicetune.quality.nli import EntailmentModel
from voicetune.quality.text import MARKDOWN_LINE, sentences, words

__all__ = ["Claim", "claims", "content_stems", "draft_windows", "nli_pairs", "support", "unsupported_claims"]

_STOP = frozenset(
    "a an the of to in on at for and or but is are was were be been being it its this that these those your you i we "
    "my our with by from as will would can could please me us they them he she his her there here so just also then "
    "now do does did have has had not no yes okay ok sure right well all any some one get got let".split()
)
#: Sentences that do not assert anything about the draft: courtesies, empathy, offers to say more,
#: acknowledgements ("you're all set" is the done-early check's business, not the NLI model's).
_NOT_A_CLAIM = re.compile(
    r"\b(?:thank(?:s| you)|you're welcome|happy to help|glad to help|anything else|have a (?:great|good|nice)|"
    r"let me know|if you(?:'d| would)? (?:like|want|prefer|need)|want me to|would you like|shall i|should i|"
    r"i can (?:also )?(?:go (?:over|through)|read|list|tell you|walk you|send|text|email)|"
    r"(?:one|just a) (?:moment|second|sec)|let me (?:check|look|see|pull)|sorry|apologi[sz]e|i understand|"
    r"i know (?:that|this|it)|frustrating|(?:you're|you are|we're) all set|good news|no problem|of course|"
    r"great question|i hear you)\b",
    re.I,
)
_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|approx)\.(?=\s)")
_MARKDOWN_CHARS = re.compile(r"\*\*|__|`|^\s*\|.*\|\s*$|^\s*[-|: ]+$", re.M)


@dataclass(frozen=True)
class Claim:
    """A response sentence, how well the draft supports it, and the draft sentence nearest to it."""

    text: str
    support: float
    nearest: str


def _content(text: str) -> frozenset[str]:
    return frozenset(w[:6] for w in words(text) if w not in _STOP and len(w) > 2)


def content_stems(text: str) -> frozenset[str]:
    """The content words of a text, function words left out, each cut to its first six letters ("refunded"
    and "refund" meet): what two sentences must share to be about the same thing."""
    return _content(text)


@lru_cache(maxsize=16384)
def claims(response: str, min_words: int = 3) -> tuple[str, ...]:
    """The sentences of a response that assert something: not questions, offers, courtesies, or short
    acknowledgements ("Got it.")."""
    found = []
    for sentence in sentences(_ABBREVIATION.sub(r"\1", response)):
        if sentence.rstrip().endswith("?") or _NOT_A_CLAIM.search(sentence):
            continue
        if len(_content(sentence)) < min_words:
            continue
        found.append(sentence)
    return tuple(found)


def _plain(text: str) -> str:
    """Draft text without markdown markers, one sentence a line."""
    text = MARKDOWN_LINE.sub("", _MARKDOWN_CHARS.sub(" ", _ABBREVIATION.sub(r"\1", text)))
    return "\n".join(sentences(text))


@lru_cache(maxsize=4096)
def draft_windows(premise: str, max_words: int = 70) -> tuple[str, ...]:
    """The draft cut into windows of whole sentences of at most ``max_words`` words (a longer sentence is a
    window of its own): each fits the NLI model's token window with a response sentence beside it."""
    windows: list[str] = []
    current: list[str] = []
    count = 0
    for sentence in _plain(premise).splitlines():
        n = len(sentence.split())
        if current and count + n > max_words:
            windows.append(" ".join(current))
            current, count = [], 0
        current.append(sentence)
        count += n
    if current:
        windows.append(" ".join(current))
    return tuple(windows)


def _checks(claims_: Sequence[str], premises: Sequence[str], rules: MeaningRules) -> list[tuple[str, str]]:
    """Each claim with the one draft window it is checked against: the window sharing most content words with it.
    Never the best of several: the model finds an unrelated premise "entails" a claim more often than a related
    one does."""
    windows = [w for premise in premises if premise for w in draft_windows(premise, rules.window_words)]
    if not windows:
        return []
    return [(max(windows, key=lambda w: len(_content(claim) & _content(w))), claim) for claim in claims_]


def nli_pairs(response: str, premises: Sequence[str], rules: MeaningRules) -> list[tuple[str, str]]:
    """The (draft window, claim) pairs :func:`unsupported_claims` will ask the model about: a caller scoring many
    responses sends them all in one batched call first (the model caches the answers)."""
    return _checks(claims(response, rules.min_claim_words), premises, rules)


def support(claims_: Sequence[str], premises: Sequence[str], nli: EntailmentModel, rules: MeaningRules) -> list[Claim]:
    """Each claim's entailment by its draft window (:func:`_checks`), in one batched call."""
    checks = _checks(claims_, premises, rules)
    if not checks:
        return []
    return [
        Claim(claim, entailment, _nearest_sentence(claim, window))
        for (window, claim), entailment in zip(checks, nli.entailment(checks), strict=True)
    ]


def _nearest_sentence(claim: str, window: str) -> str:
    words_ = _content(claim)
    return max(sentences(window) or (window,), key=lambda s: len(words_ & _content(s)))


def unsupported_claims(
    response: str, premises: Sequence[str], nli: EntailmentModel, rules: MeaningRules
) -> list[Finding]:
    """A finding for each claim the draft does not fully support (support below ``entail_high``), costing
    ``rules.unsupported`` times how far its support falls below ``entail_high`` on a log scale (all of it at
    ``entail_low`` or less); every claim but the least supported one costs only ``rules.others`` of that: one
    contradiction is what a listener acts on, and charging every doubted sentence in full would favour saying less."""
    found = [
        claim
        for claim in support(claims(response, rules.min_claim_words), premises, nli, rules)
        if claim.support < rules.entail_high
    ]
    if not found:
        return []
    low, high = math.log(rules.entail_low), math.log(rules.entail_high)
    worst = min(found, key=lambda claim: claim.support)
    findings = []
    for claim in found:
        share = min(1.0, (high - math.log(max(claim.support, 1e-6))) / (high - low))
        cost = round(rules.unsupported * share * (1.0 if claim is worst else rules.others), 4)
        findings.append(
            Finding(
                kind="unsupported_claim",
                quality="faithfulness",
                text=claim.text,
                values={"draft": claim.nearest, "entailment": round(claim.support, 4)},
                penalty=cost,
            )
        )
    return findings
