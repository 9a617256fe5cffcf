"""Listener labels: blind readers' verdicts on spoken responses, the data the learned judge learns from.

Stored compactly beside this module (see README.md there for who read what and how):

``contexts.jsonl``
    ``{"id", "source", "split"}``: a turn to be spoken, by id. ``source`` is ``builtin`` (a built-in turn),
    ``domains`` (a turn of the conversations in ``domains/``) or ``tau-bench`` (a τ-bench airline turn, looked
    up at load time in ``SHARED/tau-bench/gpt-4o-airline.json``: the third-party text stays outside the project).
    ``split`` is the half, ``dev`` or ``test``, decided by conversation.
``items.jsonl``
    ``{"id", "context", "system", "synthetic", "response", "response_sha"}``: one response. ``response`` is None
    for the τ-bench draft and its Pipecat formatting, rebuilt at load time (checked against ``response_sha``).
``labels.jsonl``
    ``{"item", "reader", "usable", "failure", "reason"}``: one reader's verdict on one item.
``preferences.jsonl``
    ``{"context", "a", "b", "winner", "reader", "kind"}``: one reader's preference between two items of a
    context (``kind`` ``style``: both usable; ``usable``: one usable, one not).

:func:`labelled_responses` and :func:`labelled_preferences` expand them into self-contained records, the
format ``voicetune judge train --labels`` reads and ``voicetune review export --format labels`` writes.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal

from voicetune.data.builtin import builtin_turns, expand_conversations
from voicetune.data.formats import import_transcripts
from voicetune.data.labelled import TAU_TRANSCRIPTS, default_shared_data
from voicetune.records import Pair, Turn, jsonl_lines
from voicetune.verbalize import formatted_draft

HERE = Path(__file__).resolve().parent
DOMAINS_DIR = HERE / "domains"

#: Why a response cannot be said to the caller as it is, named once.
FAILURES: dict[str, str] = {
    "invented": "says something the draft and the conversation do not support (a fact, number, promise, policy)",
    "contradiction": "contradicts the draft or the conversation (a wrong amount, time, status, action or item)",
    "dropped_need": "leaves out what the caller needs now: the answer, the draft's question or confirmation, a code, "
    "amount, date or step to act on",
    "incoherent": "garbled, self-contradictory or nonsensical; a wrong referent; a clause that does not parse",
    "off_role": "not the agent speaking to the caller: speaks as the caller, labels ('Draft reply:'), talks about the "
    "task",
    "loop": "says the same sentence or phrase over and over",
    "unspeakable": "cannot be understood heard once: symbols, markdown, tables, URLs or ids a TTS reads as characters",
}
Failure = Literal["invented", "contradiction", "dropped_need", "incoherent", "off_role", "loop", "unspeakable"]


class LabelledResponse(Turn):
    """A response with one reader's verdict: ``usable``, and when not, the ``failure`` class and a ``reason``."""

    usable: bool
    failure: Failure | None = None
    reason: str = ""
    reader: str = ""
    split: Literal["dev", "test"] | None = None


class LabelledPreference(Pair):
    """A reader's preference between two responses to one context (``winner`` a, b or tie)."""

    reader: str = ""
    kind: Literal["style", "usable", "vote"] = "style"
    split: Literal["dev", "test"] | None = None


def _rows(name: str) -> list[dict]:
    path = HERE / name
    if not path.exists():
        return []
    return [json.loads(line) for _, line in jsonl_lines(path.read_text(encoding="utf-8")) if line.strip()]


def _split_of_conversation(conversation_id: str) -> str:
    return "test" if int(hashlib.sha256(conversation_id.encode()).hexdigest()[:16], 16) % 2 else "dev"


def domain_conversations() -> list[dict]:
    """The helper-written conversations of ``domains/*.jsonl`` (other domains than the built-in five)."""
    return [
        json.loads(line)
        for path in sorted(DOMAINS_DIR.glob("*.jsonl"))
        for _, line in jsonl_lines(path.read_text(encoding="utf-8"))
        if line.strip()
    ]


def domain_turns() -> list[Turn]:
    """Every turn of :func:`domain_conversations`, ``meta.pool_split`` its conversation's half."""
    turns = expand_conversations(domain_conversations(), "domains")
    for turn in turns:
        turn.meta.update(pool_split=_split_of_conversation(turn.meta["conversation_id"]), pool_source="domains")
    return turns


