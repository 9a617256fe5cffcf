"""How often a judge agrees with hand labels (``meta.label`` on a labelled pair)."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from voicetune.records import Pair


def label_agreement(judged: Sequence[Pair]) -> dict:
    """Agreement of judged pairs' ``winner`` with their ``meta.label``.

    Returns ``n`` (labelled pairs), ``agree`` (verdict equals the label), ``ties`` (the judge could not
    separate them), ``disagree`` (the judge preferred the other response), ``errors`` (no verdict: an unparseable
    answer), ``accuracy`` (agree / n, a tie or an error counting as wrong) and the same per labelled ``quality``.
    """
    labelled = [p for p in judged if (p.meta or {}).get("label") in ("a", "b")]
    outcome = Counter()
    per_quality: dict[str, Counter] = {}
    for pair in labelled:
        if pair.winner is None:
            result = "error"
        else:
            result = "tie" if pair.winner == "tie" else ("agree" if pair.winner == pair.meta["label"] else "disagree")
        outcome[result] += 1
        per_quality.setdefault(pair.meta.get("quality", "unlabelled"), Counter())[result] += 1
    n = len(labelled)
    return {
        "n": n,
        "agree": outcome["agree"],
        "ties": outcome["tie"],
        "disagree": outcome["disagree"],
        "errors": outcome["error"],
        "accuracy": round(outcome["agree"] / n, 4) if n else None,
        "per_quality": {
            quality: {"n": sum(c.values()), "agree": c["agree"], "accuracy": round(c["agree"] / sum(c.values()), 4)}
            for quality, c in sorted(per_quality.items())
        },
    }
