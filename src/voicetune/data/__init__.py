"""Data in: importers for real transcripts, built-in data, and splits."""

from voicetune.data.builtin import builtin_pairs, builtin_turns
from voicetune.data.formats import FORMATS, import_transcripts
from voicetune.data.split import split_records

__all__ = ["FORMATS", "builtin_pairs", "builtin_turns", "import_transcripts", "split_records"]
