"""Training configuration: pydantic-validated YAML where every field has a default.

``voicetune train`` alone trains the embedded default model on the built-in train split; a YAML file
overrides any field (see ``configs/`` for examples, each starting with the command that runs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from voicetune.data.corrupt import KINDS
from voicetune.models.generate import DEFAULT_SAMPLING
from voicetune.quality.scorer import ScorerConfig
from voicetune.settings import load_yaml_config
from voicetune.threads import MAX_THREADS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting


class LoraConfig(_Section):
    """LoRA through PEFT (saved as adapters, merged when loaded). ``enabled: false`` means full fine-tuning."""

    enabled: bool = Field(
        True,
        description="train low-rank adapters (fast, small memory) instead of every weight; saved as adapters (about 20 "
        "MB for the 135M), merged on the base when loaded",
    )
    r: int = Field(16, gt=0, description="adapter rank: higher learns more, costs more memory and time")
    alpha: int = Field(32, gt=0, description="adapter scaling (the update is scaled by alpha / r)")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout on the adapter's input: regularisation for small data; its random masks cost about a "
        "third of a CPU step, so the CPU default has none",
    )
    target_modules: str | list[str] = Field(
        "all-linear", description="which layers get adapters: 'all-linear' or a list of module names"
    )


class SFTStage(_Section):
    """Supervised fine-tuning on the spoken targets."""

    epochs: float = Field(
        1.0, gt=0, description="passes over the targets; more teaches the style harder, and costs time linearly"
    )
    learning_rate: float = Field(
        4e-4,
        gt=0,
        description="peak learning rate (cosine schedule, 5% warm-up); LoRA tolerates higher rates than full "
        "fine-tuning",
    )
    batch_size: int = Field(8, gt=0, description="examples per step per device")
    gradient_accumulation: int = Field(
        1, gt=0, description="steps accumulated per optimizer update (a larger effective batch without more memory)"
    )
    max_examples: int | None = Field(
        240,
        gt=0,
        description="train on at most this many targets, a seeded sample of the training turns (null: all); 240 new "
        "references once each rather than 120 twice: more of the spoken references in the CPU default's "
        "time",
    )
    packing: bool = Field(
        False,
        description="pack several examples into each max_length row without padding (TRL's best-fit packing, "
        "padding-free; each example attends only to itself). Off by default: on a 2-core CPU without flash attention "
        "it "
        "measured 2.3x slower (36 vs 82 tokens/s) than length-grouped batches; worth trying on a GPU",
    )


class SampleStage(_Section):
    """Sampling candidates from the SFT policy for the preference step."""

    contexts: int | None = Field(
        32,
        gt=0,
        description="training contexts to sample for, a seeded sample (null: all); each gives at most one DPO pair",
    )
    candidates: int = Field(
        4,
        ge=2,
        description="responses sampled per context; more finds better best and worse worst responses, costs generation "
        "time",
    )
    # The evaluation's sampling (models.generate.SamplingConfig), so that DPO rejects the mistakes the model makes in
    # use.
    temperature: float = Field(
        DEFAULT_SAMPLING.temperature,
        gt=0,
        description="sampling temperature, the evaluation's by default: DPO then rejects the mistakes the model makes "
        "in use",
    )
    top_p: float = Field(
        DEFAULT_SAMPLING.top_p,
        gt=0,
        le=1,
        description="nucleus sampling, the evaluation's by default: the smallest set of tokens holding this much "
        "probability",
    )
    max_new_tokens: int = Field(
        DEFAULT_SAMPLING.max_new_tokens,
        gt=0,
        description="longest sampled response in tokens, the evaluation's by default",
    )
    batch_size: int = Field(32, gt=0, description="prompts generated together (transformers backend)")
    style_prompt: str | None = Field(
        None,
        description="a style prompt file, 'default', or null (no style prompt: the tuned model is used without one)",
    )
    data: str | None = Field(
        None,
        description="more contexts to sample on, without references (a turns JSONL, e.g. imported τ-bench turns): "
        "their pair is the "
        "best and the worst of the policy's own candidates under the reward; null: the targets' contexts only",
    )
    data_contexts: int | None = Field(
        32, gt=0, description="contexts drawn from `data` each round, a seeded sample (null: all)"
    )


class HardNegatives(_Section):
    """Rejected responses made by corrupting a target (:mod:`voicetune.data.corrupt`): the target is chosen, the
    corruption rejected. They teach what the policy's own samples rarely show and the reward may not see (a
    flipped negation, swapped amounts, a question turned into "done"). Added to the first round's pairs."""

    kinds: list[str] = Field(
        default_factory=lambda: list(_corruption_kinds()),
        description="which corruptions to make: negation, swap_amounts, wrong_action, wrong_item, done_not_asked, "
        "drop_fact, invent_number, repeat_sentence ([] for none)",
    )
    contexts: int | None = Field(32, gt=0, description="targets to corrupt, a seeded sample (null: all)")
    per_context: int = Field(
        1, gt=0, description="corruptions per target, the least-used applicable kinds first (covers the kinds evenly)"
    )

    @model_validator(mode="after")
    def _known_kinds(self) -> HardNegatives:
        unknown = [k for k in self.kinds if k not in _corruption_kinds()]
        if unknown:
            raise ValueError(
                f"unknown corruption kind(s) {', '.join(unknown)}; valid: {', '.join(_corruption_kinds())}"
            )
        return self


