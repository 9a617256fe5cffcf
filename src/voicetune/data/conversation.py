"""Turn a transcript (a sequence of speaker events) into turn records: the one place every importer ends.

Each agent *text* event becomes a turn: history = the earlier user and agent text events, draft = that
agent text. Tool calls and tool results are never spoken; the tool results seen so far go to
``meta.tool_results`` because they hold the facts a response may state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voicetune.records import Message, Turn

EventRole = Literal["system", "user", "agent", "tool"]


@dataclass
class Event:
    """One thing that happened in a transcript."""

    role: EventRole
    text: str
    reference: str | None = None  # a person's spoken version of an agent event, where the source has one
    meta: dict[str, Any] = field(default_factory=dict)


def domain_from_name(
    path: Path, known: tuple[str, ...] = ("airline", "retail", "telecom", "banking", "healthcare")
) -> str | None:
    """A domain named in the file name ("gpt-4o-airline.json" -> "airline")."""
    name = path.name.lower()
    return next((d for d in known if d in name), None)


def unique_conversation_id(candidate: str, seen: set[str]) -> str:
    """``candidate``, or when an earlier conversation of the same file already has it, the first of
    ``candidate-2``, ``candidate-3``, … still free; the result is added to ``seen``. Deterministic: the
    file's first conversation keeps the id, later ones get the suffixes in file order."""
    chosen, copy = candidate, 1
    while chosen in seen:
        copy += 1
        chosen = f"{candidate}-{copy}"
    seen.add(chosen)
    return chosen


def turns_from_events(
    conversation_id: str, events: Iterable[Event], domain: str = "general", meta: dict[str, Any] | None = None
) -> list[Turn]:
    """Make one :class:`Turn` per agent text event of a conversation."""
    history: list[Message] = []
    tool_results: list[str] = []
    system: str | None = None
    turns: list[Turn] = []
    for event in events:
        text = (event.text or "").strip()
        if event.role == "system":
            system = text or system
        elif event.role == "tool":
            if text:
                tool_results.append(text)
        elif event.role == "user":
            if text:
                history.append(Message(role="user", text=text))
        elif text:  # an agent text event: a turn to be spoken
            turn_meta = {**(meta or {}), "conversation_id": conversation_id, "turn_index": len(turns), **event.meta}
            if tool_results:
                turn_meta["tool_results"] = list(tool_results)
            turns.append(
                Turn(
                    id=f"{conversation_id}-t{len(turns):02d}",
                    domain=domain,
                    system=system,
                    history=list(history),
                    draft=text,
                    reference=event.reference,
                    meta=turn_meta,
                )
            )
            history.append(Message(role="agent", text=text))
    return turns
