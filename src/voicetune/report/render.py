"""The report's sentences and pages: a run's summary (and samples, plots, audio) into ``report.md`` and a
self-contained ``report.html`` (one file: styles, plots and audio inline; it opens offline)."""

from __future__ import annotations

import base64
import datetime as _dt
import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from voicetune.progress import duration
from voicetune.records import QUALITIES
from voicetune.report.summary import MissingOutput, Verdict

PROOFS = {"judge": "judge", "humans": "reviewers", "calls": "calls"}
METRICS = {
    "win_rate": "win rate",
    "repeat_requests": "repeat requests",
    "duration_seconds": "call duration",
    "resolution": "resolution",
}


def pct(value: float | None, signed: bool = False) -> str:
    """``0.713`` -> ``71%`` (``+71%`` signed); None -> ``–``."""
    if value is None:
        return "–"
    return f"{round(100 * value):+d}%" if signed else f"{round(100 * value):d}%"  # int: never "-0%"


def points(value: float | None) -> str:
    """A difference of shares in percentage points: ``-0.005`` -> ``-0.5 pt``."""
    return "–" if value is None else f"{round(100 * value, 1) + 0.0:+.1f} pt"  # + 0.0: never "-0.0"


def interval(low: float | None, high: float | None, signed: bool = False) -> str:
    """``[67, 75]`` in percent (``[-41, -27]`` signed)."""
    if low is None or high is None:
        return ""
    form = "{:+d}" if signed else "{:d}"
    return f"[{form.format(round(100 * low))}, {form.format(round(100 * high))}]"


def verdict_word(verdict: Verdict) -> str:
    return "no data yet" if verdict.meets is None else "meets" if verdict.meets else "misses"


def figure_text(verdict: Verdict) -> str:
    """The figure with its interval: ``71% [67, 75]``, ``-34% [-41, -27]``, ``-0.5 pt (lower bound -3.1 pt)``."""
    if verdict.value is None:
        return "–"
    low, high = verdict.ci or (None, None)
    if verdict.kind == "win_rate":
        return f"{pct(verdict.value)} {interval(low, high)}".strip()
    if verdict.kind == "change":
        return f"{pct(verdict.value, signed=True)} {interval(low, high, signed=True)}".strip()
    return f"{points(verdict.value)} (lower bound {points(low)})"


def bar_text(verdict: Verdict) -> str:
    """The threshold as a bar: ``≥ 60%``, ``≤ -10%``, ``non-inferior at 2 pt``."""
    if verdict.kind == "win_rate":
        return f"≥ {pct(verdict.threshold)}"
    if verdict.kind == "change":
        return f"≤ {pct(verdict.threshold, signed=True)}"
    return f"non-inferior at {100 * verdict.threshold:g} pt"


def null_note(verdict: Verdict) -> str:
    """What an interval that includes no difference means, in words ('' when it does not)."""
    if not verdict.includes_null:
        return ""
    if verdict.kind == "win_rate":
        return "the interval includes 50%: no clear preference either way"
    if verdict.kind == "change":
        return "the interval includes zero: no clear change"
    return "the lower bound is below zero: resolution may be lower"


def sentence(verdict: Verdict, note: bool = True) -> str:
    """One headline line, e.g. ``judge: tuned beats base 71% [67, 75] of 150 pairs — meets ≥ 60%`` (and what
    an interval that includes no difference means, unless ``note`` is false)."""
    unit = {"judge": "pairs", "humans": "votes", "calls": "calls"}[verdict.proof]
    if verdict.kind == "non_inferiority":
        answer = "no data yet" if verdict.meets is None else "yes" if verdict.meets else "no"
        text = (
            f"{PROOFS[verdict.proof]}: {METRICS[verdict.metric]} vs {verdict.baseline} {figure_text(verdict)}, "
            f"{bar_text(verdict)}: {answer}"
        )
    elif verdict.kind == "win_rate":
        text = (
            f"{PROOFS[verdict.proof]}: tuned beats {verdict.baseline} {figure_text(verdict)} of {verdict.n} {unit} "
            f"— {verdict_word(verdict)} {bar_text(verdict)}"
        )
    else:
        text = (
            f"{PROOFS[verdict.proof]}: {METRICS[verdict.metric]} vs {verdict.baseline} {figure_text(verdict)} over "
            f"{verdict.n} {unit}"
            f" — {verdict_word(verdict)} {bar_text(verdict)}"
        )
    return text + (f" ({null_note(verdict)})" if note and null_note(verdict) else "")


