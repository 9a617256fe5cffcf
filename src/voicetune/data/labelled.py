"""Hand-labelled response pairs from every source, each assigned to a dev or a test half.

A labelled pair is a :class:`~voicetune.records.Pair` whose ``meta`` says which response a careful listener
prefers and why::

    meta = {"label": "a" | "b", "quality": one of QUALITIES, "failure_class": one of FAILURE_CLASSES,
            "why": "...", "source": one of SOURCES, "split": "dev" | "test"}

Sources (files beside :mod:`voicetune.data.builtin`; a source whose file does not exist yet has no pairs):

``builtin``
    ``labelled_pairs.jsonl``: full Pair lines written by us.
``tau-bench``
    ``labelled_pairs_tau.jsonl``: ``{"id", "turn_id", "response_a", "response_b", "meta"}`` lines that name a
    τ-bench turn without copying its text (third-party data stays outside the project). The turn is looked
    up at load time in ``SHARED/tau-bench/gpt-4o-airline.json``, where SHARED is the ``shared_data`` argument,
    else ``$VOICETUNE_SHARED_DATA``, else ``../shared/data`` beside the project root. When that folder is
    absent the source is skipped with a warning; a ``turn_id`` the transcripts do not have is an error naming
    the file and line.
``synthetic``
    ``labelled_pairs_synthetic.jsonl``: full Pair lines made from a built-in turn, named by ``meta.from_turn``.

Splits (:func:`split_of`): a pair's half is decided by the SHA-256 of its *context group*, so that pairs about
the same context are always on the same side, on every machine and in every run. The group is the pair's
draft (white space collapsed): identical drafts are one group. A synthetic pair whose ``meta.from_turn``
names a built-in turn (or a built-in labelled pair) takes that turn's draft, so it lands with every other
pair made from it; a τ-bench pair's draft is its turn's, so pairs about one ``turn_id`` share a group. A pair
without a draft falls back to its conversation so far (``system`` and ``history``), and a pair without
either to its ``id`` (those keys are prefixed ``context:`` and ``id:``). The first 8 bytes of the digest, read as a
big-endian integer, give ``test`` when odd
and ``dev`` when even: about half each, and adding pairs never moves an existing group.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from voicetune.data.builtin import builtin_turns
from voicetune.data.formats import import_transcripts
from voicetune.errors import VoicetuneError
from voicetune.records import QUALITIES, Pair, iter_numbered_records, jsonl_lines, parse_json, printable

#: Why the better response of a labelled pair is better: the kind of failure the worse one shows.
FAILURE_CLASSES: dict[str, str] = {
    "contradiction": "the worse response states something the draft, the tool results or the conversation contradict "
    "(a wrong time, amount, date or status)",
    "invented": "the worse response adds a fact, number, promise or policy that is nowhere in the draft, the tool "
    "results or the conversation",
    "dropped_fact": "the worse response leaves out a fact the caller needs that the draft gives (an amount, a time, a "
    "condition, a next step)",
    "question_dropped": "the draft asks the caller something (to confirm, to choose, for a detail) and the worse "
    "response never asks it",
    "caller_known": "the better response leaves out what the caller already knows; the worse reads it back (their own "
    "name, request or details)",
    "offer_rest": "the better response gives the few items that matter and offers the rest; the worse reads out a "
    "whole list or every detail at once",
    "internal_id": "the worse response reads aloud an internal identifier (a payment-method id, a database key) that "
    "means nothing to a caller",
    "padding": "the worse response wraps the answer in filler: thanks, apologies, stock openings and closings that add "
    "length but no content",
    "read_aloud": "the worse response reads screen formatting aloud: markdown, symbols, URLs, digits or abbreviations "
    "a listener cannot follow",
    "repetition": "the worse response says the same thing twice, or repeats what the agent already said on an earlier "
    "turn",
    "robotic": "the worse response sounds like a machine: stiff, formal or uncontracted wording, 'as an AI', the "
    "caller's name over and over",
    "unclear": "the worse response is hard to follow by ear: long sentences, too many items in one breath, a tangled "
    "order",
}

#: The label sources, in the order they are loaded.
SOURCES: tuple[str, ...] = ("builtin", "tau-bench", "synthetic")

SPLITS: tuple[str, ...] = ("dev", "test")

#: A ``meta.failure_class`` given to pairs whose label does not say one.
UNCLASSIFIED = "unclassified"

_BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_FILES = {
    "builtin": "labelled_pairs.jsonl",
    "tau-bench": "labelled_pairs_tau.jsonl",
    "synthetic": "labelled_pairs_synthetic.jsonl",
}
TAU_TRANSCRIPTS = Path("tau-bench") / "gpt-4o-airline.json"


def source_file(source: str) -> Path:
    """The file a built-in label source is stored in (it may not exist yet)."""
    if source not in _FILES:
        raise VoicetuneError(f"unknown label source '{source}': choose from {', '.join(SOURCES)}")
    return _BUILTIN_DIR / _FILES[source]


def default_shared_data() -> Path:
    """``$VOICETUNE_SHARED_DATA`` when set, else ``../shared/data`` beside the project root."""
    configured = os.environ.get("VOICETUNE_SHARED_DATA")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------------- splits


def _normal(text: str | None) -> str:
    return " ".join((text or "").split())


@lru_cache(maxsize=1)
def _builtin_drafts() -> dict[str, str]:
    """Drafts of the built-in turns and the built-in labelled pairs, by id (what ``meta.from_turn`` names)."""
    drafts = {turn.id: turn.draft for turn in builtin_turns() if turn.draft}
    path = source_file("builtin")
    if path.exists():
        for _, line in _json_lines(path):
            if isinstance(line, dict) and isinstance(line.get("id"), str) and isinstance(line.get("draft"), str):
                drafts.setdefault(line["id"], line["draft"])
    return drafts


def context_key(pair: Pair) -> str:
    """The pair's context group (see the module docstring): pairs with equal keys are on the same side."""
    draft = pair.draft
    from_turn = (pair.meta or {}).get("from_turn")
    if isinstance(from_turn, str) and from_turn in _builtin_drafts():
        draft = _builtin_drafts()[from_turn]
    if _normal(draft):
        return _normal(draft)
    if pair.history or pair.system:
        context = {"system": _normal(pair.system), "history": [[m.role, _normal(m.text)] for m in pair.history]}
        return "context:" + json.dumps(context, ensure_ascii=False, sort_keys=True)
    return "id:" + pair.id


