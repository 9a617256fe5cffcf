"""The run folder's safety: what makes a folder a run, and how a stage's outputs are moved aside.

A run folder is recognised by ``stages/run.json``, which ``voicetune run`` writes before anything else; a
run made before that file existed by its layout (``config.yaml`` beside a ``thresholds.json`` of the run's
form, or a stage record in ``stages/``). ``voicetune run --out`` refuses any other folder that is not empty,
so that a user's own ``config.yaml`` or ``data/`` is never overwritten or moved into ``stages/.superseded/``.

A stage redone is moved aside whole (:class:`voicetune.provenance.Step`), and its outputs may be SQLite
databases in WAL mode: the review set, whose votes may sit in ``review.sqlite-wal`` until a checkpoint, and
caches. Moving the database file without its ``-wal`` loses those votes, and leaves a stale WAL that SQLite
would replay into the next database made at that path. So :class:`StageStep` settles every database first:
it takes the database out of WAL mode (a checkpoint folds the WAL in, and SQLite removes the ``-wal`` and
``-shm``), which SQLite allows only when no other connection has it open, and it holds an exclusive lock
while the file moves. A database another process holds (``voicetune review serve`` on it) is refused in
one line instead: moving it under a live server would split the votes between two files.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.provenance import Step
from voicetune.records import DATABASE_COMPANIONS

#: The file that marks a folder as a run (written first by every run).
MARKER = Path("stages") / "run.json"
#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def companions(database: Path) -> list[Path]:
    """The files SQLite keeps beside ``database``: its write-ahead log, shared memory and rollback journal."""
    return [database.with_name(database.name + suffix) for suffix in DATABASE_COMPANIONS]


def is_database(path: Path) -> bool:
    """Whether ``path`` is a SQLite database file (by its header; an empty file is not one yet)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def databases_in(paths: Sequence[Path]) -> list[Path]:
    """The SQLite databases among ``paths`` and below the folders among them."""
    found = []
    for path in paths:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found += [p for p in candidates if not p.name.endswith(DATABASE_COMPANIONS) and is_database(p)]
    return found


def _exclusive(database: Path) -> sqlite3.Connection | None:
    """A connection holding ``database`` checkpointed, out of WAL mode and exclusively locked; None when the
    file cannot be read as a database (it then moves as it is, its companion files with it).

    Raises:
        VoicetuneError: another process has the database open (a review server), so it cannot be moved
            without splitting its writes between two files.
    """
    gc.collect()  # this process's own connections that only wait to be collected would look like another holder
    db = None
    try:
        db = sqlite3.connect(str(database), timeout=0, isolation_level=None)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL folded into the database
        db.execute("PRAGMA journal_mode=DELETE")  # SQLite refuses this while any other connection has the file open
        db.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as error:
        if db is not None:
            db.close()
        if "locked" in str(error) or "busy" in str(error):
            raise VoicetuneError(
                f"{database}: in use by another process (is `voicetune review serve --db {database}` running?); stop "
                "it, then "
                "run again: the stage must move it aside, and a database is moved only when no process has it open"
            ) from None
        return None
    except sqlite3.Error:
        if db is not None:
            db.close()
        return None
    return db


@contextlib.contextmanager
def settled(database: Path) -> Iterator[None]:
    """Hold ``database`` settled (:func:`_exclusive`) while the block moves it; closing the connection after
    the move releases the lock (the empty transaction rolls back, and no file is touched by name)."""
    db = _exclusive(database)
    try:
        yield
    finally:
        if db is not None:
            db.close()


class StageStep(Step):
    """A stage's :class:`~voicetune.provenance.Step` whose outputs may hold SQLite databases: each is settled
    (:func:`settled`) and moved together with its ``-wal``/``-shm``, or the move is refused while another
    process holds it."""

    def set_aside(self, paths: Sequence[Path]) -> Path | None:
        paths = list(paths)
        databases = databases_in(paths)
        with contextlib.ExitStack() as stack:
            for database in databases:  # every database first: a refusal leaves everything where it was
                stack.enter_context(settled(database))
            extra = [
                c
                for d in databases
                for c in companions(d)
                if c not in paths and not any(c.is_relative_to(p) for p in paths)
            ]
            return super().set_aside(
                [p for p in paths + extra if p.exists() or p.is_symlink()]
            )  # settling removed the WAL


def is_run_folder(root: Path) -> bool:
    """Whether ``root`` is a run's folder: its marker, or an older run's layout (see the module docstring)."""
    if (root / MARKER).is_file() or any((root / "stages").glob("*.fingerprint.json")):
        return True
    try:
        thresholds = json.loads((root / "thresholds.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        (root / "config.yaml").is_file()
        and isinstance(thresholds, dict)
        and "thresholds" in thresholds
        and "set_at" in thresholds
    )
