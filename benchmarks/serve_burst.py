"""A burst of requests beyond the speak server's queue: how many are answered, how many are turned away with 503
and ``Retry-After``, and how long ``/health`` takes while the queue is full.

    .venv/bin/python benchmarks/serve_burst.py [--queue 8] [--burst 24] [--delay 0.2] [--real]

The server is ``voicetune.serve.app`` under uvicorn in a thread, on a free port of 127.0.0.1, reached over TCP with
httpx. The voice is a stub that takes ``--delay`` seconds a generation (reproducible: the figures measure the server,
not a model), or with ``--real`` the embedded default model on llama.cpp. The burst is ``--burst`` concurrent
``POST /v1/speak`` (every third one streamed: streams take a place in the queue too), sent while ``/health`` is asked
every 50 ms. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections import Counter

DRAFT = "The change fee is **$75.00** and your new flight departs at 7:45 AM. Shall I book it?"
SPOKEN = "Your new flight leaves at seven forty-five. The change fee is seventy-five dollars. Want me to book it?"


class Sleepy:
    """A stub backend: each generation takes ``delay`` seconds (the voice's lock makes them one at a time)."""

    def __init__(self, delay: float):
        self.delay = delay

    def generate(self, prompts, sampling, on_batch=None):
        time.sleep(self.delay)
        return [SPOKEN] * len(prompts)

    def stream(self, messages, sampling):
        words = SPOKEN.split(" ")
        for word in words:
            time.sleep(self.delay / len(words))
            yield word + " "


def start(app) -> tuple[str, object]:
    """uvicorn serving ``app`` in a thread on a free port: (base URL, server)."""
    import uvicorn

    from voicetune.web import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


async def burst(base: str, count: int) -> tuple[list, list[tuple[int, float]]]:
    """``count`` concurrent speak requests, and /health's (status, latency in s) every 50 ms until they are all
    answered."""
    import httpx

    limits = httpx.Limits(max_connections=count + 8, max_keepalive_connections=count + 8)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:

        async def speak(index: int):
            body = {"draft": DRAFT, "stream": index % 3 == 0}
            started = time.perf_counter()
            reply = await client.post("/v1/speak", json=body)
            return reply.status_code, reply.headers.get("retry-after"), time.perf_counter() - started

        health: list[tuple[int, float]] = []
        tasks = [asyncio.create_task(speak(i)) for i in range(count)]
        while not all(task.done() for task in tasks):
            started = time.perf_counter()
            reply = await client.get("/health")
            health.append((reply.status_code, time.perf_counter() - started))
            await asyncio.sleep(0.05)
        return [task.result() for task in tasks], health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, default=8, help="the server's queue depth (voicetune serve --queue)")
    parser.add_argument("--burst", type=int, default=None, help="concurrent requests (default: 3x the queue)")
    parser.add_argument("--delay", type=float, default=0.2, help="the stub's seconds per generation")
    parser.add_argument(
        "--real", action="store_true", help="the embedded default model on llama.cpp instead of the stub"
    )
    args = parser.parse_args()
    count = args.burst or 3 * max(args.queue, 1)

    from voicetune.serve.app import create_app
    from voicetune.serve.voice import Voice, load_voice, make_turn

    if args.real:
        voice = load_voice("smollm2-135m", "llama.cpp", max_new_tokens=48, temperature=0)
        voice.speak(make_turn([], DRAFT))  # warm-up: loading is not a burst's cost
        kind = "the embedded model (llama.cpp, 48 new tokens)"
    else:
        voice, kind = Voice(Sleepy(args.delay), name="stub"), f"a stub voice ({args.delay:g} s a generation)"
    base, server = start(create_app(voice, "burst", queue=args.queue))
    started = time.perf_counter()
    results, health = asyncio.run(burst(base, count))
    wall = time.perf_counter() - started
    server.should_exit = True

    statuses = Counter(status for status, _, _ in results)
    busy = [(retry, seconds) for status, retry, seconds in results if status == 503]
    answered = [seconds for status, _, seconds in results if status == 200]
    print(
        f"voice: {kind}; queue {args.queue} (1 generating + {args.queue} waiting); burst of {count} concurrent POST "
        "/v1/speak "
        f"(every third streamed); {wall:.2f} s in all"
    )
    print(
        f"answered (200): {statuses[200]}" + (f", in {min(answered):.2f} to {max(answered):.2f} s" if answered else "")
    )
    retries = sorted({int(retry) for retry, _ in busy if retry is not None})
    print(
        f"turned away (503): {len(busy)}, {sum(retry is not None for retry, _ in busy)} with Retry-After"
        + (f" ({', '.join(map(str, retries))} s)" if retries else "")
        + (f", answered within {max(seconds for _, seconds in busy) * 1000:.0f} ms" if busy else "")
    )
    print(f"other statuses: {dict((s, n) for s, n in statuses.items() if s not in (200, 503)) or 'none'}")
    seconds = [latency for _, latency in health]
    print(
        f"/health during the burst: {len(health)} checks, statuses {dict(Counter(status for status, _ in health))}, "
        f"median {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
