"""Collect the writers' answers into the package: `.venv/bin/python scripts/references/collect.py`.

runs/references/batches/tau_*.jsonl (references of τ-bench turns: ids, references and facts only) become
src/voicetune/data/references/tau_bench.jsonl; runs/references/domains/DOMAIN.jsonl (helper-written
conversations) become src/voicetune/data/references/conversations/DOMAIN.jsonl. Every file must pass check.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WORK = Path("runs/references")
PACKAGE = Path("src/voicetune/data/references")


def _checked(path: Path) -> list[dict]:
    result = subprocess.run([sys.executable, "scripts/references/check.py", str(path)], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{path}: {result.stdout.strip().splitlines()[-1]}; fix it first")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    rows = {}
    for path in sorted((WORK / "batches").glob("tau_*.jsonl")):
        for row in _checked(path):
            rows[row["id"]] = {"id": row["id"], "reference": " ".join(row["reference"].split()), "facts": row["facts"]}
    (PACKAGE / "tau_bench.jsonl").write_text(
        "".join(json.dumps(rows[k], ensure_ascii=False) + "\n" for k in sorted(rows)), encoding="utf-8"
    )
    print(f"tau_bench.jsonl: {len(rows)} references")
    (PACKAGE / "conversations").mkdir(exist_ok=True)
    for path in sorted((WORK / "domains").glob("*.jsonl")):
        conversations = _checked(path)
        out = PACKAGE / "conversations" / path.name
        out.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations), encoding="utf-8")
        print(f"{out.name}: {len(conversations)} conversations, {sum(len(c['turns']) for c in conversations)} turns")


if __name__ == "__main__":
    main()
