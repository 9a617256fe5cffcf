"""The one judge API: a :class:`Judge` turns pairs into verdicts, and judges are registered by name.

Every judge — the rubric, an LLM behind an OpenAI-compatible endpoint, a panel of LLMs — has ``name`` and
``judge_many(pairs) -> list[Judgement]`` (verdicts for the responses *in the order shown*). :func:`judge_pairs`
turns any judge's verdicts into judged :class:`~voicetune.records.Pair` records (one order); the evaluation
runs both orders (:func:`voicetune.evaluate.judge_both_orders`). Adding a judge is one entry in
:data:`JUDGES`: a factory from :class:`JudgeOptions`; ``voicetune judge`` and ``voicetune eval`` both build
their judge through :func:`make_judge`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from voicetune.errors import VoicetuneError
from voicetune.judge.learned import default_judge, load_judge
from voicetune.judge.llm import CRITERIA, Judgement, LLMJudge, PanelJudge
from voicetune.judge.rubric import judge_pair
from voicetune.models.chat import ChatCache
from voicetune.quality import ScorerConfig
from voicetune.quality.scorer import prefetch_meaning
from voicetune.records import QUALITIES, Pair


class Judge(Protocol):
    """What every judge provides."""

    name: str

    def judge_many(self, pairs: Sequence[Pair], progress: bool = False) -> list[Judgement]:
        """A verdict per criterion and overall for each pair, responses in the order shown."""
        ...


class RubricJudge:
    """The deterministic rubric judge (:mod:`voicetune.judge.rubric`): the voice scorer on each response,
    with the given scorer config (the same one training used as the reward)."""

    name = "rubric"

    def __init__(self, config: ScorerConfig | None = None):
        self.config = config or ScorerConfig()

    def judge_many(self, pairs: Sequence[Pair], progress: bool = False) -> list[Judgement]:
        prefetch_meaning(((p, text) for p in pairs for text in (p.response_a, p.response_b)), self.config, progress)
        results = []
        for pair in pairs:
            judged = judge_pair(pair, self.config)
            criteria = dict(judged.criteria or {})
            if judged.winner is not None:  # always set by the rubric
                criteria["overall"] = judged.winner
            results.append(Judgement(judged.winner, criteria, judged.rationale))
        return results


class JudgeOptions(BaseModel):
    """How to build a judge (the ``judge`` section of an evaluation)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["learned", "rubric", "llm"] = Field(
        "learned",
        description="learned (usable first, learned from blind listeners' labels; the rubric's findings explain each "
        "verdict), rubric (the scorer alone, deterministic) or llm (an OpenAI-compatible judge model; several models "
        "form a panel)",
    )
    model: str | None = Field(
        None,
        description="the learned judge's folder (from voicetune judge train); default: the one trained on "
        "the packaged listener labels, cached",
    )
    endpoints: list[str] = Field(
        default_factory=list, description="the LLM judge's OpenAI-compatible URL: one, or one per model"
    )
    models: list[str] = Field(
        default_factory=list,
        description="the LLM judge's model names; more than one is a panel (majority vote per criterion)",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="the environment variable holding the endpoint's API key (never stored)"
    )
    concurrency: int = Field(4, ge=1, description="parallel requests to the judge endpoint")
    timeout: float = Field(120.0, gt=0, description="seconds one judge request may take in all before it is retried")
    max_tokens: int = Field(200, gt=0, description="the longest judge answer, in tokens")


def _rubric(options: JudgeOptions, cache: Path | None, scorer: ScorerConfig | None) -> Judge:
    return RubricJudge(scorer)


def _learned(options: JudgeOptions, cache: Path | None, scorer: ScorerConfig | None) -> Judge:
    return load_judge(options.model, scorer) if options.model else default_judge(scorer)


def _llm(options: JudgeOptions, cache: Path | None, scorer: ScorerConfig | None) -> Judge:
    if not options.endpoints or not options.models:
        raise VoicetuneError("--judge llm needs --judge-endpoint URL and --judge-model NAME")
    if len(options.endpoints) not in (1, len(options.models)):
        raise VoicetuneError("give one --judge-endpoint, or one per --judge-model")
    shared = ChatCache(cache) if cache is not None else None
    judges = [
        LLMJudge(
            options.endpoints[i if len(options.endpoints) > 1 else 0],
            name,
            shared,
            concurrency=options.concurrency,
            timeout=options.timeout,
            max_tokens=options.max_tokens,
            api_key_env=options.api_key_env,
        )
        for i, name in enumerate(options.models)
    ]
    return judges[0] if len(judges) == 1 else PanelJudge(judges)


#: Judges by name: a factory from (options, cache path or None, scorer config or None).
JUDGES: dict[str, Callable[[JudgeOptions, Path | None, ScorerConfig | None], Judge]] = {
    "learned": _learned,
    "rubric": _rubric,
    "llm": _llm,
}


def make_judge(options: JudgeOptions, cache: str | Path | None = None, scorer: ScorerConfig | None = None) -> Judge:
    """The judge ``options`` describe; LLM answers are cached in the SQLite file ``cache`` when given."""
    if options.kind not in JUDGES:
        raise VoicetuneError(f"--judge '{options.kind}': expected one of {', '.join(JUDGES)}")
    return JUDGES[options.kind](options, Path(cache) if cache is not None else None, scorer)


def judge_pairs(pairs: Sequence[Pair], judge: Judge | None = None, progress: bool = False) -> list[Pair]:
    """Judge every pair once, in the order given, with any judge (default: the rubric): ``winner``,
    per-quality ``criteria`` and ``rationale`` set; a judge error leaves ``winner`` None and says why in
    ``meta.error``."""
    judge = judge or RubricJudge()
    pairs = list(pairs)
    judged = []
    for pair, verdict in zip(pairs, judge.judge_many(pairs, progress=progress), strict=True):
        update: dict = {
            "winner": verdict.winner,
            "rationale": verdict.rationale,
            "criteria": {k: v for k, v in verdict.criteria.items() if k in QUALITIES} or None,
        }
        if verdict.error:
            update["meta"] = {**pair.meta, "error": verdict.error}
        judged.append(pair.model_copy(update=update))
    return judged


__all__ = ["CRITERIA", "JUDGES", "Judge", "JudgeOptions", "Judgement", "RubricJudge", "judge_pairs", "make_judge"]
