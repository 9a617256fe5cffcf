"""Statistics of a human pairwise review: how far reviewers agree with the automated judge, with each other and
with themselves, the human win rates in ``voicetune eval``'s terms, and reviewers whose votes look unreliable.

Pure functions over live :class:`~voicetune.review.store.Vote` records (verdicts canonical: ``a`` is the pair's
``system_a``). Unless a figure says otherwise it uses first showings only (``showing == 1``): the repeat of a
pair (showing 2, in the other order) serves self-consistency and would otherwise count one opinion twice.
scikit-learn, ``krippendorff``, statsmodels and ``choix`` do the maths. Figures are rounded to 4 digits and
are None where they cannot be computed (no items, one item, or a single category so chance agreement is total).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Literal

import krippendorff
import numpy as np

from voicetune.evaluate.stats import bootstrap_interval, sign_test, wilson_interval
from voicetune.records import QUALITIES
from voicetune.review.store import Vote

#: The verdicts, as Cohen's κ and Fleiss' κ see them (three nominal categories).
LABELS: tuple[str, ...] = ("a", "b", "tie")

_POINTS = {"a": 1.0, "tie": 0.5, "b": 0.0}
_ORDINAL = {"b": 0, "tie": 1, "a": 2}  # for the ordinal α: a tie sits between preferring b and preferring a


def _r(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def _share(hits: float, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def _first(votes: Sequence[Vote]) -> list[Vote]:
    return [v for v in votes if v.showing == 1 and v.winner in LABELS]


def _systems(comparison: str, systems: Mapping[str, tuple[str, str]] | None) -> tuple[str, str]:
    if systems and comparison in systems:
        return tuple(systems[comparison])  # type: ignore[return-value]
    a, _, b = comparison.partition("-vs-")
    return a, b


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's κ between two label sequences over :data:`LABELS`: agreement corrected for the agreement two
    raters with these label frequencies would reach by chance, ``(p_o - p_e) / (1 - p_e)``.

    None with fewer than two items or when ``p_e`` is 1 (both used a single, same label): κ is then 0/0.
    """
    from sklearn.metrics import cohen_kappa_score  # noqa: PLC0415 (heavy: sklearn)

    if len(first) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _r(cohen_kappa_score(list(first), list(second), labels=list(LABELS)))


def agreement_row(human: Sequence[str], judge: Sequence[str]) -> dict:
    """Agreement of paired verdicts: ``n``, ``percent_agreement`` (share equal), ``kappa`` (Cohen's, three
    labels) and the same with ties dropped (``*_no_ties``: every item where either side said ``tie``), since a
    judge and a human often differ only in how readily they call a tie."""
    kept = [(h, j) for h, j in zip(human, judge, strict=True) if h != "tie" and j != "tie"]
    return {
        "n": len(human),
        "percent_agreement": _share(sum(h == j for h, j in zip(human, judge, strict=True)), len(human)),
        "kappa": cohen_kappa(human, judge),
        "n_no_ties": len(kept),
        "percent_agreement_no_ties": _share(sum(h == j for h, j in kept), len(kept)),
        "kappa_no_ties": cohen_kappa([h for h, _ in kept], [j for _, j in kept]),
    }


def human_vs_judge(votes: Sequence[Vote], judge: Mapping[str, dict]) -> dict:
    """How often the automated judge's verdict equals a human's, pooled over reviewers (each first-showing vote
    on a pair the judge gave a verdict for is one comparison), per criterion (where both gave that quality's
    verdict) and per reviewer. Measures whether the judge can stand in for the human panel."""
    judged = [v for v in _first(votes) if (judge.get(v.pair_id) or {}).get("winner") in LABELS]
    per_criterion = {}
    for quality in QUALITIES:
        both = [
            (v.criteria[quality], judge[v.pair_id]["criteria"][quality])
            for v in _first(votes)
            if (v.criteria or {}).get(quality) in LABELS
            and ((judge.get(v.pair_id) or {}).get("criteria") or {}).get(quality) in LABELS
        ]
        per_criterion[quality] = agreement_row([h for h, _ in both], [j for _, j in both])
    reviewers = sorted({v.reviewer for v in judged})
    return {
        "overall": agreement_row([v.winner for v in judged], [judge[v.pair_id]["winner"] for v in judged]),
        "per_criterion": per_criterion,
        "per_reviewer": {
            name: agreement_row(
                [v.winner for v in judged if v.reviewer == name],
                [judge[v.pair_id]["winner"] for v in judged if v.reviewer == name],
            )
            for name in reviewers
        },
    }


