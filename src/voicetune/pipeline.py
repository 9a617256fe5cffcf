"""Compose the stages over a run directory. For now: the built-in data, scored and judged.

Each stage writes into its own folder through atomic writes; the run's ``summary.json`` collects the
figures.
"""

from __future__ import annotations

from pathlib import Path

from voicetune.data import builtin_pairs, builtin_turns, split_records
from voicetune.judge import RubricJudge, judge_pairs, label_agreement
from voicetune.quality import ScorerConfig, score_records
from voicetune.records import atomic_write_text, dumps, write_records
from voicetune.summary import mean_scores


def reference_win_rate(drafts: list, references: list) -> dict:
    """How often each turn's spoken reference scores higher than its draft read aloud as it is."""
    pairs = list(zip(drafts, references))
    wins = sum(1 for d, r in pairs if r.scores["voice_score"] > d.scores["voice_score"])
    return {"n": len(pairs), "reference_wins": wins, "share": round(wins / len(pairs), 4) if pairs else None}


def run_demo(out: str | Path, config: ScorerConfig | None = None) -> dict:
    """Write the built-in data and its splits, score drafts and references, judge the labelled pairs.

    Returns the summary also written to ``OUT/summary.json``.
    """
    out = Path(out)
    turns = builtin_turns()
    write_records(out / "data" / "turns.jsonl", turns)
    for name, records in split_records(turns).items():
        write_records(out / "data" / f"{name}.jsonl", records)
    drafts = score_records(turns, field="draft", config=config)
    references = score_records(turns, field="reference", config=config)
    write_records(out / "score" / "draft.jsonl", drafts)
    write_records(out / "score" / "reference.jsonl", references)
    judged = judge_pairs(builtin_pairs(), RubricJudge(config))
    write_records(out / "judge" / "labelled_pairs.jsonl", judged)
    summary = {
        "turns": len(turns),
        "conversations": len({t.meta["conversation_id"] for t in turns}),
        "domains": sorted({t.domain for t in turns}),
        "mean_scores": {"draft": mean_scores(drafts), "reference": mean_scores(references)},
        "reference_beats_draft": reference_win_rate(drafts, references),
        "rubric_judge_vs_labels": label_agreement(judged),
    }
    atomic_write_text(out / "summary.json", dumps(summary, indent=2) + "\n")
    return summary
