"""Collect the readers' answers into the packaged listener labels.

Run: .venv/bin/python scripts/listener/collect.py [--work runs/listener] [--out src/voicetune/data/listener]

Writes contexts.jsonl and items.jsonl from the pool files (runs/listener/pool_*.jsonl; a τ-bench context is named
by id only, and its draft and formatted draft are stored as null, rebuilt from ../shared at load time), then reads
runs/listener/batches/READER/batch_NN.jsonl (the readers' answers; see READER_GUIDE.md), maps each
response's neutral name back to its item through key.json, checks every answer, and writes labels.jsonl (one
line per reader and item) and preferences.jsonl (from each reader's ranking of a context's usable responses:
a style preference or tie between two usable responses in different or the same rank group, and a
usable-over-unusable preference for every usable and unusable pair of the context).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

FAILURES = {"invented", "contradiction", "dropped_need", "incoherent", "off_role", "loop", "unspeakable"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("runs/listener"))
    parser.add_argument("--out", type=Path, default=Path("src/voicetune/data/listener"))
    args = parser.parse_args()
    key = json.loads((args.work / "batches" / "key.json").read_text())
    contexts, items = {}, {}
    for pool in sorted(args.work.glob("pool_*.jsonl")):
        for line in pool.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            ctx, item = row["context"], dict(row["item"])
            if ctx["id"] not in key or item["id"] not in set(key[ctx["id"]].values()):
                continue  # not given to any reader
            source = ctx["meta"]["pool_source"]
            contexts[ctx["id"]] = {"id": ctx["id"], "source": source, "split": ctx["meta"]["pool_split"]}
            if source == "tau-bench" and item["system"] in ("draft", "draft+pipecat"):
                item["response"] = None  # third-party text: rebuilt from ../shared at load time
            items[item["id"]] = item
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "contexts.jsonl").write_text("".join(json.dumps(c) + "\n" for c in contexts.values()), encoding="utf-8")
    (args.out / "items.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items.values()), encoding="utf-8"
    )
    print(f"{len(contexts)} contexts, {len(items)} items")
    labels, preferences, problems = [], [], []
    seen: set[tuple[str, str]] = set()
    for answer_file in sorted((args.work / "batches").glob("*/batch_*.jsonl")):
        reader = answer_file.parent.name
        for number, line in enumerate(answer_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{answer_file}:{number}"
            try:
                row = json.loads(line)
                context = row["context"]
                names = key[context]
                given = row["labels"]
            except (ValueError, KeyError, TypeError) as error:
                problems.append(f"{where}: {error!r}")
                continue
            if (reader, context) in seen:
                continue
            missing = set(names) - set(given)
            if missing:
                problems.append(f"{where}: {context} lacks {sorted(missing)}")
            usable, unusable = [], []
            for name, verdict in given.items():
                if name not in names or not isinstance(verdict, dict) or not isinstance(verdict.get("usable"), bool):
                    problems.append(f"{where}: {context} {name}: bad verdict {verdict!r}")
                    continue
                failure = verdict.get("failure")
                if verdict["usable"]:
                    failure = None
                elif failure not in FAILURES:
                    problems.append(f"{where}: {context} {name}: failure {failure!r} -> incoherent")
                    failure = "incoherent"
                labels.append(
                    {
                        "item": names[name],
                        "reader": reader,
                        "usable": verdict["usable"],
                        "failure": failure,
                        "reason": str(verdict.get("reason") or "")[:300],
                    }
                )
                (usable if verdict["usable"] else unusable).append(name)
            seen.add((reader, context))
            rank: dict[str, int] = {}
            for position, group in enumerate(row.get("ranking") or []):
                for name in group if isinstance(group, list) else [group]:
                    if name in usable:
                        rank.setdefault(name, position)
            for a, b in itertools.combinations(sorted(usable, key=lambda n: int(n[1:])), 2):
                if a in rank and b in rank:
                    winner = "tie" if rank[a] == rank[b] else ("a" if rank[a] < rank[b] else "b")
                    preferences.append(
                        {
                            "context": context,
                            "a": names[a],
                            "b": names[b],
                            "winner": winner,
                            "reader": reader,
                            "kind": "style",
                        }
                    )
            for a in usable:
                for b in unusable:
                    preferences.append(
                        {
                            "context": context,
                            "a": names[a],
                            "b": names[b],
                            "winner": "a",
                            "reader": reader,
                            "kind": "usable",
                        }
                    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "labels.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels), encoding="utf-8"
    )
    (args.out / "preferences.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preferences), encoding="utf-8")
    print(
        f"{len(labels)} labels ({len({label['item'] for label in labels})} items), {len(preferences)} preferences "
        f"({sum(p['kind'] == 'style' for p in preferences)} style, "
        f"{sum(p['winner'] != 'tie' and p['kind'] == 'style' for p in preferences)} decisive)"
    )
    for problem in problems[:20]:
        print("problem:", problem)
    print(len(problems), "problems")


if __name__ == "__main__":
    main()
