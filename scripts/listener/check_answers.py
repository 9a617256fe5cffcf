"""A reader's self-check: every context of each batch answered, every response labelled, failures valid.

Run: python3 scripts/listener/check_answers.py runs/listener/batches/READER
"""

import json
import re
import sys
from pathlib import Path

FAILURES = {"invented", "contradiction", "dropped_need", "incoherent", "off_role", "loop", "unspeakable"}
folder = Path(sys.argv[1])
problems = 0
for batch in sorted(folder.glob("batch_*.txt")):
    text = batch.read_text(encoding="utf-8")
    wanted: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"=== CONTEXT (\S+) ", line)
        if m:
            current = m.group(1)
            wanted[current] = set()
        m = re.match(r"  \[(r\d+)\] ", line)
        if m and current:
            wanted[current].add(m.group(1))
    answers = batch.with_suffix(".jsonl")
    if not answers.exists():
        print(f"{answers.name}: missing")
        problems += 1
        continue
    got = {}
    for n, line in enumerate(answers.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            got[row["context"]] = row
        except Exception as error:  # noqa: BLE001
            print(f"{answers.name}:{n}: {error}")
            problems += 1
    for context, names in wanted.items():
        row = got.get(context)
        if row is None:
            print(f"{answers.name}: context {context} not answered")
            problems += 1
            continue
        labels = row.get("labels", {})
        for name in names:
            v = labels.get(name)
            if not isinstance(v, dict) or not isinstance(v.get("usable"), bool):
                print(f"{answers.name}: {context} {name}: no usable true/false")
                problems += 1
            elif not v["usable"] and (v.get("failure") not in FAILURES or not v.get("reason")):
                print(f"{answers.name}: {context} {name}: unusable needs a failure class and a reason")
                problems += 1
        ranked = [x for g in row.get("ranking", []) for x in (g if isinstance(g, list) else [g])]
        for name in ranked:
            if not (isinstance(labels.get(name), dict) and labels[name].get("usable")):
                print(f"{answers.name}: {context}: ranking has {name}, which is not labelled usable")
                problems += 1
        missing = [n for n in names if isinstance(labels.get(n), dict) and labels[n].get("usable") and n not in ranked]
        if missing:
            print(f"{answers.name}: {context}: usable responses missing from the ranking: {missing}")
            problems += 1
print(f"{problems} problems" if problems else "all answers complete")