#: What each stage's output is, in the report's words.
STAGE_OUTPUTS = {
    "data": "the data splits",
    "train": "the tuned model",
    "eval": "the evaluation (the judge's figures)",
    "review": "the review set (the reviewers' votes)",
    "simulate": "the simulated calls",
}


def missing_sentence(gap: MissingOutput) -> str:
    """One line for a stage whose output is gone, e.g. ``the evaluation (the judge's figures) is missing:
    eval/summary.json is not in the run folder, though the eval stage finished; ...``."""
    files = ", ".join(gap.files)
    return (
        f"{STAGE_OUTPUTS[gap.stage]} is missing: {files} {'is' if len(gap.files) == 1 else 'are'} not in the run "
        "folder, though the "
        f"{gap.stage} stage finished (moved or deleted since), so its figures are left out; `voicetune run` on this "
        "folder makes it again"
    )


def missing_sentences(summary: dict) -> dict[str, str]:
    """Each stage with missing output: its sentence (empty for a run that has everything)."""
    return {gap["stage"]: missing_sentence(MissingOutput.model_validate(gap)) for gap in summary.get("missing", [])}


def unclear_intervals(verdicts: list[Verdict]) -> list[str]:
    """Which figures have an interval that includes no difference, grouped: ``judge win rate vs base, prompted``."""
    grouped: dict[str, list[str]] = {}
    for verdict in verdicts:
        if verdict.includes_null:
            grouped.setdefault(f"{PROOFS[verdict.proof]} {METRICS[verdict.metric]}", []).append(verdict.baseline)
    return [f"{label} vs {', '.join(names)}" for label, names in grouped.items()]


def headline_table(verdicts: list[Verdict], baselines: list[str]) -> list[dict]:
    """The headline as rows (one per proof and figure) of cells (one per baseline, None where absent)."""
    rows: dict[tuple[str, str], dict] = {}
    for verdict in verdicts:
        row = rows.setdefault(
            (verdict.proof, verdict.metric),
            {
                "label": f"{PROOFS[verdict.proof]}: {METRICS[verdict.metric]}",
                "bar": bar_text(verdict),
                "cells": {name: None for name in baselines},
            },
        )
        row["cells"][verdict.baseline] = {
            "figure": figure_text(verdict),
            "word": verdict_word(verdict),
            "meets": verdict.meets,
            "note": null_note(verdict),
            "n": verdict.n,
        }
    return list(rows.values())


def rationale_first_order(text: str | None) -> str:
    """The judge's rationale for the order the pair was stored in (A = tuned), without the swapped order's."""
    return (text or "").split(" || ")[0].strip()


def when(timestamp: float | None) -> str:
    return "–" if not timestamp else _dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _verdicts(summary: dict) -> list[Verdict]:
    return [Verdict.model_validate(v) for v in summary["headline"]]