def _krippendorff(data: np.ndarray, level: Literal["nominal", "ordinal"]) -> float | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _r(krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2]))
    except (ValueError, ZeroDivisionError):
        return None


def inter_reviewer(votes: Sequence[Vote]) -> dict:
    """Agreement between reviewers on the pairs at least two of them voted on (first showings): how much of a
    verdict is the pair and how much the person.

    Krippendorff's α (nominal, and ordinal with ``b < tie < a``) copes with any number of raters per pair;
    Fleiss' κ needs the same number on every pair, so it uses the pairs with the most common rater count
    (``fleiss_raters``; a tie between counts goes to the larger). ``percent_agreement`` is the share of
    reviewer pairs on an item that agree, averaged over items.
    """
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa  # noqa: PLC0415 (heavy: statsmodels)

    by_pair: dict[str, dict[str, str]] = defaultdict(dict)
    for vote in _first(votes):
        by_pair[vote.pair_id][vote.reviewer] = vote.winner
    shared = {pair: raters for pair, raters in sorted(by_pair.items()) if len(raters) >= 2}
    result: dict[str, float | None] = {
        "n_pairs": len(shared),
        "krippendorff_alpha_nominal": None,
        "krippendorff_alpha_ordinal": None,
        "fleiss_kappa": None,
        "fleiss_raters": None,
        "percent_agreement": None,
    }
    if not shared:
        return result
    names = sorted({name for raters in shared.values() for name in raters})
    data = np.full((len(names), len(shared)), np.nan)
    for column, raters in enumerate(shared.values()):
        for name, verdict in raters.items():
            data[names.index(name), column] = _ORDINAL[verdict]
    counts = Counter(len(raters) for raters in shared.values())
    size = max(counts, key=lambda k: (counts[k], k))
    rows = [[_ORDINAL[v] for v in raters.values()] for raters in shared.values() if len(raters) == size]
    fleiss = None
    if len(rows) >= 2:
        table, _ = aggregate_raters(np.asarray(rows), n_cat=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fleiss = _r(fleiss_kappa(table, method="fleiss"))
    agreeing = [np.mean([x == y for x, y in combinations(raters.values(), 2)]) for raters in shared.values()]
    result.update(
        {
            "krippendorff_alpha_nominal": _krippendorff(data, "nominal"),
            "krippendorff_alpha_ordinal": _krippendorff(data, "ordinal"),
            "fleiss_kappa": fleiss,
            "fleiss_raters": size,
            "percent_agreement": _r(np.mean(agreeing)),
        }
    )
    return result


def _consistency(votes: Sequence[Vote]) -> dict[str, tuple[int, int]]:
    """Reviewer -> (repeated pairs, consistent ones)."""
    showings: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for vote in votes:
        showings[(vote.reviewer, vote.pair_id)][vote.showing] = vote.winner
    counts: dict[str, list[int]] = {name: [0, 0] for name in sorted({v.reviewer for v in votes})}
    for (name, _), seen in showings.items():
        if 1 in seen and 2 in seen:
            counts[name][0] += 1
            counts[name][1] += seen[1] == seen[2]
    return {name: (n, same) for name, (n, same) in counts.items()}


def self_consistency(votes: Sequence[Vote]) -> dict:
    """Per reviewer (and ``overall``), how often the canonical verdict on a pair's repeat (showing 2, shown in
    the other order) equals the first: a reviewer who always picks the same slot, or votes at random, scores
    low. ``{name: {"n", "consistent", "rate"}}``; ``rate`` is None without repeats."""
    counts = _consistency(votes)
    result = {name: {"n": n, "consistent": same, "rate": _share(same, n)} for name, (n, same) in counts.items()}
    n, same = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    result["overall"] = {"n": n, "consistent": same, "rate": _share(same, n)}
    return result


def comparison_statistics(
    votes: Sequence[Vote],
    judge: Mapping[str, dict],
    *,
    seed: int = 0,
    systems: Mapping[str, tuple[str, str]] | None = None,
) -> list[dict]:
    """The human win rate of ``system_a`` over ``system_b`` per comparison, in ``voicetune eval``'s terms
    (:func:`voicetune.evaluate.stats.win_statistics`), with the judge's win rate on the same pairs beside it.

    Each first-showing vote counts once (a tie half a win); ``ci_low``/``ci_high`` is the Wilson interval over
    votes, ``bootstrap_ci`` resamples pairs after averaging each pair's votes (votes on one pair are not
    independent); ``p_value`` is the sign test; ``judge_n`` the pairs the judge's rate is over.
    """
    groups: dict[str, list[Vote]] = defaultdict(list)
    for vote in _first(votes):
        groups[vote.comparison].append(vote)
    rows = []
    for comparison in sorted(groups):
        group = groups[comparison]
        verdicts = [v.winner for v in group]
        wins, losses, ties, n = verdicts.count("a"), verdicts.count("b"), verdicts.count("tie"), len(verdicts)
        by_pair: dict[str, list[float]] = defaultdict(list)
        for vote in group:
            by_pair[vote.pair_id].append(_POINTS[vote.winner])
        low, high = wilson_interval(wins + 0.5 * ties, n)
        boot_low, boot_high = bootstrap_interval([float(np.mean(p)) for p in by_pair.values()], seed=seed)
        per_criterion = {}
        for quality in QUALITIES:
            given = [v.criteria[quality] for v in group if (v.criteria or {}).get(quality) in LABELS]
            if given:
                per_criterion[quality] = {
                    "win_rate": _share(sum(_POINTS[g] for g in given), len(given)),
                    "wins": given.count("a"),
                    "losses": given.count("b"),
                    "ties": given.count("tie"),
                }
        machine = [judge[p]["winner"] for p in by_pair if (judge.get(p) or {}).get("winner") in LABELS]
        system_a, system_b = _systems(comparison, systems)
        rows.append(
            {
                "system_a": system_a,
                "system_b": system_b,
                "comparison": comparison,
                "judge": "human",
                "n": n,
                "wins": wins,
                "losses": losses,
                "ties": ties,
                "win_rate": _share(wins + 0.5 * ties, n),
                "win_rate_no_ties": _share(wins, wins + losses),
                "ci_low": _r(low),
                "ci_high": _r(high),
                "bootstrap_ci": [_r(boot_low), _r(boot_high)],
                "p_value": float(f"{sign_test(wins, losses):.3g}"),
                "per_criterion": per_criterion,
                "judge_win_rate": _share(sum(_POINTS[m] for m in machine), len(machine)),
                "judge_n": len(machine),
            }
        )
    return rows


def bradley_terry(
    votes: Sequence[Vote],
    systems: Mapping[str, tuple[str, str]] | None = None,
    *,
    seed: int = 0,
    n_boot: int = 500,
    alpha: float = 0.01,
) -> dict | None:
    """Bradley–Terry strengths of every system from the first-showing votes, so systems never compared head to
    head can still be ranked: ``P(i beats j) = expit(s_i - s_j)``.

    Fitted with ``choix.ilsr_pairwise`` and a small L2 ``alpha`` (keeping a system that wins every vote
    finite). choix takes unweighted (winner, loser) observations, so a decisive vote enters twice and a tie
    once each way: a tie is exactly half a win for each side. Strengths are log-scale, centred to mean 0;
    ``ci`` is the 95% percentile interval over ``n_boot`` resamples of pairs (seeded). None under 3 systems.
    """
    import choix  # noqa: PLC0415 (heavy: choix, imports scipy)

    first = _first(votes)
    names = sorted({s for v in first for s in _systems(v.comparison, systems)})
    if len(names) < 3:
        return None
    index = {name: i for i, name in enumerate(names)}
    by_pair: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for vote in first:
        a, b = (index[s] for s in _systems(vote.comparison, systems))
        by_pair[vote.pair_id] += {"a": [(a, b)] * 2, "b": [(b, a)] * 2, "tie": [(a, b), (b, a)]}[vote.winner]

    def fit(pairs: Iterable[str]) -> np.ndarray:
        data = [obs for pair in pairs for obs in by_pair[pair]]
        try:
            params = choix.ilsr_pairwise(len(names), data, alpha=alpha)
        except RuntimeError:  # ILSR did not converge: the direct optimiser is slower but sure
            params = choix.opt_pairwise(len(names), data, alpha=alpha)
        return params - params.mean()

    ids = sorted(by_pair)
    strengths = fit(ids)
    rng = np.random.default_rng(seed)
    boots = np.array([fit(rng.choice(ids, size=len(ids))) for _ in range(n_boot)])
    low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    return {name: {"strength": _r(strengths[i]), "ci": [_r(low[i]), _r(high[i])]} for name, i in index.items()}


def _majority(verdicts: Sequence[str]) -> str:
    ranked = Counter(verdicts).most_common()
    return "tie" if len(ranked) > 1 and ranked[0][1] == ranked[1][1] else ranked[0][0]


def listen_vs_read(votes: Sequence[Vote]) -> dict | None:
    """Whether listening to the audio and reading the text lead to the same verdict: per pair voted in both
    modes (first showings), the majority verdict of the listen votes against that of the read votes (a tied
    majority is ``tie``). ``{"n_pairs", "percent_agreement", "kappa"}``; None when no pair has both."""
    modes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for vote in _first(votes):
        modes[vote.pair_id][vote.mode].append(vote.winner)
    both = [
        (_majority(m["listen"]), _majority(m["read"]))
        for _, m in sorted(modes.items())
        if m.get("listen") and m.get("read")
    ]
    if not both:
        return None
    listen, read = [x for x, _ in both], [y for _, y in both]
    return {
        "n_pairs": len(both),
        "percent_agreement": _share(sum(x == y for x, y in both), len(both)),
        "kappa": cohen_kappa(listen, read),
    }


def _fast(vote: Vote) -> bool | None:
    if vote.seconds_on_item is None:
        return None
    if vote.mode == "listen":
        return None if vote.audio_seconds is None else vote.seconds_on_item < 0.9 * vote.audio_seconds
    return vote.seconds_on_item < 2.0


def flag_reviewers(
    votes: Sequence[Vote], *, min_self_consistency: float = 0.7, fast_share: float = 0.2
) -> dict[str, list[str]]:
    """Reviewers whose votes deserve a second look, with the reasons: a self-consistency rate under
    ``min_self_consistency`` (with at least two repeats), or more than ``fast_share`` of their timed votes
    implausibly fast (listen mode: less time on the item than 0.9 × both responses' audio, so they cannot have
    heard both; read mode: under 2 s). Votes without timing are skipped. Only flagged reviewers appear."""
    flags: dict[str, list[str]] = {}
    for name, (n, same) in _consistency(votes).items():
        if n >= 2 and same / n < min_self_consistency:
            flags.setdefault(name, []).append(f"self-consistency {same / n:.0%} below {min_self_consistency:.0%}")
    for name in sorted({v.reviewer for v in votes}):
        timed = [f for f in (_fast(v) for v in votes if v.reviewer == name) if f is not None]
        if timed and sum(timed) / len(timed) > fast_share:
            flags.setdefault(name, []).append(f"{sum(timed) / len(timed):.0%} of votes implausibly fast")
    return dict(sorted(flags.items()))


def review_agreement(
    votes: Sequence[Vote],
    judge: Mapping[str, dict],
    *,
    seed: int = 0,
    systems: Mapping[str, tuple[str, str]] | None = None,
) -> dict:
    """Every statistic of a human review in one JSON-serialisable dict.

    Args:
        votes: the live votes (:meth:`voicetune.review.store.ReviewStore.votes`).
        judge: pair id -> the automated judge's ``{"winner", "criteria"}`` (pairs and criteria may be missing).
        seed: seed of every bootstrap.
        systems: comparison -> (system_a, system_b); by default the comparison split on ``-vs-``.

    Returns:
        ``n_votes``, ``n_pairs``, ``reviewers``, ``modes``, ``human_vs_judge`` (:func:`human_vs_judge`),
        ``inter_reviewer``, ``self_consistency``, ``comparisons`` (:func:`comparison_statistics`),
        ``bradley_terry``, ``listen_vs_read`` and ``flags`` (:func:`flag_reviewers`).
    """
    return {
        "n_votes": len(votes),
        "n_pairs": len({v.pair_id for v in votes}),
        "reviewers": sorted({v.reviewer for v in votes}),
        "modes": sorted({v.mode for v in votes}),
        "human_vs_judge": human_vs_judge(votes, judge),
        "inter_reviewer": inter_reviewer(votes),
        "self_consistency": self_consistency(votes),
        "comparisons": comparison_statistics(votes, judge, seed=seed, systems=systems),
        "bradley_terry": bradley_terry(votes, systems, seed=seed),
        "listen_vs_read": listen_vs_read(votes),
        "flags": flag_reviewers(votes),
    }


def _f(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(_f(c) for c in row) + " |" for row in rows),
        "",
    ]


