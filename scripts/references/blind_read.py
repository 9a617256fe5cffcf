"""A blind read of held-out turns × systems: batches for readers, then their verdicts as figures.

    # batches: every system's responses (eval response files, one row per turn id), N turns per file of turns
    .venv/bin/python scripts/references/blind_read.py make --work runs/blind23 --readers 4 --per-batch 12 \
        --turns runs/eval-builtin/turns.jsonl:24 --turns runs/eval-tau/turns.jsonl:24 \
        --system tuned=runs/eval-builtin/responses/tuned.jsonl --system tuned=runs/eval-tau/responses/tuned.jsonl ...
    # readers answer each batch_NN.txt with batch_NN.jsonl (scripts/listener/READER_GUIDE.md's format), then:
    .venv/bin/python scripts/references/blind_read.py collect --work runs/blind23

Responses are shuffled under neutral names (r1, r2, ...) per turn; which system wrote what is kept in
``WORK/key.json``, and ``WORK/turns.json`` lists the turns read. ``collect`` writes ``WORK/results.json``: each
system's usable rate (Wilson 95% interval), failure classes, and the win rate of every system against
draft+pipecat and base (a usable response beats an unusable one; two usable ones by the reader's ranking; ties
half), with the turn list.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "listener"))
from make_batches import render  # noqa: E402  (the listener reading's context rendering: one format for readers)

from voicetune.evaluate.stats import wilson_interval  # noqa: E402


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make(args) -> None:
    rng = random.Random(args.seed)
    responses: dict[str, dict[str, str]] = defaultdict(dict)
    for spec in args.system:
        name, _, path = spec.partition("=")
        for row in _rows(Path(path)):
            if row.get("response"):
                responses[name][row["id"]] = row["response"]
    chosen: list[dict] = []
    for spec in args.turns:
        path, _, count = spec.rpartition(":")
        turns = [t for t in _rows(Path(path)) if all(t["id"] in answers for answers in responses.values())]
        chosen += rng.sample(turns, min(int(count), len(turns)))
    key, rendered = {}, {}
    for turn in chosen:
        items = [(name, answers[turn["id"]]) for name, answers in sorted(responses.items())]
        rng.shuffle(items)
        key[turn["id"]] = {f"r{i + 1}": name for i, (name, _) in enumerate(items)}
        rendered[turn["id"]] = render(turn, [(f"r{i + 1}", text) for i, (_, text) in enumerate(items)])
    work = Path(args.work)
    order = list(key)
    rng.shuffle(order)
    for reader in range(args.readers):
        mine = order[reader :: args.readers]
        folder = work / f"R{reader + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        for b in range(0, len(mine), args.per_batch):
            (folder / f"batch_{b // args.per_batch:02d}.txt").write_text(
                "\n".join(rendered[c] for c in mine[b : b + args.per_batch]), encoding="utf-8"
            )
        print(f"R{reader + 1}: {len(mine)} turns")
    (work / "key.json").write_text(json.dumps(key, indent=1), encoding="utf-8")
    (work / "turns.json").write_text(
        json.dumps(
            [{"id": t["id"], "domain": t.get("domain"), "source": (t.get("meta") or {}).get("source")} for t in chosen],
            indent=1,
        ),
        encoding="utf-8",
    )


def _beats(verdicts: dict, ranks: dict, a: str, b: str) -> float:
    """1 when a is preferred to b, 0.5 for a tie, 0 when b is."""
    ua, ub = verdicts[a]["usable"], verdicts[b]["usable"]
    if ua != ub:
        return 1.0 if ua else 0.0
    if not ua:
        return 0.5
    ra, rb = ranks.get(a, 99), ranks.get(b, 99)
    return 0.5 if ra == rb else (1.0 if ra < rb else 0.0)


def collect(args) -> None:
    work = Path(args.work)
    key = json.loads((work / "key.json").read_text())
    usable: dict[str, list[int]] = defaultdict(list)
    failures: dict[str, Counter] = defaultdict(Counter)
    wins: dict[tuple[str, str], list[float]] = defaultdict(list)
    read = 0
    for answer_file in sorted(work.glob("R*/batch_*.jsonl")):
        for row in _rows(answer_file):
            names = key[row["context"]]
            verdicts = {names[r]: v for r, v in row["labels"].items()}
            ranks = {names[r]: i for i, group in enumerate(row["ranking"]) for r in group}
            read += 1
            for system, verdict in verdicts.items():
                usable[system].append(int(bool(verdict["usable"])))
                if not verdict["usable"]:
                    failures[system][verdict.get("failure") or "?"] += 1
            for base in ("draft+pipecat", "base"):
                for system in verdicts:
                    if system != base and base in verdicts:
                        wins[(system, base)].append(_beats(verdicts, ranks, system, base))
    result = {"turns_read": read, "systems": {}, "win_rates": {}}
    for system, values in sorted(usable.items()):
        low, high = wilson_interval(sum(values), len(values))
        result["systems"][system] = {
            "n": len(values),
            "usable_rate": round(sum(values) / len(values), 4),
            "usable_ci": [round(low, 4), round(high, 4)],
            "failures": dict(failures[system]),
        }
    for (system, base), values in sorted(wins.items()):
        result["win_rates"][f"{system} vs {base}"] = {"n": len(values), "win_rate": round(sum(values) / len(values), 4)}
    (work / "results.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{read} turns read")
    for system, f in result["systems"].items():
        print(
            f"  {system:24s} usable {f['usable_rate']:.0%} [{f['usable_ci'][0]:.0%}, {f['usable_ci'][1]:.0%}] of "
            f"{f['n']}  {f['failures']}"
        )
    for pair, f in result["win_rates"].items():
        print(f"  {pair:40s} {f['win_rate']:.0%} of {f['n']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--work", required=True)
    m.add_argument("--turns", action="append", required=True, help="TURNS.jsonl:N (N turns drawn from the file)")
    m.add_argument(
        "--system", action="append", required=True, help="NAME=RESPONSES.jsonl (repeat a name for several files)"
    )
    m.add_argument("--readers", type=int, default=4)
    m.add_argument("--per-batch", type=int, default=12)
    m.add_argument("--seed", type=int, default=23)
    c = sub.add_parser("collect")
    c.add_argument("--work", required=True)
    args = parser.parse_args()
    make(args) if args.command == "make" else collect(args)


if __name__ == "__main__":
    main()
