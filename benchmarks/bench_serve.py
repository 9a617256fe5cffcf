"""Latency of the tuned voice as a voice pipeline sees it: time to the first spoken chunk (the first sentence
a TTS can start on) and to the whole response, per backend, on built-in and τ-bench drafts.

    .venv/bin/python benchmarks/bench_serve.py [--tuned runs/default/train/model] [--turns 20] [--threads 2]

Rows: llama.cpp on the tuned model exported to GGUF (q4_k_m and q8_0) cold, and with the prompt cache brought up
to date while the LLM writes (``Voice.prepare`` / ``POST /v1/prepare``, what the Pipecat processor does: the
request then evaluates only the prompt's tail), transformers on the merged model,
llama.cpp with ``--best-of 4`` (the first chunk waits for four candidates and the scorer), the same through
``voicetune serve`` over HTTP (the server's own cost), and Pipecat's rule-based formatter on the draft (what
voice agents run there today). Every row runs the code it measures: ``voicetune.serve.voice.Voice`` (and
``voicetune.serve.app`` for the HTTP row), the exporter of ``voicetune export``. Each backend answers one
warm-up request first (model load and first-call costs are not a turn's latency); the drafts differ from
request to request, so llama.cpp's prompt cache does not help. Measure on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def workloads(turns: int) -> dict[str, list]:
    """The built-in test drafts and, when ../shared is there, τ-bench airline drafts (the first ``turns`` of each)."""
    from voicetune.data import builtin_turns, import_transcripts

    found = {"built-in": [t for t in builtin_turns("test") if t.draft][:turns]}
    tau = sorted((SHARED / "tau-bench").glob("*airline*.json")) if (SHARED / "tau-bench").is_dir() else []
    if tau:
        found["τ-bench"] = [t for t in import_transcripts(tau[0], "tau-bench") if t.draft][:turns]
    else:
        print(f"({SHARED / 'tau-bench'} is absent: built-in drafts only)", file=sys.stderr)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure_voice(voice, turns, prepared: bool = False) -> tuple[list[float], list[float], list[int]]:
    """Seconds to the first chunk and to the end, and the chunk count, for each turn (warm-up excluded).
    ``prepared``: the voice's prompt cache was brought up to date with the conversation and the draft before
    the request (what ``Voice.prepare`` and the Pipecat processor do while the LLM writes; not timed)."""
    from voicetune.serve.voice import Spoken

    list(voice.stream(turns[0], seed=999))  # warm-up
    first, full, chunks = [], [], []
    for index, turn in enumerate(turns):
        if prepared:
            voice.prepare(turn)
        started = time.perf_counter()
        first_at, count = None, 0
        for item in voice.stream(turn, seed=index):
            if not isinstance(item, Spoken):
                count += 1
                first_at = first_at if first_at is not None else time.perf_counter() - started
        full.append(time.perf_counter() - started)
        first.append(first_at if first_at is not None else full[-1])
        chunks.append(count)
    return first, full, chunks


def measure_http(voice, turns, prepared: bool = False) -> tuple[list[float], list[float], list[int]]:
    """The same through ``voicetune serve``'s /v1/speak with streaming, over a local socket (``prepared``:
    after an untimed /v1/prepare with the conversation and the draft)."""
    import socket
    import threading

    import httpx
    import uvicorn

    from voicetune.serve.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(voice), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/speak"

    def one(turn, seed):
        body = {
            "history": [m.model_dump() for m in turn.history],
            "draft": turn.draft,
            "facts": turn.facts,
            "stream": True,
            "seed": seed,
        }
        if prepared:
            httpx.post(
                url.replace("/speak", "/prepare"), json={"history": body["history"], "draft": turn.draft}, timeout=120
            )
        started, first_at, count = time.perf_counter(), None, 0
        with httpx.stream("POST", url, json=body, timeout=120) as reply:
            for line in reply.iter_lines():
                if line.startswith("event: chunk"):
                    count += 1
                    first_at = first_at if first_at is not None else time.perf_counter() - started
        total = time.perf_counter() - started
        return (first_at if first_at is not None else total), total, count

    try:
        one(turns[0], 999)
        rows = [one(turn, index) for index, turn in enumerate(turns)]
    finally:
        server.should_exit = True
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def measure_formatter(turns) -> list[float]:
    """Pipecat's VoiceFormatter on each draft (the whole response at once: its first chunk is its last)."""
    from loguru import logger

    logger.disable("pipecat")
    from pipecat.utils.text.transforms.voice_formatter import VoiceFormatter

    formatter = VoiceFormatter()

    async def run() -> list[float]:
        await formatter(turns[0].draft, "sentence")
        seconds = []
        for turn in turns:
            started = time.perf_counter()
            await formatter(turn.draft, "sentence")
            seconds.append(time.perf_counter() - started)
        return seconds

    return asyncio.run(run())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tuned",
        default=str(ROOT / "runs" / "default" / "train" / "model"),
        help="the merged tuned model (voicetune run's train/model)",
    )
    parser.add_argument("--turns", type=int, default=20, help="drafts per workload")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every backend")
    parser.add_argument(
        "--out", default=str(ROOT / "runs" / "bench_serve"), help="where the GGUF exports and the figures go"
    )
    parser.add_argument("--skip", default="", help="comma-separated rows to skip (transformers, best-of, http, q8_0)")
    args = parser.parse_args()
    from voicetune.serve.export import export_gguf
    from voicetune.serve.voice import load_voice
    from voicetune.threads import apply_threads

    apply_threads(args.threads)
    tuned = Path(args.tuned)
    if not (tuned / "config.json").is_file():
        sys.exit(f"{tuned}: no tuned model (run `make demo` or `voicetune run` first, or pass --tuned)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    sizes, ggufs = {}, {}
    for quant in ("q4_k_m", "q8_0", "f16"):
        path = out / f"tuned-{quant}.gguf"
        if not path.is_file():
            export_gguf(str(tuned), path, quant, threads=args.threads, log=lambda m: print(m, file=sys.stderr))
        sizes[quant], ggufs[quant] = path.stat().st_size, path
    print("GGUF sizes: " + ", ".join(f"{q} {b / 1e6:.1f} MB" for q, b in sizes.items()))

    rows = []
    loads = workloads(args.turns)
    setups = [
        ("llama.cpp q4_k_m", str(ggufs["q4_k_m"]), "llama.cpp", 1, "voice"),
        ("llama.cpp q4_k_m, prepared while the LLM writes", str(ggufs["q4_k_m"]), "llama.cpp", 1, "voice+prepared"),
    ]
    if "q8_0" not in skip:
        setups.append(("llama.cpp q8_0", str(ggufs["q8_0"]), "llama.cpp", 1, "voice"))
    if "transformers" not in skip:
        setups.append(("transformers (fp32)", str(tuned), "transformers", 1, "voice"))
    if "best-of" not in skip:
        setups.append(("llama.cpp q4_k_m, --best-of 4", str(ggufs["q4_k_m"]), "llama.cpp", 4, "voice"))
    if "http" not in skip:
        setups.append(("llama.cpp q4_k_m via voicetune serve (HTTP)", str(ggufs["q4_k_m"]), "llama.cpp", 1, "http"))
        setups.append(
            (
                "llama.cpp q4_k_m via voicetune serve (HTTP), prepared",
                str(ggufs["q4_k_m"]),
                "llama.cpp",
                1,
                "http+prepared",
            )
        )
    for label, model, backend, best_of, how in setups:
        voice = load_voice(model, backend, best_of=best_of, threads=args.threads)
        for name, turns in loads.items():
            measure = measure_http if how.startswith("http") else measure_voice
            first, full, chunks = measure(voice, turns, prepared=how.endswith("+prepared"))
            rows.append(
                {
                    "backend": label,
                    "drafts": name,
                    "n": len(turns),
                    "first_p50": statistics.median(first),
                    "first_p90": percentile(first, 0.9),
                    "full_p50": statistics.median(full),
                    "full_p90": percentile(full, 0.9),
                    "chunks": statistics.mean(chunks),
                }
            )
            print(f"  {label}, {name}: first chunk p50 {rows[-1]['first_p50'] * 1000:.0f} ms", file=sys.stderr)
        del voice
    for name, turns in loads.items():
        seconds = measure_formatter(turns)
        rows.append(
            {
                "backend": "Pipecat VoiceFormatter (rules)",
                "drafts": name,
                "n": len(turns),
                "first_p50": statistics.median(seconds),
                "first_p90": percentile(seconds, 0.9),
                "full_p50": statistics.median(seconds),
                "full_p90": percentile(seconds, 0.9),
                "chunks": 1,
            }
        )

    print(f"\n{args.threads} threads, {args.turns} drafts per workload, median (p90) over requests after one warm-up\n")
    print("| backend | drafts | first chunk p50 (p90) | whole response p50 (p90) | chunks |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['backend']} | {row['drafts']} | {_ms(row['first_p50'])} ({_ms(row['first_p90'])}) | "
            f"{_ms(row['full_p50'])} ({_ms(row['full_p90'])}) | {row['chunks']:.1f} |"
        )
    target = [
        r
        for r in rows
        if r["backend"].startswith("llama.cpp q4_k_m") and "best-of" not in r["backend"] and "HTTP" not in r["backend"]
    ]
    for row in target:
        print(
            f"\ntarget (llama.cpp, first chunk ≤ 300 ms at the median), {row['backend']}, {row['drafts']}: "
            f"{row['first_p50'] * 1000:.0f} ms -> "
            f"{'met' if row['first_p50'] <= 0.3 else 'not met'} ({row['first_p50'] / 0.3:.2f}x the budget)"
        )
    (out / "latency.json").write_text(
        json.dumps({"threads": args.threads, "sizes": sizes, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
