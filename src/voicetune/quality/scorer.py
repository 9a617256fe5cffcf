"""The voice-quality scorer: the five metrics combined into one gated ``voice_score``.

This one scorer is both the training reward and the rubric judge, on purpose; every headline result also
gets evidence independent of it (an LLM judge, human review, simulated calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from voicetune.errors import VoicetuneError
from voicetune.quality import metrics
from voicetune.quality.facts import Fact, classify_fact, extract_facts, fact_conveyed, spoken_view
from voicetune.quality.speech import WORDS_PER_MINUTE, speaking_seconds
from voicetune.quality.text import words
from voicetune.records import QUALITIES, Turn, _Context

_REPEATABLE_KINDS = ("code", "money", "phone", "email")


class ScorerConfig(BaseModel):
    """How responses are scored. The defaults are what training and the rubric judge use."""

    model_config = ConfigDict(extra="forbid")
    tts: Literal["estimate", "espeak"] = "estimate"
    words_per_minute: float = Field(WORDS_PER_MINUTE, gt=0)
    style_weights: dict[str, float] = Field(
        default_factory=lambda: {"non_repetition": 0.2, "conciseness": 0.3, "clarity": 0.3, "humanness": 0.2}
    )


@dataclass
class VoiceScore:
    """The five qualities, the overall ``voice_score`` and the findings behind them."""

    scores: dict[str, float]
    reasons: list[str] = field(default_factory=list)

    @property
    def voice_score(self) -> float:
        return self.scores["voice_score"]


def turn_facts(turn: _Context) -> tuple[Fact, ...]:
    """The must-convey facts of a turn: its ``facts`` when given, else those extracted from its draft."""
    if turn.facts is not None:
        return tuple(classify_fact(text) for text in turn.facts if text.strip())
    return extract_facts(turn.draft or "")


def combine(qualities: dict[str, float], style_weights: dict[str, float]) -> float:
    """Overall score: style (a weighted mean of the other four) gated by faithfulness squared.

    ``faithfulness**2 * (0.2 + 0.8 * style)``: a response that drops half the facts or invents a price
    (faithfulness <= 0.5) scores at most 0.25, below any faithful response whatever its style (>= 0.2 + 0.8 *
    its style), so no empty, evasive or wrong response can beat a correct one by sounding nicer.
    """
    total = sum(style_weights.values())
    style = sum(qualities[name] * weight for name, weight in style_weights.items()) / total
    return round(qualities["faithfulness"] ** 2 * (0.2 + 0.8 * style), 4)


def score_response(turn: _Context, response: str, config: ScorerConfig | None = None) -> VoiceScore:
    """Score one spoken response to ``turn`` on the five qualities and overall."""
    config = config or ScorerConfig()
    if len(words(response)) < 2:
        zero = {name: 0.0 for name in QUALITIES}
        return VoiceScore({**zero, "voice_score": 0.0}, ["says nothing"])
    facts = turn_facts(turn)
    view = spoken_view(response)
    conveyed = sum(1 for fact in facts if fact_conveyed(fact, view))
    agent_turns = [m.text for m in turn.history if m.role == "agent"]
    context = tuple(m.text for m in turn.history) + (turn.draft or "", turn.system or "") + tuple(turn.tool_results)
    results = {
        "non_repetition": metrics.non_repetition(
            response, agent_turns, turn.last_user_text, _repeated_facts(facts, agent_turns, view)
        ),
        "conciseness": metrics.conciseness(
            response, speaking_seconds(response, config.tts, config.words_per_minute), conveyed
        ),
        "clarity": metrics.clarity(response),
        "humanness": metrics.humanness(response),
        "faithfulness": metrics.faithfulness(response, facts, context, turn.draft or ""),
    }
    scores = {name: results[name].score for name in QUALITIES}
    scores["voice_score"] = combine(scores, config.style_weights)
    return VoiceScore(scores, [reason for name in QUALITIES for reason in results[name].reasons])


def _repeated_facts(facts: tuple[Fact, ...], agent_turns: list[str], view) -> list[Fact]:
    """Codes and amounts from the previous agent turn said again though this turn doesn't need them."""
    if not agent_turns:
        return []
    needed = {f.text for f in facts if f.required}
    return [
        fact
        for fact in extract_facts(agent_turns[-1])
        if fact.kind in _REPEATABLE_KINDS and fact.text not in needed and fact_conveyed(fact, view)
    ]


def score_records(
    records: Iterable[Turn], field: str = "response", config: ScorerConfig | None = None, progress: bool = False
) -> list[Turn]:
    """Add ``scores`` and ``reasons`` to each record, scoring its ``field`` (response, reference or draft).

    Raises:
        VoicetuneError: a record has no text in ``field``.
    """
    if field not in ("response", "reference", "draft"):
        raise VoicetuneError(f"--field must be response, reference or draft, not '{field}'")
    config = config or ScorerConfig()
    records = list(records)
    iterator = records
    if progress and len(records) >= 2000:
        from rich.progress import track

        iterator = track(records, description="scoring", transient=True)
    scored = []
    for record in iterator:
        text = getattr(record, field)
        if text is None:
            raise VoicetuneError(f"record '{record.id}' has no '{field}' to score (choose another --field)")
        result = score_response(record, text, config)
        scored.append(record.model_copy(update={"scores": result.scores, "reasons": result.reasons}))
    return scored