@lru_cache(maxsize=2)
def _contexts(shared_data: str | None) -> dict[str, Turn]:
    rows = _rows("contexts.jsonl")
    found: dict[str, Turn] = {t.id: t for t in builtin_turns()}
    found.update({t.id: t for t in domain_turns()})
    if any(r["source"] == "tau-bench" for r in rows):
        tau = Path(shared_data) if shared_data else default_shared_data()
        if (tau / TAU_TRANSCRIPTS).is_file():
            found.update({t.id: t for t in import_transcripts(tau / TAU_TRANSCRIPTS, "tau-bench")})
        else:
            warnings.warn(
                f"{tau / TAU_TRANSCRIPTS} is absent: the listener labels on τ-bench turns are left out", stacklevel=3
            )
    contexts = {}
    for row in rows:
        turn = found.get(row["id"])
        if turn is not None:
            contexts[row["id"]] = turn.model_copy(
                update={"meta": {**turn.meta, "pool_split": row["split"], "pool_source": row["source"]}}
            )
    return contexts


def contexts(shared_data: str | Path | None = None) -> dict[str, Turn]:
    """The labelled contexts by id (τ-bench ones only when the transcripts are there)."""
    return _contexts(str(shared_data) if shared_data else None)


def _item_texts(ctx: dict[str, Turn]) -> dict[str, tuple[dict, str]]:
    items = _rows("items.jsonl")
    rebuild = [i for i in items if i["response"] is None and i["context"] in ctx]
    if rebuild:
        pipecat = [i for i in rebuild if i["system"] == "draft+pipecat"]
        formatted = dict(
            zip(
                (i["id"] for i in pipecat),
                formatted_draft([ctx[i["context"]].draft or "" for i in pipecat]),
                strict=True,
            )
        )
    texts = {}
    for item in items:
        if item["context"] not in ctx:
            continue
        text = item["response"]
        if text is None:
            text = formatted[item["id"]] if item["system"] == "draft+pipecat" else ctx[item["context"]].draft or ""
            if hashlib.sha256(text.encode()).hexdigest()[:16] != item["response_sha"]:
                continue  # the formatter changed since it was read: that item is not what the reader heard
        texts[item["id"]] = (item, text)
    return texts


def _context_fields(turn: Turn) -> dict:
    """A context's fields for a self-contained record (no response or scores of its own)."""
    return turn.model_dump(exclude={"response", "scores", "findings", "reasons"})


def labelled_responses(shared_data: str | Path | None = None) -> list[LabelledResponse]:
    """Every reader's verdict on every response, as self-contained records (context, response, label)."""
    ctx = contexts(shared_data)
    texts = _item_texts(ctx)
    out = []
    for row in _rows("labels.jsonl"):
        if row["item"] not in texts:
            continue
        item, text = texts[row["item"]]
        turn = ctx[item["context"]]
        out.append(
            LabelledResponse(
                **_context_fields(turn)
                | {
                    "id": row["item"],
                    "response": text,
                    "usable": row["usable"],
                    "failure": row.get("failure"),
                    "reason": row.get("reason", ""),
                    "reader": row["reader"],
                    "split": turn.meta["pool_split"],
                    "meta": {
                        **turn.meta,
                        "context_id": turn.id,
                        "system": item["system"],
                        "synthetic": item["synthetic"],
                    },
                }
            )
        )
    return out


def labelled_preferences(shared_data: str | Path | None = None) -> list[LabelledPreference]:
    """Every reader's pairwise preference, as self-contained pairs."""
    ctx = contexts(shared_data)
    texts = _item_texts(ctx)
    out = []
    for row in _rows("preferences.jsonl"):
        if row["a"] not in texts or row["b"] not in texts:
            continue
        (item_a, text_a), (item_b, text_b) = texts[row["a"]], texts[row["b"]]
        turn = ctx[item_a["context"]]
        out.append(
            LabelledPreference(
                **_context_fields(turn)
                | {
                    "id": f"{row['a']}:{row['b']}",
                    "response_a": text_a,
                    "response_b": text_b,
                    "system_a": item_a["system"],
                    "system_b": item_b["system"],
                    "winner": row["winner"],
                    "reader": row["reader"],
                    "kind": row["kind"],
                    "split": turn.meta["pool_split"],
                    "meta": {
                        **turn.meta,
                        "context_id": turn.id,
                        "synthetic": item_a["synthetic"] or item_b["synthetic"],
                    },
                }
            )
        )
    return out


__all__ = [
    "FAILURES",
    "Failure",
    "LabelledPreference",
    "LabelledResponse",
    "contexts",
    "domain_conversations",
    "domain_turns",
    "labelled_preferences",
    "labelled_responses",
]
