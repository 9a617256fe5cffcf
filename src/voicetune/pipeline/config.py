"""The run's configuration: every setting of ``voicetune run``, documented (``voicetune run --help-config``).

One YAML file holds the whole method: which data, how to train, which baselines to evaluate against, the
review set, the simulated calls, and the thresholds the headline is judged against. The thresholds are part
of the config on purpose: they are fixed before the run, recorded with it, and the report says when they
were changed after its results existed. With no config the run is the embedded default (built-in data,
``smollm2-135m``, CPU).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from voicetune.data.formats import FORMATS
from voicetune.errors import VoicetuneError
from voicetune.evaluate.systems import parse_system
from voicetune.judge.registry import JudgeOptions
from voicetune.models.generate import DEFAULT_SAMPLING
from voicetune.report.summary import Thresholds
from voicetune.settings import load_yaml_config
from voicetune.simulate.config import CallerModel, Timing
from voicetune.threads import MAX_THREADS
from voicetune.train.config import TrainConfig

#: The TTS names a config may give (voicetune.tts: auto picks the best installed engine).
TTS_NAMES = ("auto", "piper", "espeak", "espeak-ng", "browser")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting


def _check_judge(options: JudgeOptions) -> JudgeOptions:
    """What the judge's kind needs, checked here rather than when its stage starts (by then the stages before
    it have run, and a redone stage's outputs have been moved aside): an LLM judge its endpoints and model
    names, a learned judge's folder only for a learned judge."""
    if options.kind == "llm":
        if not options.endpoints or not options.models:
            raise ValueError("kind llm needs endpoints (the endpoint's URL) and models (the model names it serves)")
        if len(options.endpoints) not in (1, len(options.models)):
            raise ValueError(
                f"give one endpoint, or one per model ({len(options.endpoints)} endpoints for {len(options.models)} "
                "models)"
            )
        bad = next((url for url in options.endpoints if not url.startswith(("http://", "https://"))), None)
        if bad is not None:
            raise ValueError(f"endpoint {bad!r} is not an http:// or https:// URL")
    elif options.endpoints or options.models:
        raise ValueError(f"endpoints and models are for kind llm, not kind {options.kind}")
    if options.model is not None and options.kind != "learned":
        raise ValueError(f"model is a learned judge's folder; kind {options.kind} takes none")
    return options


class DataSection(_Section):
    """Where the turns come from, and how they are split (by conversation, so no call is in two splits)."""

    source: str = Field(
        "spoken",
        description="'spoken' (every turn with a spoken reference, voicetune.data.references: its train and dev "
        "splits; the test split is the built-in test turns, so the headline stays comparable and within "
        "the time budget), 'builtin' (the built-in turns and their fixed train/dev/test splits) or a "
        "file: turn records (JSONL) or transcripts in `format`",
    )
    format: str | None = Field(
        None,
        description="the transcripts' format when `source` is not turn records: tau-bench, tau-bench-fewshot, "
        "openai-chat or csv (as `voicetune data import` takes)",
    )
    domain: str | None = Field(
        None, description="set the imported turns' domain (default: from the data or the file name)"
    )
    ratios: list[float] = Field(
        default_factory=lambda: [0.8, 0.1, 0.1],
        min_length=3,
        max_length=3,
        description="train, dev and test shares of a file's conversations (the built-in splits are fixed)",
    )
    seed: int = Field(0, description="the split's shuffle seed")
    limit: int | None = Field(
        None,
        ge=1,
        description="only the first N held-out (test) conversations, for the evaluation and the calls alike (null: "
        "all): for a quick look, not for figures",
    )

    @field_validator("ratios")
    @classmethod
    def _usable_ratios(cls, ratios: list[float]) -> list[float]:
        """The run trains on the train split and evaluates on the test split: both need a share above zero."""
        if not all(math.isfinite(r) and r >= 0 for r in ratios):
            raise ValueError(f"shares must be finite and not negative, got {ratios}")
        if ratios[0] <= 0 or ratios[2] <= 0:
            raise ValueError(
                "the train and test shares must be above zero (the run trains on one and evaluates on the other), got "
                f"{ratios}"
            )
        return ratios

    @field_validator("format")
    @classmethod
    def _known_format(cls, name: str | None) -> str | None:
        if name is not None and name not in FORMATS:
            raise ValueError(f"unknown transcript format {name!r}: use {', '.join(FORMATS)}")
        return name


