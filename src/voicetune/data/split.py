"""Train/dev/test splits by conversation (and by task, when present): nothing straddles two splits."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from voicetune.errors import VoicetuneError
from voicetune.records import Turn

SPLITS = ("train", "dev", "test")


def group_key(turn: Turn) -> str:
    """What must stay together: a τ-bench task (all its trials), else a conversation, else the turn."""
    meta = turn.meta or {}
    for key in ("task_id", "conversation_id"):
        if meta.get(key) not in (None, ""):
            return f"{key}:{meta[key]}"
    return f"id:{turn.id}"


def split_records(
    records: Sequence[Turn], ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[Turn]]:
    """Assign whole groups (see :func:`group_key`) to train/dev/test so each gets about its share of turns.

    Groups are shuffled with ``seed``, then each goes to the split furthest below its target, so the result
    is deterministic and every split with a non-zero ratio gets at least one group when there are enough.
    """
    if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) or sum(ratios) <= 0:
        raise VoicetuneError(f"--ratios needs three non-negative numbers (train, dev, test), got {list(ratios)}")
    total = float(sum(ratios))
    shares = [r / total for r in ratios]
    groups: dict[str, list[Turn]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    result: dict[str, list[Turn]] = {name: [] for name in SPLITS}
    targets = [share * len(records) for share in shares]
    # Seed each non-empty split with one group so small datasets still get a dev and a test split.
    order = [i for i in (2, 1, 0) if shares[i] > 0]
    for index, key in enumerate(keys):
        if index < len(order) and len(keys) > len(order):
            chosen = order[index]
        else:
            chosen = max(
                range(3),
                key=lambda i: (targets[i] - len(result[SPLITS[i]])) / (targets[i] or 1e-9) if shares[i] else -1e9,
            )
        result[SPLITS[chosen]].extend(groups[key])
    return result
