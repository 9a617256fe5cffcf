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
from voicetune.quality.facts import turn_facts
from voicetune.records import Context

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


def persona(turn: Context) -> str:
    """A short persona: the record's own system prompt when it is short, else one made from its domain."""
    if turn.system and len(turn.system) <= PERSONA_CHARS:
        return turn.system.strip()
    domain = turn.domain if turn.domain and turn.domain != "general" else "customer service"
    return f"You are a phone agent for a {domain} company."


def must_say(turn: Context) -> list[str]:
    """The turn's required facts (given, or extracted from the draft), as a checklist for the model: a small
    model keeps the amounts, times and codes far more reliably when they are spelled out for it."""
    return [fact.text for fact in turn_facts(turn) if fact.required][:FACTS_IN_PROMPT]


def build_messages(turn: Context, style_prompt: str | None = None) -> list[dict[str, str]]:
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


# --------------------------------------------------------------------------------------------------------
# Must-convey facts from a teacher model (``voicetune data facts``, :mod:`voicetune.data.teacher_facts`)

#: The system prompt that asks a teacher model which facts of a draft the caller must hear in this reply.
#: The answer is one span of the draft per line, copied as written (the parser keeps only spans it finds in
#: the draft, so a teacher cannot invent a fact), or ``NONE``. What the caller already said or was told,
#: internal ids, URLs and list items past the third (which a spoken reply offers instead of reading) are
#: left out: the same rules the scorer's own fact extraction follows (``quality/facts.py``).
FACTS_PROMPT = """\
A phone agent wrote a reply for a screen; it will be said aloud to a caller, who only hears it. \
Decide which facts of the draft reply the caller must hear in THIS reply.

List them one per line: each one a short span copied exactly as it is written in the draft \
(an amount, a date, a time, a code, a name, a number, a key condition), with nothing else on the line.
Leave out:
- anything the caller already said, or was already told earlier in the call;
- internal ids (like credit_card_123 or user ids such as mia_li_3668) and URLs;
- items past the first three of a list: the agent can offer the rest instead of reading them all;
- greetings, filler and offers of more help.
If the caller needs to hear no specific fact in this reply, answer NONE.
Answer with the list (or NONE) only."""

#: How much of the call the facts prompt shows: what the caller has heard decides what is new.
FACTS_HISTORY_MESSAGES = 12
FACTS_MESSAGE_CHARS = 500


def build_facts_messages(turn: Context) -> list[dict[str, str]]:
    """Chat messages asking a teacher for the facts of ``turn.draft`` the caller must hear now: the recent
    spoken history (clipped) and the whole draft, verbatim (facts must be spans of it)."""
    lines = [
        f"{'Caller' if message.role == 'user' else 'Agent'}: {_clip(message.text, FACTS_MESSAGE_CHARS)}"
        for message in turn.history[-FACTS_HISTORY_MESSAGES:]
    ]
    call = "The call so far:\n" + "\n".join(lines) if lines else "The call is starting."
    user = (
        f'{call}\n\nThe agent\'s draft reply:\n"""\n{(turn.draft or "").strip()}\n"""\n\nThe facts the caller must '
        "hear now, one per line (or NONE):"
    )
    return [{"role": "system", "content": FACTS_PROMPT}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------------------------------------
# The simulated caller (optional LLM caller, :mod:`voicetune.simulate.llm_caller`)

#: The system prompt that makes a chat model play a caller who hears one agent turn and says whether it
#: understood it, wants it repeated, or wants the rest. The persona (what the caller knows and wants) follows
#: it; the answer is one word, read tolerantly by :func:`voicetune.simulate.llm_caller.parse_reaction`.
CALLER_PROMPT = """\
You are a customer on a phone call with a company's agent. You only hear the agent: there is no screen, \
so you cannot reread anything, and markdown, lists, symbols, links and long strings of numbers are hard to follow \
by ear.

After the agent's latest turn, decide how you react, and reply with exactly one word:
UNDERSTOOD - you followed it and got what you needed from this turn;
REPEAT - you could not follow it: too long, too many numbers or options at once, garbled, or symbols read out;
REST - you understood it, but the agent left out something you need, and you want the rest.
Answer with the one word only."""


def caller_messages(
    persona_text: str,
    heard_so_far: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    agent_turn: str,
    attempt: int,
    *,
    history_messages: int = 8,
    message_chars: int = 300,
) -> list[dict[str, str]]:
    """Chat messages asking a caller model (:data:`CALLER_PROMPT` plus ``persona_text``) how it reacts to
    ``agent_turn``: the last ``history_messages`` of the call as heard (``(role, text)``, role ``user`` for
    the caller, each clipped) and the agent's turn in full (its length is part of what the caller reacts
    to). ``attempt`` 1+ says the agent is saying it again after the caller asked it to repeat."""
    system = f"{CALLER_PROMPT}\n\nWho you are and why you are calling:\n{persona_text.strip()}"
    lines = [
        f"{'You' if role in ('user', 'caller') else 'Agent'}: {_clip(text, message_chars)}"
        for role, text in list(heard_so_far)[-history_messages:]
        if text and text.strip()
    ]
    call = "The call so far:\n" + "\n".join(lines) if lines else "The call is starting."
    again = ""
    if attempt > 0:
        times = "once" if attempt == 1 else f"{attempt} times"
        again = f"\n(You have asked the agent to repeat this {times}; this is what you hear now.)"
    user = (
        f'{call}\n\nThe agent now says:{again}\n"""\n{agent_turn.strip()}\n"""\n\nYour reaction (UNDERSTOOD, '
        "REPEAT or REST):"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
