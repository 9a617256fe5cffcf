"""The review set's storage: one SQLite file in WAL mode holding the pairs, their audio, each reviewer's
queue and every vote as an event.

Votes are never updated or deleted. A vote is an ``events`` row of kind ``vote``; undo is another row, of kind
``undo``, naming the vote it cancels. A reviewer's verdict on an item is the latest vote on it that no undo
cancels. Every event carries an ``event_id`` chosen when the page was rendered, and the column is unique, so
a retried or double-clicked post is stored once. Each write is one short ``BEGIN IMMEDIATE`` transaction with
``synchronous=FULL``: many server threads (or processes) can write at once, nothing waits long, and a
committed vote survives a killed server.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voicetune.errors import VoicetuneError
from voicetune.quality.speech import estimate_seconds
from voicetune.records import QUALITIES

#: Bumped when the schema changes; a database of another version is refused with one line.
SCHEMA_VERSION = 1

Mode = Literal["listen", "read"]
Shown = Literal["1", "2", "tie"]  # a verdict as the reviewer saw it: response 1, response 2 or a tie

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviewers (name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS audio (
    sha TEXT PRIMARY KEY, engine TEXT NOT NULL, mime TEXT NOT NULL, seconds REAL NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    id TEXT PRIMARY KEY, domain TEXT NOT NULL, comparison TEXT NOT NULL, system_a TEXT, system_b TEXT,
    history TEXT NOT NULL, response_a TEXT NOT NULL, response_b TEXT NOT NULL,
    audio_a TEXT REFERENCES audio(sha), audio_b TEXT REFERENCES audio(sha),
    judge TEXT, context_id TEXT
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, reviewer TEXT NOT NULL REFERENCES reviewers(name), position INTEGER NOT NULL,
    pair_id TEXT NOT NULL REFERENCES pairs(id), swapped INTEGER NOT NULL, showing INTEGER NOT NULL DEFAULT 1,
    UNIQUE (reviewer, position), UNIQUE (reviewer, pair_id, showing)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('vote', 'undo')), reviewer TEXT NOT NULL, item_id INTEGER NOT NULL,
    undoes TEXT, shown TEXT CHECK (shown IN ('1', '2', 'tie')), winner TEXT CHECK (winner IN ('a', 'b', 'tie')),
    swapped INTEGER, mode TEXT, criteria TEXT, comment TEXT, plays TEXT, seconds_on_item REAL,
    source TEXT NOT NULL DEFAULT 'app', created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_item ON events (reviewer, item_id);
CREATE INDEX IF NOT EXISTS events_by_undo ON events (undoes);
"""


def canonical(shown: str, swapped: bool) -> str:
    """The verdict in the eval's terms (``a`` = the pair's ``system_a``) from what the reviewer picked on a
    page whose order was ``swapped`` (response 1 was ``b``)."""
    if shown == "tie":
        return "tie"
    first, second = ("b", "a") if swapped else ("a", "b")
    return first if shown == "1" else second


@dataclass(frozen=True)
class Item:
    """One entry of a reviewer's queue: a pair, the order it is shown in, and which showing it is (2 for the
    repeat shown in the other order to measure self-consistency)."""

    id: int
    reviewer: str
    position: int
    pair_id: str
    swapped: bool
    showing: int


@dataclass(frozen=True)
class Vote:
    """A reviewer's live verdict on one item, with everything the agreement statistics need."""

    reviewer: str
    item_id: int
    pair_id: str
    comparison: str
    domain: str
    showing: int
    swapped: bool
    shown: str
    winner: str
    mode: str
    criteria: dict[str, str] = field(default_factory=dict)  # quality -> canonical a / b / tie
    comment: str = ""
    plays: dict[str, int] = field(default_factory=dict)
    seconds_on_item: float | None = None
    audio_seconds: float | None = None  # both responses' audio, back to back
    source: str = "app"
    event_id: str = ""
    created_at: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def connect(path: str | Path, create: bool = False) -> sqlite3.Connection:
    """A connection to the review database in WAL mode, refusing a missing file (unless ``create``) or a file
    of another schema version with one clear line."""
    path = Path(path)
    if not create and not path.is_file():
        raise VoicetuneError(f"{path}: {missing_database(path)}")
    if create and not path.exists():
        # owner-only from the first byte: the file holds every reviewer's token, the admin token and the CSRF
        # secret (SQLite gives its -wal and -shm files the database file's permissions)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise VoicetuneError(f"{path}: cannot create the review database ({error.strerror or error})") from None
    try:
        db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=60000")
        if create:
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as error:
        raise VoicetuneError(f"{path}: not a review database ({error})") from None
    if row is None or int(row["value"]) != SCHEMA_VERSION:
        raise VoicetuneError(
            f"{path}: review database schema {row['value'] if row else 'unknown'}, this voicetune reads "
            f"{SCHEMA_VERSION}"
        )
    return db


