"""Write the synthetic labelled pairs: every built-in turn's spoken reference against one corruption of it.

Run: .venv/bin/python benchmarks/make_synthetic_pairs.py [--seed 0] [--out PATH]

Writes src/voicetune/data/builtin/labelled_pairs_synthetic.jsonl (by default) from all built-in turns, one pair
per turn where some corruption kind applies, the kinds rotated so each is used about equally
(voicetune.data.corrupt.synthetic_pairs). The file is a pure function of the generator and the built-in data:
tests/test_corrupt.py regenerates it and fails if the committed copy differs, so rerun this after changing
either. Prints how many pairs each kind produced.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "src" / "voicetune" / "data" / "builtin" / "labelled_pairs_synthetic.jsonl"
)


def build(seed: int = 0) -> tuple[str, Counter]:
    """The JSONL text of the synthetic pairs (one JSON record per line) and the count of pairs per kind."""
    from voicetune.data.builtin import builtin_turns
    from voicetune.data.corrupt import JUDGE_KINDS, synthetic_pairs
    from voicetune.records import dumps

    pairs = synthetic_pairs(builtin_turns(), seed=seed)
    counts = Counter({kind: 0 for kind in JUDGE_KINDS})
    counts.update(pair.meta["corruption"] for pair in pairs)
    lines = [dumps(pair.model_dump(exclude_none=True)) for pair in pairs]
    return "".join(line + "\n" for line in lines), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    from voicetune.records import atomic_write_text

    text, counts = build(args.seed)
    atomic_write_text(args.out, text)  # a temporary file beside it, then os.replace
    total = sum(counts.values())
    print(f"wrote {total} pairs to {args.out}")
    for kind, count in counts.items():
        print(f"  {kind:<15} {count}")


if __name__ == "__main__":
    main()