def render_agreement(report: dict) -> str:
    """The report of :func:`review_agreement` as markdown tables for the terminal (``-`` where a figure is None)."""
    lines = [
        f"{report['n_votes']} votes on {report['n_pairs']} pairs by {len(report['reviewers'])} reviewers "
        f"({', '.join(report['reviewers']) or '-'}); modes: {', '.join(report['modes']) or '-'}",
        "",
        "## Human vs judge",
    ]
    hvj = report["human_vs_judge"]
    keys = ("n", "percent_agreement", "kappa", "n_no_ties", "percent_agreement_no_ties", "kappa_no_ties")
    rows = [["overall", *(hvj["overall"][k] for k in keys)]]
    rows += [[q, *(row[k] for k in keys)] for q, row in hvj["per_criterion"].items() if row["n"]]
    rows += [[f"reviewer {name}", *(row[k] for k in keys)] for name, row in hvj["per_reviewer"].items()]
    lines += _table(["", "n", "agree", "kappa", "n (no ties)", "agree (no ties)", "kappa (no ties)"], rows)
    inter = report["inter_reviewer"]
    lines += ["## Between reviewers"]
    lines += _table(
        ["pairs", "alpha nominal", "alpha ordinal", "Fleiss kappa", "Fleiss raters", "agree"],
        [
            [
                inter["n_pairs"],
                inter["krippendorff_alpha_nominal"],
                inter["krippendorff_alpha_ordinal"],
                inter["fleiss_kappa"],
                inter["fleiss_raters"],
                inter["percent_agreement"],
            ]
        ],
    )
    lines += ["## Self-consistency (repeat in the other order)"]
    lines += _table(
        ["reviewer", "repeats", "consistent", "rate"],
        [[name, c["n"], c["consistent"], c["rate"]] for name, c in report["self_consistency"].items()],
    )
    lines += ["## Human win rates"]
    with_eval = any("eval_win_rate" in c for c in report["comparisons"])  # the whole eval's, beside these pairs'
    lines += _table(
        ["comparison", "n", "W/L/T", "win rate", "95% CI", "bootstrap", "judge win rate"]
        + ["judge, whole eval"] * with_eval,
        [
            [
                c["comparison"],
                c["n"],
                f"{c['wins']}/{c['losses']}/{c['ties']}",
                c["win_rate"],
                f"{_f(c['ci_low'])}–{_f(c['ci_high'])}",
                f"{_f(c['bootstrap_ci'][0])}–{_f(c['bootstrap_ci'][1])}",
                c["judge_win_rate"],
            ]
            + [c.get("eval_win_rate")] * with_eval
            for c in report["comparisons"]
        ],
    )
    if report["bradley_terry"]:
        lines += ["## Bradley–Terry strengths (log scale, mean 0)"]
        ranked = sorted(report["bradley_terry"].items(), key=lambda item: -(item[1]["strength"] or 0.0))
        lines += _table(
            ["system", "strength", "95% CI"],
            [[name, s["strength"], f"{_f(s['ci'][0])}–{_f(s['ci'][1])}"] for name, s in ranked],
        )
    if report["listen_vs_read"]:
        lvr = report["listen_vs_read"]
        lines += ["## Listen vs read"] + _table(
            ["pairs", "agree", "kappa"], [[lvr["n_pairs"], lvr["percent_agreement"], lvr["kappa"]]]
        )
    lines += ["## Flags"] + (
        [f"- {name}: {'; '.join(reasons)}" for name, reasons in report["flags"].items()] or ["none"]
    )
    return "\n".join(lines)


__all__ = [
    "LABELS",
    "agreement_row",
    "bradley_terry",
    "cohen_kappa",
    "comparison_statistics",
    "flag_reviewers",
    "human_vs_judge",
    "inter_reviewer",
    "listen_vs_read",
    "render_agreement",
    "review_agreement",
    "self_consistency",
]
