"""Records: the contract between stages, and their JSONL I/O.

A :class:`Turn` is one agent turn to be spoken; a :class:`Pair` is a turn's context with two responses to
compare. Both are stored as JSON Lines. Reading names the file, line and field of any problem; writing is
atomic (write a temporary file, then rename) so that a killed run never leaves half a file behind.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

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


class Context(BaseModel):
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


class Turn(Context):
    """One agent turn to be spoken: history, the written draft, must-convey facts, a spoken reference."""

    response: str | None = None
    scores: dict[str, float] | None = None
    findings: list[dict] | None = None  # typed findings as plain dicts (voicetune.quality.findings.Finding)
    reasons: list[str] | None = None


class Pair(Context):
    """A turn's context with two responses; a judged pair adds ``winner`` and ``criteria``."""

    response_a: str
    response_b: str
    system_a: str | None = None
    system_b: str | None = None
    winner: Verdict | None = None
    criteria: dict[str, Verdict] | None = None
    rationale: str | None = None


class Candidate(Turn):
    """A response sampled for a training context: the context (as a Turn, ``response`` filled), which turn it
    answers (``turn_id``) and which of its samples it is (``candidate_index``). ``id`` is a unique key for
    resumable generation and is never parsed."""

    turn_id: str
    candidate_index: int = Field(ge=0)


class PreferencePair(BaseModel):
    """One DPO example: a prompt (chat messages), the chosen and the rejected response, and why."""

    model_config = ConfigDict(extra="forbid")
    turn_id: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    chosen_source: Literal["target", "candidate"]
    chosen_index: int | None = None
    rejected_index: int | None = None
    rejected_source: str = Field(
        "candidate",
        description="'candidate' (the policy's own worst sample) or 'corruption:KIND' (a hard negative made from the "
        "target)",
    )
    chosen_score: float
    rejected_score: float
    margin: float


