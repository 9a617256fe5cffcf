"""Provenance: every cached step records what it was made from, and is skipped only when that matches.

A step's *fingerprint* is a small JSON object: the resolved config section it depends on, the hashes of its
input files, the weights hash of the model it runs (or the endpoint URL and model name of a remote one), the
scorer config, and the package version. It is written next to the step's outputs as ``NAME.fingerprint.json``:

    {"step": "sft", "status": "running" | "done", "made_from": {...}, "digest": "…", "version": "0.1.0"}

:class:`Step` is the one helper every stage uses:

- ``step.done`` is true only when the record says ``done`` and its ``made_from`` equals the one asked for.
- ``step.begin()`` starts (or resumes) the step. Outputs made from something else — or from something
  unknown (no record) — are moved aside into ``.superseded/`` beside them, never deleted, with one line
  saying why ("sft: redoing (changed: config.epochs); the old outputs are in …"). Outputs of a killed run of
  the *same* step (record ``running``, same ``made_from``) are kept, so the step resumes.
- ``step.finish()`` marks the record ``done``.

So a re-run with a changed config, input file or model redoes exactly the steps whose fingerprint changed
(and, through their outputs' hashes, the steps downstream of them), and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from voicetune.records import atomic_write_text, dumps

Log = Callable[[str], None]

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def package_version() -> str:
    """voicetune's version (``0.0.0`` in a source tree that is not installed)."""
    try:
        return version("voicetune")
    except PackageNotFoundError:
        return "0.0.0"


def digest(value: Any) -> str:
    """A short stable hash of a JSON-serialisable value (keys sorted)."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def hash_file(path: str | Path) -> str:
    """The sha256 of a file's bytes (first 16 hex digits), cached per (path, size, mtime) in this process."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        _HASH_CACHE[key] = hasher.hexdigest()[:16]
    return _HASH_CACHE[key]


def hash_tree(folder: str | Path) -> str:
    """A hash of every regular file below ``folder`` (names and contents; hidden files and fingerprint
    records left out): the identity of a model directory's weights, config and tokenizer."""
    folder = Path(folder)
    entries = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (
            path.is_file()
            and not any(part.startswith(".") for part in relative.parts)
            and not path.name.endswith(".fingerprint.json")
        ):
            entries.append((relative.as_posix(), hash_file(path)))
    return digest(entries)


def hash_records(records: Iterable[Any]) -> str:
    """A hash of records' content (pydantic models or dicts), independent of how they are stored."""
    return digest([r.model_dump(exclude_none=True) if hasattr(r, "model_dump") else r for r in records])


class Step:
    """One cached step: its outputs, and the record of what they were made from (see the module docstring).

    Args:
        record: where the fingerprint record lives (``…/NAME.fingerprint.json``), beside the outputs.
        outputs: the files and folders the step writes; all of them are moved aside together when stale.
        made_from: everything the outputs depend on (config section, input hashes, model identity...).
        name: the step's name in messages (default: the record's name).
        log: where the one-line notices go.
    """

    def __init__(
        self,
        record: str | Path,
        outputs: Sequence[str | Path],
        made_from: dict,
        name: str | None = None,
        log: Log = print,
    ):
        self.record = Path(record)
        self.outputs = [Path(p) for p in outputs]
        self.made_from = json.loads(json.dumps(made_from, sort_keys=True, default=str))
        self.name = name or self.record.name.removesuffix(".fingerprint.json")
        self.log = log

    def _stored(self) -> dict | None:
        try:
            data = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @property
    def done(self) -> bool:
        stored = self._stored()
        return bool(stored and stored.get("status") == "done" and stored.get("made_from") == self.made_from)

    def changes(self) -> list[str]:
        """The dotted keys of ``made_from`` that differ from the stored record (empty when they match)."""
        stored = self._stored()
        if stored is None:
            return ["(no record of what the outputs were made from)"]
        return _changed_keys(stored.get("made_from") or {}, self.made_from)

    def begin(self) -> None:
        """Set aside outputs made from something else, then record that this step is running."""
        stored = self._stored()
        existing = [p for p in self.outputs if p.exists()]
        if stored is not None and stored.get("made_from") != self.made_from or stored is None and existing:
            why = ", ".join(self.changes()[:6])
            moved = self.set_aside(existing + ([self.record] if self.record.exists() else []))
            if moved is not None:
                self.log(f"{self.name}: redoing (changed: {why}); the old outputs are in {moved}")
            else:
                self.log(f"{self.name}: redoing (changed: {why})")
        self._write("running")

    def finish(self, **extra: Any) -> None:
        """Record the step as done (``extra`` is stored beside the fingerprint, e.g. counts)."""
        self._write("done", **extra)

    def set_aside(self, paths: Sequence[Path]) -> Path | None:
        """Move ``paths`` into ``.superseded/NAME-TIME/`` beside the record; returns that folder."""
        if not paths:
            return None
        folder = self.record.parent / ".superseded" / f"{self.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            target = folder / path.name
            if target.exists():
                target = folder / f"{path.name}.{len(list(folder.iterdir()))}"
            shutil.move(str(path), str(target))
        return folder

    def _write(self, status: str, **extra: Any) -> None:
        body = {
            "step": self.name,
            "status": status,
            "made_from": self.made_from,
            "digest": digest(self.made_from),
            "version": package_version(),
            **extra,
        }
        atomic_write_text(self.record, dumps(body, indent=2) + "\n")

    @property
    def digest(self) -> str:
        return digest(self.made_from)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        changed: list[str] = []
        for key in keys:
            changed += _changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return changed
    return [] if old == new else [prefix or "(everything)"]
