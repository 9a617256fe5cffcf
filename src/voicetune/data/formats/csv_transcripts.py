"""CSV transcripts, one message a row.

Columns (a header row is required; names are case-insensitive):

- ``conversation_id`` (required): rows with the same id form one conversation, in file order
  (or by ``turn`` when that column is present);
- ``role`` (required): ``user`` (or ``caller``, ``customer``), ``agent`` (or ``assistant``), ``tool``, ``system``;
- ``text`` (required): what was said or returned;
- ``turn`` (optional): the message's position in its conversation, an integer;
- ``domain`` (optional): the conversation's domain;
- ``reference`` (optional): on agent rows, a person's spoken version of the agent's text.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from voicetune.data.conversation import Event, turns_from_events
from voicetune.errors import VoicetuneError
from voicetune.records import Turn

ROLES = {"user": "user", "caller": "user", "customer": "user", "agent": "agent", "assistant": "agent", "tool": "tool", "system": "system"}
REQUIRED = ("conversation_id", "role", "text")


def load(path: Path, text: str, domain: str | None) -> list[Turn]:
    from voicetune.data.formats import domain_from_name

    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise VoicetuneError(f"{path}: no header row")
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    missing = [name for name in REQUIRED if name not in reader.fieldnames]
    if missing:
        raise VoicetuneError(f"{path}:1: missing column{'s' * (len(missing) > 1)} {', '.join(repr(m) for m in missing)} (have {', '.join(reader.fieldnames)})")
    conversations: dict[str, list[tuple[float, int, Event, str | None]]] = {}
    row_line = reader.line_num + 1  # the line a row starts on: a quoted text may span lines
    for row_number, row in enumerate(reader, start=2):
        where = f"{path}:{row_line}"
        row_line = reader.line_num + 1
        conversation_id = (row.get("conversation_id") or "").strip()
        if not conversation_id:
            raise VoicetuneError(f"{where}: field 'conversation_id' is empty")
        role = (row.get("role") or "").strip().lower()
        if role not in ROLES:
            raise VoicetuneError(f"{where}: field 'role' is '{role}', expected one of {', '.join(ROLES)}")
        order: float = row_number
        if row.get("turn") not in (None, ""):
            try:
                order = float(row["turn"])
            except ValueError:
                raise VoicetuneError(f"{where}: field 'turn' should be a number, got '{row['turn']}'") from None
        event = Event(role=ROLES[role], text=row.get("text") or "", reference=(row.get("reference") or "").strip() or None)
        conversations.setdefault(conversation_id, []).append((order, row_number, event, (row.get("domain") or "").strip() or None))
    turns: list[Turn] = []
    for conversation_id, rows in conversations.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        row_domain = next((r[3] for r in rows if r[3]), None)
        turns += turns_from_events(
            conversation_id, [r[2] for r in rows], domain=domain or row_domain or domain_from_name(path) or "general", meta={"source": "csv"}
        )
    return turns
