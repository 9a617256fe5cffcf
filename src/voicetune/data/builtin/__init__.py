"""Built-in data, written by us and shipped in the package: conversations in five customer-service domains
where every agent turn has a screen-style draft and a spoken reference, and hand-labelled response pairs.

Conversations are stored one a line (``DOMAIN.jsonl``) and expanded into turn records here: a turn's
history holds the earlier agent turns as the caller heard them (their references).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from voicetune.data.split import split_records
from voicetune.records import Message, Pair, Turn, jsonl_lines

DOMAINS = ("airline", "retail", "telecom", "banking", "healthcare")


def _lines(name: str) -> list[dict]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for _, line in jsonl_lines(text) if line.strip()]


def builtin_conversations() -> list[dict]:
    """The raw conversations: ``{id, domain, system, turns: [{user, draft, reference, facts, tool_results?}]}``."""
    return [c for domain in DOMAINS for c in _lines(f"{domain}.jsonl")]


def expand_conversations(conversations: list[dict], source: str) -> list[Turn]:
    """One turn record per agent turn of ``{id, domain, system, turns: [{user, draft, reference, facts,
    tool_results?}]}`` conversations: a turn's history holds the earlier agent turns as the caller heard them
    (their references)."""
    turns: list[Turn] = []
    for conversation in conversations:
        history: list[Message] = []
        tool_results: list[str] = []
        for index, step in enumerate(conversation["turns"]):
            history.append(Message(role="user", text=step["user"]))
            tool_results += step.get("tool_results") or []
            meta = {"source": source, "conversation_id": conversation["id"], "turn_index": index}
            if tool_results:
                meta["tool_results"] = list(tool_results)
            turns.append(
                Turn(
                    id=f"{conversation['id']}-t{index:02d}",
                    domain=conversation["domain"],
                    system=conversation.get("system"),
                    history=list(history),
                    draft=step["draft"],
                    facts=step.get("facts"),
                    reference=step["reference"],
                    meta=meta,
                )
            )
            history.append(Message(role="agent", text=step["reference"]))
    return turns


@lru_cache(maxsize=1)
def _builtin_turns() -> tuple[Turn, ...]:
    return tuple(expand_conversations(builtin_conversations(), "builtin"))


def builtin_turns(split: str | None = None) -> list[Turn]:
    """Every built-in turn, or those of one split (``train``, ``dev``, ``test``; by conversation, seed 0)."""
    turns = list(_builtin_turns())
    if split is None:
        return [t.model_copy(deep=True) for t in turns]
    return [t.model_copy(deep=True) for t in split_records(turns)[split]]


def builtin_pairs() -> list[Pair]:
    """Hand-labelled pairs: ``meta.label`` is the response a careful listener prefers, ``meta.quality`` why."""
    return [Pair.model_validate(line) for line in _lines("labelled_pairs.jsonl")]