RecordT = TypeVar("RecordT", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> str:
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
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise VoicetuneError(f"{path}: not UTF-8 text (byte {error.start}), expected {expected}") from None
    if not text.strip():  # only Unicode white space (U+2028, a no-break space, a separator control)
        raise VoicetuneError(f"{path}: the file is empty (only white space), expected {expected}")
    return text


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each line of a JSON Lines text.

    Lines end at ``"\\n"`` only (a trailing ``"\\r"`` is dropped): JSON strings may hold U+2028, U+2029 and
    U+0085 raw, which :meth:`str.splitlines` would wrongly treat as line ends.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (write null for a missing number)")


def parse_json(text: str) -> Any:
    """``json.loads`` that refuses the bare ``NaN``, ``Infinity`` and ``-Infinity`` strict JSON forbids."""
    return json.loads(text, parse_constant=_reject_constant)


# A JSON escape of a UTF-16 surrogate: the only way a parsed JSON string can hold text that is not Unicode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(value: str) -> str:
    """``value`` with any lone surrogate written as a ``\\udXXX`` escape, safe to print or write."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def invalid_text_field(data: Any, source: str | None = None) -> str | None:
    """The dotted path (``history.0.text``) of the first string or key in parsed JSON that is not valid
    Unicode text (a lone surrogate such as ``"\\ud800"``), else ``None``. ``source`` (the JSON text) lets it
    skip the walk when the text has no surrogate escape at all."""
    if source is not None and not _SURROGATE_ESCAPE.search(source):
        return None

    def walk(value: Any, where: str) -> str | None:
        if isinstance(value, str):
            return None if _is_text(value) else where or "(record)"
        if isinstance(value, dict):
            for key, item in value.items():
                inner = f"{where}.{printable(str(key))}" if where else printable(str(key))
                if isinstance(key, str) and not _is_text(key):
                    return inner
                found = walk(item, inner)
                if found:
                    return found
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, f"{where}.{index}" if where else str(index))
                if found:
                    return found
        return None

    return walk(data, "")


@overload
def iter_numbered_records(
    path: str | Path,
    *,
    skip_invalid: bool = ...,
    skipped: list[str] | None = ...,
    unique_ids: bool = ...,
) -> Iterator[tuple[int, Turn]]: ...
@overload
def iter_numbered_records(
    path: str | Path,
    model: type[RecordT],
    skip_invalid: bool = ...,
    skipped: list[str] | None = ...,
    unique_ids: bool = ...,
) -> Iterator[tuple[int, RecordT]]: ...
def iter_numbered_records(
    path: str | Path,
    model: type[BaseModel] = Turn,
    skip_invalid: bool = False,
    skipped: list[str] | None = None,
    unique_ids: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, record)`` for the records of a JSONL file, validated.

    Args:
        path: the JSONL file.
        model: ``Turn`` or ``Pair``.
        skip_invalid: go on past a bad line instead of raising; each skipped line's reason is appended to
            ``skipped`` (so nothing is dropped silently).
        skipped: collects ``"FILE:LINE: reason"`` for every skipped line.
        unique_ids: a record whose ``id`` an earlier line already has is an error ("id 'x' on line 7 is
            already on line 3"), so that no stage pairs one turn's context with another's response.

    Raises:
        VoicetuneError: a missing, empty or binary file, or (unless ``skip_invalid``) a malformed line (bare
            ``NaN``/``Infinity`` included), text that is not valid Unicode, a missing or mistyped field or a
            repeated id, naming the file, line and field.
    """
    path = Path(path)
    text = read_text_file(path, "JSON Lines (one JSON record per line)")
    first_line: dict[str, int] = {}
    for number, line in jsonl_lines(text):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        except ValueError as error:
            reason = f"{path}:{number}: malformed JSON ({error})"
        else:
            field = invalid_text_field(data, line)
            if field is not None:
                reason = (
                    f"{path}:{number}: field '{field}': not valid Unicode text (a lone surrogate escape such as "
                    "\\ud800)"
                )
            else:
                try:
                    record = model.model_validate(data)
                except ValidationError as error:
                    reason = f"{path}:{number}: {describe_validation_error(error)}"
                else:
                    record_id = getattr(record, "id", None)
                    earlier = (
                        first_line.setdefault(record_id, number)
                        if unique_ids and isinstance(record_id, str)
                        else number
                    )
                    if earlier == number:
                        yield number, record
                        continue
                    reason = (
                        f"{path}:{number}: id {printable(repr(record_id))} on line {number} is already on line "
                        f"{earlier}"
                    )
        if not skip_invalid:
            raise VoicetuneError(reason)
        if skipped is not None:
            skipped.append(reason)


@overload
def iter_records(
    path: str | Path,
    *,
    skip_invalid: bool = ...,
    skipped: list[str] | None = ...,
    unique_ids: bool = ...,
) -> Iterator[Turn]: ...
@overload
def iter_records(
    path: str | Path,
    model: type[RecordT],
    skip_invalid: bool = ...,
    skipped: list[str] | None = ...,
    unique_ids: bool = ...,
) -> Iterator[RecordT]: ...
def iter_records(
    path: str | Path,
    model: type[BaseModel] = Turn,
    skip_invalid: bool = False,
    skipped: list[str] | None = None,
    unique_ids: bool = False,
) -> Iterator[Any]:
    """Yield the records of a JSONL file, validated (see :func:`iter_numbered_records`)."""
    for _, record in iter_numbered_records(
        path, model, skip_invalid=skip_invalid, skipped=skipped, unique_ids=unique_ids
    ):
        yield record


@overload
def load_records(
    path: str | Path,
    *,
    skip_invalid: bool = ...,
    skipped: list[str] | None = ...,
    unique_ids: bool = ...,
) -> list[Turn]: ...
@overload
def load_records(
    path: str | Path,
    model: type[RecordT],
    skip_invalid: bool = ...,
    skipped: list[str] | None = ...,
    unique_ids: bool = ...,
) -> list[RecordT]: ...
def load_records(
    path: str | Path,
    model: type[BaseModel] = Turn,
    skip_invalid: bool = False,
    skipped: list[str] | None = None,
    unique_ids: bool = False,
) -> list[Any]:
    """Read every record of a JSONL file (see :func:`iter_numbered_records`); ``unique_ids=True`` makes a
    repeated ``id`` an error naming both lines."""
    return list(iter_records(path, model, skip_invalid=skip_invalid, skipped=skipped, unique_ids=unique_ids))


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: equal once resolved (through symlinks), or the same inode."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        return os.path.samefile(a, b)
    except (OSError, RuntimeError, ValueError):
        return False


#: ``writes`` of :func:`refuse_overwriting_input` for a command that may write anything in its output folder.
EVERYTHING: tuple[str, ...] = (".",)
#: The files SQLite keeps beside a database (the write-ahead log, its shared memory, the rollback journal):
#: writing over one of them corrupts the database or loses its last commits.
DATABASE_COMPANIONS = ("-wal", "-shm", "-journal")


def _resolved(path: str | Path) -> Path | None:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop (RuntimeError before Python 3.13)
        return None


def _overwriting(target: Path, source: Path) -> str | None:
    """Why writing ``target`` (a file, or a folder written or moved as a whole) would overwrite the input
    ``source`` (a file, or a folder read whole), in words; None when it would not."""
    if same_file(target, source):
        return f"is the input file {source}, which writing would overwrite"
    written, read = _resolved(target), _resolved(source)
    if written is None or read is None:
        return None
    if source.is_file() and any(written == read.with_name(read.name + suffix) for suffix in DATABASE_COMPANIONS):
        return f"is SQLite's journal of the input {source}: writing it would corrupt that database"
    if read.is_relative_to(written):
        return f"holds the input {source}, which writing it would overwrite or move aside"
    if source.is_dir() and written.is_relative_to(read) and target.exists():
        return f"is a file of the input folder {source} (read whole), which writing would overwrite"
    return None


def refuse_overwriting_input(
    output: str | Path, *inputs: str | Path | None, writes: Iterable[str] | None = None
) -> None:
    """Raise when writing ``output`` would replace one of ``inputs``, what the output is made from.

    ``output`` is a file, unless ``writes`` names what the command writes inside the folder ``output``:
    relative paths of files or of folders written (or moved aside) as a whole; :data:`EVERYTHING` when
    anything inside may be written. ``inputs`` are files, or folders read whole (a model directory); None and
    inputs that do not exist are skipped. Refused: a written path that is an input by any name (a symlink, a
    relative path, a hard link); the ``-wal``/``-shm``/``-journal`` of an input (an input may be a SQLite
    database); a written folder that holds an input; an existing file inside an input folder.
    """
    targets = [Path(output)] if writes is None else [Path(output) / name for name in writes]
    for source in inputs:
        if source is None or not (Path(source).exists() or Path(source).is_symlink()):
            continue
        for target in targets:
            reason = _overwriting(target, Path(source))
            if reason is not None:
                raise VoicetuneError(f"{target}: {reason}; choose another output path")


def missing_reason(path: str | Path) -> str:
    """Why a path that should exist does not, in words: no such file or folder, a symbolic link loop, or a
    symbolic link whose target is missing."""
    path = Path(path)
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop (it leads back to itself)"
        if path.is_symlink():
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        if error.errno == errno.ENOTDIR:
            return "not found (a part of the path is a file, not a folder)"
        return "no such file or folder"
    return "exists"


def output_folder(path: str | Path, expected: str = "an output folder") -> Path:
    """``path`` as a folder to write into, created when missing, or one clear :class:`VoicetuneError`: an
    existing file there (or above it), a symbolic link loop, a link to nowhere, a folder that cannot be made."""
    if isinstance(path, str) and not path.strip():
        raise VoicetuneError(f"cannot use an empty path as {expected}")
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists():
        raise VoicetuneError(f"{path}: is a file, expected {expected}")
    if path.is_symlink() or any(parent.is_symlink() and not parent.exists() for parent in path.parents):
        raise VoicetuneError(f"{path}: {missing_reason(path)}, expected {expected}")
    return ensure_dir(path)


def _write_error(path: Path, error: OSError) -> VoicetuneError:
    reason = error.strerror or str(error) or type(error).__name__
    if isinstance(error, (FileExistsError, NotADirectoryError)) or error.errno == errno.ELOOP:
        # something in the way of a folder: a symbolic link loop, or a file where a folder is needed; name it
        looping = next(
            (
                p
                for p in (Path(path), *Path(path).parents)
                if p.is_symlink() and missing_reason(p).startswith("a symbolic link loop")
            ),
            None,
        )
        blocking = next((p for p in (Path(path), *Path(path).parents) if p.exists() and not p.is_dir()), None)
        if looping is not None:
            reason = f"{looping} is {missing_reason(looping)}"
        elif blocking is not None:
            reason = f"{blocking} is a file, not a folder"
    return VoicetuneError(f"{path}: cannot write ({reason})")


def ensure_dir(path: str | Path, for_file: str | Path | None = None) -> Path:
    """Create an output folder (and its parents); a failure is a :class:`VoicetuneError` naming the path
    (``for_file``, the file to be written there, when given)."""
    if isinstance(path, str) and not path.strip():
        raise VoicetuneError("cannot create a folder at an empty path")
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_error(Path(for_file) if for_file is not None else path, error) from None
    return path


# Temporary files of atomic writes: ".NAME.PID.RANDOM.tmp", so a killed writer's leftovers can be told apart.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process id we can ask about: keep its file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process (EPERM), or a platform that cannot tell
    return True


def _remove_leftovers(path: Path) -> None:
    """Delete temporary files of earlier writes of ``path`` whose writer (by the pid in the name) is gone."""
    try:
        names = [
            entry.name
            for entry in os.scandir(path.parent)
            if entry.name.startswith(f".{path.name}.") and entry.name.endswith(".tmp")
        ]
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if (
            match
            and match["name"] == path.name
            and int(match["pid"]) != os.getpid()
            and not _process_alive(int(match["pid"]))
        ):
            try:
                (path.parent / name).unlink()
            except OSError:
                pass


def atomic_write_text(path: str | Path, text: str, *, private: bool = False) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file.

    The temporary file is ``.NAME.PID.RANDOM.tmp`` beside the target; leftovers of a killed earlier write of
    the same target (their pid no longer running) are removed. A new file gets the usual ``0o666 & ~umask``
    mode; a replaced file keeps its mode. ``private``: the file is owner-only (0600) from its first byte,
    replaced or new (secrets, review data).

    Raises:
        VoicetuneError: an empty path, a directory, a folder that cannot be created (a file in the way), a
            location that cannot be written (permissions, disk full), or text that is not valid Unicode; the
            message names the path and the reason.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise VoicetuneError(
            f"{path}: cannot write: the text is not valid Unicode (a lone surrogate at character {error.start})"
        ) from None
    return atomic_write_bytes(path, data, private=private)


def atomic_write_bytes(path: str | Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically, as :func:`atomic_write_text` does (same errors, same leftovers rule)."""
    if isinstance(path, str) and not path.strip():
        raise VoicetuneError("cannot write to an empty path")
    path = Path(path)
    if path.is_dir():
        raise VoicetuneError(f"{path}: is a directory, expected a file to write")
    ensure_dir(path.parent, for_file=path)
    temporary = temporary_file(path, private=private)
    try:
        with open(temporary, "wb") as out:
            out.write(data)
        commit_file(temporary, path, private=private)
    except BaseException as error:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise _write_error(path, error) from None
        raise
    return path


def temporary_file(path: Path, tag: str = "", *, private: bool = False) -> Path:
    """Create an empty temporary file beside ``path`` (``.NAME[.TAG].PID.RANDOM.tmp``, for a writer that fills
    it, e.g. another program) and return it; leftovers of a killed earlier writer of the same name are removed
    first; ``private``: owner-only (0600). A folder that cannot be written is a :class:`VoicetuneError` naming
    ``path``."""
    if (
        path.exists() and not path.is_file() and not path.is_dir()
    ):  # a device, a FIFO, a socket: a rename would replace it
        raise VoicetuneError(f"{path}: not a regular file (a device, pipe or socket); choose a file path to write")
    name = f"{path.name}.{tag}" if tag else path.name
    _remove_leftovers(path.with_name(name))
    temporary = path.parent / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        os.close(
            os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                0o600 if private else 0o666,
            )
        )
    except OSError as error:
        raise _write_error(path, error) from None
    return temporary


def commit_file(temporary: Path, path: Path, *, private: bool = False) -> None:
    """Put a finished temporary file in ``path``'s place: its bytes on disk first (fsync), a replaced file's
    mode kept (``private``: owner-only, whatever the replaced file's), then one rename, so readers see the old
    file or the new one, never half of one."""
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    if private:
        os.chmod(temporary, 0o600)
    else:
        try:
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)  # replacing a file: keep its mode
        except OSError:
            pass
    os.replace(temporary, path)


# Line separators JSON allows raw inside strings but line-based readers split on: always written escaped.
_RAW_LINE_BREAKS = re.compile("[\u0085\u2028\u2029]")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """The one JSON writer of the package: strict JSON any parser reads, on one line (unless ``indent``).

    Non-ASCII text is kept as it is, except U+2028, U+2029 and U+0085, which are escaped so that no
    line-based reader splits a record; a non-finite float (NaN, an infinity: a statistic with no value) is
    written as ``null``, never as the bare ``NaN``/``Infinity`` strict JSON rejects.
    """
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent, sort_keys=sort_keys)
    except ValueError:  # a NaN or an infinity somewhere
        text = json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False, indent=indent, sort_keys=sort_keys)
    if not text.isascii():
        text = _RAW_LINE_BREAKS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text


def write_records(path: str | Path, records: Iterable[BaseModel | dict]) -> Path:
    """Write records as JSONL (see :func:`dumps`), atomically; fields left at ``None`` are omitted."""
    lines = []
    for record in records:
        data = record.model_dump(exclude_none=True) if isinstance(record, BaseModel) else record
        lines.append(dumps(data))
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
