"""Make a review set from an eval's judged pairs: sample, assign, order, synthesise, store.

1. **Sample** ``sample`` pairs stratified by domain and comparison (each stratum keeps its share of the
   eval, rounded by largest remainder, at least one where there is room).
2. **Assign** each pair to ``overlap`` reviewers, always the ones with the fewest items so far, so that the
   load is even and each pair gets several independent verdicts (inter-reviewer agreement).
3. **Order** each reviewer's queue at random and show each pair in a random order (response 1 is ``a`` or
   ``b``), recorded per item. A ``repeat_share`` of each reviewer's pairs comes back later in their queue in
   the other order (self-consistency: a reviewer who always prefers slot 1 is caught).
4. **Synthesise** every distinct response once with one :class:`~voicetune.tts.Synthesizer` (one voice, rate
   and loudness for all) and store the audio in the database.

The set is built in ``DB.partial`` and renamed when complete, so a killed ``create`` leaves no half set; a
re-run with the same inputs and voice reuses the audio already synthesised in the partial file.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.progress import track
from voicetune.provenance import digest, hash_file
from voicetune.records import Pair, commit_file, ensure_dir, load_records
from voicetune.review.store import connect, symlink_loop, transaction
from voicetune.tts import Synthesizer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ReviewSet:
    """What ``create`` made: the database, the reviewers' tokens, the admin token and the set's size."""

    db: Path
    tokens: dict[str, str]
    admin_token: str
    pairs: int
    items: int
    engine: str

    def links(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> dict[str, str]:
        return review_links(self.tokens, self.admin_token, host, port)


def base_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The app's address (an IPv6 host in brackets)."""
    return f"http://[{host.strip('[]')}]:{port}" if ":" in host else f"http://{host}:{port}"


