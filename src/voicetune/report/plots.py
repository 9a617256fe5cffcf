"""The report's plots (matplotlib, no display): each function takes the figures it draws and returns a PNG,
or None when there is nothing to draw. Intervals are the 95% intervals the stages computed."""

from __future__ import annotations

import io
from collections.abc import Sequence

from voicetune.records import QUALITIES

_COLORS = {"judge": "#3b6ea8", "length-controlled": "#9bb7d9", "humans": "#d0742c", "calls": "#4c8c4a"}


def _figure(width: float, height: float, **subplots):
    """A figure and its axes (``subplots``: ``ncols``, ``squeeze``, ``gridspec_kw`` as pyplot takes them)."""
    import matplotlib  # noqa: PLC0415 (heavy: matplotlib)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 (heavy: matplotlib)

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt.subplots(figsize=(width, height), **subplots)


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt  # noqa: PLC0415 (heavy: matplotlib)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _errors(value: float, ci: Sequence[float | None] | None) -> tuple[float, float]:
    low, high = (ci or (None, None))[:2]
    return (value - low if low is not None else 0.0, high - value if high is not None else 0.0)


def win_rates(judge: Sequence[dict], humans: Sequence[dict], threshold: float) -> bytes | None:
    """The tuned model's win rate against each baseline: the judge's (with its Wilson interval), the judge's
    length-controlled rate, and the reviewers' (with theirs) when there are votes; the bar and 50% marked."""
    if not judge and not humans:
        return None
    baselines = list(dict.fromkeys([r["system_b"] for r in judge] + [r["system_b"] for r in humans]))
    figure, axes = _figure(6.4, 0.55 * len(baselines) * (2 + bool(humans)) + 0.9)
    series = [
        ("judge", judge, "win_rate"),
        ("length-controlled", judge, "length_controlled_win_rate"),
        ("humans", humans, "win_rate"),
    ]
    series = [s for s in series if s[1]]
    height = 0.8 / len(series)
    for index, (label, rows, key) in enumerate(series):
        by_baseline = {r["system_b"]: r for r in rows}
        ys, xs, errs = [], [], []
        for position, name in enumerate(baselines):
            row = by_baseline.get(name)
            if row is None or row.get(key) is None:
                continue
            ys.append(position + (index - (len(series) - 1) / 2) * height)
            xs.append(row[key])
            errs.append(_errors(row[key], (row.get("ci_low"), row.get("ci_high"))) if key == "win_rate" else (0.0, 0.0))
        with_ci = key == "win_rate" and errs
        axes.barh(
            ys,
            xs,
            height=height * 0.9,
            color=_COLORS[label],
            label=label,
            xerr=list(zip(*errs, strict=True)) if with_ci else None,
            capsize=3,
            error_kw={"elinewidth": 1},
        )
    axes.axvline(0.5, color="#888", linestyle=":", linewidth=1)
    axes.axvline(threshold, color="#c33", linestyle="--", linewidth=1, label=f"bar ({threshold:.0%})")
    axes.set_yticks(range(len(baselines)), [f"vs {name}" for name in baselines])
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("tuned model's win rate (ties count half), 95% CI")
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    return _png(figure)


def criteria(judge: Sequence[dict]) -> bytes | None:
    """The judge's per-criterion win rate of the tuned model against each baseline."""
    if not judge:
        return None
    figure, axes = _figure(6.4, 0.35 * len(QUALITIES) * len(judge) + 0.9)
    height = 0.8 / len(judge)
    palette = ["#3b6ea8", "#d0742c", "#4c8c4a", "#8a5aa8", "#a8a23b", "#3ba8a0"]
    for index, row in enumerate(judge):
        rates = [(row.get("per_criterion") or {}).get(q, {}).get("win_rate") for q in QUALITIES]
        ys = [position + (index - (len(judge) - 1) / 2) * height for position in range(len(QUALITIES))]
        axes.barh(
            ys,
            [r or 0.0 for r in rates],
            height=height * 0.9,
            color=palette[index % len(palette)],
            label=f"vs {row['system_b']}",
        )
    axes.axvline(0.5, color="#888", linestyle=":", linewidth=1)
    axes.set_yticks(range(len(QUALITIES)), [q.replace("_", " ") for q in QUALITIES])
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("tuned model's win rate per criterion (judge, ties half)")
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    return _png(figure)


