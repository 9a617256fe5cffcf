"""Decoding that keeps facts: best-of-N and a guard, on top of any generator.

``best-of N`` samples N responses and keeps the one the judge rates highest: by default the learned judge
(:mod:`voicetune.judge.learned`), usable first, then style. The ``guard`` accepts a candidate only when the
learned judge calls it usable at its guard threshold (chosen on the labels' dev half for 95% precision); when
every candidate is refused, the turn falls back to the draft said faithfully
(:func:`voicetune.verbalize.speak_draft`, the ``draft+voicetune`` system) and is marked as a fallback.
``selector="rubric"`` keeps the rules alone: the voice score
ranks, and the guard refuses a dropped required fact, an invented number or a contradiction. The evaluation
reports such systems apart from the plain model (``MODEL+best4``, ``MODEL+guard``), with their fallback rate,
so the model's own gain and the decoder's are never mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voicetune.errors import VoicetuneError
from voicetune.judge.learned import default_judge
from voicetune.quality import ScorerConfig, score_response
from voicetune.quality.findings import DROPPED, INVENTED, contradicts, has_finding
from voicetune.records import Turn
from voicetune.verbalize import speak_draft

#: Bump when what :func:`pick` keeps changes: decoded responses are cached under it.
DECODER_VERSION = 4


@dataclass(frozen=True)
class Decoded:
    """The response kept for a turn: its ``text``, which candidate it was (``index``; None for a fallback),
    whether it is the guard's ``fallback``, its score under the selector (``voice_score``: the learned score, or the
    rubric's voice
    score), and why each refused candidate was refused."""

    text: str
    index: int | None
    fallback: bool
    voice_score: float
    refused: dict[int, list[str]] = field(default_factory=dict)


def refusal(findings, entail_low: float = 0.005) -> list[str]:
    """What the guard refuses in a response's findings, by kind (empty: the response passes): a dropped
    required fact, an invented number, a contradiction (:func:`voicetune.quality.findings.contradicts`)."""
    return sorted(
        {f.kind for f in findings or () if has_finding([f], DROPPED | INVENTED) or contradicts([f], entail_low)}
    )


def pick(
    turn: Turn,
    candidates: Sequence[str],
    scorer=None,
    guard: bool = False,
    fallback_text: str | None = None,
    judge=None,
    selector: str = "learned",
) -> Decoded:
    """The candidate the judge rates highest; with ``guard``, the highest among those it does not refuse, or
    ``fallback_text`` (the draft said by :func:`voicetune.verbalize.speak_draft` when not given) when it refuses
    them all.

    ``selector`` ``learned`` (``judge``, default the packaged listener labels' judge) ranks by the learned
    score (every usable candidate above every unusable one) and the guard refuses what it judges unusable;
    ``rubric`` ranks by the voice score and refuses by the rules (:func:`refusal`)."""
    if not candidates:
        raise VoicetuneError(f"{turn.id}: no candidate response to choose from")
    if selector == "learned":
        return _pick_learned(turn, candidates, scorer, guard, fallback_text, judge)
    entail_low = (scorer or ScorerConfig()).meaning.entail_low
    results = [score_response(turn, text, scorer) for text in candidates]
    refused = {i: refusal(r.findings, entail_low) for i, r in enumerate(results)} if guard else {}
    allowed = [i for i in range(len(candidates)) if not refused.get(i)]
    if allowed:
        best = max(allowed, key=lambda i: (results[i].voice_score, -i))
        return Decoded(
            candidates[best], best, False, results[best].voice_score, {i: k for i, k in refused.items() if k}
        )
    text = fallback_text if fallback_text is not None else speak_draft(turn.draft or "")
    return Decoded(text, None, True, score_response(turn, text, scorer).voice_score, refused)


def _pick_learned(
    turn: Turn, candidates: Sequence[str], scorer, guard: bool, fallback_text: str | None, judge
) -> Decoded:
    judge = judge or default_judge(scorer)
    assessed = judge.assess([turn] * len(candidates), list(candidates))
    refused = (
        {i: [a.failure or "unusable"] for i, a in enumerate(assessed) if a.usable_p < judge.guard_threshold}
        if guard
        else {}
    )
    allowed = [i for i in range(len(candidates)) if i not in refused]
    if allowed:
        best = max(allowed, key=lambda i: (assessed[i].score, -i))
        return Decoded(candidates[best], best, False, assessed[best].score, refused)
    text = fallback_text if fallback_text is not None else speak_draft(turn.draft or "")
    return Decoded(text, None, True, judge.assess([turn], [text])[0].score, refused)
