"""Importers, one module per transcript format; :func:`import_transcripts` picks one by name."""

from __future__ import annotations

from pathlib import Path

from voicetune.data.formats import csv_transcripts, openai_chat, tau_bench, tau_bench_fewshot
from voicetune.errors import VoicetuneError
from voicetune.records import Turn, read_text_file

FORMATS = {
    "tau-bench": tau_bench.load,
    "tau-bench-fewshot": tau_bench_fewshot.load,
    "openai-chat": openai_chat.load,
    "csv": csv_transcripts.load,
}


def import_transcripts(path: str | Path, format: str, domain: str | None = None) -> list[Turn]:
    """Read transcripts in ``format`` and return one turn record per agent text turn.

    Args:
        path: the transcript file.
        format: one of ``tau-bench``, ``tau-bench-fewshot``, ``openai-chat``, ``csv``.
        domain: the records' domain; by default taken from the data (a τ-bench policy's title, a CSV
            ``domain`` column) or the file name, else ``general``.

    Turn ids are unique: a conversation id seen earlier in the file gets ``-2``, ``-3``, … (see the formats).
    """
    if format not in FORMATS:
        raise VoicetuneError(f"unknown format '{format}': choose one of {', '.join(FORMATS)}")
    path = Path(path)
    text = read_text_file(path, f"a {format} transcript file")
    turns = FORMATS[format](path, text, domain)
    ids = [turn.id for turn in turns]
    if len(set(ids)) != len(ids):  # every importer makes conversation ids unique: a bug if not
        repeated = next(i for i in ids if ids.count(i) > 1)
        raise AssertionError(f"the {format} importer made the turn id '{repeated}' twice from {path}")
    return turns
