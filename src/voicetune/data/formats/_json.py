"""JSON parsing that names the file and line of a problem."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voicetune.errors import VoicetuneError
from voicetune.records import invalid_text_field, jsonl_lines
from voicetune.records import parse_json as _strict_loads

# A lone surrogate escape: a high one not followed by a low one, or a low one not after a high one (an even
# number of backslashes before it, so that an escaped backslash followed by "ud800" is not taken for one).
_LONE_SURROGATE = re.compile(
    r"(?<!\\)(?:\\\\)*(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<![dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)

# A JSON string (skipped), or outside strings (group 1) a bare NaN/Infinity or an integer too long to convert.
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?(?:NaN|Infinity)|[0-9]{4000,})')

_NOT_TEXT = "not valid Unicode text (a lone surrogate escape such as \\ud800)"


def _malformed(path: Path, number: int, error: ValueError) -> VoicetuneError:
    message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
    return VoicetuneError(f"{path}:{number}: malformed JSON ({message})")


def parse_json(path: Path, text: str) -> Any:
    """A whole JSON document; a problem names the line (bare NaN/Infinity and lone surrogates included)."""
    try:
        data = _strict_loads(text)
    except json.JSONDecodeError as error:
        raise _malformed(path, error.lineno, error) from None
    except ValueError as error:  # NaN/Infinity (parse_constant) or a huge integer: find its line
        found = next((m for m in _STRING_OR_CONSTANT.finditer(text) if m.group(1)), None)
        raise _malformed(path, text.count("\n", 0, found.start()) + 1 if found else 1, error) from None
    field = invalid_text_field(data, text)
    if field is not None:
        found = _LONE_SURROGATE.search(text)
        line = text.count("\n", 0, found.start()) + 1 if found else 1
        raise VoicetuneError(f"{path}:{line}: field '{field}': {_NOT_TEXT}")
    return data


def json_lines(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSONL text (lines end at "\\n" only)."""
    for number, line in jsonl_lines(text):
        if not line.strip():
            continue
        try:
            data = _strict_loads(line)
        except ValueError as error:
            raise _malformed(path, number, error) from None
        if not isinstance(data, dict):
            raise VoicetuneError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
        field = invalid_text_field(data, line)
        if field is not None:
            raise VoicetuneError(f"{path}:{number}: field '{field}': {_NOT_TEXT}")
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
