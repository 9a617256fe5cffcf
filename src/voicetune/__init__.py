"""voicetune: post-train a voice agent's text model so that what it says aloud sounds right.

The library API (what the CLI, the pipeline and a notebook call):

>>> import voicetune
>>> turns = voicetune.builtin_turns("test")
>>> scored = voicetune.score_records(turns, field="reference")
>>> scored[0].scores["voice_score"]  # doctest: +SKIP
"""

from voicetune.data import builtin_pairs, builtin_turns, import_transcripts, split_records
from voicetune.errors import VoicetuneError
from voicetune.judge import judge_pairs, label_agreement
from voicetune.provenance import package_version
from voicetune.quality import ScorerConfig, extract_facts, fact_conveyed, score_records, score_response
from voicetune.records import QUALITIES, Message, Pair, Turn, load_records, write_records

__version__ = package_version()

__all__ = [
    "QUALITIES",
    "Message",
    "Pair",
    "ScorerConfig",
    "Turn",
    "VoicetuneError",
    "builtin_pairs",
    "builtin_turns",
    "extract_facts",
    "fact_conveyed",
    "import_transcripts",
    "judge_pairs",
    "label_agreement",
    "load_records",
    "score_records",
    "score_response",
    "split_records",
    "write_records",
]
