"""Check a writer's answer file: `check.py runs/references/batches/tau_01.jsonl` (reference lines for a τ-bench
batch) or `check.py runs/references/domains/banking.jsonl` (helper-written conversations). Prints one line per
problem and a count; exit 1 when there are problems."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

UNSPEAKABLE = re.compile(r"\*\*|^\s*[-*#>]|\||https?://|www\.|\n|[\U0001F300-\U0001FAFF]|\b\d{4}-\d{2}-\d{2}\b", re.M)


def _batch_ids(path: Path) -> dict[str, str]:
    text = path.with_suffix(".txt").read_text(encoding="utf-8")
    drafts: dict[str, str] = {}
    for block in re.split(r"^--- TURN ", text, flags=re.M)[1:]:
        head, _, rest = block.partition(":")
        lines = [line[4:] for line in rest.splitlines() if line.startswith("  | ")]
        drafts[head.strip()] = "\n".join(lines)
    return drafts


def check_reference(where: str, reference: object, facts: object, draft: str) -> list[str]:
    problems = []
    if not isinstance(reference, str) or not reference.strip():
        return [f"{where}: empty reference"]
    if UNSPEAKABLE.search(reference):
        problems.append(f"{where}: unspeakable text in the reference: {reference[:80]!r}")
    if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
        problems.append(f"{where}: facts must be a list of strings")
    else:
        squashed = " ".join(draft.split()).lower()
        for fact in facts:
            if " ".join(fact.split()).lower() not in squashed:
                problems.append(f"{where}: fact {fact!r} is not copied from the draft")
    return problems


def main(path: Path) -> int:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    problems: list[str] = []
    if path.with_suffix(".txt").exists():
        drafts = _batch_ids(path)
        seen = set()
        for n, row in enumerate(rows, 1):
            tid = row.get("id")
            if tid not in drafts:
                problems.append(f"line {n}: unknown turn id {tid!r}")
                continue
            seen.add(tid)
            problems += check_reference(f"line {n} ({tid})", row.get("reference"), row.get("facts"), drafts[tid])
        missing = sorted(set(drafts) - seen)
        if missing:
            problems.append(f"{len(missing)} turns have no reference, e.g. {missing[:5]}")
        count = len(rows)
    else:
        count = 0
        for n, conv in enumerate(rows, 1):
            if not isinstance(conv.get("id"), str) or not isinstance(conv.get("turns"), list) or not conv["turns"]:
                problems.append(f"line {n}: needs id, domain, system and a non-empty turns list")
                continue
            for i, turn in enumerate(conv["turns"]):
                where = f"line {n} ({conv['id']} turn {i})"
                if not all(isinstance(turn.get(k), str) and turn[k].strip() for k in ("user", "draft")):
                    problems.append(f"{where}: needs user and draft")
                    continue
                problems += check_reference(where, turn.get("reference"), turn.get("facts"), turn["draft"])
                count += 1
    for problem in problems:
        print(problem)
    print(f"{count} references checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
