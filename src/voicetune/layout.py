"""Where a run keeps what: the run folder's layout, shared by the pipeline that writes it and the report that
reads it (see :mod:`voicetune.pipeline.run` for what each stage writes)."""

from __future__ import annotations

from pathlib import Path

#: The tuned model's system name in the evaluation, the review set and the calls.
TUNED = "tuned"


class RunPaths:
    """Where each stage writes, below the run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.train = self.root / "train"
        self.model = self.train / "model"
        self.eval = self.root / "eval"
        self.eval_llm = self.root / "eval-llm"
        self.responses = self.eval / "responses"
        self.review_db = self.root / "review" / "review.sqlite"
        self.simulate = self.root / "simulate"
        self.stages = self.root / "stages"

    def split(self, name: str) -> Path:
        return self.data / f"{name}.jsonl"

    def record(self, stage: str) -> Path:
        return self.stages / f"{stage}.fingerprint.json"