def symlink_loop(path: str | Path) -> bool:
    """Whether ``path`` (or a folder on the way to it) is a symlink loop: ``exists()`` says False for one, which
    would otherwise read as "no such file"."""
    try:
        Path(path).resolve(strict=True)
    except RuntimeError:  # Python 3.11 and 3.12 report a loop so
        return True
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def missing_database(path: Path) -> str:
    """Why there is no review database at ``path``, for the one-line error (after ``PATH: ``)."""
    if path.is_dir():
        return "is a folder, not a review database (give the .sqlite file `voicetune review create` made)"
    if symlink_loop(path):
        return "is a symlink loop (or inside one), not a review database"
    if path.is_symlink():
        return f"the review database does not exist (a broken symlink to {os.readlink(path)})"
    if not path.parent.is_dir():
        folder = path.parent
        why = "is a file" if folder.exists() else "is a symlink loop" if symlink_loop(folder) else "does not exist"
        return f"the review database does not exist (its folder {folder} {why})"
    return "the review database does not exist (make one with `voicetune review create`)"


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``) so that concurrent writers queue instead of
    failing half-way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class ReplayConflict(ValueError):
    """A form's one-time ``event_id`` is already stored for another kind of event, reviewer or item: not a retry
    of the same post (which is stored once), so it is refused rather than silently dropped."""


def _check_replay(db: sqlite3.Connection, event_id: str, kind: str, reviewer: str, item_id: int | None = None) -> None:
    """Raise :class:`ReplayConflict` when ``event_id`` is stored and is not this same post retried."""
    row = db.execute("SELECT kind, reviewer, item_id FROM events WHERE event_id=?", (event_id,)).fetchone()
    if row is not None and (
        row["kind"] != kind or row["reviewer"] != reviewer or (item_id is not None and row["item_id"] != item_id)
    ):
        raise ReplayConflict(f"the form's event id {event_id} was already used by another post; reload the page")


