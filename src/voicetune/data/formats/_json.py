"""JSON parsing that names the file and line of a problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from voicetune.errors import VoicetuneError


def parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise VoicetuneError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None


def json_lines(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSONL text."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise VoicetuneError(f"{path}:{number}: malformed JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise VoicetuneError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
        yield number, data


def require(data: dict, field: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``data[field]``, checked to be of ``kind``; the error names ``where`` and the field."""
    if field not in data:
        raise VoicetuneError(f"{where}: missing field '{field}'")
    value = data[field]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise VoicetuneError(f"{where}: field '{field}' should be {expected}, got {type(value).__name__}")
    return value
