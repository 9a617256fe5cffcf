"""Training configuration: pydantic-validated YAML where every field has a default.

``voicetune train`` alone trains the embedded default model on the built-in train split; a YAML file
overrides any field (see ``configs/`` for examples, each starting with the command that runs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from voicetune.errors import VoicetuneError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraConfig(_Section):
    """LoRA through PEFT (merged into the weights on save). ``enabled: false`` means full fine-tuning."""

    enabled: bool = True
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class SFTStage(_Section):
    """Supervised fine-tuning on the spoken targets."""

    epochs: float = Field(1.5, gt=0)
    learning_rate: float = Field(4e-4, gt=0)
    batch_size: int = Field(8, gt=0)
    gradient_accumulation: int = Field(1, gt=0)
    max_examples: int | None = Field(
        120, gt=0, description="train on at most this many targets (None: all); 120 keeps the CPU default under 10 minutes"
    )


class SampleStage(_Section):
    """Sampling candidates from the SFT policy for the preference step."""

    contexts: int | None = Field(32, gt=0, description="training contexts to sample for (None: all)")
    candidates: int = Field(4, ge=2)
    temperature: float = Field(0.7, gt=0, description="the evaluation's temperature: DPO then rejects the mistakes the model makes in use")
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(64, gt=0)
    batch_size: int = Field(32, gt=0)
    style_prompt: str | None = Field(None, description="a style prompt file, 'default', or None (no style prompt)")


class DPOStage(_Section):
    """DPO on (best, worst) pairs: chosen = the best-scoring response for a context (target or candidate),
    rejected = the worst candidate, kept when their voice_score margin exceeds ``margin``."""

    enabled: bool = True
    beta: float = Field(0.1, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(2.0, gt=0)
    batch_size: int = Field(8, gt=0)
    margin: float = Field(0.15, ge=0, le=1)


class TrainConfig(_Section):
    """Everything ``voicetune train`` does; every field has a default."""

    model: str = "smollm2-135m"
    data: str = Field("builtin", description="'builtin' (the built-in train split) or a turns JSONL file with targets")
    targets: Literal["reference", "teacher"] = "reference"
    teacher_endpoint: str | None = None
    teacher_model: str | None = None
    seed: int = 0
    max_length: int = Field(512, gt=16, description="prompt + response tokens; longer examples are cut from the left of the prompt")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 where the CPU or GPU supports it")
    gradient_checkpointing: bool = False
    lora: LoraConfig = Field(default_factory=LoraConfig)
    sft: SFTStage = Field(default_factory=SFTStage)
    sample: SampleStage = Field(default_factory=SampleStage)
    dpo: DPOStage = Field(default_factory=DPOStage)
    rounds: int = Field(1, ge=0, description="on-policy sample -> score -> DPO rounds after SFT")

    @model_validator(mode="after")
    def _teacher_needs_endpoint(self) -> "TrainConfig":
        if self.targets == "teacher" and not (self.teacher_endpoint and self.teacher_model):
            raise ValueError("targets: teacher needs teacher_endpoint and teacher_model")
        return self


def load_config(path: str | Path | None, overrides: dict | None = None) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply ``overrides``; errors name the file and field."""
    data: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise VoicetuneError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise VoicetuneError(f"{path}{line}: not valid YAML ({getattr(error, 'problem', error)})") from None
        if not isinstance(data, dict):
            raise VoicetuneError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(config)"
        message = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"].lower()
        raise VoicetuneError(f"{where}: field '{field}': {message}") from None


def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML, every default written out."""
    return yaml.safe_dump(config.model_dump(), sort_keys=False)