def _corruption_kinds() -> tuple[str, ...]:
    return tuple(KINDS)


class DPOStage(_Section):
    """DPO on (best, worst) pairs: chosen = the best-scoring response for a context (target or candidate),
    rejected = the worst candidate, kept when their voice_score margin exceeds ``margin``."""

    enabled: bool = Field(True, description="run the preference step after SFT (false: SFT only)")
    beta: float = Field(0.1, gt=0, description="DPO's KL strength: higher keeps the policy closer to the SFT model")
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate of the DPO step")
    epochs: float = Field(1.0, gt=0, description="passes over the preference pairs")
    batch_size: int = Field(8, gt=0, description="pairs per step per device")
    margin: float = Field(
        0.15,
        ge=0,
        le=1,
        description="keep a pair only when chosen beats rejected by more than this voice_score: small margins are "
        "noise of the reward",
    )
    hard_negatives: HardNegatives = Field(
        default_factory=HardNegatives, description="corrupted targets as rejected responses (first round)"
    )


class TrainConfig(_Section):
    """Everything ``voicetune train`` does; every field has a default."""

    model: str = Field(
        "smollm2-135m",
        description="the policy to train: smollm2-135m (embedded), a .gguf file, a model folder or a Hugging Face id",
    )
    data: str = Field(
        "spoken",
        description="'spoken' (the train split of every spoken reference, voicetune.data.references), 'builtin' (the "
        "built-in train split) or a turns JSONL file with targets",
    )
    targets: Literal["reference", "teacher"] = Field(
        "reference", description="where the SFT targets come from: the records' spoken references, or a teacher model"
    )
    teacher_endpoint: str | None = Field(None, description="the teacher's OpenAI-compatible URL (targets: teacher)")
    teacher_model: str | None = Field(None, description="the teacher's model name at that endpoint")
    seed: int = Field(
        0,
        ge=0,
        lt=2**32,
        description="seeds sampling of targets and contexts, training and generation (0 to 2**32 - 1: numpy and torch "
        "seeds; a larger one would wrap, a negative one would mean random)",
    )
    threads: int = Field(
        0,
        ge=0,
        le=MAX_THREADS,
        description="CPU threads for training and generation (0: the cores no other process is using; see "
        "voicetune.threads)",
    )
    max_length: int = Field(
        512, gt=16, description="prompt + response tokens; longer examples are cut from the left of the prompt"
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 where the CPU or GPU supports it"
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, about 30% slower (off on CPU)"
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapters (PEFT)")
    sft: SFTStage = Field(default_factory=SFTStage, description="supervised fine-tuning on the spoken targets")
    sample: SampleStage = Field(default_factory=SampleStage, description="sampling candidates from the current policy")
    dpo: DPOStage = Field(default_factory=DPOStage, description="DPO on the best vs the worst candidate")
    rounds: int = Field(1, ge=0, description="on-policy sample -> score -> DPO rounds after SFT")
    reward: ScorerConfig = Field(
        default_factory=ScorerConfig,
        description="the voice scorer (weights, gate, penalties): the rubric's qualities and findings, which the "
        "learned judge reads as features; written into the run",
    )
    save_merged: bool = Field(
        False,
        description="also save each trainer step's merged fp32 weights beside its policy (STEP/merged: a plain Hugging "
        "Face folder, 538 MB for the "
        "135M model, 2 GB for the 0.5B), for tools outside voicetune; off: a LoRA policy is saved as its adapters "
        "(about 20 MB a step for the 135M), "
        "which voicetune's readers rebuild on the base, bit for bit the same weights",
    )
    reward_judge: Literal["learned", "rubric"] = Field(
        "learned",
        description="what ranks the candidates for DPO: learned (the listeners' judge, usable first, then style: every "
        "usable candidate outranks every unusable one) or rubric (the voice scorer's voice_score alone)",
    )

    @model_validator(mode="after")
    def _teacher_needs_endpoint(self) -> TrainConfig:
        if self.targets == "teacher" and not (self.teacher_endpoint and self.teacher_model):
            raise ValueError("targets: teacher needs teacher_endpoint and teacher_model")
        return self


def load_config(path: str | Path | None, overrides: dict | None = None) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply ``overrides``; errors name the file and field."""
    return load_yaml_config(TrainConfig, path, overrides)


def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML, every default written out."""
    return yaml.safe_dump(config.model_dump(), sort_keys=False)