class ReviewStore:
    """The review set in one SQLite file: reading the set, recording votes and undos, listing live votes.

    Thread-safe: every public method opens its own short-lived connection, so FastAPI's worker threads and
    other processes can share the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        connect(self.path).close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened once (opening one per call costs more than most queries)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path)
        yield db

    # the set -----------------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        with self._db() as db:
            return {
                row["key"]: json.loads(row["value"]) if row["key"] != "schema_version" else int(row["value"])
                for row in db.execute("SELECT key, value FROM meta")
            }

    def set_meta(self, key: str, value: Any) -> None:
        with self._db() as db, transaction(db):
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def reviewers(self) -> dict[str, str]:
        """Reviewer name -> secret token."""
        with self._db() as db:
            return {row["name"]: row["token"] for row in db.execute("SELECT name, token FROM reviewers ORDER BY name")}

    def reviewer_for(self, token: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT name FROM reviewers WHERE token=?", (token,)).fetchone()
            return row["name"] if row else None

    def pair(self, pair_id: str) -> dict:
        with self._db() as db:
            row = db.execute("SELECT * FROM pairs WHERE id=?", (pair_id,)).fetchone()
        if row is None:
            raise KeyError(pair_id)
        return _pair_dict(row)

    def pairs(self) -> list[dict]:
        with self._db() as db:
            return [_pair_dict(row) for row in db.execute("SELECT * FROM pairs ORDER BY id")]

    def audio(self, sha: str) -> tuple[str, bytes] | None:
        with self._db() as db:
            row = db.execute("SELECT mime, data FROM audio WHERE sha=?", (sha,)).fetchone()
        return (row["mime"], bytes(row["data"])) if row else None

    def audio_seconds(self) -> dict[str, float]:
        with self._db() as db:
            return {row["sha"]: row["seconds"] for row in db.execute("SELECT sha, seconds FROM audio")}

    def items(self, reviewer: str | None = None) -> list[Item]:
        with self._db() as db:
            query = "SELECT * FROM items" + (" WHERE reviewer=?" if reviewer else "") + " ORDER BY reviewer, position"
            return [_item(row) for row in db.execute(query, (reviewer,) if reviewer else ())]

    def item(self, item_id: int) -> Item | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
        return _item(row) if row else None

    def add_reviewer(self, name: str, token: str | None = None) -> str:
        """Add a reviewer (no-op when present); returns their secret token."""
        with self._db() as db, transaction(db):
            db.execute("INSERT OR IGNORE INTO reviewers VALUES (?, ?)", (name, token or secrets.token_urlsafe(18)))
            return db.execute("SELECT token FROM reviewers WHERE name=?", (name,)).fetchone()["token"]

    def add_item(self, reviewer: str, pair_id: str, swapped: bool, showing: int = 1) -> int:
        """Append an item to the end of a reviewer's queue (or return the existing one for that pair and
        showing); returns its id."""
        with self._db() as db, transaction(db):
            row = db.execute(
                "SELECT id FROM items WHERE reviewer=? AND pair_id=? AND showing=?", (reviewer, pair_id, showing)
            ).fetchone()
            if row:
                return row["id"]
            position = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM items WHERE reviewer=?", (reviewer,)
            ).fetchone()["p"]
            inserted = db.execute(
                "INSERT INTO items (reviewer, position, pair_id, swapped, showing) VALUES (?, ?, ?, ?, ?)",
                (reviewer, position, pair_id, int(swapped), showing),
            ).lastrowid
            assert inserted is not None  # set by the INSERT
            return inserted

    # votes -------------------------------------------------------------------------------------------------
    def record_vote(
        self,
        *,
        reviewer: str,
        item_id: int,
        shown: str,
        mode: str,
        event_id: str | None = None,
        criteria: Mapping[str, str] | None = None,
        comment: str = "",
        plays: dict[str, int] | None = None,
        seconds_on_item: float | None = None,
        source: str = "app",
        created_at: float | None = None,
    ) -> bool:
        """Store one vote (``shown``: ``1``, ``2`` or ``tie`` as the reviewer saw the page; ``criteria`` the
        same per quality). Returns False when ``event_id`` is already stored (a retried post): nothing is
        written twice. Raises :class:`PermissionError` when the item is not the reviewer's."""
        if shown not in ("1", "2", "tie"):
            raise ValueError(f"verdict must be 1, 2 or tie, not {shown!r}")
        criteria = {k: v for k, v in (criteria or {}).items() if v}
        unknown = sorted(set(criteria) - set(QUALITIES))
        if unknown or any(v not in ("1", "2", "tie") for v in criteria.values()):
            raise ValueError(f"criteria must map {', '.join(QUALITIES)} to 1, 2 or tie")
        with self._db() as db, transaction(db):
            item = db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
            if item is None or item["reviewer"] != reviewer:
                raise PermissionError(f"item {item_id} is not assigned to {reviewer}")
            swapped = bool(item["swapped"])
            if event_id is not None:
                _check_replay(db, event_id, "vote", reviewer, item_id)
            cursor = db.execute(
                "INSERT OR IGNORE INTO events (event_id, kind, reviewer, item_id, shown, winner, swapped, mode, "
                "criteria,"
                " comment, plays, seconds_on_item, source, created_at) VALUES (?, 'vote', ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)",
                (
                    event_id or uuid.uuid4().hex,
                    reviewer,
                    item_id,
                    shown,
                    canonical(shown, swapped),
                    int(swapped),
                    mode,
                    json.dumps({k: canonical(v, swapped) for k, v in criteria.items()}),
                    comment,
                    json.dumps(plays or {}),
                    seconds_on_item,
                    source,
                    created_at if created_at is not None else time.time(),
                ),
            )
            return cursor.rowcount == 1

    def undo_last(self, reviewer: str, event_id: str | None = None) -> int | None:
        """Cancel the reviewer's most recent live vote with an ``undo`` event; returns the item it was on (to
        show again) or None when there is nothing to undo. Idempotent per ``event_id``."""
        with self._db() as db, transaction(db):
            if event_id and db.execute("SELECT 1 FROM events WHERE event_id=?", (event_id,)).fetchone():
                _check_replay(db, event_id, "undo", reviewer)
                row = db.execute("SELECT item_id FROM events WHERE event_id=?", (event_id,)).fetchone()
                return row["item_id"]
            last = db.execute(
                "SELECT event_id, item_id FROM events v WHERE kind='vote' AND reviewer=? AND NOT EXISTS "
                "(SELECT 1 FROM events u WHERE u.kind='undo' AND u.undoes=v.event_id) ORDER BY seq DESC LIMIT 1",
                (reviewer,),
            ).fetchone()
            if last is None:
                return None
            db.execute(
                "INSERT INTO events (event_id, kind, reviewer, item_id, undoes, created_at) VALUES (?, 'undo', ?, ?, "
                "?, ?)",
                (event_id or uuid.uuid4().hex, reviewer, last["item_id"], last["event_id"], time.time()),
            )
            return last["item_id"]

    def events(self) -> list[dict]:
        """Every event, in order (the audit log: votes and undos)."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM events ORDER BY seq").fetchall()
        return [_event_dict(row) for row in rows]

    def voted_items(self, reviewer: str) -> set[int]:
        """The items the reviewer has a live vote on."""
        with self._db() as db:
            rows = db.execute(
                "SELECT DISTINCT item_id FROM events v WHERE kind='vote' AND reviewer=? AND NOT EXISTS "
                "(SELECT 1 FROM events u WHERE u.kind='undo' AND u.undoes=v.event_id)",
                (reviewer,),
            ).fetchall()
        return {row["item_id"] for row in rows}

    def votes(self, reviewer: str | None = None) -> list[Vote]:
        """The live votes: per reviewer and item, the latest vote no undo cancels."""
        query = (
            "SELECT v.*, i.pair_id, i.showing, p.comparison, p.domain, p.audio_a, p.audio_b, p.response_a, "
            "p.response_b FROM events v"
            " JOIN items i ON i.id = v.item_id JOIN pairs p ON p.id = i.pair_id"
            " WHERE v.kind='vote' AND NOT EXISTS (SELECT 1 FROM events u WHERE u.kind='undo' AND u.undoes=v.event_id)"
            + (" AND v.reviewer=?" if reviewer else "")
            + " ORDER BY v.seq"
        )
        with self._db() as db:
            rows = db.execute(query, (reviewer,) if reviewer else ()).fetchall()
            seconds = {row["sha"]: row["seconds"] for row in db.execute("SELECT sha, seconds FROM audio")}
        latest: dict[tuple[str, int], Vote] = {}
        for row in rows:
            # the stored clips' length; without stored audio (the browser speaks) the estimated speaking time
            audio = [seconds.get(row[f"audio_{side}"]) or estimate_seconds(row[f"response_{side}"]) for side in "ab"]
            latest[(row["reviewer"], row["item_id"])] = Vote(
                reviewer=row["reviewer"],
                item_id=row["item_id"],
                pair_id=row["pair_id"],
                comparison=row["comparison"],
                domain=row["domain"],
                showing=row["showing"],
                swapped=bool(row["swapped"]),
                shown=row["shown"],
                winner=row["winner"],
                mode=row["mode"] or "listen",
                criteria=json.loads(row["criteria"] or "{}"),
                comment=row["comment"] or "",
                plays=json.loads(row["plays"] or "{}"),
                seconds_on_item=row["seconds_on_item"],
                audio_seconds=round(sum(audio), 2),
                source=row["source"],
                event_id=row["event_id"],
                created_at=row["created_at"],
            )
        return sorted(latest.values(), key=lambda v: (v.reviewer, v.item_id))

    def judge_verdicts(self) -> dict[str, dict]:
        """Pair id -> the automated judge's verdict from the eval: ``{"winner": ..., "criteria": {...}}``."""
        return {pair["id"]: pair["judge"] for pair in self.pairs() if pair["judge"]}


def new_event_id() -> str:
    return uuid.uuid4().hex


def _pair_dict(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["history"] = json.loads(data["history"])
    data["judge"] = json.loads(data["judge"]) if data["judge"] else None
    return data


def _item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        reviewer=row["reviewer"],
        position=row["position"],
        pair_id=row["pair_id"],
        swapped=bool(row["swapped"]),
        showing=row["showing"],
    )


def _event_dict(row: sqlite3.Row) -> dict:
    data = dict(row)
    for key in ("criteria", "plays"):
        if data.get(key):
            data[key] = json.loads(data[key])
    return data
