"""The one place chat messages are built from a record: a short persona, the recent history, the draft.

Prompts are kept short on purpose (the last few messages, each clipped): CPU training time grows with
every prompt token, and the draft, not the whole call, says what this turn must convey. The trained model
needs no style prompt (the style is distilled into it); the *prompted base* baseline adds one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.records import _Context

#: How much context a prompt carries.
HISTORY_MESSAGES = 1
MESSAGE_CHARS = 160
DRAFT_CHARS = 600
FACTS_IN_PROMPT = 8
PERSONA_CHARS = 300

TASK = "Turn the draft reply into what you say aloud on the call."


@lru_cache(maxsize=1)
def _default_style() -> str:
    return resources.files(__package__).joinpath("voice_style.txt").read_text(encoding="utf-8").strip()


DEFAULT_STYLE_PROMPT = _default_style()


def load_style_prompt(path: str | Path | None) -> str | None:
    """The voice style prompt in a file (``None`` means no style prompt; ``"default"`` the built-in one)."""
    if path is None:
        return None
    if str(path) == "default":
        return DEFAULT_STYLE_PROMPT
    path = Path(path)
    if not path.is_file():
        raise VoicetuneError(f"{path}: no such style prompt file")
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise VoicetuneError(f"{path}: the style prompt file is empty")
    return text


_TABLE_RULE = re.compile(r"(?m)^\s*\|?\s*:?-{2,}.*$\n?")
_EMPHASIS = re.compile(r"\*\*|__")
_SPACES = re.compile(r"[ \t]{2,}")


def compact_draft(draft: str) -> str:
    """The draft with markup that carries no content removed (bold markers, table rules, runs of spaces):
    fewer prompt tokens, the same facts."""
    draft = _TABLE_RULE.sub("", _EMPHASIS.sub("", draft))
    draft = _SPACES.sub(" ", draft.replace("|", " | "))
    return "\n".join(line.strip(" |") for line in draft.splitlines() if line.strip(" |"))


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def persona(turn: _Context) -> str:
    """A short persona: the record's own system prompt when it is short, else one made from its domain."""
    if turn.system and len(turn.system) <= PERSONA_CHARS:
        return turn.system.strip()
    domain = turn.domain if turn.domain and turn.domain != "general" else "customer service"
    return f"You are a phone agent for a {domain} company."


def must_say(turn: _Context) -> list[str]:
    """The turn's required facts (given, or extracted from the draft), as a checklist for the model: a small
    model keeps the amounts, times and codes far more reliably when they are spelled out for it."""
    from voicetune.quality.scorer import turn_facts

    return [fact.text for fact in turn_facts(turn) if fact.required][:FACTS_IN_PROMPT]


def build_messages(turn: _Context, style_prompt: str | None = None) -> list[dict[str, str]]:
    """Chat messages asking for the spoken version of ``turn.draft``, given the last few messages."""
    system = f"{persona(turn)} {TASK}"
    if style_prompt:
        system += "\n\n" + style_prompt
    lines = [
        f"{'Caller' if message.role == 'user' else 'You'}: {_clip(message.text, MESSAGE_CHARS)}"
        for message in turn.history[-HISTORY_MESSAGES:]
    ]
    draft = _clip(compact_draft(turn.draft or ""), DRAFT_CHARS)
    user = ("\n".join(lines) + "\n\n" if lines else "") + f"Draft reply:\n{draft}"
    must = must_say(turn)
    if must:
        user += f"\n\nMust say: {'; '.join(must)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
