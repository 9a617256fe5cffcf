"""τ-bench few-shot dialogues: JSONL with ``messages_display``, the dialogue as text, one ``role: text`` a line.

``assistant: None`` marks a tool call (not spoken); ``tool:`` lines are tool results; a line that starts
with no role continues the previous message (agents write multi-line lists).
"""

from __future__ import annotations

import re
from pathlib import Path

from voicetune.data.conversation import Event, EventRole, domain_from_name, turns_from_events, unique_conversation_id
from voicetune.data.formats._json import json_lines, require
from voicetune.errors import VoicetuneError
from voicetune.records import Turn

_ROLE_LINE = re.compile(r"^(user|assistant|tool|system):\s?(.*)$")
_ROLES: dict[str, EventRole] = {"user": "user", "assistant": "agent", "tool": "tool", "system": "system"}


def parse_display(display: str, where: str) -> list[Event]:
    events: list[Event] = []
    for line in display.splitlines():
        match = _ROLE_LINE.match(line)
        if match:
            role, text = match.groups()
            if role == "assistant" and text.strip() == "None":
                events.append(Event(role="tool", text=""))  # a tool call: nothing is said
                continue
            events.append(Event(role=_ROLES[role], text=text))
        elif events:
            events[-1].text += "\n" + line
        elif line.strip():
            raise VoicetuneError(f"{where}: field 'messages_display' starts without a 'user:' or 'assistant:' role")
    return events


def load(path: Path, text: str, domain: str | None) -> list[Turn]:
    turns: list[Turn] = []
    domain = domain or domain_from_name(path) or "general"
    seen: set[str] = set()
    for number, data in json_lines(path, text):
        where = f"{path}:{number}"
        display = require(data, "messages_display", str, where)
        conversation_id = unique_conversation_id(f"{path.stem}-{number:04d}", seen)
        turns += turns_from_events(
            conversation_id, parse_display(display, where), domain=domain, meta={"source": "tau-bench-fewshot"}
        )
    return turns
