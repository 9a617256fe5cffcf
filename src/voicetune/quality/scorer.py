"""The voice-quality scorer: the five metrics combined into one gated ``voice_score``.

This one scorer is both the training reward and the rubric judge, on purpose; every headline result also
gets evidence independent of it (an LLM judge, human review, simulated calls). Every weight, threshold and
limit it uses is a documented field of :class:`ScorerConfig` (``quality/config.py``), read from YAML by
:func:`load_scorer_config`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from voicetune.errors import VoicetuneError
from voicetune.progress import track
from voicetune.quality import metrics
from voicetune.quality.config import DEFAULT_CONFIG, ScorerConfig, load_scorer_config
from voicetune.quality.facts import Fact, extract_facts, fact_conveyed, spoken_view, turn_facts
from voicetune.quality.findings import Finding, render
from voicetune.quality.meaning import nli_pairs, unsupported_claims
from voicetune.quality.nli import load_nli
from voicetune.quality.speech import speaking_seconds
from voicetune.quality.text import words
from voicetune.records import QUALITIES, Context, Turn

__all__ = ["ScorerConfig", "VoiceScore", "combine", "load_scorer_config", "score_records", "score_response"]

_SAYS_NOTHING = (Finding(kind="says_nothing", quality="overall", penalty=1.0),)


@dataclass
class VoiceScore:
    """The five qualities, the overall ``voice_score`` and the findings behind them."""

    scores: dict[str, float]
    findings: list[Finding] = field(default_factory=list)

    @property
    def voice_score(self) -> float:
        return self.scores["voice_score"]

    @property
    def reasons(self) -> list[str]:
        """The findings as sentences (see :func:`voicetune.quality.findings.render`)."""
        return [render(finding) for finding in self.findings]


def combine(
    qualities: dict[str, float],
    style_weights: dict[str, float],
    gate_power: float = DEFAULT_CONFIG.gate_power,
    gate_floor: float = DEFAULT_CONFIG.gate_floor,
    style_sharpness: float = DEFAULT_CONFIG.style_sharpness,
) -> float:
    """Overall score: style (from the other four qualities) gated by faithfulness.

    ``faithfulness ** gate_power * (gate_floor + (1 - gate_floor) * style)``, where style is
    ``1 - style_sharpness * (1 - the weighted mean of the four)``, floored at 0. The defaults (``gate_power`` 1,
    ``gate_floor`` 0.2, ``style_sharpness`` 3) were chosen on the dev half of the labelled pairs: a faithfulness
    cost (a contradiction 0.3, an invented amount 0.5) still outweighs any style, but a stiff, padded or
    unreadable answer loses to a plain one that leaves out a detail the caller does not need.
    """
    total = sum(style_weights.values())
    style = sum(qualities[name] * weight for name, weight in style_weights.items()) / total
    style = max(0.0, 1.0 - style_sharpness * (1.0 - style))  # sharpness 1: the weighted mean
    return round(qualities["faithfulness"] ** gate_power * (gate_floor + (1.0 - gate_floor) * style), 4)


def score_response(turn: Context, response: str, config: ScorerConfig | None = None) -> VoiceScore:
    """Score one spoken response to ``turn`` on the five qualities and overall."""
    config = config or DEFAULT_CONFIG
    if len(words(response)) < config.min_response_words:
        zero = {name: 0.0 for name in QUALITIES}
        return VoiceScore({**zero, "voice_score": 0.0}, list(_SAYS_NOTHING))
    facts = turn_facts(turn, config.facts)
    view = spoken_view(response)
    conveyed = sum(1 for fact in facts if fact_conveyed(fact, view))
    agent_turns = [m.text for m in turn.history if m.role == "agent"]
    context = tuple(m.text for m in turn.history) + (turn.draft or "", turn.system or "") + tuple(turn.tool_results)
    seconds = speaking_seconds(response, config.tts, config.words_per_minute, config.pause_seconds)
    results = {
        "non_repetition": metrics.non_repetition(
            response,
            agent_turns,
            turn.last_user_text,
            _repeated_facts(facts, agent_turns, view, config),
            config.non_repetition,
        ),
        "conciseness": metrics.conciseness(response, seconds, conveyed, config.conciseness),
        "clarity": metrics.clarity(response, config.clarity),
        "humanness": metrics.humanness(response, config.humanness),
        "faithfulness": metrics.faithfulness(response, facts, context, turn.draft or "", config.faithfulness),
    }
    results["faithfulness"] = _with_meaning(results["faithfulness"], turn, response, config)
    scores = {name: results[name].score for name in QUALITIES}
    scores["voice_score"] = combine(
        scores, config.style_weights, config.gate_power, config.gate_floor, config.style_sharpness
    )
    return VoiceScore(scores, [finding for name in QUALITIES for finding in results[name].findings])


def premises(turn: Context) -> list[str]:
    """What a response's claims are checked against: the draft. (Not the caller's words: the model reads a
    question as "entailing" an answer either way.)"""
    return [turn.draft] if turn.draft and turn.draft.strip() else []


def _with_meaning(
    faithfulness: metrics.QualityResult, turn: Context, response: str, config: ScorerConfig
) -> metrics.QualityResult:
    """Faithfulness less what the claims the draft does not support cost (nothing without an NLI model)."""
    nli = load_nli(config.meaning.model, config.meaning.threads) if config.meaning.model != "none" else None
    if nli is None or not (turn.draft or "").strip():
        return faithfulness
    found = unsupported_claims(response, premises(turn), nli, config.meaning)
    if not found:
        return faithfulness
    cost = sum(f.penalty for f in found)
    return metrics.QualityResult(round(max(0.0, faithfulness.score - cost), 4), faithfulness.findings + tuple(found))


def prefetch_meaning(
    items: Iterable[tuple[Context, str]], config: ScorerConfig | None = None, progress: bool = False
) -> None:
    """Ask the NLI model about every claim of many responses in large batches, before they are scored one by
    one (the answers are cached): several times faster than a small batch per response."""
    config = config or DEFAULT_CONFIG
    nli = load_nli(config.meaning.model, config.meaning.threads) if config.meaning.model != "none" else None
    if nli is None:
        return
    pairs = list(
        dict.fromkeys(
            p
            for turn, text in items
            if (turn.draft or "").strip() and text
            for p in nli_pairs(text, premises(turn), config.meaning)
        )
    )
    chunk = 256
    chunks = range(0, len(pairs), chunk)

    for start in track(chunks, "checking meaning (NLI)", progress and len(pairs) > chunk):
        nli.entailment(pairs[start : start + chunk])


def _repeated_facts(
    facts: tuple[Fact, ...], agent_turns: list[str], view, config: ScorerConfig = DEFAULT_CONFIG
) -> list[Fact]:
    """Codes and amounts from the previous agent turn said again though this turn doesn't need them."""
    if not agent_turns:
        return []
    needed = {f.text for f in facts if f.required}
    repeatable = config.non_repetition.repeatable_kinds
    rules = config.facts
    return [
        fact
        for fact in extract_facts(agent_turns[-1], rules.spoken_list_limit, rules.trivial_count)
        if fact.kind in repeatable and fact.text not in needed and fact_conveyed(fact, view)
    ]


def score_records(
    records: Iterable[Turn], field: str = "response", config: ScorerConfig | None = None, progress: bool = False
) -> list[Turn]:
    """Add ``scores``, ``findings`` (as dicts) and ``reasons`` to each record, scoring its ``field`` (response,
    reference or draft).

    Raises:
        VoicetuneError: a record has no text in ``field``.
    """
    if field not in ("response", "reference", "draft"):
        raise VoicetuneError(f"--field must be response, reference or draft, not '{field}'")
    config = config or DEFAULT_CONFIG
    records = list(records)
    prefetch_meaning(((r, getattr(r, field)) for r in records if getattr(r, field) is not None), config, progress)

    scored = []
    for record in track(records, "scoring", progress and len(records) >= 2000):
        text = getattr(record, field)
        if text is None:
            raise VoicetuneError(f"record '{record.id}' has no '{field}' to score (choose another --field)")
        result = score_response(record, text, config)
        update = {
            "scores": result.scores,
            "findings": [f.model_dump() for f in result.findings],
            "reasons": result.reasons,
        }
        scored.append(record.model_copy(update=update))
    return scored
