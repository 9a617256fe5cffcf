"""Judging a pair in both orders, and reconciling the two verdicts.

Judges, models and people prefer whichever response they see first (or second) more often than chance.
Every pair is therefore judged as (A, B) and as (B, A); a verdict that follows the responses across the swap
stands, a verdict that flips with the order becomes a tie. The per-order verdicts are kept in the record.
"""

from __future__ import annotations

from collections.abc import Sequence

from voicetune.judge.llm import CRITERIA, Judgement
from voicetune.records import Pair, Verdict

_SWAP: dict[str, Verdict] = {"a": "b", "b": "a", "tie": "tie"}


def swapped(pair: Pair) -> Pair:
    """The same pair with the responses (and their systems) in the other order."""
    return pair.model_copy(
        update={
            "response_a": pair.response_b,
            "response_b": pair.response_a,
            "system_a": pair.system_b,
            "system_b": pair.system_a,
        }
    )


def reconcile(first: Verdict | None, second_swapped_back: Verdict | None) -> Verdict | None:
    """One verdict from both orders (the second already mapped back to the original order): equal verdicts
    stand, different ones are a tie; a missing verdict in either order gives none."""
    if first is None or second_swapped_back is None:
        return None
    return first if first == second_swapped_back else "tie"


def judge_both_orders(judge, pairs: Sequence[Pair], progress: bool = True) -> list[Pair]:
    """Judge every pair in both orders; return the pairs with ``winner``, ``criteria`` and ``rationale`` set
    from the reconciled verdicts, and ``meta.orders`` (each order's verdicts in the original labelling),
    ``meta.consistent`` (whether the overall verdict survived the swap) and ``meta.error`` when either order
    could not be judged (``winner`` is then None)."""
    pairs = list(pairs)
    results: list[Judgement] = judge.judge_many(pairs + [swapped(p) for p in pairs], progress=progress)
    forward, backward = results[: len(pairs)], results[len(pairs) :]
    judged = []
    for pair, ab, ba in zip(pairs, forward, backward, strict=True):
        ba_back = {name: _SWAP[v] for name, v in ba.criteria.items()}
        criteria = {name: reconcile(ab.criteria.get(name), ba_back.get(name)) for name in CRITERIA}
        error = "; ".join(f"{order}: {j.error}" for order, j in (("A-B", ab), ("B-A", ba)) if j.error) or None
        winner = None if error else criteria.pop("overall")
        criteria.pop("overall", None)
        meta = {
            **pair.meta,
            "judge": judge.name,
            "orders": {
                "ab": {"winner": ab.winner, **ab.criteria},
                "ba": {"winner": ba.winner and _SWAP[ba.winner], **ba_back},
            },
            "consistent": None if error or ba.winner is None else ab.winner == _SWAP[ba.winner],
        }
        if error:
            meta["error"] = error
        rationale = " || ".join(r for r in (ab.rationale, ba.rationale and f"(swapped) {ba.rationale}") if r) or None
        judged.append(
            pair.model_copy(
                update={
                    "winner": winner,
                    "criteria": {k: v for k, v in criteria.items() if v is not None} or None,
                    "rationale": rationale,
                    "meta": meta,
                }
            )
        )
    return judged


def position_bias(judged: Sequence[Pair]) -> dict:
    """How much the judge's verdicts depend on the order: ``position_consistency`` is the share of pairs
    whose overall verdict is the same in both orders; ``first_slot_preference`` is the share of decisive
    single-order verdicts that picked the response shown first (0.5 = no bias)."""
    usable = [p for p in judged if p.meta.get("consistent") is not None]
    first_picks = decisive = 0
    for pair in usable:
        ab, ba = pair.meta["orders"]["ab"]["winner"], pair.meta["orders"]["ba"]["winner"]
        if ab in ("a", "b"):
            decisive += 1
            first_picks += ab == "a"
        if ba in ("a", "b"):  # mapped back: in the B-A order, the first slot held response b
            decisive += 1
            first_picks += ba == "b"
    return {
        "pairs": len(usable),
        "position_consistency": round(sum(p.meta["consistent"] for p in usable) / len(usable), 4) if usable else None,
        "first_slot_preference": round(first_picks / decisive, 4) if decisive else None,
        "decisive_verdicts": decisive,
    }
