"""Issue 24's hostile / careless-user battery: the speak server, the review app and its exports, `run`, `export`
and `simulate` tried the way a careless or hostile user would, counted per class. A measurement, not a test:
it asserts nothing and exits 0 whatever it finds (1 only when the battery itself cannot start).

    python benchmarks/hostile_surfaces.py [--json PATH] [--only REGEX] [--skip-real] [--skip-run] [--keep]

It runs against whatever ``voicetune`` Python imports (set PYTHONPATH to measure another tree; the CLI
subprocesses inherit it, and the battery checks that they import the same one). Every case checks the
issue's contract:

- a CLI user error: exit code 2 and exactly one line on stderr, no traceback (for `run` and `simulate`, whose
  progress lines come first: exactly one ``error:`` line, and it is the last);
- an HTTP client error: a 4xx; on the speak server in its documented shape ``{"error": {"message", "type"}}``
  (one line); on the review app any 4xx (its own errors are an HTML page; a framework 4xx is noted, not failed);
- a valid request: a valid answer; the server still serves after each case (``/health`` and a valid request);
- nothing lost: inputs byte-identical after the command, a database's acknowledged votes all still present
  (and every database file intact); files holding secrets owner-only (``mode & 0o077 == 0``);
- overload: a burst beyond the speak server's queue gets 200s or 503s with ``Retry-After``, and ``/health``
  answers within 1 s meanwhile.

The speak server runs in-process (FastAPI's TestClient; uvicorn in a thread for the burst) over a stub backend
that behaves like a real one where it matters (it encodes the prompt to UTF-8, as every tokenizer and HTTP
client must, and takes time per generation), plus a few cases on the real embedded model (llama.cpp,
``smollm2-135m``) for what needs a context window. The CLI runs in-process through ``voicetune.cli.main``,
except what starts a server or loads a model file (subprocesses). `run` cases work on copies of one tiny run
(a 2-layer random model, as tests/test_run.py makes; about 40 s), changing one setting so that only the
stage that reads it runs again. No API added by issue 24's fixes is used: the battery runs on the code
before them as well.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

# The same environment the test suite gives the CLI: offline, no NLI model, every core (so that no "using 1 of 2
# cores" line joins an error line on stderr), no colour and no terminal size.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["VOICETUNE_NLI_MODEL"] = "none"
os.environ.setdefault("VOICETUNE_THREADS", str(os.cpu_count() or 1))
os.environ["NO_COLOR"] = "1"
for _name in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
    os.environ.pop(_name, None)

DATA_LOSS, SECURITY, ERRORS, UNCLEAR, OVERLOAD = (
    "data loss",
    "security",
    "500s and tracebacks",
    "wrong or unclear",
    "overload",
)
CLASSES = (DATA_LOSS, SECURITY, ERRORS, UNCLEAR, OVERLOAD)

SPOKEN = "Your new flight leaves at seven forty-five. The change fee is seventy-five dollars. Want me to book it?"
DRAFT = "The change fee is **$75.00** and your new flight departs at 7:45 AM. Shall I book it?"
SURROGATE = "\ud800"


class Skip(Exception):
    """A case that cannot run here (a missing optional dependency, a setup that failed): counted as an error."""


def raises(error: Exception) -> Callable[[], tuple[bool, str]]:
    """A case's check that only raises ``error`` (a case that could not be run, reported as such)."""

    def check() -> tuple[bool, str]:
        raise error

    return check


@dataclass
class Result:
    cls: str
    name: str
    status: str  # pass, fail, error (the battery could not run the case)
    reason: str = ""
    seconds: float = 0.0


@dataclass
class Ran:
    """A CLI invocation's outcome: exit code ("traceback" for an exception that escaped), stdout, stderr."""

    code: int | str
    out: str
    err: str
    seconds: float = 0.0
    timed_out: bool = False


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Battery:
    def __init__(self, only: str | None = None, verbose: bool = True):
        self.results: list[Result] = []
        self.only = re.compile(only, re.I) if only else None
        self.verbose = verbose
        self.notes: dict = {}

    def wanted(self, cls: str, name: str) -> bool:
        return self.only is None or bool(self.only.search(f"{cls}: {name}"))

    def case(
        self, cls: str, name: str, check: Callable[[], tuple[bool, str]], seconds: float | None = None
    ) -> Result | None:
        """Run one case: ``check`` returns (passed, why); an exception in it is the battery's error, not a verdict."""
        assert cls in CLASSES, cls
        if not self.wanted(cls, name):
            return None
        started = time.perf_counter()
        try:
            ok, reason = check()
            status = "pass" if ok else "fail"
        except Skip as skip:
            status, reason = "error", f"skipped: {skip}"
        except Exception as error:  # the battery's own failure: say so, go on
            status, reason = (
                "error",
                f"battery: {type(error).__name__}: {error} @ {traceback.extract_tb(error.__traceback__)[-1].lineno}",
            )
        result = Result(
            cls,
            name,
            status,
            one_line(reason, 300),
            round(time.perf_counter() - started if seconds is None else seconds, 2),
        )
        self.results.append(result)
        if self.verbose:
            print(
                f"  [{status:5}] {cls}: {name} ({result.seconds:.1f} "
                f"s){'  -- ' + one_line(reason, 140) if status != 'pass' else ''}",
                flush=True,
            )
        return result

    def record(self, cls: str, name: str, ok: bool, reason: str, seconds: float = 0.0) -> None:
        """A case whose measurement was made elsewhere (one measurement answering several cases)."""
        self.case(cls, name, lambda: (ok, reason), seconds)

    def summary(self) -> dict:
        classes = {}
        for cls in CLASSES:
            mine = [r for r in self.results if r.cls == cls]
            classes[cls] = {
                "cases": len(mine),
                "passed": sum(r.status == "pass" for r in mine),
                "failed": sum(r.status == "fail" for r in mine),
                "errors": sum(r.status == "error" for r in mine),
                "failing": [{"name": r.name, "reason": r.reason} for r in mine if r.status != "pass"],
            }
        total = {key: sum(c[key] for c in classes.values()) for key in ("cases", "passed", "failed", "errors")}
        return {"classes": classes, "total": total}


# ------------------------------------------------------------------------------------------------------------
# The CLI: in-process through voicetune.cli.main, or a subprocess


def cli(*args) -> Ran:
    """``voicetune ARGS`` in-process (``voicetune.cli.main``), stdout and stderr captured; an exception that
    escapes ``main`` is what a user would see as a traceback."""
    from voicetune.cli import main

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code: int | str = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:
            code = "traceback"
            err.write(traceback.format_exc())
    gc.collect()  # connections a command left open are closed now, as at a process's exit
    return Ran(code, out.getvalue(), err.getvalue(), time.perf_counter() - started)


def cli_process(*args, timeout: float = 120, cwd: str | None = None) -> Ran:
    """``python -m voicetune.cli ARGS`` in a subprocess (PYTHONPATH inherited)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "voicetune.cli", *map(str, args)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )
        return Ran(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)
    except subprocess.TimeoutExpired as expired:
        return Ran(
            "timeout", _text(expired.stdout), _text(expired.stderr), time.perf_counter() - started, timed_out=True
        )


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def user_error(
    ran: Ran, *, strict: bool = True, mentions: tuple[str, ...] = (), any_of: tuple[str, ...] = ()
) -> tuple[bool, str]:
    """The CLI contract for a user error: exit 2, no traceback, one line on stderr (``strict``) or exactly one
    ``error:`` line, the last (commands that log progress first). ``mentions``: words the line must hold (all);
    ``any_of``: at least one of these."""
    if ran.code == "traceback" or "Traceback (most recent call last)" in ran.err:
        last = [line for line in ran.err.strip().splitlines() if line.strip()][-1:] or ["?"]
        return False, f"traceback: {last[0]}"
    if ran.timed_out:
        return False, "did not finish in time"
    lines = [line for line in ran.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if ran.code != 2:
        return False, f"exit {ran.code}: {one_line(lines[-1] if lines else ran.out[-200:])}"
    if strict and len(lines) != 1:
        return False, f"{len(lines)} lines on stderr: {one_line(' | '.join(lines[:4]))}"
    if not strict and (len(errors) != 1 or lines[-1] != errors[0]):
        return False, f"{len(errors)} error lines: {one_line(' | '.join(lines[-3:]))}"
    message = (errors or lines or [""])[-1]
    for word in mentions:
        if word.lower() not in message.lower():
            return False, f"the line does not name {word!r}: {one_line(message)}"
    if any_of:
        plain = re.sub(r"no such file or directory", "", message, flags=re.I)
        if not any(word.lower() in plain.lower() for word in any_of):
            return False, f"the line says none of {', '.join(any_of)}: {one_line(message)}"
        if re.search(r"\.partial\b|\.tmp\b", message):
            return False, f"the line names an internal temporary file: {one_line(message)}"
    return True, one_line(message)


def no_traceback(ran: Ran) -> tuple[bool, str]:
    """Exit 0, or a user error (exit 2, one line): anything but a traceback or another exit code."""
    return succeeded(ran) if ran.code == 0 else user_error(ran, strict=False)


def succeeded(ran: Ran) -> tuple[bool, str]:
    if ran.code == "traceback" or "Traceback (most recent call last)" in ran.err:
        return False, "traceback: " + one_line(ran.err.strip().splitlines()[-1])
    if ran.code != 0:
        lines = [line for line in ran.err.splitlines() if line.strip()]
        return False, f"exit {ran.code}: {one_line(lines[-1] if lines else '')}"
    return True, "exit 0"


def digest(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def snapshot(*paths: Path) -> dict[Path, bytes | None]:
    """Every file under ``paths`` (files or folders) and its bytes."""
    found = {}
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    found[item] = digest(item)
        else:
            found[path] = digest(path)
    return found


def unchanged(before: dict[Path, bytes | None]) -> tuple[bool, str]:
    changed = [p for p, data in before.items() if digest(p) != data]
    if changed:
        gone = [p for p in changed if not p.exists()]
        return False, f"{len(changed)} input file(s) changed or gone: " + ", ".join(
            f"{p.name}{' (gone)' if p in gone else ''}" for p in changed[:4]
        )
    return True, "inputs byte-identical"


def also(first: tuple[bool, str], *more: tuple[bool, str]) -> tuple[bool, str]:
    """Every check must pass; the reason is the first failure's (or the first check's)."""
    for check in (first, *more):
        if not check[0]:
            return check
    return True, "; ".join(check[1] for check in (first, *more) if check[1])


# ------------------------------------------------------------------------------------------------------------
# Review databases: made with the old-and-new API (create_review_set, ReviewStore), read with sqlite3 itself


def write_pairs(
    folder: Path,
    n: int = 8,
    ids=None,
    domains=("airline", "retail"),
    systems=(("tuned", "base"), ("tuned", "prompted")),
) -> Path:
    from voicetune.records import Message, Pair, write_records

    pairs = []
    for i in range(n):
        a, b = systems[i % len(systems)]
        pairs.append(
            Pair(
                id=(ids[i] if ids else f"c{i}#{a}-vs-{b}#s0"),
                domain=domains[(i // len(systems)) % len(domains)],
                history=[Message(role="user", text=f"Caller question number {i}?")],
                response_a=f"Sure, item {i} is done.",
                response_b=f"I apologize. Item {i}, let me check that for you now.",
                system_a=a,
                system_b=b,
                winner="a" if i % 3 else "b",
                criteria={"conciseness": "a", "clarity": "tie"},
                meta={"context_id": f"c{i}"},
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_records(folder / "pairs.jsonl", pairs)
    (folder / "summary.json").write_text(
        json.dumps({"comparisons": [{"system_a": "tuned", "system_b": "base", "win_rate": 0.5, "n": 4}]})
    )
    return folder


def make_review_db(
    folder: Path, reviewers=("alice", "bob", "carol"), comments=None, **pair_options
) -> tuple[Path, list[str]]:
    """A review set of 8 pairs with votes (each reviewer's first three items), checkpointed and closed; returns
    the database and the acknowledged votes' event ids."""
    from voicetune.review.create import create_review_set
    from voicetune.review.store import ReviewStore

    eval_dir = write_pairs(folder / "eval", **pair_options)
    db = folder / "review.sqlite"
    create_review_set(eval_dir, db, list(reviewers), overlap=2, repeat_share=0.25, engine="browser")
    store = ReviewStore(db)
    events = []
    comments = list(comments or ["fine", "the second one is clearer", ""])
    for reviewer in reviewers:
        for index, item in enumerate(store.items(reviewer)[:3]):
            event = uuid.uuid4().hex
            store.record_vote(
                reviewer=reviewer,
                item_id=item.id,
                shown="12"[index % 2],
                mode="listen",
                event_id=event,
                comment=comments[(len(events)) % len(comments)],
            )
            events.append(event)
    del store
    gc.collect()
    checkpoint(db)
    return db, events


def checkpoint(db: Path) -> None:
    connection = sqlite3.connect(str(db))
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def copy_db(db: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(db, target)
    return target


def db_events(path: Path) -> tuple[set[str] | None, str]:
    """The event ids in a review database, or None and why it cannot be read (malformed, not a database)."""
    try:
        connection = sqlite3.connect(str(path), timeout=10)
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                return None, f"integrity_check: {verdict}"
            return {row[0] for row in connection.execute("SELECT event_id FROM events")}, "ok"
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        return None, f"{type(error).__name__}: {error}"


def votes_kept(events: list[str], *places: Path) -> tuple[bool, str]:
    """Every acknowledged vote is in one of the review databases at ``places`` (files, or folders searched for
    ``*.sqlite``), and every database found there is intact."""
    found: set[str] = set()
    databases = []
    for place in places:
        if place.is_dir():
            databases += sorted(p for p in place.rglob("*.sqlite") if p.is_file())
        elif place.is_file():
            databases.append(place)
    for path in databases:
        if "judge_cache" in path.name or "channel" in path.name or "caller_cache" in path.name:
            continue
        ids, why = db_events(path)
        if ids is None:
            return False, f"{path.name}: {why}"
        found |= ids
    missing = [e for e in events if e not in found]
    if missing:
        return False, f"{len(missing)} of {len(events)} acknowledged votes lost"
    return True, f"all {len(events)} votes kept"


HOLDER = r"""
import sqlite3, sys, time, uuid
db, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA wal_autocheckpoint=0"); c.execute("PRAGMA synchronous=FULL")
items = c.execute("SELECT id, reviewer, swapped FROM items ORDER BY id").fetchall()
for n in range(count):
    item, reviewer, swapped = items[n % len(items)]
    event = uuid.uuid4().hex
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO events (event_id, kind, reviewer, item_id, shown, winner, swapped, mode, criteria, comment, "
              "plays, source, created_at) VALUES (?, 'vote', ?, ?, '1', ?, ?, 'listen', '{}', 'held', '{}', 'app', ?)",
              (event, reviewer, item, 'b' if swapped else 'a', swapped, time.time()))
    c.execute("COMMIT")
    print(event, flush=True)
def vote():
    item, reviewer, swapped = items[len(items) // 2]
    event = uuid.uuid4().hex
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO events (event_id, kind, reviewer, item_id, shown, winner, swapped, mode, criteria, comment, "
              "plays, source, created_at) VALUES (?, 'vote', ?, ?, '1', ?, ?, 'listen', '{}', 'held', '{}', 'app', ?)",
              (event, reviewer, item, 'b' if swapped else 'a', swapped, time.time()))
    c.execute("COMMIT")
    return event
print("ready", flush=True)
if mode == "crash":
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
for line in sys.stdin:
    try:
        print(vote(), flush=True)
    except Exception as error:
        print("failed " + " ".join(str(error).split()), flush=True)
c.close()
"""


def vote_from_new_connection(db: Path) -> tuple[str | None, str]:
    """One vote the way a new server thread takes it (a connection of its own); returns its event id, or None
    and why it failed."""
    try:
        connection = sqlite3.connect(str(db), isolation_level=None, timeout=30)
        try:
            item, reviewer, swapped = connection.execute(
                "SELECT id, reviewer, swapped FROM items ORDER BY id LIMIT 1 OFFSET 2"
            ).fetchone()
            event = uuid.uuid4().hex
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT INTO events (event_id, kind, reviewer, item_id, shown, winner, swapped, mode, criteria, "
                "comment, plays, source,"
                " created_at) VALUES (?, 'vote', ?, ?, '1', ?, ?, 'listen', '{}', 'new', '{}', 'app', ?)",
                (event, reviewer, item, "b" if swapped else "a", swapped, time.time()),
            )
            connection.execute("COMMIT")
            return event, ""
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        return None, f"{type(error).__name__}: {error}"


class Holder:
    """A process holding a review database the way ``review serve`` does: votes committed (acknowledged) and
    left in the WAL, not checkpointed. ``crash``: it dies with SIGKILL after the votes (a killed server)."""

    def __init__(self, db: Path, count: int = 12, crash: bool = False):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), str(count), "crash" if crash else "hold"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events = []
        for line in self.process.stdout:
            line = line.strip()
            if line == "ready":
                break
            self.events.append(line)
        if crash:
            self.process.wait(timeout=30)
        if len(self.events) != count:
            raise Skip(f"the holder wrote {len(self.events)} of {count} votes: {self.process.stderr.read()[-300:]}")

    def more(self, count: int = 3) -> list[str]:
        """The server goes on taking votes after the command (acknowledged ones join ``events``); the failures."""
        failures = []
        for _ in range(count):
            self.process.stdin.write("vote\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline().strip()
            if line.startswith("failed") or not line:
                failures.append(line or "no answer")
            else:
                self.events.append(line)
        return failures

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # a server stopped with Ctrl-C: its connection closes (and checkpoints)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


# ------------------------------------------------------------------------------------------------------------
# The speak server


class Mimic:
    """A stub backend that behaves like a real one where a request can break it: it encodes the whole prompt
    to UTF-8 (every tokenizer and HTTP client does), takes ``delay`` seconds per generation and streams word by
    word."""

    def __init__(self, delay: float = 0.0, text: str = SPOKEN):
        self.delay, self.text, self.calls = delay, text, 0

    def _prompt(self, messages) -> None:
        for message in messages:
            str(message.get("content", "")).encode("utf-8")  # a lone surrogate fails here, as in a tokenizer
        time.sleep(self.delay)

    def generate(self, prompts, sampling, on_batch=None):
        self._prompt(prompts[0])
        self.calls += 1
        return [self.text for _ in prompts]

    def stream(self, messages, sampling):
        self._prompt(messages)
        self.calls += 1
        for word in self.text.split(" "):
            yield word + " "


def speak_client(voice, backend_name: str = "stub"):
    from fastapi.testclient import TestClient

    from voicetune.serve.app import create_app

    return TestClient(create_app(voice, backend_name), raise_server_exceptions=False)


def error_shape(response) -> tuple[bool, str]:
    """The speak server's documented error: ``{"error": {"message": str (one line), "type": str}}``."""
    try:
        body = response.json()
    except ValueError:
        return False, f"{response.status_code} body is not JSON: {one_line(response.text, 80)}"
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("message"), str)
        and error["message"].strip()
        and isinstance(error.get("type"), str)
    ):
        return False, f"{response.status_code} not the error shape: {one_line(response.text, 100)}"
    if "\n" in error["message"] or "Traceback" in error["message"]:
        return False, f"{response.status_code} error message is not one line"
    return True, f"{response.status_code} {one_line(error['message'], 100)}"


