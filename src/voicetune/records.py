"""Records: the contract between stages, and their JSONL I/O.

A :class:`Turn` is one agent turn to be spoken; a :class:`Pair` is a turn's context with two responses to
compare. Both are stored as JSON Lines. Reading names the file, line and field of any problem; writing is
atomic (write a temporary file, then rename) so that a killed run never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicetune.errors import VoicetuneError

#: The five voice qualities, named once; every stage uses these names in this order.
QUALITIES: tuple[str, ...] = ("non_repetition", "conciseness", "clarity", "humanness", "faithfulness")

Role = Literal["user", "agent"]
Verdict = Literal["a", "b", "tie"]


class Message(BaseModel):
    """One spoken message of the conversation so far."""

    model_config = ConfigDict(extra="forbid")
    role: Role
    text: str


class _Context(BaseModel):
    """What a response is made from and judged against: shared by turns and pairs."""

    model_config = ConfigDict(extra="allow")
    id: str
    domain: str = "general"
    system: str | None = None
    history: list[Message] = Field(default_factory=list)
    draft: str | None = None
    facts: list[str] | None = None
    reference: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.history):
            if message.role == "user":
                return message.text
        return ""

    @property
    def tool_results(self) -> list[str]:
        """Tool outputs seen before this turn (never spoken, but the source of facts a response may state)."""
        results = self.meta.get("tool_results") or []
        return [r if isinstance(r, str) else json.dumps(r) for r in results]


class Turn(_Context):
    """One agent turn to be spoken: history, the written draft, must-convey facts, a spoken reference."""

    response: str | None = None
    scores: dict[str, float] | None = None
    reasons: list[str] | None = None


class Pair(_Context):
    """A turn's context with two responses; a judged pair adds ``winner`` and ``criteria``."""

    response_a: str
    response_b: str
    system_a: str | None = None
    system_b: str | None = None
    winner: Verdict | None = None
    criteria: dict[str, Verdict] | None = None
    rationale: str | None = None


RecordT = TypeVar("RecordT", bound=BaseModel)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(record)"
    kind = first["type"]
    if kind == "missing":
        return f"missing field '{field}'"
    return f"field '{field}': {first['msg'].lower()}"


def read_text_file(path: Path, expected: str) -> str:
    """The text of a user's input file, or one clear error: missing, a directory, empty, binary, not UTF-8."""
    if not path.exists():
        raise VoicetuneError(f"{path}: no such file")
    if path.is_dir():
        raise VoicetuneError(f"{path}: is a directory, expected {expected}")
    raw = path.read_bytes()
    if not raw.strip():
        raise VoicetuneError(f"{path}: the file is empty, expected {expected}")
    if b"\x00" in raw[:8192]:
        raise VoicetuneError(f"{path}: looks like a binary file, expected {expected}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise VoicetuneError(f"{path}: not UTF-8 text (byte {error.start}), expected {expected}") from None


def iter_records(
    path: str | Path, model: type[RecordT] = Turn, skip_invalid: bool = False, skipped: list[str] | None = None
) -> Iterator[RecordT]:
    """Yield the records of a JSONL file, validated.

    Args:
        path: the JSONL file.
        model: ``Turn`` or ``Pair``.
        skip_invalid: go on past a bad line instead of raising; each skipped line's reason is appended to
            ``skipped`` (so nothing is dropped silently).
        skipped: collects ``"FILE:LINE: reason"`` for every skipped line.

    Raises:
        VoicetuneError: a missing, empty or binary file, or (unless ``skip_invalid``) a malformed line or a
            missing or mistyped field, naming the file, line and field.
    """
    path = Path(path)
    text = read_text_file(path, "JSON Lines (one JSON record per line)")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        except ValueError as error:
            reason = f"{path}:{number}: malformed JSON ({error})"
            if not skip_invalid:
                raise VoicetuneError(reason) from None
            if skipped is not None:
                skipped.append(reason)
            continue
        try:
            yield model.model_validate(data)
        except ValidationError as error:
            reason = f"{path}:{number}: {_describe(error)}"
            if not skip_invalid:
                raise VoicetuneError(reason) from None
            if skipped is not None:
                skipped.append(reason)


def load_records(
    path: str | Path, model: type[RecordT] = Turn, skip_invalid: bool = False, skipped: list[str] | None = None
) -> list[RecordT]:
    """Read every record of a JSONL file (see :func:`iter_records`)."""
    return list(iter_records(path, model, skip_invalid=skip_invalid, skipped=skipped))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_records(path: str | Path, records: Iterable[BaseModel | dict]) -> Path:
    """Write records as JSONL, atomically; fields left at ``None`` are omitted."""
    lines = []
    for record in records:
        data = record.model_dump(exclude_none=True) if isinstance(record, BaseModel) else record
        lines.append(json.dumps(data, ensure_ascii=False))
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
