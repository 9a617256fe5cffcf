"""OpenAI chat-format JSONL: one conversation a line, ``{"messages": [{"role", "content", "tool_calls"?}]}``.

``content`` may be a string or a list of content parts (``{"type": "text", "text": ...}``); assistant
messages with tool calls and no text are not spoken; ``tool`` (or ``function``) messages are tool results.
Optional keys per line: ``id`` (the conversation id; default ``FILE-LINE``) and ``domain``. When an id is
already taken by an earlier line, the later conversation's id gets ``-2`` (``-3``, …) so every turn id is
unique.
"""

from __future__ import annotations

from pathlib import Path

from voicetune.data.conversation import Event, EventRole, domain_from_name, turns_from_events, unique_conversation_id
from voicetune.data.formats._json import json_lines, require
from voicetune.errors import VoicetuneError
from voicetune.records import Turn

ROLES: dict[str, EventRole] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "agent",
    "tool": "tool",
    "function": "tool",
}


def message_text(content, where: str) -> str:
    """The text of a chat message's ``content``: a string, null, or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for index, part in enumerate(content):
            text = part.get("text", "") if isinstance(part, dict) else part
            if not isinstance(text, str):
                raise VoicetuneError(
                    f"{where}: field 'content[{index}].text' should be a string, got {type(text).__name__}"
                )
            parts.append(text)
        return "\n".join(p for p in parts if p)
    raise VoicetuneError(
        f"{where}: field 'content' should be a string or a list of parts, got {type(content).__name__}"
    )


def chat_events(messages: list, where: str) -> list[Event]:
    events = []
    for index, message in enumerate(messages):
        at = f"{where}: messages[{index}]"
        if not isinstance(message, dict):
            raise VoicetuneError(f"{at}: expected an object, got {type(message).__name__}")
        role = require(message, "role", str, at)
        if role not in ROLES:
            raise VoicetuneError(f"{at}: field 'role' is '{role}', expected one of {', '.join(ROLES)}")
        events.append(Event(role=ROLES[role], text=message_text(message.get("content"), at)))
    return events


def load(path: Path, text: str, domain: str | None) -> list[Turn]:
    turns: list[Turn] = []
    seen: set[str] = set()
    for number, data in json_lines(path, text):
        where = f"{path}:{number}"
        messages = require(data, "messages", list, where)
        conversation_id = unique_conversation_id(str(data.get("id") or f"{path.stem}-{number:05d}"), seen)
        if not isinstance(data.get("domain", ""), str):
            raise VoicetuneError(f"{where}: field 'domain' should be a string, got {type(data['domain']).__name__}")
        turns += turns_from_events(
            conversation_id,
            chat_events(messages, where),
            domain=domain or data.get("domain") or domain_from_name(path) or "general",
            meta={"source": "openai-chat"},
        )
    return turns