def sse_events(text: str) -> list[tuple[str, str]]:
    found = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields:
            found.append((fields.get("event", "message"), fields.get("data", "")))
    return found


def valid_answer(path: str, response, stream: bool) -> tuple[bool, str]:
    """A 200 that is a real answer of the endpoint (not an error event inside a 200 stream)."""
    if response.status_code != 200:
        return False, f"status {response.status_code}"
    try:
        if path == "/v1/prepare":
            body = response.json()
            return isinstance(body.get("prefilled_tokens"), int), "prepared"
        if path == "/v1/speak" and not stream:
            body = response.json()
            return isinstance(body.get("response"), str) and bool(body["response"].strip()), "spoken"
        if path == "/v1/speak":
            events = sse_events(response.text)
            kinds = [kind for kind, _ in events]
            if "error" in kinds:
                return False, "200 stream with an error event: " + one_line(dict(events).get("error", ""), 100)
            return bool(kinds) and kinds[-1] == "done", "streamed" if kinds and kinds[
                -1
            ] == "done" else f"stream ended with {kinds[-1:]}"
        if path == "/v1/chat/completions" and not stream:
            body = response.json()
            content = body["choices"][0]["message"]["content"]
            return isinstance(content, str) and bool(content.strip()), "answered"
        if path == "/v1/chat/completions":
            lines = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line.startswith("data: ")]
            if any('"error"' in line for line in lines):
                return False, "200 stream with an error chunk"
            return bool(lines) and lines[-1] == "[DONE]", "streamed"
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return False, f"200 but not a valid answer: {type(error).__name__}"
    return True, "200"


def speak_serves(client, full: bool = True) -> tuple[bool, str]:
    health = client.get("/health")
    if health.status_code != 200 or health.json().get("status") != "ok":
        return False, f"/health answered {health.status_code} afterwards"
    if full:
        reply = client.post("/v1/speak", json={"draft": DRAFT})
        ok, why = valid_answer("/v1/speak", reply, False)
        if not ok:
            return False, f"a valid /v1/speak afterwards: {why}"
    return True, ""


def http_case(
    client,
    method: str,
    path: str,
    *,
    body=None,
    raw: bytes | None = None,
    headers: dict | None = None,
    expect: str = "4xx",
    within: float | None = None,
    full_serve: bool = True,
) -> tuple[bool, str]:
    """One request to the speak server. ``expect``: ``4xx`` (a client error in the documented shape), ``ok``
    (a valid answer) or ``either``. ``body`` is sent as JSON with non-ASCII escaped (so a lone surrogate travels
    as ``\\ud800``, as any JSON client may send it)."""
    headers = dict(headers or {})
    if body is not None:
        raw = json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
    stream = isinstance(body, dict) and body.get("stream") is True
    started = time.perf_counter()
    response = client.request(method, path, content=raw, headers=headers)
    seconds = time.perf_counter() - started
    if response.status_code >= 500:
        verdict = (False, f"{response.status_code}: {one_line(response.text, 140)}")
    elif 400 <= response.status_code < 500:
        shape = error_shape(response)
        verdict = shape if expect in ("4xx", "either") else (False, f"valid request refused: {shape[1]}")
    else:
        answer = valid_answer(path, response, stream)
        if expect == "4xx":
            verdict = (False, f"client error accepted: {response.status_code} ({answer[1]})")
        else:
            verdict = answer
    if verdict[0] and within is not None and seconds > within:
        verdict = (False, f"answered in {seconds:.1f} s (limit {within:.0f} s): {verdict[1]}")
    return also(verdict, speak_serves(client, full_serve))


def deep(depth: int, inner: str = "[]") -> str:
    return "[" * depth + inner + "]" * depth