def _timing_rows(summary: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name, timing in summary["timings"].items():
        status = "output missing" if timing.get("status") == "missing" else timing.get("status") or ""
        rows.append((name, duration(timing["seconds"]) if timing.get("seconds") is not None else "–", status))
    return rows


# --------------------------------------------------------------------------------------------------------
# Markdown


def markdown(summary: dict, samples: list[dict], plot_files: dict[str, str]) -> str:
    """``report.md``: the same content as the page, plots linked as files, no audio."""
    lines = [
        f"# voicetune run: {summary['run']}",
        "",
        f"Report made {when(summary['made_at'])}.",
        "",
        "## Headline",
        "",
    ]
    verdicts = _verdicts(summary)
    if not verdicts:
        lines.append("No figures yet: the run has not finished a stage with figures.")
    lines += ["| proof | vs | figure (95% CI) | bar | verdict |", "| --- | --- | --- | --- | --- |"] if verdicts else []
    for verdict in verdicts:
        note = f" ({null_note(verdict)})" if null_note(verdict) else ""
        lines.append(
            f"| {PROOFS[verdict.proof]}: {METRICS[verdict.metric]} | {verdict.baseline} | {figure_text(verdict)} | "
            f"{bar_text(verdict)} | {verdict_word(verdict)}{note} |"
        )
    unclear = unclear_intervals(verdicts)
    if unclear:
        lines += ["", "Intervals that include no difference (no clear effect): " + "; ".join(unclear) + "."]
    lines += ["", thresholds_line(summary), ""]
    missing = missing_sentences(summary)
    lines += [f"**Warning:** {text}." for text in missing.values()] + ([""] if missing else [])
    review = summary.get("review")
    if review is None and "review" not in missing:
        lines.append("Human review: no review set (review.enabled is false, or the stage has not run).")
    elif review is not None and not review["votes"]:
        lines.append(
            f"Human review: no votes yet. Serve the set with `voicetune review serve --db {review['db']}` (it prints "
            "each reviewer's secret link; the links are not in this report)."
        )
    lines += ["", "## The judge", ""]
    evaluation = summary.get("eval")
    if evaluation:
        lines += [
            f"{evaluation['judge']['name']} judge, {evaluation['turns']} held-out turns × {len(evaluation['seeds'])} "
            "seed(s), both orders.",
            "",
            "| vs | win rate | 95% CI | length-controlled | wins / losses / ties | "
            + " | ".join(q.replace("_", " ") for q in QUALITIES)
            + " |",
            "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in QUALITIES) + " |",
        ]
        for row in evaluation["comparisons"]:
            per = row.get("per_criterion") or {}
            lines.append(
                f"| {row['system_b']} | {pct(row['win_rate'])} | {interval(row['ci_low'], row['ci_high'])} | "
                f"{pct(row.get('length_controlled_win_rate'))} | "
                f"{row['wins']} / {row['losses']} / {row['ties']} | "
                + " | ".join(pct((per.get(q) or {}).get("win_rate")) for q in QUALITIES)
                + " |"
            )
        usable = {name: row for name, row in sorted((evaluation.get("systems") or {}).items()) if "usable_rate" in row}
        if usable:
            lines += [
                "",
                "Usable (the learned judge):",
                "",
                "| system | usable | 95% CI | failures |",
                "| --- | --- | --- | --- |",
            ]
            for name, row in usable.items():
                failures = (
                    ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (row.get("failures") or {}).items()) or "none"
                )
                lines.append(f"| {name} | {pct(row['usable_rate'])} | {interval(*row['usable_ci'])} | {failures} |")
    elif "eval" in missing:
        lines.append(f"Missing: {missing['eval']}.")
    lines += ["", "## The reviewers", ""]
    agreement = (review or {}).get("agreement")
    if agreement:
        overall = agreement["human_vs_judge"]["overall"]
        lines.append(
            f"{agreement['n_votes']} votes on {agreement['n_pairs']} pairs by {len(agreement['reviewers'])} reviewers; "
            f"judge vs reviewers: {agreement_text(overall)}."
        )
        lines += [
            "",
            "| vs | reviewers' win rate | 95% CI | votes | judge on the same pairs |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in agreement["comparisons"]:
            lines.append(
                f"| {row['system_b']} | {pct(row['win_rate'])} | {interval(row['ci_low'], row['ci_high'])} | "
                f"{row['n']} | {pct(row.get('judge_win_rate'))} |"
            )
    else:
        lines.append("No votes yet.")
    lines += ["", "## The calls", ""]
    simulation = summary.get("simulation")
    if simulation:
        lines += [
            f"{simulation['calls']} held-out calls × {simulation['seeds']} caller streams, {simulation['channel']} "
            f"channel, {simulation['caller']} caller.",
            "",
            "| vs | repeat requests | turns | duration | resolution (lower bound) | non-inferior |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in simulation["relative_change"]:
            r = row["resolution"]
            lines.append(
                f"| {row['b']} | {pct(row['repeat_requests']['change'], True)} "
                f"{interval(row['repeat_requests']['ci'][0], row['repeat_requests']['ci'][1], signed=True)} | "
                f"{pct(row['turns']['change'], True)} "
                f"{interval(row['turns']['ci'][0], row['turns']['ci'][1], signed=True)} | "
                f"{pct(row['duration_seconds']['change'], True)} "
                f"{interval(row['duration_seconds']['ci'][0], row['duration_seconds']['ci'][1], signed=True)} | "
                f"{points(r['difference'])} ({points(r['lower_bound'])}) | {'yes' if r['non_inferior'] else 'no'} |"
            )
    elif "simulate" in missing:
        lines.append(f"Missing: {missing['simulate']}.")
    else:
        lines.append("No simulated calls (simulate.enabled is false, or the stage has not run).")
    if plot_files:
        lines += ["", "## Plots", ""] + [f"![{name}]({path})" for name, path in plot_files.items()]
    lines += ["", "## Samples", ""]
    for sample in samples:
        lines += [
            f"### {sample['why']}: tuned vs {sample['baseline']} ({sample['domain']})",
            "",
            f"**Draft:** {_one_line(sample['draft'])}",
            "",
            f"**tuned:** {sample['tuned']}",
            "",
            f"**{sample['baseline']}:** {sample['other']}",
            "",
            f"**Judge:** {_winner(sample['judge']['winner'], sample['baseline'])}"
            + (
                f" — {rationale_first_order(sample['judge'].get('rationale'))} (A: tuned, B: {sample['baseline']})"
                if sample["judge"].get("rationale")
                else ""
            ),
        ]
        if sample["votes"]:
            lines.append(
                "**Reviewers:** "
                + ", ".join(f"{v['reviewer']}: {_winner(v['winner'], sample['baseline'])}" for v in sample["votes"])
                + (" — **disagrees with the judge**" if sample["disagrees"] else "")
            )
        lines.append("")
    lines += ["## Timings", "", "| stage | time | status |", "| --- | --- | --- |"] + [
        f"| {a} | {b} | {c} |" for a, b, c in _timing_rows(summary)
    ]
    lines += [
        "",
        "## Reproduce",
        "",
        f"Made with: `{summary.get('command') or 'voicetune run'}`",
        "",
        f"Again from the recorded config: `{summary['reproduce']}`",
        "",
        "## Manifest",
        "",
        "```json",
        _json(summary["manifest"]),
        "```",
        "",
    ]
    return "\n".join(lines)


def agreement_text(row: dict) -> str:
    """``κ 0.16, 53% agreement over 90 votes`` (Cohen's κ of the judge against the reviewers)."""
    kappa = row.get("kappa")
    return (
        f"κ {'–' if kappa is None else f'{kappa:.2f}'}, {pct(row.get('percent_agreement'))} agreement over "
        f"{row.get('n', 0)} votes"
    )


def thresholds_line(summary: dict) -> str:
    record = summary["thresholds"]
    text = f"Thresholds set {when(record.get('set_at'))} in the run's config, before its results."
    if record.get("changed_after_results"):
        text = (
            f"Warning: the thresholds were changed at {when(record.get('set_at'))}, after the results existed "
            "(earlier values in thresholds.json)."
        )
    return text


def _winner(winner: str | None, baseline: str) -> str:
    return {"a": "tuned", "b": baseline, "tie": "tie"}.get(winner or "", "–")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _json(value) -> str:
    return json.dumps({k: v for k, v in value.items() if k != "config"}, indent=2, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------------------------------------
# HTML


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def html(summary: dict, samples: list[dict], plots: dict[str, bytes], audio: dict[str, tuple[bytes, str]]) -> str:
    """``report.html``: one file, styles, plots (PNG) and audio (MP3) inline."""
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(pct=pct, points=points, duration=duration, when=when)
    environment.globals.update(
        interval=interval,
        agreement_text=agreement_text,
        rationale=rationale_first_order,
        winner=_winner,
        one_line=_one_line,
        qualities=QUALITIES,
    )
    verdicts = _verdicts(summary)
    unclear = unclear_intervals(verdicts)
    return environment.get_template("report.html").render(
        summary=summary,
        headline=headline_table(verdicts, summary["baselines"]),
        sentences=[sentence(v, note=False) for v in verdicts],
        unclear=unclear,
        thresholds=thresholds_line(summary),
        samples=samples,
        plots={name: data_uri(png, "image/png") for name, png in plots.items()},
        audio={key: data_uri(data, mime) for key, (data, mime) in audio.items()},
        timings=_timing_rows(summary),
        manifest=_json(summary["manifest"]),
        config=summary["manifest"].get("config", ""),
        missing=missing_sentences(summary),
    )
