"""The rubric judge: both responses scored by the voice scorer, compared per quality and overall.

Deterministic and symmetric: each response is scored on its own, so swapping the two swaps the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

from voicetune.quality.config import DEFAULT_CONFIG
from voicetune.quality.scorer import ScorerConfig, score_response
from voicetune.records import QUALITIES, Pair, Verdict

#: Score differences smaller than this are ties: the metrics are not that precise. An alias of the default
#: ``ScorerConfig.tie_margin``, kept for backwards compatibility.
TIE_MARGIN = DEFAULT_CONFIG.tie_margin


def compare(score_a: float, score_b: float, margin: float = TIE_MARGIN) -> Verdict:
    """``"a"`` if ``score_a`` is higher by more than ``margin``, ``"b"`` if lower, else ``"tie"``."""
    if score_a - score_b > margin:
        return "a"
    if score_b - score_a > margin:
        return "b"
    return "tie"


def judge_pair(pair: Pair, config: ScorerConfig | None = None, margin: float | None = None) -> Pair:
    """Return ``pair`` with ``winner``, per-quality ``criteria`` and a ``rationale`` made of the findings.

    Differences up to ``margin`` (default: the config's ``tie_margin``) are ties.
    """
    config = config or DEFAULT_CONFIG
    margin = config.tie_margin if margin is None else margin
    a = score_response(pair, pair.response_a, config)
    b = score_response(pair, pair.response_b, config)
    criteria = {name: compare(a.scores[name], b.scores[name], margin) for name in QUALITIES}
    winner = compare(a.voice_score, b.voice_score, margin)
    rationale = (
        f"A {a.voice_score:.2f}: {'; '.join(a.reasons) or 'no findings'}. "
        f"B {b.voice_score:.2f}: {'; '.join(b.reasons) or 'no findings'}."
    )
    return pair.model_copy(update={"winner": winner, "criteria": criteria, "rationale": rationale})


def judge_pairs(pairs: Iterable[Pair], config: ScorerConfig | None = None) -> list[Pair]:
    """Judge every pair with the rubric (see :func:`judge_pair`)."""
    return [judge_pair(pair, config) for pair in pairs]
