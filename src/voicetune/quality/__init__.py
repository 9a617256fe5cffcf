"""Voice-quality scoring: facts, the five metrics, and the gated overall score."""

from voicetune.quality.facts import Fact, extract_facts, fact_conveyed
from voicetune.quality.scorer import ScorerConfig, VoiceScore, score_records, score_response, turn_facts

__all__ = ["Fact", "ScorerConfig", "VoiceScore", "extract_facts", "fact_conveyed", "score_records", "score_response", "turn_facts"]