def split_of(pair: Pair) -> str:
    """``"dev"`` or ``"test"``: the half the pair's context group falls in, by SHA-256 (stable across runs
    and machines; pairs about the same context never straddle the split)."""
    digest = hashlib.sha256(context_key(pair).encode("utf-8", "backslashreplace")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 2 else "dev"


def _with_split(pair: Pair) -> Pair:
    return pair.model_copy(update={"meta": {**pair.meta, "split": split_of(pair)}})


# ---------------------------------------------------------------------------------------------------- loading


def _json_lines(path: Path) -> list[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return []
    lines = []
    for number, line in jsonl_lines(text):
        if line.strip():
            try:
                lines.append((number, parse_json(line)))
            except ValueError:
                continue
    return lines


def _check_label(pair: Pair, where: str, source: str | None, strict: bool) -> Pair:
    """The pair with its label checked and its ``meta`` defaults filled; ``strict`` (our own files) also
    requires a known quality and failure class and the file's source."""
    meta = dict(pair.meta or {})
    label = meta.get("label")
    if label not in ("a", "b"):
        raise VoicetuneError(
            f'{where}: field \'meta.label\': expected "a" or "b" (the response a listener prefers), got '
            f"{printable(repr(label))}"
        )
    quality = meta.get("quality")
    if strict and quality not in QUALITIES:
        raise VoicetuneError(
            f"{where}: field 'meta.quality': expected one of {', '.join(QUALITIES)}, got {printable(repr(quality))}"
        )
    if quality is None:
        meta["quality"] = "unlabelled"
    elif not isinstance(quality, str):
        raise VoicetuneError(f"{where}: field 'meta.quality': expected a string, got {printable(repr(quality))}")
    failure = meta.get("failure_class")
    if failure is None:
        meta["failure_class"] = UNCLASSIFIED
    elif not isinstance(failure, str) or (strict and failure not in FAILURE_CLASSES and failure != UNCLASSIFIED):
        raise VoicetuneError(
            f"{where}: field 'meta.failure_class': expected one of {', '.join(FAILURE_CLASSES)}, got "
            f"{printable(repr(failure))}"
        )
    given = meta.get("source")
    if source is not None:
        if strict and given is not None and given != source:
            raise VoicetuneError(
                f"{where}: field 'meta.source': this file holds '{source}' pairs, got {printable(repr(given))}"
            )
        meta["source"] = source if given is None or strict else given
    return pair.model_copy(update={"meta": meta})


def _read_pairs(path: Path, source: str | None, strict: bool) -> list[Pair]:
    return [
        _check_label(pair, f"{path}:{number}", source, strict)
        for number, pair in iter_numbered_records(path, Pair, unique_ids=True)
    ]


def load_labelled_file(path: str | Path) -> list[Pair]:
    """A user's own labelled pairs: full :class:`~voicetune.records.Pair` lines with at least ``meta.label``
    (``"a"`` or ``"b"``); ``meta.quality`` defaults to ``"unlabelled"``, ``meta.failure_class`` to
    ``"unclassified"`` and ``meta.source`` to the file's name; every pair gets ``meta.split`` (:func:`split_of`).

    Raises:
        VoicetuneError: a missing, empty or binary file, malformed JSON, a missing or mistyped field, a repeated
            id or a missing or invalid label, naming ``FILE:LINE`` and the field.
    """
    path = Path(path)
    pairs = [
        _check_label(pair, f"{path}:{number}", None, strict=False)
        for number, pair in iter_numbered_records(path, Pair, unique_ids=True)
    ]
    return [_with_split(p.model_copy(update={"meta": {"source": path.stem, **p.meta}})) for p in pairs]


class _TauLabel(BaseModel):
    """One line of ``labelled_pairs_tau.jsonl``: a τ-bench turn by id, two responses and the label."""

    model_config = ConfigDict(extra="forbid")
    id: str
    turn_id: str
    response_a: str
    response_b: str
    meta: dict[str, Any]


@lru_cache(maxsize=4)
def _tau_turns(path: str, mtime: float) -> dict:
    return {turn.id: turn for turn in import_transcripts(path, "tau-bench")}


def _tau_pairs(path: Path, shared_data: Path) -> list[Pair]:
    transcripts = shared_data / TAU_TRANSCRIPTS
    lines = list(iter_numbered_records(path, _TauLabel, unique_ids=True))
    if not lines:
        return []
    if not transcripts.is_file():
        warnings.warn(
            f"{transcripts} is absent: the {len(lines)} tau-bench labelled pairs of {path.name} are skipped "
            "(set VOICETUNE_SHARED_DATA to the shared data folder)",
            stacklevel=2,
        )
        return []
    turns = _tau_turns(str(transcripts), transcripts.stat().st_mtime)
    pairs = []
    for number, line in lines:
        turn = turns.get(line.turn_id)
        if turn is None:
            raise VoicetuneError(
                f"{path}:{number}: field 'turn_id': no turn '{printable(line.turn_id)}' in {transcripts}"
            )
        meta = {**line.meta, "turn_id": line.turn_id}
        for key in ("task_id", "trial", "conversation_id", "turn_index"):
            if key in turn.meta:
                meta.setdefault(key, turn.meta[key])
        if turn.meta.get("tool_results"):
            meta["tool_results"] = list(turn.meta["tool_results"])
        pair = Pair(
            id=line.id,
            domain=turn.domain,
            system=turn.system,
            history=list(turn.history),
            draft=turn.draft,
            facts=turn.facts,
            reference=turn.reference,
            response_a=line.response_a,
            response_b=line.response_b,
            meta=meta,
        )
        pairs.append(_check_label(pair, f"{path}:{number}", "tau-bench", strict=True))
    return pairs


def _source_pairs(source: str, shared_data: Path | None) -> list[Pair]:
    path = source_file(source)
    if not path.exists() or not path.read_bytes().strip():  # not written yet
        return []
    if source == "tau-bench":
        return _tau_pairs(path, Path(shared_data) if shared_data is not None else default_shared_data())
    return _read_pairs(path, source, strict=True)


def labelled_pairs(
    sources: Iterable[str] | str = SOURCES, split: str | None = None, shared_data: Path | None = None
) -> list[Pair]:
    """The hand-labelled pairs of ``sources`` (default: all of :data:`SOURCES`), in file order.

    Args:
        sources: source names (a single name is accepted).
        split: ``"dev"`` or ``"test"`` for one half (:func:`split_of`); ``None`` or ``"all"`` for both.
        shared_data: the folder holding ``tau-bench/gpt-4o-airline.json`` (default: :func:`default_shared_data`).

    Every pair has ``meta.label``, ``quality``, ``failure_class``, ``source`` and ``split``.

    Raises:
        VoicetuneError: an unknown source or split, or a bad line in a source file (naming ``FILE:LINE``),
            including a τ-bench ``turn_id`` the transcripts do not have.
    """
    if isinstance(sources, str):
        sources = [sources]
    sources = list(sources)
    for source in sources:
        source_file(source)  # an unknown name is an error
    if split not in (None, "all", *SPLITS):
        raise VoicetuneError(f"unknown split '{split}': choose dev, test or all")
    pairs = [_with_split(p) for source in SOURCES if source in sources for p in _source_pairs(source, shared_data)]
    if split in SPLITS:
        pairs = [p for p in pairs if p.meta["split"] == split]
    return pairs


def select_split(pairs: Sequence[Pair], split: str | None) -> list[Pair]:
    """The pairs of one half (``meta.split``, else :func:`split_of`); ``None`` or ``"all"``: every pair."""
    if split in (None, "all"):
        return list(pairs)
    if split not in SPLITS:
        raise VoicetuneError(f"unknown split '{split}': choose dev, test or all")
    return [p for p in pairs if (p.meta.get("split") or split_of(p)) == split]


__all__ = [
    "FAILURE_CLASSES",
    "SOURCES",
    "SPLITS",
    "context_key",
    "default_shared_data",
    "labelled_pairs",
    "load_labelled_file",
    "select_split",
    "source_file",
    "split_of",
]