def speak_cases(battery: Battery) -> None:
    from voicetune.serve.voice import Voice

    print("speak server (stub backend, in-process)", flush=True)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(speak_client(Voice(Mimic(), name="stub")))
        guarded = stack.enter_context(speak_client(Voice(Mimic(), name="stub", guard=True, selector="rubric")))
        post = lambda path, body, expect="4xx", **kw: (  # noqa: E731  (a case factory, one line per case below)
            lambda: http_case(client, "POST", path, body=body, expect=expect, **kw)
        )  # noqa: E731
        raw = lambda path, data, expect="4xx", ctype="application/json", method="POST": (  # noqa: E731
            lambda: http_case(
                client, method, path, raw=data, headers={"content-type": ctype} if ctype else {}, expect=expect
            )
        )
        user = [{"role": "user", "text": "Can I move my flight?"}]

        # valid requests get valid answers (controls)
        battery.case(
            ERRORS,
            "speak: a valid /v1/speak is answered",
            post("/v1/speak", {"history": user, "draft": DRAFT, "scores": True}, "ok"),
        )
        battery.case(
            ERRORS,
            "speak: a valid streamed /v1/speak is answered",
            post("/v1/speak", {"draft": DRAFT, "stream": True}, "ok"),
        )
        battery.case(
            ERRORS,
            "chat: a valid /v1/chat/completions is answered",
            post(
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "Move it?"}, {"role": "assistant", "content": DRAFT}]},
                "ok",
            ),
        )
        battery.case(
            ERRORS,
            "prepare: a valid /v1/prepare is answered",
            post("/v1/prepare", {"history": user, "draft": "The change fee"}, "ok"),
        )

        # lone surrogates (valid JSON: "\ud800")
        for where, path, body in [
            ("facts", "/v1/speak", {"draft": DRAFT, "facts": [SURROGATE]}),
            ("facts, streamed", "/v1/speak", {"draft": DRAFT, "facts": ["$75.00" + SURROGATE], "stream": True}),
            ("draft", "/v1/speak", {"draft": "Your fee is $75." + SURROGATE}),
            ("history text", "/v1/speak", {"draft": DRAFT, "history": [{"role": "user", "text": "hi " + SURROGATE}]}),
            ("an unknown field's name", "/v1/speak", {"draft": DRAFT, SURROGATE: 1}),
            (
                "chat message content",
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": SURROGATE}, {"role": "assistant", "content": DRAFT}]},
            ),
            (
                "chat draft",
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT + SURROGATE},
            ),
            (
                "chat facts",
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT, "facts": [SURROGATE]},
            ),
            ("prepare draft", "/v1/prepare", {"draft": "The fee " + SURROGATE}),
            ("prepare history", "/v1/prepare", {"history": [{"role": "user", "text": SURROGATE}], "draft": "The"}),
        ]:
            battery.case(
                ERRORS,
                f"{'chat' if 'chat' in path else 'prepare' if 'prepare' in path else 'speak'}: a lone surrogate in "
                f"{where}",
                post(path, body),
            )
        battery.case(
            ERRORS,
            "speak: a lone low surrogate (\\udfff) in facts",
            post("/v1/speak", {"draft": DRAFT, "facts": ["\udfff"]}),
        )

        # bodies that are not a JSON object
        for label, data in [
            ("not JSON", b"{not json"),
            ("empty", b""),
            ("null", b"null"),
            ("a list", b"[]"),
            ("a number", b"123"),
            ("a string", b'"draft"'),
            ("JSON then garbage", b'{"draft": "Hi."} trailing'),
            ("truncated", b'{"draft": "Hi'),
            ("a 5000-digit seed", b'{"draft": "Hi.", "seed": ' + b"9" * 5000 + b"}"),
            ("NaN as the seed", b'{"draft": "Hi.", "seed": NaN}'),
            ("Infinity as the seed", b'{"draft": "Hi.", "seed": Infinity}'),
            ("an array nested 100000 deep", deep(100_000).encode()),
            ("facts nested 100000 deep", b'{"draft": "Hi.", "facts": ' + deep(100_000).encode() + b"}"),
            ("an object nested 50000 deep", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ]:
            battery.case(ERRORS, f"speak: a body that is {label}", raw("/v1/speak", data))
        battery.case(ERRORS, "chat: a body nested 100000 deep", raw("/v1/chat/completions", deep(100_000).encode()))
        battery.case(ERRORS, "prepare: a body that is not JSON", raw("/v1/prepare", b"draft=hello"))

        # wrong types and nested junk
        for label, body in [
            ("draft a number", {"draft": 3}),
            ("draft null", {"draft": None}),
            ("draft a list", {"draft": ["Hi."]}),
            ("draft an object", {"draft": {"$gt": ""}}),
            ("draft true", {"draft": True}),
            ("history a string", {"draft": "Hi.", "history": "hi"}),
            ("history of numbers", {"draft": "Hi.", "history": [1, 2]}),
            ("a history message without text", {"draft": "Hi.", "history": [{"role": "user"}]}),
            ("a history text that is a number", {"draft": "Hi.", "history": [{"role": "user", "text": 5}]}),
            ("a history role that is an object", {"draft": "Hi.", "history": [{"role": {"a": 1}, "text": "x"}]}),
            ("facts of numbers", {"draft": "Hi.", "facts": [1, 2]}),
            ("facts with null", {"draft": "Hi.", "facts": [None]}),
            ("facts an object", {"draft": "Hi.", "facts": {"a": "b"}}),
            ("facts nested lists", {"draft": "Hi.", "facts": [[["x"]]]}),
            ("stream a word", {"draft": "Hi.", "stream": "maybe"}),
            ("stream 2", {"draft": "Hi.", "stream": 2}),
            ("scores a list", {"draft": "Hi.", "scores": []}),
            ("seed a word", {"draft": "Hi.", "seed": "abc"}),
            ("seed 1.5", {"draft": "Hi.", "seed": 1.5}),
            ("seed a list", {"draft": "Hi.", "seed": [1]}),
            ("seed 1e300", {"draft": "Hi.", "seed": 1e300}),
            ("an unknown field of 1 MB", {"draft": "Hi.", "junk": "x" * 1_000_000}),
        ]:
            battery.case(ERRORS, f"speak: {label}", post("/v1/speak", body))
        for label, body in [
            ("messages a string", {"messages": "hi", "draft": "Hi."}),
            ("messages of numbers", {"messages": [1], "draft": "Hi."}),
            ("content a number", {"messages": [{"role": "user", "content": 5}], "draft": "Hi."}),
            ("a message without a role", {"messages": [{"content": "hi"}], "draft": "Hi."}),
            ("role robot", {"messages": [{"role": "robot", "content": "hi"}], "draft": "Hi."}),
            ("model a number", {"model": 5, "messages": [{"role": "user", "content": "hi"}], "draft": "Hi."}),
            (
                "facts of objects",
                {"messages": [{"role": "user", "content": "hi"}], "draft": "Hi.", "facts": [{"a": 1}]},
            ),
            ("seed a word", {"messages": [{"role": "user", "content": "hi"}], "draft": "Hi.", "seed": "x"}),
            ("draft a list", {"messages": [{"role": "user", "content": "hi"}], "draft": ["Hi."]}),
        ]:
            battery.case(ERRORS, f"chat: {label}", post("/v1/chat/completions", body))
        for label, body in [
            ("draft a number", {"draft": 3}),
            ("history a number", {"history": 5}),
            ("an unknown field", {"draft": "x", "facts": ["x"]}),
        ]:
            battery.case(ERRORS, f"prepare: {label}", post("/v1/prepare", body))

        # framework errors: status and the documented shape
        for label, method, path in [
            ("an unknown path", "GET", "/v1/nothing"),
            ("the root", "GET", "/"),
            ("POST to an unknown path", "POST", "/v1/speech"),
            ("a 20000-character path", "GET", "/" + "a" * 20_000),
            ("GET /v1/speak", "GET", "/v1/speak"),
            ("PUT /v1/speak", "PUT", "/v1/speak"),
            ("DELETE /health", "DELETE", "/health"),
            ("POST /health", "POST", "/health"),
            ("PATCH /v1/chat/completions", "PATCH", "/v1/chat/completions"),
            ("GET /v1/prepare", "GET", "/v1/prepare"),
            ("OPTIONS /v1/speak", "OPTIONS", "/v1/speak"),
            ("the docs' JSON of a path that is not there", "GET", "/v1/openapi.yaml"),
        ]:
            battery.case(
                UNCLEAR,
                f"speak server: {label} answers a 4xx in the error shape",
                raw(path, None, ctype=None, method=method),
            )
        for label, data, ctype in [
            ("bad UTF-8", b'{"draft": "caf\xe9 \xff"}', "application/json"),
            ("Latin-1", '{"draft": "café"}'.encode("latin-1"), "application/json"),
            ("JSON sent as text/plain", b'{"draft": "Hi."}', "text/plain"),
            ("a form body", b"draft=Hi.", "application/x-www-form-urlencoded"),
            ("no content type", b'{"draft": "Hi."}', None),
            (
                "a multipart body",
                b'--b\r\nContent-Disposition: form-data; name="draft"\r\n\r\nHi.\r\n--b--\r\n',
                "multipart/form-data; boundary=b",
            ),
        ]:
            expect = "either" if label in ("JSON sent as text/plain", "no content type") else "4xx"
            battery.case(
                UNCLEAR,
                f"speak: a body in {label} answers in the error shape",
                raw("/v1/speak", data, expect=expect, ctype=ctype),
            )
        battery.case(
            UNCLEAR,
            "speak: a body with a UTF-8 byte-order mark",
            raw("/v1/speak", b'\xef\xbb\xbf{"draft": "Hi."}', expect="either"),
        )
        battery.case(
            UNCLEAR,
            "chat: bad UTF-8 answers in the error shape",
            raw("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\xff"}], "draft": "Hi."}'),
        )

        # blank drafts are refused, not spoken
        for label, draft in [
            ("a space", " "),
            ("tabs and newlines", "\t\n \r\n"),
            ("a NUL", "\u0000"),
            ("NULs and spaces", "\u0000 \u0000\n"),
            ("zero-width spaces", "\u200b\u200b"),
            ("a byte-order mark", "\ufeff"),
            ("non-breaking spaces", "\u00a0\u00a0"),
            ("control characters", "\u0001\u0002\u0003"),
        ]:
            battery.case(UNCLEAR, f"speak: a draft of {label} is refused", post("/v1/speak", {"draft": draft}))
        battery.case(
            UNCLEAR,
            "speak: a draft of a NUL, streamed, is refused",
            post("/v1/speak", {"draft": "\u0000", "stream": True}),
        )
        battery.case(
            UNCLEAR,
            "speak --guard: a blank draft is refused (not spoken with voice_score 1.0)",
            lambda: http_case(guarded, "POST", "/v1/speak", body={"draft": " \u0000 ", "scores": True}),
        )
        battery.case(
            UNCLEAR,
            "chat: a last assistant message of a NUL is refused",
            post(
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\u0000"}]},
            ),
        )
        battery.case(
            UNCLEAR,
            "chat: a draft of zero-width spaces is refused",
            post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "draft": "\u200b"}),
        )

        # seeds: refused out of range, never wrapped or silently random
        for label, seed, expect in [
            ("-1", -1, "4xx"),
            ("2**32", 2**32, "4xx"),
            ("2**64", 2**64, "4xx"),
            ("-2**63", -(2**63), "4xx"),
            ("2**32 - 1 (valid)", 2**32 - 1, "ok"),
            ("0 (valid)", 0, "ok"),
        ]:
            battery.case(UNCLEAR, f"speak: seed {label}", post("/v1/speak", {"draft": DRAFT, "seed": seed}, expect))
        battery.case(
            UNCLEAR,
            "chat: seed -1",
            post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT, "seed": -1}),
        )
        battery.case(
            UNCLEAR, "speak: seed 2**32, streamed", post("/v1/speak", {"draft": DRAFT, "seed": 2**32, "stream": True})
        )

        # bounded work per request: bombs are refused fast with a 4xx
        for label, path, body in [
            ("300,000 facts", "/v1/speak", {"draft": DRAFT, "facts": ["x"] * 300_000}),
            ("20,000 facts", "/v1/speak", {"draft": DRAFT, "facts": ["$75.00"] * 20_000}),
            ("one fact of 1,000,000 characters", "/v1/speak", {"draft": DRAFT, "facts": ["7" * 1_000_000]}),
            ("40 facts of 20,001 characters", "/v1/speak", {"draft": DRAFT, "facts": ["7:45 " * 4000 + "7"] * 40}),
            ("300,000 facts, streamed", "/v1/speak", {"draft": DRAFT, "facts": ["x"] * 300_000, "stream": True}),
            (
                "300,000 facts to chat",
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT, "facts": ["x"] * 300_000},
            ),
            (
                "a 2,000,000-character chat model name",
                "/v1/chat/completions",
                {"model": "m" * 2_000_000, "messages": [{"role": "user", "content": "hi"}], "draft": DRAFT},
            ),
        ]:
            battery.case(
                SECURITY,
                f"{'chat' if 'chat' in path else 'speak'}: {label} refused fast (4xx within 2 s)",
                post(path, body, within=2.0),
            )
        battery.case(
            SECURITY,
            "speak: 200 history messages of 20,000 characters answered or refused within 5 s",
            post(
                "/v1/speak",
                {"draft": DRAFT, "history": [{"role": "user", "text": "word " * 4000}] * 200},
                "either",
                within=5.0,
            ),
        )
        battery.case(
            SECURITY,
            "chat: 200 messages of 20,000 characters answered or refused within 5 s",
            post(
                "/v1/chat/completions",
                {
                    "messages": [{"role": "user", "content": "word " * 4000}] * 199
                    + [{"role": "assistant", "content": DRAFT}]
                },
                "either",
                within=5.0,
            ),
        )


def real_speak_cases(battery: Battery) -> None:
    """The cases that need a real model's context window and tokenizer: the embedded model on llama.cpp."""
    import importlib.util

    print("speak server (the embedded model on llama.cpp, in-process)", flush=True)
    names = [
        "real: a lone surrogate in facts",
        "real: one fact longer than the context",
        "real: 100 facts together longer than the context",
        "real: facts longer than the context, streamed",
        "real: a 20,000-character draft to /v1/prepare is not a 500",
        "real: a 20,000-character draft to /v1/speak is answered",
        "real: 200 history messages of 20,000 characters",
        "real: the server still serves",
    ]
    if importlib.util.find_spec("llama_cpp") is None:
        for name in names:
            battery.case(ERRORS, name, raises(Skip("llama-cpp-python is not installed")))
        return
    from voicetune.serve.voice import load_voice

    try:
        # no style prompt (shorter prompts) and one thread: llama.cpp's threads spin, and on a shared machine
        # more threads than free cores make every generation many times slower
        voice = load_voice("smollm2-135m", "llama.cpp", style=None, max_new_tokens=4, temperature=0, threads=1)
    except Exception as error:
        for name in names:
            battery.case(ERRORS, name, raises(Skip(f"the embedded model does not load: {error}")))
        return
    long_draft = ("Your flight UA 1234 leaves at 7:45 AM from gate B22; the change fee is $75.00. " * 250)[:20_000]
    with speak_client(voice, "llama.cpp") as client:
        post = lambda path, body, expect="either", **kw: (  # noqa: E731  (a case factory, one line per case below)
            lambda: http_case(client, "POST", path, body=body, expect=expect, full_serve=False, **kw)
        )  # noqa: E731
        battery.case(ERRORS, names[0], post("/v1/speak", {"draft": DRAFT, "facts": [SURROGATE]}, "4xx"))
        battery.case(ERRORS, names[1], post("/v1/speak", {"draft": DRAFT, "facts": ["7:45 " * 3999 + "7:45"]}))
        battery.case(
            ERRORS,
            names[2],
            post("/v1/speak", {"draft": DRAFT, "facts": [f"segment {i} costs ${i}.75, " * 8 for i in range(100)]}),
        )
        battery.case(
            ERRORS, names[3], post("/v1/speak", {"draft": DRAFT, "facts": ["7:45 " * 3999 + "7:45"], "stream": True})
        )

        # one /v1/prepare of a long draft, and another caller's /v1/speak meanwhile
        if battery.wanted(ERRORS, names[4]) or battery.wanted(SECURITY, "real: a 20,000-character /v1/prepare"):
            other: dict = {}

            def meanwhile() -> None:
                time.sleep(0.3)
                started = time.perf_counter()
                reply = client.post("/v1/speak", json={"draft": "Your flight leaves at 7:45 AM."})
                other.update(status=reply.status_code, seconds=time.perf_counter() - started)

            thread = threading.Thread(target=meanwhile)
            started = time.perf_counter()
            thread.start()
            reply = client.post(
                "/v1/prepare",
                json={"history": [{"role": "user", "text": "Can I move my flight?"}], "draft": long_draft},
            )
            seconds = time.perf_counter() - started
            thread.join()
            if reply.status_code >= 500:
                verdict = (False, f"{reply.status_code} after {seconds:.1f} s: {one_line(reply.text, 120)}")
            elif reply.status_code >= 400:
                verdict = error_shape(reply)
            else:
                verdict = valid_answer("/v1/prepare", reply, False)
            battery.record(ERRORS, names[4], verdict[0], verdict[1], seconds)
            battery.record(
                SECURITY,
                "real: a 20,000-character /v1/prepare answers within 5 s",
                seconds <= 5 and reply.status_code < 500,
                f"{reply.status_code} in {seconds:.1f} s",
                seconds,
            )
            battery.record(
                SECURITY,
                "real: a 20,000-character /v1/prepare does not hold the voice from another caller for 6 s",
                other.get("status") == 200 and other.get("seconds", 99) <= 6,
                f"the other /v1/speak: {other.get('status')} in {other.get('seconds', 0):.1f} s",
            )
            battery.notes["real_prepare_20k"] = {
                "status": reply.status_code,
                "seconds": round(seconds, 2),
                "other_speak": other,
            }
        battery.case(ERRORS, names[5], post("/v1/speak", {"draft": long_draft}, "ok"))
        battery.case(
            ERRORS,
            names[6],
            post("/v1/speak", {"draft": DRAFT, "history": [{"role": "user", "text": "word " * 4000}] * 200}),
        )
        battery.case(
            UNCLEAR, "real: a blank draft is refused, not spoken", post("/v1/speak", {"draft": "  \n "}, "4xx")
        )
        battery.case(UNCLEAR, "real: a NUL draft is refused, not spoken", post("/v1/speak", {"draft": "\u0000"}, "4xx"))
        battery.case(
            ERRORS,
            names[7],
            lambda: also(
                valid_answer("/v1/speak", client.post("/v1/speak", json={"draft": DRAFT}), False),
                speak_serves(client, False),
            ),
        )