class GenerationSection(_Section):
    """How every model system answers, in the evaluation and the simulated calls alike (one set of responses serves
    both)."""

    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="sampling seeds (0 to 2**32 - 1): each model system answers every test turn once per seed (more "
        "seeds: tighter intervals, more generation time)",
    )
    temperature: float = Field(
        DEFAULT_SAMPLING.temperature,
        ge=0,
        description="sampling temperature of model systems (0.7 is how the tuned model is used)",
    )
    max_new_tokens: int = Field(
        DEFAULT_SAMPLING.max_new_tokens, gt=0, description="the longest model response, in tokens"
    )
    batch_size: int = Field(16, gt=0, description="prompts generated together (transformers backend)")


class EvalSection(_Section):
    """The automated judge: the tuned model against each baseline on the held-out turns."""

    baselines: list[str] = Field(
        default_factory=lambda: ["base={model}", "prompted={model}+voice", "draft+pipecat", "draft+voicetune"],
        description="NAME=SPEC of each system the tuned model is compared with, as `voicetune eval` takes them; "
        "{model} is train.model",
    )
    judge: JudgeOptions = Field(
        default_factory=JudgeOptions,
        description="the judge of the headline: the learned judge by default (usable first, learned from blind "
        "listeners; the rubric's findings, with the training run's reward config, explain each verdict)",
    )
    llm_judge: JudgeOptions | None = Field(
        None, description="a second, LLM judge over the same pairs (kind: llm, endpoints, models); off when null"
    )

    @model_validator(mode="before")
    @classmethod
    def _second_judge_is_an_llm(cls, data):
        """``llm_judge`` names an endpoint: its kind is llm unless it says otherwise (the judges' default kind
        is the learned one, which would quietly judge the pairs a second time the same way)."""
        if isinstance(data, dict) and isinstance(data.get("llm_judge"), dict) and "kind" not in data["llm_judge"]:
            data = {**data, "llm_judge": {**data["llm_judge"], "kind": "llm"}}
        return data

    @field_validator("baselines")
    @classmethod
    def _baselines_parse(cls, specs: list[str]) -> list[str]:
        """Each baseline is a system spec `voicetune eval` takes (checked without touching the disk: whether a
        model it names is on this machine is checked when the run starts, by voicetune.pipeline.run.preflight)."""
        for index, spec in enumerate(specs):
            try:
                parse_system(spec.replace("{model}", "model"))
            except VoicetuneError as error:
                raise ValueError(f"item {index}: {str(error).removeprefix('--system ')}") from None
        return specs

    @field_validator("judge")
    @classmethod
    def _judge_kind(cls, options: JudgeOptions) -> JudgeOptions:
        return _check_judge(options)

    @field_validator("llm_judge")
    @classmethod
    def _llm_judge_kind(cls, options: JudgeOptions | None) -> JudgeOptions | None:
        if options is not None and options.kind != "llm":
            raise ValueError(f"the second judge is an LLM judge: kind llm, not {options.kind}")
        return None if options is None else _check_judge(options)


