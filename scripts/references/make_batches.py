"""Writing batches for spoken references: every agent turn of the τ-bench airline transcripts in ../shared.

Run: .venv/bin/python scripts/references/make_batches.py [--per-batch 190]

Writes runs/references/batches/tau_NN.txt (whole conversations, in order; the caller's words and the agent's
written draft of each turn) for writers who follow WRITER_GUIDE.md and answer in tau_NN.jsonl beside each batch:
one {"id", "reference", "facts"} line per turn. The third-party text stays in runs/ (never in the package).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from voicetune.data import import_transcripts
from voicetune.data.labelled import default_shared_data

FILES = (("tau-bench/gpt-4o-airline.json", "tau-bench"), ("tau-bench/airline-few_shot.jsonl", "tau-bench-fewshot"))


def render(conversation: list) -> str:
    first = conversation[0]
    lines = [f"=== CONVERSATION {first.meta['conversation_id']} (airline) ==="]
    for turn in conversation:
        lines.append(f"Caller: {turn.history[-1].text if turn.history else ''}")
        lines.append(f"--- TURN {turn.id}: the agent's written draft (write its spoken reference):")
        lines.extend("  | " + line for line in turn.draft.splitlines() if line.strip())
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("runs/references/batches"))
    parser.add_argument("--per-batch", type=int, default=190)
    args = parser.parse_args()
    shared = default_shared_data()
    conversations: dict[str, list] = {}
    for name, fmt in FILES:
        for turn in import_transcripts(shared / name, fmt):
            conversations.setdefault(turn.meta["conversation_id"], []).append(turn)
    args.out.mkdir(parents=True, exist_ok=True)
    batch, size, number = [], 0, 0
    for conversation in conversations.values():
        batch.append(render(conversation))
        size += len(conversation)
        if size >= args.per_batch:
            number += 1
            (args.out / f"tau_{number:02d}.txt").write_text("\n".join(batch), encoding="utf-8")
            print(f"tau_{number:02d}: {size} turns")
            batch, size = [], 0
    if batch:
        number += 1
        (args.out / f"tau_{number:02d}.txt").write_text("\n".join(batch), encoding="utf-8")
        print(f"tau_{number:02d}: {size} turns")


if __name__ == "__main__":
    main()
