"""Data in: importers for real transcripts, built-in data, and splits."""

from pathlib import Path

from voicetune.data.builtin import builtin_pairs, builtin_turns
from voicetune.data.formats import FORMATS, import_transcripts
from voicetune.data.references import reference_turns
from voicetune.data.split import split_records
from voicetune.errors import VoicetuneError
from voicetune.records import Turn, load_records

__all__ = ["FORMATS", "builtin_pairs", "builtin_turns", "import_transcripts", "load_turns", "split_records"]


def load_turns(spec: str, limit: int | None = None) -> list[Turn]:
    """Turns from ``builtin:SPLIT`` (train, dev, test or all; ``builtin`` alone is test), ``spoken:SPLIT[:SOURCE]``
    (the spoken references of :mod:`voicetune.data.references`, e.g. ``spoken:test:tau-bench`` for the τ-bench
    held-out tasks) or a turn records JSONL file (ids must be unique); the first ``limit`` when given."""
    if spec.startswith("builtin"):
        split = spec.partition(":")[2] or "test"
        if split not in ("train", "dev", "test", "all"):
            raise VoicetuneError(f"'{spec}': the built-in splits are train, dev, test and all")
        turns = builtin_turns(None if split == "all" else split)
    elif spec.startswith("spoken"):
        _, _, rest = spec.partition(":")
        split, _, source = rest.partition(":")
        turns = reference_turns(None if split in ("", "all") else split, source or None)
    else:
        turns = load_records(Path(spec), Turn, unique_ids=True)
    return turns[:limit] if limit else turns
