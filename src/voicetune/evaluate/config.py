"""The evaluation's configuration: every ``voicetune eval`` setting, documented (``voicetune eval --help-config``).

The command-line flags fill the same fields; ``--config FILE`` reads them from YAML (flags given on the
command line win). The resolved config is written into the run directory as ``eval.yaml``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from voicetune.judge.registry import JudgeOptions
from voicetune.models.generate import DEFAULT_SAMPLING
from voicetune.quality import ScorerConfig
from voicetune.threads import MAX_THREADS


class EvalConfig(BaseModel):
    """Everything ``voicetune eval`` does; every field has a default except the systems."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting
    systems: list[str] = Field(
        default_factory=list,
        description="NAME=SPEC for each system: a model (smollm2-135m, qwen2.5-coder-0.5b, runs/X/model, an HF id; "
        "+voice adds the voice style prompt, +bestN keeps the best of N samples by the scorer, +guard "
        "falls back to the draft said faithfully when the learned judge calls no candidate usable), "
        "draft, draft+pipecat, draft+voicetune, reference or endpoint:URL#MODEL",
    )
    data: str = Field(
        "builtin:test", description="turn records (JSONL) or builtin:SPLIT; every system answers the same turns"
    )
    pairs: list[str] = Field(
        default_factory=list, description="A:B comparisons to judge (empty: the first system against each other one)"
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="sampling seeds (0 to 2**32 - 1), the same for every system; each model system answers every turn "
        "once per seed (more seeds: tighter intervals, more generation)",
    )
    limit: int | None = Field(
        None, ge=1, description="only the first N turns (null: all): for a quick look, not for figures"
    )
    temperature: float = Field(
        DEFAULT_SAMPLING.temperature,
        ge=0,
        description="sampling temperature of model systems (0: greedy); 0.7 is how the tuned model is used",
    )
    max_new_tokens: int = Field(
        DEFAULT_SAMPLING.max_new_tokens, gt=0, description="the longest model response, in tokens"
    )
    batch_size: int = Field(16, gt=0, description="prompts generated together by the transformers backend")
    threads: int = Field(
        0,
        ge=0,
        le=MAX_THREADS,
        description="CPU threads for generation and the NLI model (0: the cores no other process is using)",
    )
    judge: JudgeOptions = Field(default_factory=JudgeOptions, description="which judge, and how to reach an LLM judge")
    scorer: ScorerConfig = Field(
        default_factory=ScorerConfig,
        description="the scorer behind the rubric judge and the per-system statistics (use the one training used as "
        "its reward)",
    )
