"""Labelled pairs for the judge (and hard negatives for preference training): each turn's reference against a
corruption of it."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from voicetune.data.corrupt.registry import JUDGE_KINDS, Corruption, check_kinds, corrupt, seeded
from voicetune.records import Pair, Turn


def _pair(turn: Turn, reference: str, corruption: Corruption, seed: int) -> Pair:
    """The turn's context with its reference and the corruption in a seeded random order."""
    reference_first = seeded(seed, turn.id, corruption.kind, "order").random() < 0.5
    meta: dict[str, Any] = {
        "label": "a" if reference_first else "b",
        "quality": corruption.quality,
        "failure_class": corruption.failure_class,
        "corruption": corruption.kind,
        "why": corruption.why,
        "source": "synthetic",
        "from_turn": turn.id,
    }
    if turn.tool_results:
        meta["tool_results"] = list(turn.meta.get("tool_results") or [])
    return Pair(
        id=f"syn-{turn.id}-{corruption.kind}",
        domain=turn.domain,
        system=turn.system,
        history=[m.model_copy() for m in turn.history],
        draft=turn.draft,
        facts=list(turn.facts) if turn.facts is not None else None,
        response_a=reference if reference_first else corruption.text,
        response_b=corruption.text if reference_first else reference,
        meta=meta,
    )


def synthetic_pairs(
    turns: Sequence[Turn], seed: int = 0, per_turn: int = 1, kinds: Iterable[str] | None = None
) -> list[Pair]:
    """Labelled pairs for the judge (and hard negatives for preference training): each turn's reference
    against a corruption of it.

    For every turn with a ``reference``, up to ``per_turn`` applicable kinds are chosen, the least used so far
    first (ties broken by a seeded rotation), so that all kinds are covered about evenly. Each pair has the
    turn's context, the reference and the corruption in a seeded random order, id ``syn-<turn id>-<kind>``,
    and ``meta`` with ``label`` (the reference's slot), ``quality``, ``failure_class``, ``corruption``,
    ``why``, ``source`` ("synthetic") and ``from_turn`` (plus the turn's ``tool_results`` when it has any).

    Raises:
        ValueError: an unknown kind, or ``per_turn`` below 1.
    """
    kinds = check_kinds(JUDGE_KINDS if kinds is None else kinds)
    if per_turn < 1:
        raise ValueError(f"per_turn must be at least 1, got {per_turn}")
    rotation = list(kinds)
    random.Random(f"{seed}:rotation").shuffle(rotation)
    used = dict.fromkeys(kinds, 0)
    pairs: list[Pair] = []
    for index, turn in enumerate(turns):
        reference = turn.reference
        if not reference or not reference.strip():
            continue
        made = {kind: corrupt(reference, turn, kind, seeded(seed, turn.id, kind)) for kind in kinds}
        available = {kind: corruption for kind, corruption in made.items() if corruption is not None}
        ranked = sorted(available, key=lambda k: (used[k], (rotation.index(k) - index) % len(rotation)))
        for kind in ranked[:per_turn]:
            used[kind] += 1
            pairs.append(_pair(turn, reference, available[kind], seed))
    return pairs
