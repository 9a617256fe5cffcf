"""The review app under load: R reviewers voting at once over real HTTP against `voicetune review serve` in its
own process (uvicorn, one worker, SQLite in WAL mode).

Run: .venv/bin/python benchmarks/bench_review.py [--reviewers 20] [--votes 50]

Each reviewer is a thread with its own HTTP client doing what a browser does per item: GET the next item
(a redirect, then the page), POST the vote (a redirect back). Every tenth vote is posted twice with the same
event id, as a double click or a retried request would. Prints votes per second, the latency of a vote post
(p50, p95, max) and of a page, and checks the database: votes stored, duplicates, lost votes.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _hidden(page: str) -> dict:
    form = page.split('id="vote"')[1].split("</form>")[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def main() -> None:
    import httpx

    from voicetune.records import Message, Pair, write_records
    from voicetune.review.create import create_review_set
    from voicetune.review.store import ReviewStore

    parser = argparse.ArgumentParser()
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--votes", type=int, default=50)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_review_"))
    pairs = [
        Pair(
            id=f"p{i}",
            domain="d",
            history=[Message(role="user", text=f"Question {i}?")],
            response_a=f"Answer {i}.",
            response_b=f"Another answer {i}.",
            system_a="x",
            system_b="y",
            winner="a",
        )
        for i in range(args.reviewers * args.votes)
    ]
    write_records(folder / "eval" / "pairs.jsonl", pairs)
    names = [f"r{i:02d}" for i in range(args.reviewers)]
    made = create_review_set(
        folder / "eval", folder / "review.sqlite", names, overlap=1, repeat_share=0.0, engine="browser"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "voicetune.cli", "review", "serve", "--db", str(made.db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        post_ms: list[float] = []
        page_ms: list[float] = []

        def reviewer(name: str) -> int:
            token = made.tokens[name]
            with httpx.Client(base_url=base, timeout=120) as client:
                for n in range(args.votes):
                    start = time.perf_counter()
                    page = client.get(f"/r/{token}", follow_redirects=True).text
                    page_ms.append(1000 * (time.perf_counter() - start))
                    data = {**_hidden(page), "verdict": "120"[n % 3], "seconds": "3"}
                    start = time.perf_counter()
                    response = client.post(f"/r/{token}/vote", data=data)
                    post_ms.append(1000 * (time.perf_counter() - start))
                    if response.status_code != 303:
                        raise RuntimeError(f"vote refused: {response.status_code}")
                    if n % 10 == 0:
                        client.post(f"/r/{token}/vote", data=data)
            return args.votes

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.reviewers) as pool:
            sent = sum(pool.map(reviewer, names))
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    store = ReviewStore(made.db)
    votes = store.votes()
    stored_events = sum(e["kind"] == "vote" for e in store.events())
    distinct = len({(v.reviewer, v.item_id) for v in votes})

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]

    print(
        f"{args.reviewers} reviewers x {args.votes} votes over HTTP on 127.0.0.1, one uvicorn worker, {os.cpu_count()} "
        "cores"
    )
    print(
        f"  votes sent {sent} (+{sent // 10} retried posts), stored {len(votes)}, vote events {stored_events}, "
        f"lost {sent - distinct}, doubled {stored_events - distinct}"
    )
    print(f"  wall {wall:.1f} s: {sent / wall:.0f} votes/s ({sent * 2 / wall:.0f} page+vote requests/s)")
    print(f"  vote post: p50 {pct(post_ms, 50):.0f} ms, p95 {pct(post_ms, 95):.0f} ms, max {max(post_ms):.0f} ms")
    print(f"  item page: p50 {pct(page_ms, 50):.0f} ms, p95 {pct(page_ms, 95):.0f} ms, max {max(page_ms):.0f} ms")


if __name__ == "__main__":
    main()