def overload_cases(battery: Battery, requests: int = 72, delay: float = 0.08) -> None:
    """A burst of concurrent generations beyond the server's queue, over real HTTP (uvicorn in a thread)."""
    if not battery.wanted(OVERLOAD, "burst"):
        return
    print(f"overload: {requests} concurrent generations on a stub taking {delay} s each, over HTTP", flush=True)
    import httpx
    import uvicorn

    from voicetune.serve.app import create_app
    from voicetune.serve.voice import Voice

    backend = Mimic(delay=delay)
    app = create_app(Voice(backend, name="stub"), "stub")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    results: list[dict] = []
    latencies: list[float] = []
    bursting = threading.Event()
    try:
        http = httpx.Client(
            base_url=base,
            timeout=120,
            limits=httpx.Limits(max_connections=requests + 20, max_keepalive_connections=requests + 20),
        )

        def call(index: int) -> None:
            kind = ("speak", "stream", "chat")[0 if index % 6 < 4 else 1 if index % 6 == 4 else 2]
            path = "/v1/chat/completions" if kind == "chat" else "/v1/speak"
            body = (
                {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT}
                if kind == "chat"
                else {"draft": DRAFT, "stream": kind == "stream"}
            )
            started = time.perf_counter()
            try:
                reply = http.post(path, json=body)
                ok, why = valid_answer(path, reply, kind == "stream") if reply.status_code == 200 else (False, "")
                results.append(
                    {
                        "kind": kind,
                        "status": reply.status_code,
                        "valid": ok,
                        "why": why,
                        "retry_after": reply.headers.get("retry-after"),
                        "shape": error_shape(reply)[0] if reply.status_code >= 400 else None,
                        "seconds": time.perf_counter() - started,
                    }
                )
            except httpx.HTTPError as error:
                results.append(
                    {
                        "kind": kind,
                        "status": f"{type(error).__name__}",
                        "valid": False,
                        "seconds": time.perf_counter() - started,
                    }
                )

        def poll_health() -> None:
            while bursting.is_set():
                started = time.perf_counter()
                try:
                    health = httpx.get(f"{base}/health", timeout=30)
                    latencies.append(time.perf_counter() - started if health.status_code == 200 else 99.0)
                except httpx.HTTPError:
                    latencies.append(99.0)
                time.sleep(0.05)

        bursting.set()
        poller = threading.Thread(target=poll_health)
        started = time.perf_counter()
        workers = [threading.Thread(target=call, args=(i,)) for i in range(requests)]
        for worker in workers:
            worker.start()
        time.sleep(0.2)
        poller.start()
        for worker in workers:
            worker.join()
        burst_seconds = time.perf_counter() - started
        bursting.clear()
        poller.join()

        answered = sum(r["status"] == 200 and r["valid"] for r in results)
        refused = [r for r in results if r["status"] == 503]
        other = [r for r in results if not (r["status"] == 200 and r["valid"]) and r["status"] != 503]
        battery.record(
            OVERLOAD,
            f"burst of {requests}: every request answered validly or refused with 503",
            not other and len(results) == requests,
            f"{answered} answered, {len(refused)} refused with 503, {len(other)} other: "
            + ", ".join(sorted({str(r["status"]) + (" " + r.get("why", "") if r.get("why") else "") for r in other}))[
                :200
            ],
            burst_seconds,
        )
        bad_503 = [
            r for r in refused if not (r["retry_after"] and str(r["retry_after"]).strip().isdigit() and r["shape"])
        ]
        battery.record(
            OVERLOAD,
            "burst: every 503 has Retry-After (seconds) and the error shape",
            not bad_503,
            f"{len(refused)} 503s, {len(bad_503)} without Retry-After or the shape",
        )
        worst = max(latencies) if latencies else 99.0
        battery.record(
            OVERLOAD,
            "burst: /health answers within 1 s during the burst",
            worst <= 1.0,
            f"/health: {len(latencies)} polls, median {sorted(latencies)[len(latencies) // 2] if latencies else 0:.2f} "
            f"s, max {worst:.2f} s",
        )
        streams = [r for r in results if r["kind"] != "speak"]
        battery.record(
            OVERLOAD,
            "burst: streamed and chat requests complete or get a 503",
            all(r["status"] == 503 or (r["status"] == 200 and r["valid"]) for r in streams),
            f"{sum(r['status'] == 200 and r['valid'] for r in streams)} of {len(streams)} complete",
        )
        after = time.perf_counter()
        reply = http.post("/v1/speak", json={"draft": DRAFT})
        battery.record(
            OVERLOAD,
            "burst: the server serves at once after the burst",
            reply.status_code == 200 and time.perf_counter() - after < 2,
            f"{reply.status_code} in {time.perf_counter() - after:.2f} s",
        )

        # clients that hang up mid-stream during a burst
        def hang_up() -> None:
            try:
                with http.stream("POST", "/v1/speak", json={"draft": DRAFT, "stream": True}) as stream:
                    for _ in stream.iter_bytes():
                        break
            except httpx.HTTPError:
                pass

        hangers = [threading.Thread(target=hang_up) for _ in range(20)]
        for hanger in hangers:
            hanger.start()
        for hanger in hangers:
            hanger.join()
        deadline = time.perf_counter() + 10
        reply = None
        while time.perf_counter() < deadline:
            reply = http.post("/v1/speak", json={"draft": DRAFT}, timeout=10)
            if reply.status_code == 200:
                break
            time.sleep(0.2)
        battery.record(
            OVERLOAD,
            "burst: after 20 clients hang up mid-stream, a request is answered within 10 s",
            reply is not None and reply.status_code == 200,
            f"{getattr(reply, 'status_code', None)}",
        )
        battery.notes["burst"] = {
            "requests": requests,
            "generation_seconds": delay,
            "answered": answered,
            "refused_503": len(refused),
            "other": len(other),
            "burst_seconds": round(burst_seconds, 2),
            "health_polls": len(latencies),
            "health_median_s": round(sorted(latencies)[len(latencies) // 2], 3) if latencies else None,
            "health_max_s": round(worst, 3),
            "retry_after": sorted({r["retry_after"] for r in refused if r["retry_after"]})[:5],
        }
        http.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ------------------------------------------------------------------------------------------------------------
# The review app (TestClient) and the review CLI (in-process)


def review_form(page: str) -> dict:
    """The hidden fields of an item page's vote form."""
    try:
        section = page.split('id="vote"')[1].split("</form>")[0]
    except IndexError:
        return {}
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', section))


def review_app_cases(battery: Battery, work: Path) -> None:
    from fastapi.testclient import TestClient

    from voicetune.review.app import create_app
    from voicetune.review.store import ReviewStore

    print("review app (in-process)", flush=True)
    db, events = make_review_db(work / "app")
    store = ReviewStore(db)
    tokens = store.reviewers()
    admin = store.meta()["admin_token"]
    alice = tokens["alice"]
    item = store.items("alice")[0].id
    bob_item = store.items("bob")[0].id
    del store
    with TestClient(create_app(db), base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as client:
        page = client.get(f"/r/{alice}/item/{item}")
        form = review_form(page.text)
        admin_page = client.get(f"/admin/{admin}")
        admin_csrf = dict(re.findall(r'name="(csrf)" value="([^"]*)"', admin_page.text)).get("csrf", "")
        if not form.get("csrf"):
            raise SystemExit("the review app's item page has no vote form: the battery cannot run its review cases")

        def serves() -> tuple[bool, str]:
            reply = client.get(f"/r/{alice}", follow_redirects=False)
            return (
                (reply.status_code in (200, 303), "")
                if reply.status_code in (200, 303)
                else (False, f"GET /r/TOKEN answered {reply.status_code} afterwards")
            )

        def request(
            method: str, path: str, data=None, raw: bytes | None = None, headers=None, expect: str = "4xx"
        ) -> Callable:
            def check() -> tuple[bool, str]:
                reply = client.request(method, path, data=data, content=raw, headers=headers, follow_redirects=False)
                if reply.status_code >= 500:
                    return False, f"{reply.status_code}: {one_line(reply.text, 100)}"
                if expect == "4xx" and not 400 <= reply.status_code < 500:
                    return False, f"client error accepted: {reply.status_code}"
                if expect == "ok" and reply.status_code >= 400:
                    return False, f"valid request refused: {reply.status_code}"
                page_form = 'id="error"' in reply.text
                note = "" if reply.status_code < 400 or page_form else " (a framework error, not the app's error page)"
                return also((True, f"{reply.status_code}{note}"), serves())

            return check

        def vote(**changes):
            fields = {**form, "verdict": "1", "mode": "listen", "event_id": uuid.uuid4().hex, "item_id": str(item)}
            fields.update({k: v for k, v in changes.items() if v is not None})
            return {k: v for k, v in fields.items() if changes.get(k, "") is not None}

        battery.case(
            ERRORS, "review app: a valid vote is stored", request("POST", f"/r/{alice}/vote", data=vote(), expect="ok")
        )
        for label, path in [
            ("a non-ASCII admin token", "/admin/é"),
            ("an emoji admin token", "/admin/%F0%9F%98%80"),
            ("a non-ASCII admin token on export", "/admin/é/export.csv"),
            ("a non-ASCII reviewer token", "/r/é"),
            ("a NUL in the admin token", "/admin/a%00b"),
            ("a 10,000-character reviewer token", "/r/" + "t" * 10_000),
            ("an item id of 2**64", f"/r/{alice}/item/{2**64}"),
            ("an item id of 10**30", f"/r/{alice}/item/{10**30}"),
            ("an item id of 2**63", f"/r/{alice}/item/{2**63}"),
            ("an item id of -1", f"/r/{alice}/item/-1"),
            ("an item id of -2**70", f"/r/{alice}/item/{-(2**70)}"),
            ("an item id that is a word", f"/r/{alice}/item/abc"),
            ("an item id 1e3", f"/r/{alice}/item/1e3"),
            ("another reviewer's item", f"/r/{alice}/item/{bob_item}"),
            ("audio of item 2**64", f"/r/{alice}/audio/{2**64}/1"),
            ("audio slot 2**64", f"/r/{alice}/audio/{item}/{2**64}"),
            ("audio slot -1", f"/r/{alice}/audio/{item}/-1"),
            ("an export kind that is not csv or jsonl", f"/admin/{admin}/export.xml"),
            ("a static file outside the folder", "/static/..%2F..%2Fapp.py"),
            ("an unknown path", "/nothing"),
        ]:
            battery.case(ERRORS, f"review app: {label}", request("GET", path))
        battery.case(ERRORS, "review app: GET on the vote form's URL", request("GET", f"/r/{alice}/vote"))
        battery.case(ERRORS, "review app: PUT on an item", request("PUT", f"/r/{alice}/item/{item}"))
        for label, fields in [
            ("a non-ASCII CSRF token", vote(csrf="é")),
            ("an emoji CSRF token", vote(csrf="😀" * 4)),
            ("an item id of 2**64", vote(item_id=str(2**64))),
            ("an item id of 10**40", vote(item_id=str(10**40))),
            ("an item id of -1", vote(item_id="-1")),
            ("an item id that is a word", vote(item_id="one")),
            ("an item id 1.5", vote(item_id="1.5")),
            ("no item id", vote(item_id=None)),
            ("no CSRF token", vote(csrf=None)),
            ("no verdict", vote(verdict=None)),
            ("no event id", vote(event_id=None)),
            ("a verdict of 3", vote(verdict="3")),
            (
                "a verdict that is a lone surrogate's UTF-8",
                vote(verdict="\udcff".encode("utf-8", "surrogatepass").decode("latin-1")),
            ),
            ("a mode of 'watch'", vote(mode="watch")),
            ("an event id of 7 characters", vote(event_id="1234567")),
            ("an event id of 65 characters", vote(event_id="e" * 65)),
            ("a comment of 2,001 characters", vote(comment="c" * 2001)),
            ("plays -1", vote(plays_1="-1")),
            ("plays 2**64", vote(plays_1=str(2**64))),
            ("seconds inf", vote(seconds="inf")),
            ("seconds nan", vote(seconds="nan")),
            ("seconds -1", vote(seconds="-1")),
            ("a criterion of 7", vote(clarity="7")),
            ("another reviewer's item", vote(item_id=str(bob_item))),
        ]:
            battery.case(ERRORS, f"review app vote: {label}", request("POST", f"/r/{alice}/vote", data=fields))
        battery.case(
            ERRORS,
            "review app vote: a body in bad UTF-8",
            request(
                "POST",
                f"/r/{alice}/vote",
                raw=f"item_id={item}&verdict=1&csrf={form['csrf']}&event_id={uuid.uuid4().hex}&comment=%FF%FE".encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
                expect="either",
            ),
        )
        battery.case(
            ERRORS,
            "review app vote: a broken multipart body",
            request(
                "POST",
                f"/r/{alice}/vote",
                raw=b"--x\r\nbroken",
                headers={"content-type": "multipart/form-data; boundary=x"},
            ),
        )
        battery.case(
            ERRORS,
            "review app vote: a JSON body",
            request("POST", f"/r/{alice}/vote", raw=b'{"item_id": 1}', headers={"content-type": "application/json"}),
        )
        battery.case(
            ERRORS,
            "review app vote: a foreign Origin",
            request("POST", f"/r/{alice}/vote", data=vote(), headers={"origin": "http://evil.example"}),
        )
        battery.case(
            ERRORS,
            "review app undo: a non-ASCII CSRF token",
            request("POST", f"/r/{alice}/undo", data={"csrf": "ü", "event_id": uuid.uuid4().hex}),
        )
        battery.case(ERRORS, "review app undo: no fields", request("POST", f"/r/{alice}/undo", data={}))
        battery.case(
            ERRORS,
            "review app admin mode: a non-ASCII CSRF token",
            request("POST", f"/admin/{admin}/mode", data={"csrf": "é", "mode": "read"}),
        )
        battery.case(
            ERRORS,
            "review app admin mode: a mode of 'x'",
            request("POST", f"/admin/{admin}/mode", data={"csrf": admin_csrf, "mode": "x"}),
        )
        battery.case(
            ERRORS,
            "review app admin mode: a non-ASCII admin token in the path",
            request("POST", "/admin/ß/mode", data={"csrf": admin_csrf, "mode": "read"}),
        )

        # CSV export over HTTP: no formulas
        def csv_over_http() -> tuple[bool, str]:
            from voicetune.review.store import ReviewStore as Store

            local = Store(db)
            local.record_vote(
                reviewer="alice",
                item_id=local.items("alice")[3].id,
                shown="1",
                mode="listen",
                comment='=HYPERLINK("http://x","y")',
                event_id=uuid.uuid4().hex,
            )
            reply = client.get(f"/admin/{admin}/export.csv")
            return formula_free(reply.text)

        battery.case(SECURITY, "review app: the admin CSV export carries no formula", csv_over_http)
    gc.collect()
    battery.case(
        DATA_LOSS, "review app: every vote the cases acknowledged is still there", lambda: votes_kept(events, db)
    )


def formula_free(text: str) -> tuple[bool, str]:
    """No cell of a CSV starts a spreadsheet formula (=, +, -, @, tab, carriage return)."""
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        return False, "the export has no vote rows"
    header, bad = rows[0], []
    split = [row for row in rows[1:] if len(row) != len(header)]
    if split:
        bad.append(f"{len(split)} rows split by a line break in a cell (one starts {split[0][0][:12]!r})")
    for row in rows[1:]:
        for name, cell in zip(header, row, strict=False):
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                bad.append(f"{name}={cell[:20]!r}")
    return (
        not bad,
        f"{len(rows) - 1} rows, no formula" if not bad else f"{len(bad)} formula cells: {', '.join(bad[:4])}",
    )


def review_cli_cases(battery: Battery, work: Path) -> None:
    print("review CLI (in-process)", flush=True)
    base, events = make_review_db(work / "cli-base")
    eval_dir = work / "cli-base" / "eval"
    contexts = work / "cli-base" / "contexts.jsonl"
    from voicetune.data import builtin_turns
    from voicetune.records import write_records

    write_records(contexts, [t.model_copy(update={"id": f"c{i}"}) for i, t in enumerate(builtin_turns("test")[:8])])
    counter = iter(range(10_000))

    def fresh() -> tuple[Path, Path]:
        folder = work / "cli" / f"case{next(counter)}"
        folder.mkdir(parents=True)
        return folder, copy_db(base, folder / "review.sqlite")

    def export_over(
        fmt: str, target: Callable[[Path, Path], Path], extra=(), strict: bool = True, refuse: bool = True
    ) -> Callable:
        """``refuse``: the output is the database (a user error); else it only resolves to it (a link that is
        replaced, not followed, is fine): nothing may be lost either way."""

        def check() -> tuple[bool, str]:
            folder, db = fresh()
            out = target(folder, db)
            ran = cli("review", "export", "--db", db, "--format", fmt, "--out", out, *extra)
            return also(votes_kept(events, db), user_error(ran, strict=strict) if refuse else no_traceback(ran))

        return check

    def folder_alias(folder: Path, db: Path) -> Path:
        alias = folder.parent / f"{folder.name}-alias"
        alias.symlink_to(folder, target_is_directory=True)
        return alias / db.name

    def symlink_to(name: str) -> Callable[[Path, Path], Path]:
        def make(folder: Path, db: Path) -> Path:
            link = folder / "link.csv"
            link.symlink_to(folder / name)
            return link

        return make

    def hardlink(folder: Path, db: Path) -> Path:
        link = folder / "hard.csv"
        os.link(db, link)
        return link

    for fmt in ("csv", "jsonl"):
        battery.case(DATA_LOSS, f"review export --format {fmt} --out the database", export_over(fmt, lambda f, db: db))
    battery.case(
        DATA_LOSS,
        "review export --format labels --out the database",
        export_over("labels", lambda f, db: db, ("--contexts", contexts)),
    )
    battery.case(
        DATA_LOSS,
        "review export --out a symlink to the database (refused, or the link replaced)",
        export_over("csv", symlink_to("review.sqlite"), refuse=False),
    )
    battery.case(
        DATA_LOSS, "review export --out the database through a symlinked folder", export_over("csv", folder_alias)
    )
    battery.case(
        DATA_LOSS,
        "review export --out the database by a ./ and ../ path",
        export_over("csv", lambda f, db: Path(f"{f}/./../{f.name}/review.sqlite")),
    )
    battery.case(
        DATA_LOSS,
        "review export --out a hard link of the database (refused, or the link replaced)",
        export_over("csv", hardlink, refuse=False),
    )
    battery.case(
        DATA_LOSS,
        "review export --format label-studio --out the database",
        export_over("label-studio", lambda f, db: db),
    )

    def labels_over_contexts() -> tuple[bool, str]:
        folder, db = fresh()
        mine = folder / "contexts.jsonl"
        shutil.copy(contexts, mine)
        before = snapshot(mine)
        ran = cli("review", "export", "--db", db, "--format", "labels", "--contexts", mine, "--out", mine)
        return also(unchanged(before), user_error(ran))

    battery.case(DATA_LOSS, "review export --format labels --out its own --contexts file", labels_over_contexts)

    def while_held(command: Callable[[Path, Path], list], name: str) -> Callable:
        def check() -> tuple[bool, str]:
            folder, db = fresh()
            holder = Holder(db)
            try:
                ran = cli(*command(folder, db))
                failures = holder.more(3)  # the server goes on taking votes
                mine, why = vote_from_new_connection(db)  # and a new thread of it opens the database
            finally:
                holder.close()
            acknowledged = events + holder.events + ([mine] if mine else [])
            writes = (
                not failures and mine is not None,
                "the server kept taking votes"
                if not failures and mine
                else f"the server's later votes failed: {one_line('; '.join(failures) or why, 120)}",
            )
            return also(votes_kept(acknowledged, db), writes, user_error(ran))

        return check

    battery.case(
        DATA_LOSS,
        "review export --out DB-wal while a server holds the database",
        while_held(lambda f, db: ["review", "export", "--db", db, "--out", f"{db}-wal"], "export-wal"),
    )
    battery.case(
        DATA_LOSS,
        "review export --out DB-shm while a server holds the database",
        while_held(lambda f, db: ["review", "export", "--db", db, "--out", f"{db}-shm"], "export-shm"),
    )
    battery.case(
        DATA_LOSS,
        "review agreement --out DB-wal while a server holds the database",
        while_held(lambda f, db: ["review", "agreement", "--db", db, "--out", f"{db}-wal"], "agreement-wal"),
    )

    def agreement_over(target: Callable[[Path, Path], Path], extra=(), refuse: bool = True) -> Callable:
        def check() -> tuple[bool, str]:
            folder, db = fresh()
            out = target(folder, db)
            ran = cli("review", "agreement", "--db", db, "--out", out, *extra)
            return also(votes_kept(events, db), user_error(ran, strict=False) if refuse else no_traceback(ran))

        return check

    battery.case(DATA_LOSS, "review agreement --out the database", agreement_over(lambda f, db: db))
    battery.case(
        DATA_LOSS,
        "review agreement --out a symlink to the database (refused, or the link replaced)",
        agreement_over(symlink_to("review.sqlite"), refuse=False),
    )
    battery.case(
        DATA_LOSS, "review agreement --out the database through a symlinked folder", agreement_over(folder_alias)
    )
    battery.case(
        DATA_LOSS,
        "review agreement --out the database by a ./ path",
        agreement_over(lambda f, db: Path(f"{f}/./review.sqlite")),
    )

    def agreement_over_eval() -> tuple[bool, str]:
        folder, db = fresh()
        mine = folder / "eval"
        shutil.copytree(eval_dir, mine)
        before = snapshot(mine)
        ran = cli("review", "agreement", "--db", db, "--eval", mine, "--out", mine / "summary.json")
        return also(unchanged(before), user_error(ran, strict=False))

    battery.case(DATA_LOSS, "review agreement --out its own --eval summary.json", agreement_over_eval)

    def agreement_default() -> tuple[bool, str]:
        folder, db = fresh()
        ran = cli("review", "agreement", "--db", db)
        written = Path(f"{db}.agreement.json")
        return also(
            succeeded(ran),
            votes_kept(events, db),
            (written.is_file(), "wrote DB.agreement.json" if written.is_file() else "no agreement file"),
        )

    battery.case(DATA_LOSS, "review agreement with the default --out (valid) keeps the database", agreement_default)

    def create_over(target: Callable[[Path], Path]) -> Callable:
        def check() -> tuple[bool, str]:
            folder = work / "cli" / f"create{next(counter)}"
            shutil.copytree(eval_dir, folder / "eval")
            if (folder / "eval" / "review.sqlite").exists():
                pass
            db = target(folder)
            before = snapshot(folder)
            ran = cli(
                "review",
                "create",
                "--from",
                folder / "eval",
                "--db",
                db,
                "--reviewers",
                "alice,bob",
                "--tts",
                "browser",
            )
            return also(unchanged(before), user_error(ran, strict=False))

        return check

    battery.case(
        DATA_LOSS, "review create --db its own --from pairs.jsonl", create_over(lambda f: f / "eval" / "pairs.jsonl")
    )
    battery.case(
        DATA_LOSS, "review create --db its own --from summary.json", create_over(lambda f: f / "eval" / "summary.json")
    )

    def create_over_db() -> tuple[bool, str]:
        folder, db = fresh()
        ran = cli("review", "create", "--from", eval_dir, "--db", db, "--reviewers", "alice,bob", "--tts", "browser")
        return also(votes_kept(events, db), user_error(ran, strict=False))

    battery.case(DATA_LOSS, "review create --db an existing review database", create_over_db)

    def label_studio_into_db_folder() -> tuple[bool, str]:
        folder, db = fresh()
        ran = cli("review", "export", "--db", db, "--format", "label-studio", "--out", folder)
        return also(votes_kept(events, db), (ran.code in (0, 2) and "Traceback" not in ran.err, f"exit {ran.code}"))

    battery.case(
        DATA_LOSS, "review export --format label-studio --out the database's own folder", label_studio_into_db_folder
    )

    # security: modes and formulas
    def created_mode(umask: int) -> Callable:
        def check() -> tuple[bool, str]:
            folder = work / "cli" / f"mode{next(counter)}"
            folder.mkdir(parents=True)
            db = folder / "review.sqlite"
            old = os.umask(umask)
            try:
                ran = cli(
                    "review", "create", "--from", eval_dir, "--db", db, "--reviewers", "alice,bob", "--tts", "browser"
                )
            finally:
                os.umask(old)
            if ran.code != 0:
                return False, f"review create failed: {one_line(ran.err[-200:])}"
            return owner_only(db)

        return check

    battery.case(SECURITY, "review create: the database is owner-only (umask 022)", created_mode(0o022))
    battery.case(SECURITY, "review create: the database is owner-only (umask 000)", created_mode(0o000))

    def wal_modes() -> tuple[bool, str]:
        from voicetune.review.store import ReviewStore

        folder, db = fresh()
        os.chmod(db, 0o600)
        old = os.umask(0o022)
        try:
            store = ReviewStore(db)
            item = store.items("alice")[4]
            store.record_vote(reviewer="alice", item_id=item.id, shown="1", mode="listen", event_id=uuid.uuid4().hex)
            found = [owner_only(Path(f"{db}{suffix}")) for suffix in ("-wal", "-shm") if Path(f"{db}{suffix}").exists()]
            del store
        finally:
            os.umask(old)
        gc.collect()
        return also((bool(found), "WAL files present"), *found) if found else (False, "no WAL files to check")

    battery.case(SECURITY, "review store: the database's -wal and -shm are owner-only", wal_modes)

    def agreement_mode() -> tuple[bool, str]:
        folder, db = fresh()
        ran = cli("review", "agreement", "--db", db)
        return also(succeeded(ran), no_secret_world_readable(folder, db))

    battery.case(SECURITY, "review agreement: no file holding a token is readable by others", agreement_mode)

    def label_studio_mode() -> tuple[bool, str]:
        folder, db = fresh()
        ran = cli("review", "export", "--db", db, "--format", "label-studio", "--out", folder / "ls")
        return also(succeeded(ran), no_secret_world_readable(folder / "ls", db))

    battery.case(
        SECURITY, "review export label-studio: no file holding a token is readable by others", label_studio_mode
    )

    formulas = [
        "=1+1",
        "+1+1",
        "-1+1",
        "@SUM(A1)",
        "\t=1+1",
        "\r=1+1",
        '=HYPERLINK("http://evil","x")',
        "=cmd|' /C calc'!A0",
    ]
    injected, injected_events = make_review_db(work / "formula", comments=formulas)

    def csv_export(db: Path) -> tuple[bool, str]:
        out = db.parent / f"votes{next(counter)}.csv"
        ran = cli("review", "export", "--db", db, "--format", "csv", "--out", out)
        if ran.code != 0:
            return False, f"export failed: {one_line(ran.err[-200:])}"
        return formula_free(out.read_text())

    battery.case(
        SECURITY,
        "review export CSV: comments starting =, +, -, @, tab, CR carry no formula",
        lambda: csv_export(injected),
    )

    def names_db() -> Path:
        folder = work / "formula-names"
        db, _ = make_review_db(
            folder,
            reviewers=("=evil()", "+1", "@x"),
            ids=[f"=p{i}#a-vs-b#s0" for i in range(8)],
            domains=("=dom", "-dom"),
            systems=(("=tuned", "@base"), ("+x", "-y")),
        )
        return db

    battery.case(
        SECURITY,
        "review export CSV: reviewer names, pair ids, domains and systems starting =, +, -, @ carry no formula",
        lambda: csv_export(names_db()),
    )

    def create_cli_names() -> tuple[bool, str]:
        folder = work / "cli" / f"names{next(counter)}"
        db = folder / "review.sqlite"
        folder.mkdir(parents=True)
        ran = cli("review", "create", "--from", eval_dir, "--db", db, "--reviewers", "=2+3,@cmd", "--tts", "browser")
        if ran.code != 0:
            return True, f"refused: {one_line(ran.err[-120:])}"
        from voicetune.review.store import ReviewStore

        store = ReviewStore(db)
        for name in store.reviewers():
            store.record_vote(
                reviewer=name, item_id=store.items(name)[0].id, shown="1", mode="listen", event_id=uuid.uuid4().hex
            )
        del store
        gc.collect()
        return csv_export(db)

    battery.case(SECURITY, "review create --reviewers '=2+3,@cmd' then export CSV carries no formula", create_cli_names)

    # user errors
    def plain(
        args: Callable[[Path, Path], list], strict: bool = True, mentions=(), any_of=(), keep: bool = True
    ) -> Callable:
        def check() -> tuple[bool, str]:
            folder, db = fresh()
            ran = cli(*args(folder, db))
            return also(
                user_error(ran, strict=strict, mentions=mentions, any_of=any_of),
                votes_kept(events, db) if keep else (True, ""),
            )

        return check

    for port in ("99999", "0", "-1", "65536", "http"):
        battery.case(
            ERRORS,
            f"review serve --port {port}",
            plain(lambda f, db, p=port: ["review", "serve", "--db", db, "--port", p], mentions=("port",)),
        )
    battery.case(
        ERRORS,
        "serve --port 99999",
        plain(lambda f, db: ["serve", "smollm2-135m", "--port", "99999"], mentions=("port",)),
    )
    battery.case(
        ERRORS,
        "review create --port 70000",
        plain(
            lambda f, db: [
                "review",
                "create",
                "--from",
                eval_dir,
                "--db",
                f / "new.sqlite",
                "--reviewers",
                "a",
                "--port",
                "70000",
            ]
        ),
    )
    battery.case(
        ERRORS,
        "review serve --db a file that is not a database",
        plain(lambda f, db: ["review", "serve", "--db", contexts]),
    )
    battery.case(
        ERRORS,
        "review serve --db an empty file",
        plain(lambda f, db: (Path(f / "empty.sqlite").touch(), ["review", "serve", "--db", f / "empty.sqlite"])[1]),
    )
    battery.case(ERRORS, "review serve --db a folder", plain(lambda f, db: ["review", "serve", "--db", f]))
    battery.case(
        ERRORS,
        "review serve --db a file that does not exist",
        plain(lambda f, db: ["review", "serve", "--db", f / "missing.sqlite"]),
    )
    battery.case(
        ERRORS,
        "review export --db a truncated database",
        plain(
            lambda f, db: (
                Path(f / "cut.sqlite").write_bytes(db.read_bytes()[:3000]),
                ["review", "export", "--db", f / "cut.sqlite", "--out", f / "v.csv"],
            )[1]
        ),
    )
    battery.case(
        ERRORS,
        "review export --format xml",
        plain(lambda f, db: ["review", "export", "--db", db, "--format", "xml", "--out", f / "v.xml"]),
    )
    battery.case(
        ERRORS,
        "review export --format labels without --contexts",
        plain(lambda f, db: ["review", "export", "--db", db, "--format", "labels", "--out", f / "l.jsonl"]),
    )
    battery.case(
        ERRORS,
        "review export --format labels --contexts a file that is not turns",
        plain(
            lambda f, db: [
                "review",
                "export",
                "--db",
                db,
                "--format",
                "labels",
                "--contexts",
                db,
                "--out",
                f / "l.jsonl",
            ]
        ),
    )
    battery.case(
        ERRORS,
        "review agreement --db a database without votes",
        plain(
            lambda f, db: (
                cli(
                    "review",
                    "create",
                    "--from",
                    eval_dir,
                    "--db",
                    f / "novotes.sqlite",
                    "--reviewers",
                    "a,b",
                    "--tts",
                    "browser",
                ),
                ["review", "agreement", "--db", f / "novotes.sqlite"],
            )[1]
        ),
    )
    battery.case(
        ERRORS,
        "review agreement --eval a folder without summary.json",
        plain(lambda f, db: ["review", "agreement", "--db", db, "--eval", f, "--out", f / "a.json"], strict=False),
    )
    battery.case(
        ERRORS,
        "review create --reviewers ''",
        plain(
            lambda f, db: [
                "review",
                "create",
                "--from",
                eval_dir,
                "--db",
                f / "n.sqlite",
                "--reviewers",
                ",",
                "--tts",
                "browser",
            ]
        ),
    )
    battery.case(
        ERRORS,
        "review create --reviewers 'a,a'",
        lambda: _create_duplicates(work / "cli" / f"dup{next(counter)}", eval_dir),
    )
    battery.case(
        ERRORS,
        "review create --from a folder without pairs.jsonl",
        plain(lambda f, db: ["review", "create", "--from", f, "--db", f / "n.sqlite", "--reviewers", "a"]),
    )
    battery.case(
        ERRORS,
        "review create --tts nosuchengine",
        plain(
            lambda f, db: [
                "review",
                "create",
                "--from",
                eval_dir,
                "--db",
                f / "n.sqlite",
                "--reviewers",
                "a",
                "--tts",
                "nosuch",
            ],
            strict=False,
        ),
    )
    battery.case(
        ERRORS,
        "review create --mode watch",
        plain(
            lambda f, db: [
                "review",
                "create",
                "--from",
                eval_dir,
                "--db",
                f / "n.sqlite",
                "--reviewers",
                "a",
                "--mode",
                "watch",
            ],
            strict=False,
        ),
    )
    battery.case(
        ERRORS,
        "review import --db DB a file that is not a Label Studio export",
        plain(lambda f, db: ["review", "import", "--db", db, contexts], strict=False),
    )
    battery.case(
        ERRORS,
        "review import --db DB a JSON list of junk",
        plain(
            lambda f, db: (
                Path(f / "ls.json").write_text('[{"id": 1e999, "annotations": [{"result": [null]}]}, 5, null]'),
                ["review", "import", "--db", db, f / "ls.json"],
            )[1],
            strict=False,
        ),
    )
    battery.case(
        ERRORS,
        "review serve --db NAME with a NUL byte",
        plain(lambda f, db: ["review", "serve", "--db", "rev\x00iew.sqlite"], keep=False),
    )

    # wrong or unclear
    def create_in_missing_folder() -> tuple[bool, str]:
        folder, db = fresh()
        target = folder / "missing" / "review.sqlite"
        ran = cli("review", "create", "--from", eval_dir, "--db", target, "--reviewers", "a", "--tts", "browser")
        if ran.code == 0:  # making the folder is a valid answer too
            return also(succeeded(ran), (db_events(target)[0] is not None, "made the folder and the database"))
        return user_error(ran, strict=False, any_of=("folder", "director"))

    battery.case(
        UNCLEAR,
        "review create --db in a folder that does not exist: made, or a line naming the folder",
        create_in_missing_folder,
    )
    battery.case(
        UNCLEAR,
        "review serve --db in a folder that does not exist",
        plain(lambda f, db: ["review", "serve", "--db", f / "missing" / "review.sqlite"]),
    )

    def loop(folder: Path) -> Path:
        (folder / "ring").symlink_to(folder / "ring")
        return folder / "ring"

    battery.case(
        UNCLEAR,
        "review create --db through a symlink loop says so",
        plain(
            lambda f, db: [
                "review",
                "create",
                "--from",
                eval_dir,
                "--db",
                loop(f) / "review.sqlite",
                "--reviewers",
                "a",
                "--tts",
                "browser",
            ],
            strict=False,
            any_of=("loop", "symbolic", "symlink"),
        ),
    )
    battery.case(
        UNCLEAR,
        "review export --out through a symlink loop says so",
        plain(
            lambda f, db: ["review", "export", "--db", db, "--out", loop(f) / "votes.csv"],
            any_of=("loop", "symbolic", "symlink"),
        ),
    )
    battery.case(UNCLEAR, "review serve --db a symlink loop", plain(lambda f, db: ["review", "serve", "--db", loop(f)]))
    battery.case(
        UNCLEAR,
        "review export --format label-studio --out an existing file says so",
        plain(
            lambda f, db: [
                "review",
                "export",
                "--db",
                db,
                "--format",
                "label-studio",
                "--out",
                contexts_copy(f, contexts),
            ],
            any_of=("folder", "director", "not a dir", "is a file", "exists"),
        ),
    )
    battery.case(
        UNCLEAR,
        "review export --out an existing folder says so",
        plain(
            lambda f, db: (Path(f / "exports").mkdir(), ["review", "export", "--db", db, "--out", f / "exports"])[1],
            any_of=("folder", "director"),
        ),
    )
    battery.case(
        UNCLEAR,
        "review export --out in a folder that is a file says so",
        plain(
            lambda f, db: ["review", "export", "--db", db, "--out", contexts_copy(f, contexts) / "votes.csv"],
            any_of=("folder", "director", "not a dir"),
        ),
    )


def contexts_copy(folder: Path, contexts: Path) -> Path:
    target = folder / "a-file.jsonl"
    shutil.copy(contexts, target)
    return target


def _create_duplicates(folder: Path, eval_dir: Path) -> tuple[bool, str]:
    folder.mkdir(parents=True)
    ran = cli(
        "review", "create", "--from", eval_dir, "--db", folder / "r.sqlite", "--reviewers", "a,a,b", "--tts", "browser"
    )
    if ran.code == 0:
        return True, "accepted (one reviewer 'a')"
    return user_error(ran, strict=False)


def owner_only(path: Path) -> tuple[bool, str]:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as error:
        return False, f"{path.name}: {error.strerror}"
    return (mode & 0o077 == 0, f"{path.name} is {mode:04o}")


def secrets_of(db: Path) -> list[str]:
    """Every reviewer token and the admin token of a review database."""
    connection = sqlite3.connect(str(db))
    try:
        tokens = [row[0] for row in connection.execute("SELECT token FROM reviewers")]
        admin = connection.execute("SELECT value FROM meta WHERE key='admin_token'").fetchone()
        secret = connection.execute("SELECT value FROM meta WHERE key='secret'").fetchone()
    finally:
        connection.close()
    return [t for t in tokens + [json.loads(admin[0]) if admin else "", json.loads(secret[0]) if secret else ""] if t]


def no_secret_world_readable(folder: Path, db: Path) -> tuple[bool, str]:
    """Every file under ``folder`` that holds a token of ``db`` (the database itself included) is owner-only."""
    secrets = [s.encode() for s in secrets_of(db)]
    exposed, checked = [], 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.suffix in (".sqlite",) or path.name.endswith(("-wal", "-shm")) or any(s in data for s in secrets):
            checked += 1
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                exposed.append(f"{path.relative_to(folder)} {mode:04o}")
    return (
        not exposed,
        f"{checked} files hold secrets, all owner-only"
        if not exposed
        else f"readable by others: {', '.join(exposed[:5])}",
    )


# ------------------------------------------------------------------------------------------------------------
# export --gguf (a stub converter: the case is about where the output goes, not the conversion)

STUB_CONVERTER = r"""
import sys
args = sys.argv[1:]
out = args[args.index("--outfile") + 1]
with open(out, "wb") as f:
    f.write(b"GGUF\x03\x00\x00\x00 stub output of the battery")
"""


def export_cases(battery: Battery, work: Path) -> None:
    print("export --gguf (in-process, a stub converter)", flush=True)
    converter = work / "converter"
    (converter / "gguf").mkdir(parents=True)
    (converter / "conversion").mkdir()
    (converter / "gguf" / "__init__.py").write_text("")
    (converter / "convert_hf_to_gguf.py").write_text(STUB_CONVERTER)
    previous = os.environ.get("VOICETUNE_GGUF_CONVERTER")
    os.environ["VOICETUNE_GGUF_CONVERTER"] = str(converter)
    counter = iter(range(10_000))

    def model_dir() -> Path:
        folder = work / "export" / f"case{next(counter)}"
        model = folder / "model"
        model.mkdir(parents=True)
        (model / "config.json").write_text(
            json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32})
        )
        (model / "model.safetensors").write_bytes(os.urandom(4096))
        (model / "tokenizer.json").write_text('{"version": "1.0"}')
        (model / "generation_config.json").write_text("{}")
        return model

    def over(target: Callable[[Path], Path], expect: str = "refuse") -> Callable:
        """``expect``: refuse (a user error), ok (written) or either (nothing lost, no traceback)."""

        def check() -> tuple[bool, str]:
            model = model_dir()
            out = target(model)
            before = snapshot(model)
            ran = cli("export", model, "--gguf", out, "--quant", "f16")
            kept = unchanged(before)
            if expect == "ok":
                return also(kept, succeeded(ran), (Path(out).is_file(), "wrote the GGUF"))
            return also(kept, user_error(ran) if expect == "refuse" else no_traceback(ran))

        return check

    def alias(model: Path, name: str) -> Path:
        link = model.parent / "alias"
        link.symlink_to(model, target_is_directory=True)
        return link / name

    def link(model: Path, name: str) -> Path:
        target = model.parent / "elsewhere.gguf"
        target.symlink_to(model / name)
        return target

    try:
        for name in ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json"):
            battery.case(DATA_LOSS, f"export --gguf onto the model's own {name}", over(lambda m, n=name: m / n))
        battery.case(
            DATA_LOSS,
            "export --gguf a symlink to the model's weights (refused, or the link replaced)",
            over(lambda m: link(m, "model.safetensors"), "either"),
        )
        battery.case(
            DATA_LOSS,
            "export --gguf the model's weights through a symlinked folder",
            over(lambda m: alias(m, "model.safetensors")),
        )
        battery.case(
            DATA_LOSS,
            "export --gguf the model's config through a symlinked folder",
            over(lambda m: alias(m, "config.json")),
        )
        battery.case(
            DATA_LOSS, "export --gguf the model's config by a ./ path", over(lambda m: Path(f"{m}/./config.json"))
        )
        battery.case(
            DATA_LOSS,
            "export --gguf the model's weights by a ../ path",
            over(lambda m: Path(f"{m}/../{m.name}/model.safetensors")),
        )
        battery.case(
            DATA_LOSS,
            "export --gguf beside the model (valid) writes it and keeps the model",
            over(lambda m: m.parent / "model.gguf", "ok"),
        )
        battery.case(
            DATA_LOSS,
            "export --gguf inside the model folder, a new name (valid or refused), keeps the model",
            lambda: _inside(model_dir()),
        )
        battery.case(UNCLEAR, "export --gguf through a symlink loop says so", lambda: _export_loop(model_dir()))
        battery.case(UNCLEAR, "export --gguf an existing folder says so", over(lambda m: m.parent))
        battery.case(ERRORS, "export a model folder without config.json", lambda: _export_no_config(model_dir()))
    finally:
        if previous is None:
            os.environ.pop("VOICETUNE_GGUF_CONVERTER", None)
        else:
            os.environ["VOICETUNE_GGUF_CONVERTER"] = previous


def _inside(model: Path) -> tuple[bool, str]:
    before = snapshot(model)
    ran = cli("export", model, "--gguf", model / "tuned.gguf", "--quant", "f16")
    return also(unchanged(before), (ran.code in (0, 2) and "Traceback" not in ran.err, f"exit {ran.code}"))


def _export_loop(model: Path) -> tuple[bool, str]:
    (model.parent / "ring").symlink_to(model.parent / "ring")
    return user_error(
        cli("export", model, "--gguf", model.parent / "ring" / "x.gguf"), any_of=("loop", "symbolic", "symlink")
    )


def _export_no_config(model: Path) -> tuple[bool, str]:
    (model / "config.json").unlink()
    return user_error(cli("export", model, "--gguf", model.parent / "x.gguf"))


# ------------------------------------------------------------------------------------------------------------
# simulate (in-process, text channel, estimated timing, no learned judge: seconds per case)


def simulate_cases(battery: Battery, work: Path) -> None:
    from voicetune.data import builtin_turns

    print("simulate (in-process)", flush=True)
    turns = builtin_turns("test")
    calls: dict[str, list] = {}
    for turn in turns:
        calls.setdefault(turn.meta.get("conversation_id") or turn.id, []).append(turn)
    chosen = [t.model_dump(mode="json") for key in [k for k, v in calls.items() if len(v) >= 2][:2] for t in calls[key]]
    folder = work / "simulate"
    folder.mkdir(parents=True)
    config = folder / "sim.yaml"
    config.write_text("seeds: 1\ntiming: estimate\nusable_check: false\nchannel: text\n")
    counter = iter(range(10_000))

    def conversations(target: Path, rows=None) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(json.dumps(row) + "\n" for row in (rows if rows is not None else chosen)))
        return target

    def simulate(conv: Path, out: Path, *extra) -> Ran:
        return cli(
            "simulate",
            "--system",
            "draft",
            "--system",
            "draft+pipecat",
            "--conversations",
            conv,
            "--out",
            out,
            "--config",
            config,
            *extra,
        )

    def case_dir() -> Path:
        path = folder / f"case{next(counter)}"
        path.mkdir()
        return path

    def valid() -> tuple[bool, str]:
        here = case_dir()
        ran = simulate(conversations(here / "calls-in.jsonl"), here / "out")
        return also(succeeded(ran), ((here / "out" / "calls.jsonl").is_file(), "wrote calls.jsonl"))

    battery.case(ERRORS, "simulate: a valid run (control)", valid)

    def input_inside(name: str) -> Callable:
        def check() -> tuple[bool, str]:
            here = case_dir()
            out = here / "out"
            conv = conversations(out / name)
            before = snapshot(conv)
            ran = simulate(conv, out)
            return also(unchanged(before), user_error(ran, strict=False))

        return check

    battery.case(DATA_LOSS, "simulate --conversations OUT/calls.jsonl --out OUT", input_inside("calls.jsonl"))

    def linked_input() -> tuple[bool, str]:
        here = case_dir()
        out = here / "out"
        real = conversations(out / "calls.jsonl")
        link = here / "my-calls.jsonl"
        link.symlink_to(real)
        before = snapshot(real)
        ran = simulate(link, out)
        return also(unchanged(before), user_error(ran, strict=False))

    battery.case(DATA_LOSS, "simulate --conversations a symlink to OUT/calls.jsonl", linked_input)

    def config_inside() -> tuple[bool, str]:
        here = case_dir()
        out = here / "out"
        out.mkdir()
        mine = out / "simulate.yaml"
        mine.write_text(config.read_text() + "# my notes: keep this file\n")
        before = snapshot(mine)
        ran = cli(
            "simulate",
            "--system",
            "draft",
            "--system",
            "draft+pipecat",
            "--conversations",
            conversations(here / "in.jsonl"),
            "--out",
            out,
            "--config",
            mine,
        )
        return also(unchanged(before), user_error(ran, strict=False))

    battery.case(DATA_LOSS, "simulate --config OUT/simulate.yaml --out OUT", config_inside)

    def input_in_responses() -> tuple[bool, str]:
        here = case_dir()
        out = here / "out"
        conv = conversations(out / "responses" / "draft.jsonl")
        before = snapshot(conv)
        ran = simulate(conv, out)
        return also(unchanged(before), user_error(ran, strict=False))

    battery.case(DATA_LOSS, "simulate --conversations OUT/responses/draft.jsonl --out OUT", input_in_responses)

    def turn_meta(label: str, index_value, key: str = "turn_index") -> Callable:
        def check() -> tuple[bool, str]:
            here = case_dir()
            rows = json.loads(json.dumps(chosen))
            rows[1]["meta"][key] = index_value
            ran = simulate(conversations(here / "in.jsonl", rows), here / "out")
            if ran.code == 0:
                return True, "ran"
            return user_error(ran, strict=False)

        return check

    for label, value in [
        ("null", None),
        ("a string '1'", "1"),
        ("a word", "first"),
        ("a list", [1]),
        ("an object", {"n": 1}),
        ("a float 1.5", 1.5),
        ("true", True),
        ("10**30", 10**30),
    ]:
        battery.case(ERRORS, f"simulate: meta.turn_index {label}", turn_meta(label, value))
    for label, value in [("a list", [1, 2]), ("an object", {"id": 1}), ("a number", 7), ("a float NaN", float("nan"))]:
        battery.case(ERRORS, f"simulate: meta.conversation_id {label}", turn_meta(label, value, "conversation_id"))

    def bad_rows(rows: str | bytes, name: str) -> Callable:
        def check() -> tuple[bool, str]:
            here = case_dir()
            conv = here / "in.jsonl"
            conv.write_bytes(rows if isinstance(rows, bytes) else rows.encode())
            return user_error(simulate(conv, here / "out"), strict=False)

        return check

    battery.case(
        ERRORS, "simulate: meta that is a string", bad_rows(json.dumps({**chosen[0], "meta": "x"}) + "\n", "meta")
    )
    battery.case(ERRORS, "simulate: a line that is null", bad_rows(json.dumps(chosen[0]) + "\nnull\n", "null"))
    battery.case(ERRORS, "simulate: an empty conversations file", bad_rows("", "empty"))
    battery.case(
        ERRORS,
        "simulate: a conversations file in bad UTF-8",
        bad_rows(b'{"id": "caf\xe9", "draft": "\xff\xfe"}\n', "utf8"),
    )
    battery.case(
        ERRORS,
        "simulate: --conversations a folder",
        lambda: user_error(simulate(folder, case_dir() / "out"), strict=False),
    )
    battery.case(
        ERRORS,
        "simulate: one system only",
        lambda: user_error(
            cli(
                "simulate",
                "--system",
                "draft",
                "--conversations",
                conversations(case_dir() / "i.jsonl"),
                "--out",
                folder / "one",
            ),
            strict=False,
        ),
    )
    battery.case(
        ERRORS,
        "simulate: --conversations builtin:nosuchsplit",
        lambda: user_error(simulate(Path("builtin:nosuch"), case_dir() / "out"), strict=False),
    )

    def no_draft(label: str, change: Callable[[dict], None]) -> Callable:
        def check() -> tuple[bool, str]:
            here = case_dir()
            rows = json.loads(json.dumps(chosen))
            for row in rows:
                change(row)
            ran = simulate(conversations(here / "in.jsonl", rows), here / "out")
            if ran.code == 0:
                said = "draft" in ran.err.lower() and any(
                    w in ran.err.lower() for w in ("no draft", "without a draft", "empty draft", "skipp", "missing")
                )
                return (
                    said,
                    "ran and said the drafts are missing"
                    if said
                    else "ran as if a silent agent could resolve calls; nothing said",
                )
            return user_error(ran, strict=False)

        return check

    battery.case(
        UNCLEAR,
        "simulate: turns with a null draft are refused or flagged",
        no_draft("null", lambda r: r.update(draft=None)),
    )
    battery.case(
        UNCLEAR,
        "simulate: turns with an empty draft are refused or flagged",
        no_draft("empty", lambda r: r.update(draft="")),
    )
    battery.case(
        UNCLEAR,
        "simulate: turns with a blank draft are refused or flagged",
        no_draft("blank", lambda r: r.update(draft="  \n")),
    )
    battery.case(
        UNCLEAR,
        "simulate: turns without a draft field are refused or flagged",
        no_draft("missing", lambda r: r.pop("draft", None)),
    )

    def out_is_file() -> tuple[bool, str]:
        here = case_dir()
        target = here / "results.txt"
        target.write_text("my results\n")
        before = snapshot(target)
        return also(
            unchanged(before),
            user_error(
                simulate(conversations(here / "in.jsonl"), target),
                strict=False,
                any_of=("folder", "director", "not a dir", "is a file"),
            ),
        )

    battery.case(UNCLEAR, "simulate --out an existing file says so", out_is_file)

    def out_loop() -> tuple[bool, str]:
        here = case_dir()
        (here / "ring").symlink_to(here / "ring")
        return user_error(
            simulate(conversations(here / "in.jsonl"), here / "ring"),
            strict=False,
            any_of=("loop", "symbolic", "symlink"),
        )

    battery.case(UNCLEAR, "simulate --out a symlink loop says so", out_loop)


