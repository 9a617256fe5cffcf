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
import math
from pathlib import Path

from voicetune.data.conversation import Event, EventRole, domain_from_name, turns_from_events
from voicetune.errors import VoicetuneError
from voicetune.records import Turn

ROLES: dict[str, EventRole] = {
    "user": "user",
    "caller": "user",
    "customer": "user",
    "agent": "agent",
    "assistant": "agent",
    "tool": "tool",
    "system": "system",
}
REQUIRED = ("conversation_id", "role", "text")


def _quote_opened_on(lines: list[str], start: int, end: int) -> int | None:
    """The line (1-based) on which the first quoted field still open at a line end was opened, scanning the
    raw lines ``start``..``end`` as the csv module reads them (a quote opens a field only at its start; ``""``
    inside one is a quote); None when no quoted field spans lines."""
    in_quote, opened = False, 0
    for number in range(start, min(end, len(lines)) + 1):
        line = lines[number - 1]
        at_field_start = True
        index = 0
        while index < len(line):
            char = line[index]
            if in_quote:
                if char == '"':
                    if line.startswith('""', index):
                        index += 2
                        continue
                    in_quote = False
                at_field_start = False
            else:
                if char == '"' and at_field_start:
                    in_quote, opened = True, number
                at_field_start = char == ","
            index += 1
        if in_quote:
            return opened
    return None


def load(path: Path, text: str, domain: str | None) -> list[Turn]:
    """Read a CSV transcript; every row must have as many fields as the header (quote a text with commas),
    quoted fields must be closed, and ``turn`` must be a finite number; any problem names its line."""
    # A transcript's text can be long: allow a field as large as the file (the default limit is 128 KiB).
    csv.field_size_limit(max(csv.field_size_limit(), min(len(text) + 1, 2**31 - 1)))
    lines = text.split("\n")
    reader = csv.reader(io.StringIO(text), strict=True)  # lines end at "\n" only, as ``lines`` counts them

    def rows():
        """(first line, last line, fields) of each row; a csv error names the row's line."""
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                opened = _quote_opened_on(lines, start, reader.line_num)
                if opened is not None:
                    raise VoicetuneError(
                        f"{path}:{opened}: a quoted field opened on line {opened} is never closed properly "
                        f"(the CSV reader stopped at line {reader.line_num}: {error})"
                    ) from None
                raise VoicetuneError(f"{path}:{max(reader.line_num, start)}: not valid CSV ({error})") from None
            yield start, reader.line_num, fields

    iterator = rows()
    header = next(iterator, None)
    if header is None or not any(name.strip() for name in header[2]):
        raise VoicetuneError(f"{path}: no header row")
    fieldnames = [name.strip().lower() for name in header[2]]
    missing = [name for name in REQUIRED if name not in fieldnames]
    if missing:
        raise VoicetuneError(
            f"{path}:1: missing column{'s' * (len(missing) > 1)} {', '.join(repr(m) for m in missing)} (have "
            f"{', '.join(fieldnames)})"
        )
    column = {name: fieldnames.index(name) for name in fieldnames[::-1]}  # the first column of a name wins
    role_column = column["role"]
    conversations: dict[str, list[tuple[float, int, Event, str | None]]] = {}
    for row_number, (start, end, fields) in enumerate(iterator, start=2):
        where = f"{path}:{start}"
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if len(fields) != len(fieldnames):
            hint = '; quote the text ("...") when it holds a comma' if len(fields) > len(fieldnames) else ""
            raise VoicetuneError(f"{where}: {len(fields)} fields, the header has {len(fieldnames)}{hint}")
        row = {name: fields[index] for name, index in column.items()}
        if end > start:
            for value in fields:
                _check_swallowed_rows(path, start, value, len(fieldnames), role_column)
        conversation_id = row["conversation_id"].strip()
        if not conversation_id:
            raise VoicetuneError(f"{where}: field 'conversation_id' is empty")
        role = row["role"].strip().lower()
        if role not in ROLES:
            raise VoicetuneError(f"{where}: field 'role' is '{role}', expected one of {', '.join(ROLES)}")
        order: float = row_number
        if row.get("turn", "").strip():
            try:
                order = float(row["turn"])
            except ValueError:
                raise VoicetuneError(f"{where}: field 'turn' should be a number, got '{row['turn']}'") from None
            if not math.isfinite(order):
                raise VoicetuneError(f"{where}: field 'turn' should be a finite number, got '{row['turn'].strip()}'")
        event = Event(role=ROLES[role], text=row["text"], reference=(row.get("reference") or "").strip() or None)
        conversations.setdefault(conversation_id, []).append(
            (order, row_number, event, (row.get("domain") or "").strip() or None)
        )
    turns: list[Turn] = []
    for conversation_id, rows_of_conversation in conversations.items():
        rows_of_conversation.sort(key=lambda r: (r[0], r[1]))
        row_domain = next((r[3] for r in rows_of_conversation if r[3]), None)
        turns += turns_from_events(
            conversation_id,
            [r[2] for r in rows_of_conversation],
            domain=domain or row_domain or domain_from_name(path) or "general",
            meta={"source": "csv"},
        )
    return turns


def _check_swallowed_rows(path: Path, start: int, text: str, width: int, role_column: int) -> None:
    """A quoted text that spans lines, one of which reads as a whole row of its own (as many fields as the
    header, a known role in the role column), is a quote left open that swallowed the rows after it."""
    for offset, inner in enumerate(text.split("\n")[1:], start=1):
        try:
            fields = next(csv.reader([inner]))
        except (csv.Error, StopIteration):
            continue
        if len(fields) == width and fields[role_column].strip().lower() in ROLES:
            raise VoicetuneError(
                f"{path}:{start}: a quoted field opened on line {start} runs on over what reads as a row of its own "
                f"(line {start + offset}); close the quote"
            )