def speaking_time(seconds: dict[str, list[float]]) -> bytes | None:
    """The distribution of each system's speaking time per response (box: quartiles; whiskers: 1.5 IQR)."""
    seconds = {name: values for name, values in seconds.items() if values}
    if not seconds:
        return None
    figure, axes = _figure(6.4, 0.45 * len(seconds) + 0.9)
    axes.boxplot(
        list(seconds.values()),
        orientation="horizontal",
        tick_labels=list(seconds),
        widths=0.6,
        showfliers=True,
        flierprops={"markersize": 3, "alpha": 0.5},
    )
    axes.invert_yaxis()
    axes.set_xlabel("seconds of speech per response (estimated at 150 words a minute)")
    return _png(figure)


def training(curves: dict[str, list[tuple[int, float]]]) -> bytes | None:
    """The training loss at each logged step, one panel per stage (SFT, DPO)."""
    curves = {stage: points for stage, points in curves.items() if points}
    if not curves:
        return None
    figure, panels = _figure(6.4, 2.4, ncols=len(curves), squeeze=False)
    for panel, (stage, points) in zip(panels[0], curves.items(), strict=True):
        panel.plot([s for s, _ in points], [loss for _, loss in points], color=_COLORS["judge"], linewidth=1.2)
        panel.set_title(stage.upper(), fontsize=9)
        panel.set_xlabel("step")
        panel.set_ylabel("loss")
    figure.tight_layout()
    return _png(figure)


def calls(comparisons: Sequence[dict], repeat_bar: float, duration_bar: float) -> bytes | None:
    """Simulated calls, tuned vs each baseline: the relative change in repeat requests, turns and duration
    (95% CIs), and the difference in resolution with its one-sided lower bound."""
    if not comparisons:
        return None
    figure, (left, right) = _figure(11.0, 1.1 * len(comparisons) + 1.6, ncols=2, gridspec_kw={"width_ratios": [2, 1]})
    metrics = (
        ("repeat_requests", "repeat requests", "#3b6ea8"),
        ("turns", "turns", "#8a8a8a"),
        ("duration_seconds", "duration", "#d0742c"),
    )
    height = 0.8 / len(metrics)
    for index, (key, label, color) in enumerate(metrics):
        ys, xs, errs = [], [], []
        for position, row in enumerate(comparisons):
            change = row[key]["change"]
            if change is None:
                continue
            ys.append(position + (index - 1) * height)
            xs.append(100 * change)
            errs.append(tuple(100 * e for e in _errors(change, row[key]["ci"])))
        left.barh(
            ys,
            xs,
            height=height * 0.9,
            color=color,
            label=label,
            xerr=list(zip(*errs, strict=True)) if errs else None,
            capsize=3,
            error_kw={"elinewidth": 1},
        )
    left.axvline(0, color="#444", linewidth=0.8)
    left.axvline(100 * repeat_bar, color="#c33", linestyle="--", linewidth=1, label=f"repeat bar ({repeat_bar:+.0%})")
    left.set_yticks(range(len(comparisons)), [f"vs {row['b']}" for row in comparisons])
    left.invert_yaxis()
    left.set_xlabel("change, % (95% CI)")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, fontsize=8, frameon=False)
    for position, row in enumerate(comparisons):
        resolution = row["resolution"]
        if resolution["difference"] is None:
            continue
        difference, lower = 100 * resolution["difference"], 100 * resolution["lower_bound"]
        right.plot([lower, difference], [position, position], color=_COLORS["calls"], linewidth=2)
        right.plot([difference], [position], "o", color=_COLORS["calls"])
        right.plot([lower], [position], "|", color=_COLORS["calls"], markersize=10)
    right.axvline(0, color="#444", linewidth=0.8)
    margin = 100 * comparisons[0]["resolution"]["margin"]
    right.axvline(-margin, color="#c33", linestyle="--", linewidth=1)
    right.set_yticks(range(len(comparisons)), [""] * len(comparisons))
    right.set_ylim(len(comparisons) - 0.5, -0.5)
    right.set_xlabel(f"resolution, points (lower bound; margin {margin:g})")
    figure.tight_layout()
    return _png(figure)