class ReviewSection(_Section):
    """The human review set made from the evaluation's pairs, audio included (`voicetune review create`)."""

    enabled: bool = Field(True, description="build the review set (its audio also plays in the report)")
    reviewers: list[str] = Field(
        default_factory=lambda: ["reviewer1", "reviewer2", "reviewer3"],
        min_length=1,
        description="reviewer names; each gets a secret link",
    )
    sample: int = Field(24, ge=1, description="pairs to review, stratified by domain and comparison")
    overlap: int = Field(2, ge=1, description="reviewers per pair")
    repeat_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="share of each reviewer's pairs shown again later in the other order (self-consistency)",
    )
    mode: Literal["listen", "read"] = Field(
        "listen", description="listen: the text stays hidden until both responses were heard; read: text at once"
    )
    tts: str = Field(
        "auto", description="the review voice: auto (Piper, else espeak-ng, else the browser), piper, espeak or browser"
    )
    seed: int = Field(0, description="the sample's, assignment's and order's seed")

    @field_validator("reviewers")
    @classmethod
    def _distinct_reviewers(cls, names: list[str]) -> list[str]:
        """Each reviewer is a row keyed by name (with a secret link): a blank or repeated name fails here, not
        in the review stage after the set made from other pairs was moved aside."""
        stripped = [name.strip() for name in names]
        if not all(stripped):
            raise ValueError("a reviewer name is empty")
        if any("," in name for name in stripped):
            raise ValueError(f"a reviewer name holds a comma: {', '.join(n for n in stripped if ',' in n)!r}")
        repeated = sorted({name for name in stripped if stripped.count(name) > 1})
        if repeated:
            raise ValueError(f"reviewer names must be distinct: {', '.join(repeated)} more than once")
        return stripped

    @field_validator("tts")
    @classmethod
    def _known_tts(cls, name: str) -> str:
        if name.strip().lower() not in TTS_NAMES:
            raise ValueError(f"unknown TTS engine {name!r}: use auto, piper, espeak or browser")
        return name.strip().lower()


class SimulateSection(_Section):
    """Simulated calls over the held-out conversations (`voicetune simulate`), on the evaluation's responses."""

    enabled: bool = Field(True, description="run the simulated calls")
    seeds: int = Field(5, ge=1, le=1000, description="the caller's random streams per call, the same for every system")
    channel: Literal["text", "speech"] = Field(
        "text", description="what the caller hears: the text, or speech synthesised and transcribed by offline ASR"
    )
    tts: str = Field(
        "espeak",
        description="the engine that times the agent's speech (espeak: same calibrated pace as Piper, 10x faster; "
        "auto, piper)",
    )
    caller_model: CallerModel = Field(
        default_factory=CallerModel, description="the rule-based caller's constants, each with its source"
    )
    timing_model: Timing = Field(default_factory=Timing, description="speech rates and gaps")
    sensitivity: bool = Field(
        False, description="also rerun the comparisons with each main caller constant at 0.5x and 1.5x"
    )

    @field_validator("tts")
    @classmethod
    def _known_tts(cls, name: str, info: ValidationInfo) -> str:
        name = name.strip().lower()
        if name not in TTS_NAMES:
            raise ValueError(f"unknown TTS engine {name!r}: use espeak, piper or auto")
        if name == "browser" and info.data.get("channel") == "speech":
            raise ValueError(
                "the speech channel transcribes audio made on this machine, and 'browser' makes none (use espeak or "
                "piper)"
            )
        return name


class RunConfig(_Section):
    """Everything ``voicetune run`` does; every field has a default (the embedded default on a CPU)."""

    data: DataSection = Field(default_factory=DataSection, description="the turns and their split")
    train: TrainConfig = Field(
        default_factory=TrainConfig,
        description="post-training, as `voicetune train --config` takes it (the run sets its `data` to the train split "
        "and its `threads` to the run's)",
    )
    generation: GenerationSection = Field(
        default_factory=GenerationSection, description="how model systems answer in the evaluation and the calls"
    )
    eval: EvalSection = Field(default_factory=EvalSection, description="the automated judge")
    review: ReviewSection = Field(default_factory=ReviewSection, description="the human review set")
    simulate: SimulateSection = Field(default_factory=SimulateSection, description="the simulated calls")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="the headline's bars, fixed before the run")
    threads: int = Field(
        0, ge=0, le=MAX_THREADS, description="CPU threads for every stage (0: the cores no other process is using)"
    )

    @field_validator("eval")
    @classmethod
    def _baseline_names(cls, section: EvalSection) -> EvalSection:
        names = [spec.partition("=")[0] if "=" in spec else spec for spec in section.baselines]
        if not names:
            raise ValueError("give at least one baseline")
        if "tuned" in names or len(set(names)) != len(names):
            raise ValueError(f"baseline names must be distinct and not 'tuned': {', '.join(names)}")
        return section


def load_run_config(path, overrides: dict | None = None) -> RunConfig:
    """Read a run config (or the defaults when ``path`` is None); errors name the file and the dotted field."""
    return load_yaml_config(RunConfig, path, overrides)
