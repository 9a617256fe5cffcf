"""Statistics of pairwise comparisons: win rates with confidence intervals, a sign test, per-criterion win
rates and a length-controlled win rate. Pure functions over judged pairs; scipy and statsmodels do the maths.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from voicetune.records import QUALITIES, Pair

_POINTS = {"a": 1.0, "tie": 0.5, "b": 0.0}


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion: honest near 0 and 1 and for small ``n``, unlike the normal
    approximation. ``successes`` may be fractional (ties counted half)."""
    from statsmodels.stats.proportion import proportion_confint  # noqa: PLC0415 (heavy: statsmodels)

    if n == 0:
        return (math.nan, math.nan)
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return (float(low), float(high))


def bootstrap_interval(per_context: Sequence[float], confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over contexts: resampling contexts, not verdicts, because the
    verdicts on one context (several seeds or criteria) are not independent."""
    from scipy.stats import bootstrap  # noqa: PLC0415 (heavy: scipy)

    values = np.asarray(per_context, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        mean = float(values.mean()) if len(values) else math.nan
        return (mean, mean)
    result = bootstrap(
        (values,), np.mean, confidence_level=confidence, n_resamples=5000, random_state=seed, method="percentile"
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test (exact binomial, ties dropped): the chance of a split at least this uneven if
    neither system were better."""
    from scipy.stats import binomtest  # noqa: PLC0415 (heavy: scipy)

    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def length_controlled_win_rate(
    outcomes: Sequence[float], length_a: Sequence[int], length_b: Sequence[int]
) -> float | None:
    """AlpacaEval 2's length-controlled win rate for one pair of systems.

    Fits ``logit P(A preferred) = theta + phi * tanh((len_a - len_b) / sd(len_a - len_b))`` (a binomial GLM;
    a tie counts half) and reports the win rate with the length term set to zero, ``expit(theta)``: what the
    win rate would be if both systems answered at the same length. None when the fit is impossible (for
    example, one system wins every pair).
    """
    import statsmodels.api as sm  # noqa: PLC0415 (heavy: statsmodels)
    from scipy.special import expit  # noqa: PLC0415 (heavy: scipy)

    y = np.asarray(outcomes, dtype=float)
    if len(y) < 3 or np.all(y == y[0]):
        return None
    difference = np.asarray(length_a, dtype=float) - np.asarray(length_b, dtype=float)
    spread = difference.std()
    columns = [np.ones_like(y)]
    if spread > 0:
        columns.append(np.tanh(difference / spread))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GLM(y, np.column_stack(columns), family=sm.families.Binomial()).fit()
    except Exception:  # perfect separation or a singular design: no length-controlled figure
        return None
    theta = float(fit.params[0])
    return float(expit(theta)) if math.isfinite(theta) else None


def win_statistics(judged: Sequence[Pair], seed: int = 0) -> dict:
    """Win statistics of ``system_a`` over ``system_b`` from judged pairs (errors excluded and counted).

    ``win_rate`` counts a tie as half a win; ``win_rate_no_ties`` drops ties; ``ci_low``/``ci_high`` is the
    Wilson interval of ``win_rate`` and ``bootstrap_ci`` the bootstrap interval over contexts; ``p_value`` is
    the sign test; ``per_criterion`` gives each quality's win rate; ``length_controlled_win_rate`` is
    AlpacaEval 2's (lengths in characters).
    """
    usable = [p for p in judged if p.winner is not None]
    outcomes = [_POINTS[p.winner] for p in judged if p.winner is not None]
    wins = sum(p.winner == "a" for p in usable)
    losses = sum(p.winner == "b" for p in usable)
    ties = sum(p.winner == "tie" for p in usable)
    n = len(usable)
    points = wins + 0.5 * ties
    by_context: dict[str, list[float]] = defaultdict(list)
    for pair, outcome in zip(usable, outcomes, strict=True):
        by_context[pair.meta.get("context_id", pair.id)].append(outcome)
    per_context = [float(np.mean(v)) for v in by_context.values()]
    low, high = wilson_interval(points, n)
    boot_low, boot_high = bootstrap_interval(per_context, seed=seed) if per_context else (math.nan, math.nan)
    per_criterion = {}
    for name in QUALITIES:
        verdicts = [p.criteria[name] for p in usable if p.criteria and name in p.criteria]
        if verdicts:
            per_criterion[name] = {
                "win_rate": _rate(sum(_POINTS[v] for v in verdicts), len(verdicts)),
                "wins": verdicts.count("a"),
                "losses": verdicts.count("b"),
                "ties": verdicts.count("tie"),
            }
    lc = length_controlled_win_rate(outcomes, [len(p.response_a) for p in usable], [len(p.response_b) for p in usable])
    return {
        "n": n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "errors": len(judged) - n,
        "win_rate": _rate(points, n),
        "win_rate_no_ties": _rate(wins, wins + losses),
        "ci_low": _round(low),
        "ci_high": _round(high),
        "bootstrap_ci": [_round(boot_low), _round(boot_high)],
        "p_value": float(f"{sign_test(wins, losses):.3g}"),
        "per_criterion": per_criterion,
        "length_controlled_win_rate": _round(lc) if lc is not None else None,
    }


def _rate(points: float, n: int) -> float | None:
    return round(points / n, 4) if n else None


def _round(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], statistic, confidence: float = 0.95, seed: int = 0, n_resamples: int = 5000
) -> tuple[float, float, float] | None:
    """``statistic(a, b)`` on paired samples (``a[i]`` and ``b[i]`` measured on the same unit: a call, a
    context) with its percentile bootstrap interval, resampling units with both sides together. None when
    there are fewer than two units or the statistic is undefined on the data."""
    from scipy.stats import bootstrap  # noqa: PLC0415 (heavy: scipy)

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(x) != len(y):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        point = float(statistic(x, y))
        if not math.isfinite(point):
            return None
        if np.all(x == x[0]) and np.all(y == y[0]):
            return (point, point, point)
        result = bootstrap(
            (x, y),
            statistic,
            paired=True,
            vectorized=False,
            confidence_level=confidence,
            n_resamples=n_resamples,
            random_state=seed,
            method="percentile",
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return (point, low if math.isfinite(low) else math.nan, high if math.isfinite(high) else math.nan)


def relative_change(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict:
    """The paired relative change of A's mean over B's, ``mean(a) / mean(b) - 1`` (-0.2: A is 20% lower), with
    a 95% bootstrap interval over units; None figures when B's mean is 0."""
    found = paired_bootstrap(a, b, lambda x, y: np.mean(x) / np.mean(y) - 1.0, seed=seed)
    if found is None:
        return {"change": None, "ci": [None, None]}
    return {"change": _round(found[0]), "ci": [_round(found[1]), _round(found[2])]}


def non_inferiority(a: Sequence[float], b: Sequence[float], margin: float, seed: int = 0) -> dict:
    """Whether A is non-inferior to B on a rate (per-unit values in [0, 1], paired): the difference of means
    ``mean(a) - mean(b)``, its one-sided 95% lower bound (the 5th percentile of the paired bootstrap), and
    ``non_inferior``: that bound is above ``-margin``."""
    found = paired_bootstrap(a, b, lambda x, y: np.mean(x) - np.mean(y), confidence=0.90, seed=seed)
    if found is None:
        return {"difference": None, "lower_bound": None, "margin": margin, "non_inferior": None}
    difference, lower, _ = found
    return {
        "difference": _round(difference),
        "lower_bound": _round(lower),
        "margin": margin,
        "non_inferior": bool(lower > -margin) if math.isfinite(lower) else None,
    }
