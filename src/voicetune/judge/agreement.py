"""How often a judge agrees with hand labels (``meta.label`` on a labelled pair), and the length baselines
a judge has to beat.

Pure functions over judged :class:`~voicetune.records.Pair` records (``winner`` set): a verdict equal to the
label *agrees*; a tie (in both-order judging, a verdict that flips with the order), a verdict for the other
response and a missing verdict (a judge error) do not.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np

from voicetune.data.labelled import FAILURE_CLASSES, SOURCES
from voicetune.records import QUALITIES, Pair

#: The groups :func:`agreement_report` breaks the figures down by (``meta`` keys).
GROUPS: tuple[str, ...] = ("quality", "failure_class", "source")

_MISSING = {"quality": "unlabelled", "failure_class": "unclassified"}


def _outcome(pair: Pair) -> str:
    if pair.winner is None:
        return "error"
    if pair.winner == "tie":
        return "tie"
    return "agree" if pair.winner == pair.meta["label"] else "disagree"


def _labelled(judged: Sequence[Pair]) -> list[Pair]:
    return [p for p in judged if (p.meta or {}).get("label") in ("a", "b")]


def label_agreement(judged: Sequence[Pair]) -> dict:
    """Agreement of judged pairs' ``winner`` with their ``meta.label``.

    Returns ``n`` (labelled pairs), ``agree`` (verdict equals the label), ``ties`` (the judge could not
    separate them), ``disagree`` (the judge preferred the other response), ``errors`` (no verdict: an unparseable
    answer), ``accuracy`` (agree / n, a tie or an error counting as wrong) and the same per labelled ``quality``.
    """
    labelled = _labelled(judged)
    outcome: Counter[str] = Counter()
    per_quality: dict[str, Counter] = {}
    for pair in labelled:
        result = _outcome(pair)
        outcome[result] += 1
        per_quality.setdefault(pair.meta.get("quality", "unlabelled"), Counter())[result] += 1
    n = len(labelled)
    return {
        "n": n,
        "agree": outcome["agree"],
        "ties": outcome["tie"],
        "disagree": outcome["disagree"],
        "errors": outcome["error"],
        "accuracy": round(outcome["agree"] / n, 4) if n else None,
        "per_quality": {
            quality: {"n": sum(c.values()), "agree": c["agree"], "accuracy": round(c["agree"] / sum(c.values()), 4)}
            for quality, c in sorted(per_quality.items())
        },
    }


def accuracy_interval(
    agreed: Sequence[float], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the share of pairs the judge agrees on (``agreed``: 1 or 0 per pair),
    resampling pairs ``n_boot`` times with ``seed``.

    The same method as :func:`voicetune.evaluate.stats.bootstrap_interval` (scipy's percentile bootstrap),
    with the number of resamples a parameter. When every pair has the same outcome (or there is only one)
    no resample can differ: the interval is the accuracy itself, which says nothing about its uncertainty
    (a group that small is anecdote, whatever the interval).
    """
    from scipy.stats import bootstrap  # noqa: PLC0415 (heavy: scipy)

    values = np.asarray(agreed, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    if len(values) < 2 or np.all(values == values[0]):
        return (float(values.mean()), float(values.mean()))
    result = bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_boot,
        random_state=seed,
        method="percentile",
        vectorized=True,
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _row(pairs: Sequence[Pair], n_boot: int, seed: int) -> dict:
    counts = Counter(_outcome(p) for p in pairs)
    n = len(pairs)
    low, high = accuracy_interval([float(_outcome(p) == "agree") for p in pairs], n_boot, seed)
    return {
        "n": n,
        "agree": counts["agree"],
        "ties": counts["tie"],
        "disagree": counts["disagree"],
        "errors": counts["error"],
        "accuracy": round(counts["agree"] / n, 4) if n else None,
        "ci_low": round(low, 4) if math.isfinite(low) else None,
        "ci_high": round(high, 4) if math.isfinite(high) else None,
    }


def _order(key: str) -> list[str]:
    """The usual order of a group's values (unknown values follow, alphabetically)."""
    return {"quality": list(QUALITIES), "failure_class": list(FAILURE_CLASSES), "source": list(SOURCES)}.get(key, [])


def agreement_report(judged: Sequence[Pair], by: Sequence[str] = GROUPS, n_boot: int = 2000, seed: int = 0) -> dict:
    """How often the judged pairs' ``winner`` equals the hand label ``meta.label``, overall and per group.

    Measures agreement with a listener's preference: a tie and a judge error count as not agreeing, so
    ``accuracy`` is the share of labelled pairs on which the judge picks the labelled response. Pairs with no
    label are left out (counted in ``unlabelled``).

    Args:
        judged: pairs with ``winner`` set (e.g. by :func:`voicetune.evaluate.judge_both_orders` or
            :func:`length_baseline`).
        by: ``meta`` keys to break the figures down by; a pair without the key falls in ``unlabelled``
            (quality), ``unclassified`` (failure class) or ``unknown``.
        n_boot: bootstrap resamples for each interval.
        seed: the bootstrap's random seed (the same seed gives the same intervals).

    Returns:
        ``{"overall": ROW, "groups": {KEY: {VALUE: ROW}}, "unlabelled": int, "n_boot", "seed"}`` where a ROW is
        ``n``, ``agree``, ``ties``, ``disagree``, ``errors``, ``accuracy`` (agree / n) and ``ci_low``/``ci_high``:
        the 95% percentile bootstrap interval of the accuracy, resampling pairs (:func:`accuracy_interval`).
        Within a group, values come in their usual order (qualities, failure classes, sources), then others.
    """
    labelled = _labelled(judged)
    groups: dict[str, dict[str, dict]] = {}
    for key in by:
        members: dict[str, list[Pair]] = {}
        for pair in labelled:
            value = pair.meta.get(key)
            members.setdefault(str(value) if value is not None else _MISSING.get(key, "unknown"), []).append(pair)
        known = _order(key)
        ordered = sorted(members, key=lambda v: (known.index(v) if v in known else len(known), v))
        groups[key] = {value: _row(members[value], n_boot, seed) for value in ordered}
    return {
        "overall": _row(labelled, n_boot, seed),
        "groups": groups,
        "unlabelled": len(judged) - len(labelled),
        "n_boot": n_boot,
        "seed": seed,
    }


def word_count(text: str) -> int:
    """Words as a listener hears them: white-space separated tokens."""
    return len(text.split())


def length_baseline(pairs: Sequence[Pair], prefer: Literal["shorter", "longer"] = "shorter") -> list[Pair]:
    """ "Judge" each pair by length alone: the response with fewer words wins (``prefer="longer"``: more
    words); equal word counts are a tie. A judge worth having agrees with the labels more often than both.

    Returns copies of ``pairs`` with ``winner`` set, no ``criteria``, the word counts as ``rationale`` and
    ``meta.judge`` ``"shorter-wins"`` or ``"longer-wins"``.
    """
    if prefer not in ("shorter", "longer"):
        raise ValueError(f"prefer must be 'shorter' or 'longer', got {prefer!r}")
    judged = []
    for pair in pairs:
        a, b = word_count(pair.response_a), word_count(pair.response_b)
        if a == b:
            winner = "tie"
        elif prefer == "shorter":
            winner = "a" if a < b else "b"
        else:
            winner = "a" if a > b else "b"
        judged.append(
            pair.model_copy(
                update={
                    "winner": winner,
                    "criteria": None,
                    "rationale": f"A {a} words, B {b} words",
                    "meta": {**pair.meta, "judge": f"{prefer}-wins"},
                }
            )
        )
    return judged


__all__ = ["GROUPS", "accuracy_interval", "agreement_report", "label_agreement", "length_baseline", "word_count"]
