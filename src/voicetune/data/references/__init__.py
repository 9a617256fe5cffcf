"""Spoken references at scale: every turn the project can train a voice on, each with what a careful listener
would say on the phone (see README.md here for who wrote them and how).

Four sources, one record shape (:class:`voicetune.records.Turn` with ``reference`` and ``facts``):

- ``builtin``: the built-in conversations (:mod:`voicetune.data.builtin`), in their own splits;
- ``listener``: the helper-written domains of the listener labels (:mod:`voicetune.data.listener`): their
  test half is ``test`` here (the judge is tested on it), their dev half ``train``;
- ``conversations``: helper-written conversations in ``conversations/DOMAIN.jsonl`` (drafts written the way LLM
  agents write, with spoken references), split by conversation (80/10/10, seed 0);
- ``tau-bench``: every agent turn of the τ-bench airline trajectories and few-shot dialogues, read from
  ``../shared/data`` at load time (the third-party text is never copied into the project: ``tau_bench.jsonl``
  holds only turn ids with our references and facts), split by task as everywhere else (the listener labels'
  held-out tasks are this ``test`` split). Left out, with a warning, when the transcripts are absent.

``meta.reference_split`` is each turn's split and ``meta.reference_source`` its source.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

from voicetune.data.builtin import builtin_turns, expand_conversations
from voicetune.data.formats import import_transcripts
from voicetune.data.labelled import default_shared_data
from voicetune.data.listener import domain_turns
from voicetune.data.split import split_records
from voicetune.errors import VoicetuneError
from voicetune.records import Turn, jsonl_lines

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "dev", "test")
SOURCES = ("builtin", "listener", "conversations", "tau-bench")
#: The τ-bench files under the shared data folder, and their importer formats.
TAU_FILES = (("tau-bench/gpt-4o-airline.json", "tau-bench"), ("tau-bench/airline-few_shot.jsonl", "tau-bench-fewshot"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for _, line in jsonl_lines(path.read_text(encoding="utf-8")) if line.strip()]


def conversations() -> list[dict]:
    """The helper-written conversations of ``conversations/*.jsonl``."""
    return [row for path in sorted((HERE / "conversations").glob("*.jsonl")) for row in _rows(path)]


def _tagged(turns: list[Turn], split: str, source: str) -> list[Turn]:
    for turn in turns:
        turn.meta.update(reference_split=split, reference_source=source)
    return turns


def _tau_turns(shared_data: Path) -> list[Turn]:
    written = {row["id"]: row for row in _rows(HERE / "tau_bench.jsonl")} if (HERE / "tau_bench.jsonl").exists() else {}
    turns: list[Turn] = []
    for name, fmt in TAU_FILES:
        path = shared_data / name
        if not path.is_file():
            warnings.warn(f"{path} is absent: the τ-bench references are left out", stacklevel=4)
            continue
        for split, split_turns in split_records([t for t in import_transcripts(path, fmt) if t.draft]).items():
            for turn in split_turns:
                row = written.get(turn.id)
                if row:
                    turn.reference, turn.facts = row["reference"], list(row.get("facts") or [])
                    turns += _tagged([turn], split, "tau-bench")
    return turns


@lru_cache(maxsize=2)
def _all(shared_data: str | None) -> tuple[Turn, ...]:
    turns: list[Turn] = []
    for split in SPLITS:
        turns += _tagged(builtin_turns(split), split, "builtin")
    for turn in domain_turns():
        turns += _tagged([turn], "test" if turn.meta.get("pool_split") == "test" else "train", "listener")
    for split, split_turns in split_records(expand_conversations(conversations(), "conversations")).items():
        turns += _tagged(split_turns, split, "conversations")
    turns += _tau_turns(Path(shared_data) if shared_data else default_shared_data())
    return tuple(t for t in turns if t.reference and t.draft)


def reference_turns(
    split: str | None = None, source: str | None = None, shared_data: str | Path | None = None
) -> list[Turn]:
    """Every turn with a spoken reference, or those of one ``split`` (train, dev, test) and/or ``source``."""
    if split is not None and split not in SPLITS:
        raise VoicetuneError(f"unknown split '{split}': choose from {', '.join(SPLITS)}")
    if source is not None and source not in SOURCES:
        raise VoicetuneError(f"unknown reference source '{source}': choose from {', '.join(SOURCES)}")
    return [
        t.model_copy(deep=True)
        for t in _all(str(shared_data) if shared_data else None)
        if (split is None or t.meta["reference_split"] == split)
        and (source is None or t.meta["reference_source"] == source)
    ]
