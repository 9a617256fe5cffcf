"""The run's report: ``RUN/summary.json``, a self-contained ``RUN/report.html`` and ``RUN/report.md``.

:func:`build_report` is the last stage of ``voicetune run`` and of ``voicetune report RUN``: it reads
the stages' outputs (and the review set's live votes), so rebuilding after reviewers voted adds their
verdicts beside the judge's.
"""

from __future__ import annotations

from pathlib import Path

from voicetune.layout import RunPaths
from voicetune.records import atomic_write_bytes, atomic_write_text, dumps
from voicetune.report import plots
from voicetune.report.render import html, markdown
from voicetune.report.summary import RunFacts, collect, samples, speaking_seconds, training_curves
from voicetune.review.store import ReviewStore
from voicetune.tts import compact_audio


def build_report(paths: RunPaths, facts: RunFacts) -> dict:
    """Write ``summary.json``, ``report.html``, ``report.md`` and ``plots/*.png`` into the run directory;
    returns the summary. ``facts``: what the report needs from the run's config
    (:func:`voicetune.pipeline.run.report_run` gives them)."""
    summary = collect(paths, facts)
    chosen = samples(paths, summary["review"], seed=facts.review_seed)
    judge = (summary["eval"] or {}).get("comparisons", [])
    humans = (((summary["review"] or {}).get("agreement")) or {}).get("comparisons", [])
    names = ["tuned", *summary["baselines"]]
    drawn = {
        "win_rates": plots.win_rates(judge, humans, facts.thresholds.win_rate),
        "criteria": plots.criteria(judge),
        "speaking_time": plots.speaking_time(speaking_seconds(paths, names)),
        "training": plots.training(training_curves(paths)),
        "calls": plots.calls(
            (summary["simulation"] or {}).get("relative_change", []),
            facts.thresholds.repeat_requests_change,
            facts.thresholds.duration_change,
        ),
    }
    figures = {name: png for name, png in drawn.items() if png}
    plot_files = {}
    for name, png in figures.items():
        atomic_write_bytes(paths.root / "plots" / f"{name}.png", png)
        plot_files[name] = f"plots/{name}.png"
    audio = _sample_audio(paths.review_db, chosen) if summary["review"] else {}
    atomic_write_text(paths.root / "summary.json", dumps(summary, indent=2) + "\n")
    atomic_write_text(paths.root / "report.md", markdown(summary, chosen, plot_files))
    atomic_write_text(paths.root / "report.html", html(summary, chosen, figures, audio))
    return summary


def _sample_audio(db: Path, chosen: list[dict]) -> dict[str, tuple[bytes, str]]:
    """The review set's audio of the samples' responses, as MP3 (key: the audio's id in the set)."""
    store = ReviewStore(db)
    found = {}
    for sample in chosen:
        for key in sample["audio"].values():
            if key and key not in found:
                clip = store.audio(key)
                if clip is not None:
                    mime, data = clip
                    found[key] = compact_audio(data) if mime == "audio/wav" else (data, mime)
    return found


__all__ = ["build_report"]
