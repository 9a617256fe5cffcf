"""Voice-quality scoring: facts, the five metrics, and the gated overall score."""

from voicetune.quality.facts import Fact, extract_facts, fact_conveyed, turn_facts
from voicetune.quality.findings import Finding, count_findings, has_finding, render
from voicetune.quality.scorer import ScorerConfig, VoiceScore, load_scorer_config, score_records, score_response

__all__ = [
    "Fact",
    "Finding",
    "ScorerConfig",
    "VoiceScore",
    "count_findings",
    "extract_facts",
    "fact_conveyed",
    "has_finding",
    "load_scorer_config",
    "render",
    "score_records",
    "score_response",
    "turn_facts",
]
