"""Reading batches for blind readers, from runs/listener/pool_full.jsonl (see build_pool.py).

Run: .venv/bin/python scripts/listener/make_batches.py --dev-readers 5 --test-readers 3 [--per-batch 12]

Each context is shown once with its responses shuffled under neutral names (r1, r2, ...): readers never see a
system's name, and which response is which is kept in runs/listener/batches/key.json. Dev contexts go to the dev
readers, test contexts to the test readers (nobody reads both halves); 10% of each half goes to a second reader
of the same half, for agreement.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def render(ctx: dict, items: list[tuple[str, str]]) -> str:
    lines = [f"=== CONTEXT {ctx['id']} (domain: {ctx['domain']}) ==="]
    if ctx.get("system"):
        lines.append(f"Agent persona: {ctx['system'][:300]}")
    lines.append("Conversation so far (what was said on the phone):")
    for m in ctx["history"][-6:]:
        lines.append(f"  {'Caller' if m['role'] == 'user' else 'Agent'}: {m['text']}")
    lines.append(
        "The agent's written draft for this turn (what the agent knows and means to convey; NOT heard by the caller):"
    )
    lines.extend("  | " + line for line in (ctx.get("draft") or "").splitlines() if line.strip())
    lines.append("Responses (each is what the caller would hear, read aloud by a TTS):")
    for name, text in items:
        lines.append(f"  [{name}] {text}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("runs/listener"))
    parser.add_argument("--dev-readers", type=int, default=5)
    parser.add_argument("--test-readers", type=int, default=3)
    parser.add_argument("--per-batch", type=int, default=12)
    parser.add_argument("--double", type=float, default=0.1)
    parser.add_argument(
        "--pool", default="pool_full.jsonl", help="the pool file under --work (pool_static.jsonl for the first wave)"
    )
    parser.add_argument(
        "--first-reader", type=int, default=1, help="number readers from here (a later wave's readers are new people)"
    )
    parser.add_argument(
        "--skip-read", action="store_true", help="leave out contexts already in key.json (read in an earlier wave)"
    )
    args = parser.parse_args()
    rows = [
        json.loads(line) for line in (args.work / args.pool).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    key_path = args.work / "batches" / "key.json"
    earlier: dict = json.loads(key_path.read_text()) if key_path.exists() else {}
    if args.skip_read:
        rows = [r for r in rows if r["context"]["id"] not in earlier]
    by_context: dict[str, dict] = {}
    for row in rows:
        entry = by_context.setdefault(row["context"]["id"], {"context": row["context"], "items": []})
        entry["items"].append(row["item"])
    rng = random.Random(7)
    key: dict[str, dict[str, str]] = dict(earlier)
    rendered: dict[str, str] = {}
    for cid, entry in by_context.items():
        items = list(entry["items"])
        rng.shuffle(items)
        key[cid] = {f"r{i + 1}": item["id"] for i, item in enumerate(items)}
        rendered[cid] = render(entry["context"], [(f"r{i + 1}", item["response"]) for i, item in enumerate(items)])
    out = args.work / "batches"
    out.mkdir(parents=True, exist_ok=True)
    assignment: dict[str, list[str]] = {}
    for half, count, prefix in (("dev", args.dev_readers, "D"), ("test", args.test_readers, "T")):
        ids = sorted(c for c, e in by_context.items() if e["context"]["meta"]["pool_split"] == half)
        rng.shuffle(ids)
        readers = [f"{prefix}{i + args.first_reader}" for i in range(count)]
        for i, cid in enumerate(ids):
            assignment.setdefault(readers[i % count], []).append(cid)
        doubles = ids[: int(len(ids) * args.double)]
        for i, cid in enumerate(doubles):
            second = readers[(ids.index(cid) + 1 + i % (count - 1)) % count] if count > 1 else readers[0]
            if cid not in assignment[second]:
                assignment[second].append(cid)
    for reader, ids in assignment.items():
        folder = out / reader
        folder.mkdir(exist_ok=True)
        for b in range(0, len(ids), args.per_batch):
            chunk = ids[b : b + args.per_batch]
            (folder / f"batch_{b // args.per_batch:02d}.txt").write_text(
                "\n".join(rendered[c] for c in chunk), encoding="utf-8"
            )
        n_items = sum(len(by_context[c]["items"]) for c in ids)
        print(
            reader,
            len(ids),
            "contexts",
            n_items,
            "responses",
            (len(ids) + args.per_batch - 1) // args.per_batch,
            "batches",
        )
    (out / "key.json").write_text(json.dumps(key), encoding="utf-8")
    assignment_path = out / "assignment.json"
    previous = json.loads(assignment_path.read_text()) if assignment_path.exists() else {}
    assignment_path.write_text(json.dumps({**previous, **assignment}), encoding="utf-8")


if __name__ == "__main__":
    main()