# ------------------------------------------------------------------------------------------------------------
# run and report (in-process, on copies of one tiny run)


def tiny_model(folder: Path) -> Path:
    """A 2-layer Llama with random weights and the embedded model's tokenizer (as tests/conftest.py makes)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from voicetune.models.loading import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_settings(model: Path, **sections) -> dict:
    """The whole method at toy size, on the built-in data, with the rubric wherever a judge is asked (the learned
    judge would be trained on first use where it is not cached: minutes)."""
    settings = {
        "data": {"source": "builtin", "limit": 2},
        "train": {
            "model": str(model),
            "max_length": 256,
            "precision": "fp32",
            "reward_judge": "rubric",
            "sft": {"max_examples": 6, "epochs": 1, "batch_size": 3},
            "sample": {"contexts": 3, "candidates": 2, "max_new_tokens": 12, "batch_size": 6},
            "dpo": {"margin": 0.0, "batch_size": 2},
        },
        "generation": {"max_new_tokens": 12},
        "eval": {"baselines": ["base={model}", "draft+pipecat"], "judge": {"kind": "rubric"}},
        "review": {"sample": 6, "tts": "espeak", "reviewers": ["alice", "bob", "carol"]},
        "simulate": {"enabled": False},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            settings[name] = {**settings.get(name, {}), **values}
        else:
            settings[name] = values
    return settings


def write_config(path: Path, settings: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1) + "\n")  # JSON is YAML
    return path


def run_cases(battery: Battery, work: Path) -> None:
    print("run and report (in-process; one tiny run first, about 40 s)", flush=True)
    from voicetune.pipeline import load_run_config, run

    root = work / "run"
    root.mkdir()
    model = tiny_model(root / "tiny-llama")
    base = root / "base"
    started = time.perf_counter()
    run(load_run_config(None, run_settings(model)), base, command="voicetune run (battery)", log=lambda message: None)
    battery.notes["tiny_run_seconds"] = round(time.perf_counter() - started, 1)
    db_name = Path("review") / "review.sqlite"
    checkpoint(base / db_name)
    counter = iter(range(10_000))

    def copy(votes: int = 4) -> tuple[Path, list[str]]:
        """A copy of the finished run, with ``votes`` acknowledged (checkpointed) votes in its review set."""
        from voicetune.review.store import ReviewStore

        target = root / f"copy{next(counter)}"
        shutil.copytree(base, target, symlinks=True)
        store = ReviewStore(target / db_name)
        events = []
        for item in store.items()[:votes]:
            event = uuid.uuid4().hex
            store.record_vote(reviewer=item.reviewer, item_id=item.id, shown="1", mode="listen", event_id=event)
            events.append(event)
        del store
        gc.collect()
        checkpoint(target / db_name)
        return target, events

    def rerun(target: Path, config_name: str = "my.yaml", **sections) -> Ran:
        config = write_config(root / f"{target.name}-{config_name}", run_settings(model, **sections))
        return cli("run", config, "--out", target)

    # a valid rerun skips everything
    def control() -> tuple[bool, str]:
        target, events = copy()
        ran = rerun(target)
        return also(succeeded(ran), votes_kept(events, target / db_name))

    battery.case(ERRORS, "run: the same config again (valid) skips every stage and keeps the votes", control)

    # outputs over inputs: a config whose data fails to load stops the run at its first stage, cheaply
    broken = root / "broken-turns.jsonl"
    broken.write_text('{"id": "t1", "domain": "general", "draft": "Hi."}\n{not json\n')

    def config_in_out(name: str, link: bool = False, form: Callable[[Path], Path] | None = None) -> Callable:
        def check() -> tuple[bool, str]:
            out = root / f"out{next(counter)}"
            out.mkdir()
            config = write_config(out / name, run_settings(model, data={"source": str(broken)}))
            given = config
            if link:
                given = root / f"{out.name}-link.yaml"
                given.symlink_to(config)
            if form:
                given = form(config)
            before = snapshot(config)
            ran = cli("run", given, "--out", out)
            return also(unchanged(before), user_error(ran, strict=False))

        return check

    battery.case(DATA_LOSS, "run DIR/config.yaml --out DIR", config_in_out("config.yaml"))
    battery.case(DATA_LOSS, "run DIR/thresholds.json --out DIR", config_in_out("thresholds.json"))
    battery.case(DATA_LOSS, "run DIR/command.txt --out DIR (a YAML config named so)", config_in_out("command.txt"))
    battery.case(
        DATA_LOSS, "run LINK --out DIR, LINK a symlink to DIR/config.yaml", config_in_out("config.yaml", link=True)
    )
    battery.case(
        DATA_LOSS,
        "run DIR/./config.yaml --out DIR",
        config_in_out("config.yaml", form=lambda c: Path(f"{c.parent}/./{c.name}")),
    )
    battery.case(
        DATA_LOSS,
        "run DIR/sub/../config.yaml --out DIR",
        config_in_out("config.yaml", form=lambda c: (c.parent / "sub").mkdir() or Path(f"{c.parent}/sub/../{c.name}")),
    )

    def not_a_run(files: dict[str, str]) -> Callable:
        def check() -> tuple[bool, str]:
            out = root / f"mine{next(counter)}"
            for name, text in files.items():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_text(text)
            before = snapshot(out)
            config = write_config(root / f"{out.name}.yaml", run_settings(model, data={"source": str(broken)}))
            ran = cli("run", config, "--out", out)
            return also(unchanged(before), user_error(ran, strict=False))

        return check

    battery.case(
        DATA_LOSS,
        "run --out a folder that is not a run (config.yaml, command.txt, data/)",
        not_a_run(
            {
                "config.yaml": "my: settings\n",
                "command.txt": "my command\n",
                "data/notes.txt": "my notes\n",
                "data/train.jsonl": "{}\n",
            }
        ),
    )
    battery.case(
        DATA_LOSS,
        "run --out a folder holding only the user's data/",
        not_a_run({"data/calls.jsonl": "{}\n", "data/README": "mine\n"}),
    )
    battery.case(
        DATA_LOSS,
        "run --out a folder holding the user's review/review.sqlite",
        not_a_run({"review/review.sqlite": "my database\n", "notes.md": "x\n"}),
    )
    battery.case(
        DATA_LOSS,
        "run --out a folder holding the user's stages/ and summary.json",
        not_a_run({"stages/plan.txt": "mine\n", "summary.json": "{}\n"}),
    )

    def source_inside() -> tuple[bool, str]:
        out = root / f"src{next(counter)}"
        source = out / "data" / "train.jsonl"
        source.parent.mkdir(parents=True)
        from voicetune.data import builtin_turns
        from voicetune.records import write_records

        write_records(source, builtin_turns("test")[:20])
        before = snapshot(source)
        config = write_config(
            root / f"{out.name}.yaml",
            run_settings(model, data={"source": str(source)}, train={"model": str(root / "no-such-model")}),
        )
        ran = cli("run", config, "--out", out)
        return also(unchanged(before), user_error(ran, strict=False))

    battery.case(DATA_LOSS, "run with data.source inside --out's data/ folder", source_inside)

    # the review set moved while a server holds it, or after it was killed
    def held_review(crash: bool) -> Callable:
        def check() -> tuple[bool, str]:
            target, events = copy()
            db = target / db_name
            original_pairs = _pair_ids(db)
            holder = Holder(db, count=12, crash=crash)
            try:
                ran = rerun(target, review={"sample": 4})
            finally:
                holder.close()
            held = holder.events
            verdict = votes_kept(events + held, target)
            if ran.code == 0 and verdict[0] and _pair_ids(db) != original_pairs:
                stray = _events_in(db) & set(held)
                if stray:
                    verdict = (False, f"{len(stray)} old votes landed in the new review set")
            outcome = (True, f"exit {ran.code}") if ran.code == 0 else user_error(ran, strict=False)
            return also(verdict, outcome)

        return check

    battery.case(
        DATA_LOSS,
        "run redoes the review stage while a server holds the database (votes in its WAL)",
        held_review(False),
    )
    battery.case(
        DATA_LOSS, "run redoes the review stage after the server was killed (votes in its WAL)", held_review(True)
    )

    def redo_review_valid() -> tuple[bool, str]:
        target, events = copy()
        ran = rerun(target, review={"mode": "read"})
        return also(succeeded(ran), votes_kept(events, target))

    battery.case(
        DATA_LOSS, "run redoes the review stage (valid change): the old votes are kept aside", redo_review_valid
    )

    # "a config that validates runs, or fails at validation": a failure after the run began (it rewrites the
    # run's config.yaml first) is a config that validated and then failed at its stage; it must not move the
    # voted set aside either
    def bad_config(**sections) -> Callable:
        def check() -> tuple[bool, str]:
            target, events = copy()
            db = target / db_name
            written = digest(target / "config.yaml")
            ran = rerun(target, **sections)
            if ran.code == 0:
                return votes_kept(events, target)
            here = db_events(db)[0] if db.is_file() else None
            in_place = here is not None and set(events) <= here
            began = digest(target / "config.yaml") != written
            line = user_error(ran, strict=False)
            return also(
                line,
                (
                    in_place,
                    "the voted set is in place" if in_place else "the voted set was moved aside by a failing run",
                ),
                (
                    not began,
                    "refused at validation" if not began else f"validated, then failed at its stage: {line[1]}",
                ),
            )

        return check

    for label, sections in [
        ("a negative training seed", {"train": {"seed": -1}}),
        ("a training seed of 1e20", {"train": {"seed": 1e20}}),
        ("a training seed of 2**32", {"train": {"seed": 2**32}}),
        ("duplicate reviewers", {"review": {"reviewers": ["alice", "alice", "bob"]}}),
        ("an empty reviewer name", {"review": {"reviewers": ["", "bob"]}}),
        ("reviewer names that differ only in spaces", {"review": {"reviewers": ["alice", "alice ", "bob"]}}),
        ("an unknown review TTS", {"review": {"tts": "nosuchtts"}}),
        (
            "an LLM judge without an endpoint",
            {
                "eval": {
                    "baselines": ["base={model}", "draft+pipecat"],
                    "judge": {"kind": "rubric"},
                    "llm_judge": {"kind": "llm"},
                }
            },
        ),
        (
            "the headline judge an LLM without an endpoint",
            {"eval": {"baselines": ["base={model}", "draft+pipecat"], "judge": {"kind": "llm"}}},
        ),
        (
            "an LLM judge with an endpoint and no model",
            {
                "eval": {
                    "baselines": ["base={model}", "draft+pipecat"],
                    "judge": {"kind": "rubric"},
                    "llm_judge": {"kind": "llm", "endpoints": ["http://127.0.0.1:9/v1"]},
                }
            },
        ),
        ("no baselines", {"eval": {"baselines": [], "judge": {"kind": "rubric"}}}),
        (
            "a baseline that is not a model",
            {"eval": {"baselines": ["base=/no/such/model", "draft+pipecat"], "judge": {"kind": "rubric"}}},
        ),
        (
            "a baseline spec that is junk",
            {"eval": {"baselines": ["x=+++", "draft+pipecat"], "judge": {"kind": "rubric"}}},
        ),
        ("generation seeds [-1]", {"generation": {"seeds": [-1], "max_new_tokens": 12}}),
        ("generation seeds [2**32]", {"generation": {"seeds": [2**32], "max_new_tokens": 12}}),
        ("generation seeds [1e20]", {"generation": {"seeds": [1e20], "max_new_tokens": 12}}),
        ("a review seed of -1", {"review": {"seed": -1}}),
        ("a review seed of 1e20", {"review": {"seed": 1e20}}),
        ("a data seed of -1", {"data": {"source": "builtin", "limit": 2, "seed": -1}}),
        ("a training model that does not exist", {"train": {"model": "/no/such/model"}}),
        ("more reviewers per pair than reviewers", {"review": {"overlap": 9}}),
        ("a review sample of 10**9", {"review": {"sample": 10**9}}),
        ("thresholds.win_rate 1.5", {"thresholds": {"win_rate": 1.5}}),
        ("a training max_length of 1", {"train": {"max_length": 1}}),
    ]:
        battery.case(ERRORS, f"run config: {label}", bad_config(**sections))

    for label, text in [
        ("a YAML list", "- a\n- b\n"),
        ("YAML with a tab", "data:\n\tlimit: 2\n"),
        ("an unknown section", "nosuch: {a: 1}\n"),
        ("a number", "42\n"),
        ("a NUL byte", "data: {limit: 2}\n\x00\n"),
    ]:

        def yaml_case(text: str = text) -> tuple[bool, str]:
            config = root / f"cfg{next(counter)}.yaml"
            config.write_text(text)
            return user_error(cli("run", config, "--out", root / f"never{next(counter)}"))

        battery.case(ERRORS, f"run config: {label}", yaml_case)

    # wrong or unclear: --out paths, the report
    def run_out(make: Callable[[Path], Path], any_of) -> Callable:
        def check() -> tuple[bool, str]:
            here = root / f"outcase{next(counter)}"
            here.mkdir()
            out = make(here)
            before = snapshot(here)
            config = write_config(root / f"{here.name}.yaml", run_settings(model, data={"source": str(broken)}))
            ran = cli("run", config, "--out", out)
            return also(unchanged(before), user_error(ran, strict=False, any_of=any_of))

        return check

    battery.case(
        UNCLEAR,
        "run --out an existing file says so",
        run_out(
            lambda h: (h / "results.txt").write_text("mine\n") and h / "results.txt",
            ("folder", "director", "not a dir", "is a file"),
        ),
    )
    battery.case(
        UNCLEAR,
        "run --out a symlink loop says so",
        run_out(lambda h: (h / "ring").symlink_to(h / "ring") or h / "ring", ("loop", "symbolic", "symlink")),
    )
    battery.case(
        UNCLEAR,
        "run --out below a file says so",
        run_out(
            lambda h: (h / "f").write_text("x") and h / "f" / "run", ("folder", "director", "not a dir", "is a file")
        ),
    )

    def report_without(removed: str) -> Callable:
        def check() -> tuple[bool, str]:
            target, _ = copy(0)
            shutil.rmtree(target / removed)
            ran = cli("report", target)
            if ran.code == 2:
                return user_error(ran, any_of=(removed,))
            ok, why = succeeded(ran)
            if not ok:
                return ok, why
            text = (
                ran.err + ran.out + (target / "report.md").read_text(errors="replace")
                if (target / "report.md").is_file()
                else ran.err + ran.out
            )
            said = re.search(
                rf"{removed}\S*[^\n]{{0,80}}(missing|absent|not found|no "
                rf"such|gone|deleted|removed)|(\bno|missing|without)\s+(the\s+)?{removed}",
                text,
                re.I,
            )
            return bool(said), "the report says so" if said else f"the report says nothing of the missing {removed}/"

        return check

    battery.case(UNCLEAR, "report with eval/ missing says so", report_without("eval"))
    battery.case(UNCLEAR, "report with review/ missing says so", report_without("review"))

    def report_broken_pairs() -> tuple[bool, str]:
        target, _ = copy(0)
        pairs = target / "eval" / "pairs.jsonl"
        pairs.write_text(pairs.read_text()[: len(pairs.read_text()) // 2])
        ran = cli("report", target)
        return user_error(ran) if ran.code != 0 else (False, "a truncated eval/pairs.jsonl was reported as if whole")

    battery.case(UNCLEAR, "report with a truncated eval/pairs.jsonl says so", report_broken_pairs)
    battery.case(ERRORS, "report on a folder that is not a run", lambda: user_error(cli("report", root / "tiny-llama")))
    battery.case(ERRORS, "report on a file", lambda: user_error(cli("report", broken)))

    # security: the run's files that hold review tokens
    battery.case(SECURITY, "run: the review database is owner-only", lambda: owner_only(base / db_name))
    battery.case(
        SECURITY,
        "run: no file of the run holding a review token is readable by others",
        lambda: no_secret_world_readable(base, base / db_name),
    )


def _pair_ids(db: Path) -> set[str]:
    try:
        connection = sqlite3.connect(str(db))
        try:
            return {row[0] for row in connection.execute("SELECT id FROM pairs")}
        finally:
            connection.close()
    except sqlite3.DatabaseError:
        return set()


def _events_in(db: Path) -> set[str]:
    return db_events(db)[0] or set()


# ------------------------------------------------------------------------------------------------------------
# What starts a server or loads a model file: subprocesses


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_process(args: list[str], *, seconds: float = 60, probe: bool = True) -> tuple[Ran, bool]:
    """Start ``voicetune ARGS`` (a server), wait until it listens (``probe``), exits or ``seconds`` pass, then
    stop it (SIGINT, as Ctrl-C). Returns what it printed and whether it was still running (serving)."""
    port = int(args[args.index("--port") + 1]) if "--port" in args and probe else None
    host = str(args[args.index("--host") + 1]) if "--host" in args else "127.0.0.1"
    host = "::1" if ":" in host else "127.0.0.1"  # where a server bound to it (or to every interface) answers
    process = subprocess.Popen(
        [sys.executable, "-m", "voicetune.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    listening = False
    while time.perf_counter() - started < seconds and process.poll() is None:
        if port is not None:
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                listening = True
        if listening:
            time.sleep(0.5)
            break
        time.sleep(0.25)
    running = process.poll() is None
    if running:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    else:
        out, err = process.communicate()
    return Ran(process.returncode if not running else "serving", out, err, time.perf_counter() - started), running


def process_cases(battery: Battery, work: Path) -> None:
    print("servers and model files (subprocesses)", flush=True)
    folder = work / "process"
    folder.mkdir()
    db, _ = make_review_db(folder / "review")
    endpoint = ["--backend", "endpoint:http://127.0.0.1:9/v1"]
    jobs: list[tuple[str, str, Callable[[], tuple[bool, str]]]] = []

    def warns(args: list[str]) -> Callable:
        def check() -> tuple[bool, str]:
            ran, running = serve_process(args)
            if not running:
                if ran.code == 2:
                    return user_error(ran, any_of=("host", "0.0.0.0", "::", "interface", "network"))
                return False, f"did not start: exit {ran.code}: {one_line(ran.err[-200:])}"
            said = re.search(r"warn", ran.err, re.I)
            return bool(said), "warned" if said else "served on every interface without a warning: " + one_line(
                ran.err[-160:]
            )

        return check

    for host in ("0.0.0.0", "::"):
        jobs.append(
            (
                SECURITY,
                f"serve --host {host} warns",
                warns(["serve", "x", *endpoint, "--host", host, "--port", str(free_port())]),
            )
        )
        if host == "0.0.0.0":
            jobs.append(
                (
                    SECURITY,
                    f"review serve --host {host} warns",
                    warns(["review", "serve", "--db", db, "--host", host, "--port", str(free_port())]),
                )
            )

    def port_in_use(args: Callable[[int], list[str]]) -> Callable:
        def check() -> tuple[bool, str]:
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen(1)
                port = taken.getsockname()[1]
                ran, running = serve_process(args(port), seconds=60, probe=False)
            if running:
                return False, "still running on a port in use"
            if re.search(r"serving", ran.err, re.I):
                return False, f"said 'serving' first, then exit {ran.code}"
            return user_error(ran, mentions=(str(port),))

        return check

    jobs.append(
        (
            UNCLEAR,
            "serve on a port in use: one line, exit 2, never 'serving'",
            port_in_use(lambda p: ["serve", "x", *endpoint, "--port", str(p)]),
        )
    )
    jobs.append(
        (
            UNCLEAR,
            "review serve on a port in use: one line, exit 2, never 'serving'",
            port_in_use(lambda p: ["review", "serve", "--db", db, "--port", str(p)]),
        )
    )

    models = folder / "models"
    models.mkdir()
    (models / "empty.gguf").write_bytes(b"")
    (models / "text.gguf").write_text("this is not a model\n" * 100)
    (models / "magic-only.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 4096)
    (models / "folder.gguf").mkdir()
    try:
        from voicetune.models.loading import embedded_gguf

        real = embedded_gguf("smollm2-135m")
        with open(real, "rb") as source:
            (models / "truncated.gguf").write_bytes(source.read(2_000_000))
    except Exception:  # no embedded model here: the case is skipped
        pass
    for name, label in [
        ("empty.gguf", "an empty .gguf"),
        ("text.gguf", "a text file named .gguf"),
        ("magic-only.gguf", "a .gguf with only the magic"),
        ("truncated.gguf", "a truncated .gguf (the first 2 MB of the real one)"),
        ("folder.gguf", "a folder named .gguf"),
    ]:

        def start(name: str = name) -> tuple[bool, str]:
            if not (models / name).exists():
                raise Skip("no embedded model to truncate")
            ran, running = serve_process(["serve", models / name, "--port", str(free_port())], seconds=90)
            if running:
                return False, "served a model file that is not one"
            return user_error(ran, mentions=(name,))

        jobs.append((ERRORS, f"serve {label}", start))
    jobs = [job for job in jobs if battery.wanted(job[0], job[1])]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda job: _timed(job[2]), jobs))
    for (cls, name, _), (outcome, seconds) in zip(jobs, outcomes, strict=False):
        if isinstance(outcome, Exception):
            battery.case(cls, name, raises(outcome))
        else:
            battery.record(cls, name, outcome[0], outcome[1], seconds)


def _timed(check: Callable) -> tuple[object, float]:
    started = time.perf_counter()
    try:
        return check(), time.perf_counter() - started
    except Exception as error:
        return error, time.perf_counter() - started


# ------------------------------------------------------------------------------------------------------------


def print_summary(summary: dict, seconds: float) -> None:
    print()
    print(f"{'class':<22} {'cases':>6} {'passed':>7} {'failed':>7} {'errors':>7}")
    for cls, row in summary["classes"].items():
        print(f"{cls:<22} {row['cases']:>6} {row['passed']:>7} {row['failed']:>7} {row['errors']:>7}")
    total = summary["total"]
    print(
        f"{'total':<22} {total['cases']:>6} {total['passed']:>7} {total['failed']:>7} {total['errors']:>7}   "
        f"({seconds:.0f} s)"
    )
    for cls, row in summary["classes"].items():
        if row["failing"]:
            print(f"\n{cls}: failing")
            for item in row["failing"]:
                print(f"  - {item['name']}: {item['reason']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json", type=Path, help="also write the counts, the failing cases and every case's verdict here"
    )
    parser.add_argument("--only", help="only the cases whose 'class: name' matches this regular expression")
    parser.add_argument(
        "--skip-real", action="store_true", help="skip the cases on the real embedded model (llama.cpp)"
    )
    parser.add_argument(
        "--skip-run", action="store_true", help="skip `run` and `report` (they need one tiny training run, about 40 s)"
    )
    parser.add_argument(
        "--skip-processes", action="store_true", help="skip the subprocess cases (servers starting, model files)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args()

    import voicetune

    here = str(Path(voicetune.__file__).resolve().parent)
    child = subprocess.run(
        [sys.executable, "-c", "import voicetune; print(voicetune.__file__)"], capture_output=True, text=True
    ).stdout.strip()
    if str(Path(child).resolve().parent) != here:
        print(f"the CLI subprocesses import {child}, this process {here}: set PYTHONPATH for both", file=sys.stderr)
        return 1
    print(f"voicetune from {here}", flush=True)
    battery = Battery(args.only, verbose=not args.quiet)
    work = Path(tempfile.mkdtemp(prefix="voicetune-hostile-"))
    started = time.perf_counter()
    sections = [
        ("speak", lambda: speak_cases(battery)),
        ("overload", lambda: overload_cases(battery)),
        ("review app", lambda: review_app_cases(battery, work)),
        ("review cli", lambda: review_cli_cases(battery, work)),
        ("export", lambda: export_cases(battery, work)),
        ("simulate", lambda: simulate_cases(battery, work)),
    ]
    if not args.skip_processes:
        sections.append(("processes", lambda: process_cases(battery, work)))
    if not args.skip_real:
        sections.append(("real model", lambda: real_speak_cases(battery)))
    if not args.skip_run:
        sections.append(("run", lambda: run_cases(battery, work)))
    try:
        for name, section in sections:
            section_started = time.perf_counter()
            try:
                section()
            except (Exception, SystemExit) as error:  # a section that cannot set up: its cases are missing, say so
                why = Skip(f"{type(error).__name__}: {one_line(str(error), 200)}")
                battery.case(ERRORS, f"[{name}: the battery could not set this section up]", raises(why))
            battery.notes.setdefault("section_seconds", {})[name] = round(time.perf_counter() - section_started, 1)
    finally:
        if args.keep:
            print(f"scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    summary = battery.summary()
    print_summary(summary, seconds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "voicetune": here,
                    "seconds": round(seconds, 1),
                    **summary,
                    "notes": battery.notes,
                    "cases": [asdict(r) for r in battery.results],
                },
                indent=1,
                ensure_ascii=False,
            )
            + "\n"
        )
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
