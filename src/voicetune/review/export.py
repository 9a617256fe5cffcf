"""The votes as a flat table (CSV or JSONL): one row per live vote, in the eval's terms (``winner`` is ``a``,
``b`` or ``tie`` with ``a`` the pair's ``system_a``; ``winner_system`` names it), with the order it was shown
in, the mode, play counts, time on the item and the judge's verdict beside it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

from voicetune.errors import VoicetuneError
from voicetune.records import QUALITIES
from voicetune.review.store import ReviewStore

COLUMNS = (
    "reviewer",
    "pair_id",
    "comparison",
    "system_a",
    "system_b",
    "domain",
    "showing",
    "order",
    "shown",
    "winner",
    "winner_system",
    *(f"criterion_{q}" for q in QUALITIES),
    "mode",
    "comment",
    "plays_1",
    "plays_2",
    "seconds_on_item",
    "audio_seconds",
    "judge_winner",
    "source",
    "created_at",
    "event_id",
)


def votes_table(store: ReviewStore) -> list[dict]:
    """One row per live vote (undone votes left out; the full event log is ``store.events()``)."""
    pairs = {pair["id"]: pair for pair in store.pairs()}
    rows = []
    for vote in store.votes():
        pair = pairs[vote.pair_id]
        system = {"a": pair["system_a"], "b": pair["system_b"], "tie": "tie"}[vote.winner]
        rows.append(
            {
                "reviewer": vote.reviewer,
                "pair_id": vote.pair_id,
                "comparison": vote.comparison,
                "system_a": pair["system_a"],
                "system_b": pair["system_b"],
                "domain": vote.domain,
                "showing": vote.showing,
                "order": "ba" if vote.swapped else "ab",
                "shown": vote.shown,
                "winner": vote.winner,
                "winner_system": system,
                **{f"criterion_{q}": vote.criteria.get(q, "") for q in QUALITIES},
                "mode": vote.mode,
                "comment": vote.comment,
                "plays_1": vote.plays.get("1", 0),
                "plays_2": vote.plays.get("2", 0),
                "seconds_on_item": vote.seconds_on_item,
                "audio_seconds": vote.audio_seconds,
                "judge_winner": (pair["judge"] or {}).get("winner", ""),
                "source": vote.source,
                "created_at": datetime.fromtimestamp(vote.created_at, timezone.utc).isoformat(timespec="seconds"),
                "event_id": vote.event_id,
            }
        )
    return rows


#: A text cell starting with one of these is a formula to a spreadsheet (CSV injection): it is written with a
#: leading apostrophe, which spreadsheets show as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """``value`` as a spreadsheet shows it as text: a string that would start a formula gets a leading "'", and
    its carriage returns become newlines, which the CSV writer (``lineterminator="\n"``) quotes; a bare CR
    would go out unquoted and start a new row in a spreadsheet, whose first cell could be a formula."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + value if value.startswith(FORMULA_START) else value


def votes_csv(store: ReviewStore) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in votes_table(store))
    return buffer.getvalue()


def votes_jsonl(store: ReviewStore) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in votes_table(store))


def votes_labels(store: ReviewStore, contexts: dict) -> list[dict]:
    """The live votes as listener preferences (:class:`voicetune.data.listener.LabelledPreference` lines, ``kind``
    ``vote``), the format ``voicetune judge train --labels`` reads: each pair's context (history, draft, facts)
    from ``contexts`` (turn records by id, e.g. the run's ``data/test.jsonl``), responses in the pair's order."""
    pairs = {pair["id"]: pair for pair in store.pairs()}
    rows = []
    for vote in store.votes():
        pair = pairs[vote.pair_id]
        context = contexts.get(pair.get("context_id") or "")
        if context is None:
            raise VoicetuneError(
                f"pair '{vote.pair_id}': its context '{pair.get('context_id')}' is not in --contexts (give the turns "
                "the set was made from)"
            )
        base = context.model_dump(mode="json", exclude={"response", "scores", "findings", "reasons"})
        rows.append(
            {
                **base,
                "id": f"{vote.pair_id}:{vote.reviewer}",
                "response_a": pair["response_a"],
                "response_b": pair["response_b"],
                "system_a": pair["system_a"],
                "system_b": pair["system_b"],
                "winner": vote.winner,
                "reader": vote.reviewer,
                "kind": "vote",
                "rationale": vote.comment or None,
            }
        )
    return rows