def review_links(
    tokens: dict[str, str], admin_token: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> dict[str, str]:
    """Each reviewer's secret link and the admin link (key ``admin``)."""
    base = base_url(host, port)
    links = {name: f"{base}/r/{token}" for name, token in tokens.items()}
    links["admin"] = f"{base}/admin/{admin_token}"
    return links


def comparison_name(pair: Pair) -> str:
    return f"{pair.system_a or 'a'}-vs-{pair.system_b or 'b'}"


def stratified_sample(pairs: Sequence[Pair], n: int | None, seed: int = 0) -> list[Pair]:
    """``n`` pairs, each (domain, comparison) stratum keeping its share of ``pairs`` (largest remainder;
    every stratum gets one while ``n`` allows). All pairs when ``n`` is None or not smaller."""
    if n is None or n >= len(pairs):
        return list(pairs)
    rng = random.Random(seed)
    strata: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for pair in pairs:
        strata[(pair.domain, comparison_name(pair))].append(pair)
    keys = sorted(strata)
    exact = {k: n * len(strata[k]) / len(pairs) for k in keys}
    quota = {
        k: min(len(strata[k]), max(1, math.floor(exact[k])) if n >= len(keys) else math.floor(exact[k])) for k in keys
    }
    while sum(quota.values()) > n:  # every stratum got one but n is small: take back from the largest
        largest = max((k for k in keys if quota[k] > 1), key=lambda k: quota[k] - exact[k])
        quota[largest] -= 1
    for k in sorted(keys, key=lambda k: exact[k] - math.floor(exact[k]), reverse=True):
        if sum(quota.values()) >= n:
            break
        if quota[k] < len(strata[k]):
            quota[k] += 1
    chosen: list[Pair] = []
    for k in keys:
        chosen += rng.sample(strata[k], quota[k])
    return chosen


def assign(
    pair_ids: Sequence[str], reviewers: Sequence[str], overlap: int, repeat_share: float, seed: int = 0
) -> list[tuple[str, int, str, bool, int]]:
    """The queues: rows ``(reviewer, position, pair_id, swapped, showing)``.

    Each pair goes to ``overlap`` distinct reviewers (the least loaded, ties at random); each reviewer's queue
    is shuffled and each item's order drawn at random; ``repeat_share`` of a reviewer's pairs (rounded up,
    when they have two or more) are shown again later in the queue in the other order (``showing`` 2).
    """
    rng = random.Random(seed)
    load: dict[str, list[str]] = {name: [] for name in reviewers}
    for pair_id in pair_ids:
        order = sorted(reviewers, key=lambda name: (len(load[name]), rng.random()))
        for name in order[:overlap]:
            load[name].append(pair_id)
    rows: list[tuple[str, int, str, bool, int]] = []
    for name in reviewers:
        queue = [(pair_id, rng.random() < 0.5, 1) for pair_id in load[name]]
        rng.shuffle(queue)
        repeats = math.ceil(repeat_share * len(queue)) if repeat_share > 0 and len(queue) >= 2 else 0
        for index in sorted(rng.sample(range(len(queue)), repeats), reverse=True):
            pair_id, swapped, _ = queue[index]
            # later in the queue, at least two items on (or at the end), so the first showing is not fresh
            at = rng.randint(min(index + 3, len(queue)), len(queue))
            queue.insert(at, (pair_id, not swapped, 2))
        rows += [
            (name, position, pair_id, swapped, showing) for position, (pair_id, swapped, showing) in enumerate(queue)
        ]
    return rows


def create_review_set(
    eval_dir: str | Path,
    db_path: str | Path,
    reviewers: Sequence[str],
    *,
    sample: int | None = None,
    overlap: int | None = None,
    repeat_share: float = 0.1,
    mode: str = "listen",
    engine: str = "auto",
    seed: int = 0,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> ReviewSet:
    """Build a review set from ``EVAL_DIR/pairs.jsonl`` into ``db_path`` (see the module docstring).

    Args:
        reviewers: distinct names; each gets a secret token.
        sample: how many pairs to review (all when None).
        overlap: reviewers per pair (at most the number of reviewers; default two, or one with one reviewer).
        repeat_share: share of each reviewer's pairs shown twice, in the other order.
        mode: ``listen`` (text hidden until both responses are played to the end) or ``read``.
        engine: the speech engine (``auto``, ``piper``, ``espeak`` or ``browser``; see :mod:`voicetune.tts`).
    """
    eval_dir, db_path = Path(eval_dir), Path(db_path)
    source = eval_dir / "pairs.jsonl" if eval_dir.is_dir() else eval_dir
    if symlink_loop(source):
        raise VoicetuneError(f"{source}: is a symlink loop (the --from folder is a `voicetune eval` output)")
    if not source.is_file():
        raise VoicetuneError(f"{eval_dir}: no pairs.jsonl (the --from folder is a `voicetune eval` output)")
    names = [name.strip() for name in reviewers if name.strip()]
    if not names or len(set(names)) != len(names):
        raise VoicetuneError(f"--reviewers: give distinct names, comma-separated (got {','.join(reviewers)!r})")
    overlap = min(2, len(names)) if overlap is None else overlap
    if not 1 <= overlap <= len(names):
        raise VoicetuneError(f"--overlap: {overlap} reviewers per pair, but there are {len(names)} reviewers")
    if not 0 <= repeat_share <= 1:
        raise VoicetuneError(f"--repeat-share: {repeat_share} is not a share between 0 and 1")
    if mode not in ("listen", "read"):
        raise VoicetuneError(f"--mode: {mode!r} is neither listen nor read")
    if db_path.exists() or db_path.is_symlink():  # a symlink too, even a broken one or a loop: it may name a set
        raise VoicetuneError(
            f"{db_path}: already exists; a review set holds votes, so it is never overwritten (choose another --db)"
        )
    pairs = [p for p in load_records(source, Pair) if p.response_a.strip() and p.response_b.strip()]
    if not pairs:
        raise VoicetuneError(f"{source}: no pairs with two responses")
    chosen = stratified_sample(pairs, sample, seed)
    synthesizer = Synthesizer(engine)
    voice = synthesizer.describe()
    made_from = {
        "pairs": hash_file(source),
        "reviewers": names,
        "sample": sample,
        "overlap": overlap,
        "repeat_share": repeat_share,
        "seed": seed,
        "voice": voice,
    }

    ensure_dir(db_path.parent, for_file=db_path)  # a new folder for the set is made, as for any output
    partial = db_path.with_name(db_path.name + ".partial")
    if partial.exists():
        try:
            db = connect(partial)
            same = (
                json.loads(db.execute("SELECT value FROM meta WHERE key='made_from'").fetchone()["value"]) == made_from
            )
            db.close()
        except Exception:
            same = False
        if not same:
            partial.unlink()
            for suffix in ("-wal", "-shm"):
                Path(str(partial) + suffix).unlink(missing_ok=True)
    db = connect(partial, create=True)
    try:
        with transaction(db):
            db.execute("INSERT OR REPLACE INTO meta VALUES ('made_from', ?)", (json.dumps(made_from),))
        texts = sorted({text for pair in chosen for text in (pair.response_a, pair.response_b)})
        audio_key = {text: hashlib.sha256((digest(voice) + "\0" + text).encode()).hexdigest() for text in texts}
        have = {row["sha"] for row in db.execute("SELECT sha FROM audio")}
        todo = [text for text in texts if audio_key[text] not in have]
        if synthesizer.engine != "browser" and todo:
            log(f"synthesising {len(todo)} responses with {voice['voice']} ({synthesizer.engine})")
            for text in track(todo, f"speech ({synthesizer.engine})", progress):
                speech = synthesizer.speak(text)
                assert speech is not None  # None only from the browser engine
                with transaction(db):  # one commit per clip: a killed create keeps what it made
                    db.execute(
                        "INSERT OR REPLACE INTO audio VALUES (?, ?, ?, ?, ?)",
                        (audio_key[text], speech.engine, speech.mime, speech.seconds, speech.wav),
                    )
        with_audio = synthesizer.engine != "browser"
        tokens = {name: secrets.token_urlsafe(18) for name in names}
        admin_token = secrets.token_urlsafe(24)
        rows = assign([p.id for p in chosen], names, overlap, repeat_share, seed)
        with transaction(db):
            db.execute("DELETE FROM items")
            db.execute("DELETE FROM pairs")
            db.execute("DELETE FROM reviewers")
            for pair in chosen:
                judge = {"winner": pair.winner, "criteria": pair.criteria or {}} if pair.winner else None
                db.execute(
                    "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        pair.id,
                        pair.domain,
                        comparison_name(pair),
                        pair.system_a,
                        pair.system_b,
                        json.dumps([m.model_dump() for m in pair.history]),
                        pair.response_a,
                        pair.response_b,
                        audio_key[pair.response_a] if with_audio else None,
                        audio_key[pair.response_b] if with_audio else None,
                        json.dumps(judge) if judge else None,
                        pair.meta.get("context_id", pair.id),
                    ),
                )
            db.executemany("INSERT INTO reviewers VALUES (?, ?)", list(tokens.items()))
            db.executemany(
                "INSERT INTO items (reviewer, position, pair_id, swapped, showing) VALUES (?, ?, ?, ?, ?)",
                [(r, pos, pid, int(sw), sh) for r, pos, pid, sw, sh in rows],
            )
            settings = {
                "admin_token": admin_token,
                "secret": secrets.token_hex(32),
                "mode": mode,
                "voice": voice,
                "source": str(source),
                "overlap": overlap,
                "repeat_share": repeat_share,
                "seed": seed,
            }
            for key, value in settings.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    commit_file(partial, db_path, private=True)
    return ReviewSet(
        db=db_path,
        tokens=tokens,
        admin_token=admin_token,
        pairs=len(chosen),
        items=len(rows),
        engine=synthesizer.engine,
    )
