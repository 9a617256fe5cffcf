"""The optional LLM caller: a chat model plays a τ²-bench customer on the phone and reacts to each agent turn.

The simulation (:mod:`voicetune.simulate`) replays calls offline to predict what a tuned voice does to repeat
requests, turns, duration and outcomes. Its default caller is the rule-based probability model, which is
fast, free and deterministic; this module is the alternative for when a capable model is at hand: over any
OpenAI-compatible endpoint, an LLM plays one of the τ²-bench personas (what the caller knows and wants, from
``../shared/data/tau2/*/tasks.json``) and, after hearing each agent turn, answers with one word: it
understood, it wants the turn repeated, or it wants the rest (the prompt is
:data:`voicetune.models.prompts.CALLER_PROMPT`).

Small local models are poor callers: they say UNDERSTOOD to almost anything, or drift from the one-word
answer, so the predictions they give say little about a voice. Use a strong model, and prefer the
rule-based caller when none is available.

The same conversation and seed always get the same persona, whatever system is simulated (common random
numbers: two voices are compared on the same callers). The HTTP client (retries, backoff, timeout, errors
naming the URL) is :class:`voicetune.models.generate.HTTPBackend`, and answers are cached in SQLite by
:class:`voicetune.models.chat.ChatCache`, so a re-run asks nothing twice. An answer that cannot be read is
taken as ``"understood"`` and counted in :attr:`LLMCaller.errors`: one bad answer never stops a simulation.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from voicetune.errors import VoicetuneError
from voicetune.models.chat import CachedChat, ChatCache
from voicetune.models.prompts import CALLER_PROMPT, caller_messages
from voicetune.quality.text import sentences
from voicetune.records import read_text_file

__all__ = ["LLMCaller", "Persona", "Reaction", "default_personas", "load_personas", "parse_reaction"]

Reaction = Literal["understood", "repeat", "rest"]

#: How long a persona's text may be (the reason for the call is always kept whole).
PERSONA_TEXT_CHARS = 1500
_PART_CHARS = {"known_info": 400, "unknown_info": 300, "task_instructions": 500, "persona": 400}

_REPO_ROOT = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------------------------------------
# Personas


@dataclass(frozen=True)
class Persona:
    """One simulated caller: ``id`` (``tau2:DOMAIN:TASK``), ``domain``, and ``text``, what the caller knows
    and wants, in the second person."""

    id: str
    domain: str
    text: str


def _flat(text: Any) -> str:
    return " ".join(str(text).split()) if text else ""


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    sentence_end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: sentence_end + 1] if sentence_end > limit // 2 else cut.rstrip() + "…"


# Sentences of τ²-bench instructions that steer a text-and-tools user simulator, not a caller on the phone.
_TOOL_SENTENCE = re.compile(r"\btools?\b|`", re.I)


def _behaviour(task_instructions: Any) -> str:
    return " ".join(s for s in sentences(_flat(task_instructions)) if not _TOOL_SENTENCE.search(s))


def persona_text(scenario: dict) -> str:
    """The caller's text from a τ²-bench ``user_scenario``: why they call (whole), what they know and do not
    know, how they behave (sentences about tool calls dropped) and who they are, each part clipped."""
    instructions = scenario.get("instructions") or {}
    if isinstance(instructions, str):  # some τ²-bench versions give the instructions as one text
        instructions = {"reason_for_call": instructions}
    parts = (
        [f"Why you are calling: {_flat(instructions.get('reason_for_call'))}"]
        if instructions.get("reason_for_call")
        else []
    )
    labelled = (
        ("known_info", "What you know: "),
        ("unknown_info", "What you do not know: "),
        ("task_instructions", "How you behave: "),
    )
    for key, label in labelled:
        value = _behaviour(instructions.get(key)) if key == "task_instructions" else _flat(instructions.get(key))
        if value:
            parts.append(label + _clip(value, _PART_CHARS[key]))
    if scenario.get("persona"):
        parts.append("Who you are: " + _clip(_flat(scenario["persona"]), _PART_CHARS["persona"]))
    text = "\n".join(parts)
    while len(text) > PERSONA_TEXT_CHARS and len(parts) > 1:  # drop the least important parts first
        parts.pop()
        text = "\n".join(parts)
    return text


def _load_file(path: Path, domain: str | None = None) -> list[Persona]:
    text = read_text_file(path, "a τ²-bench tasks.json file (a JSON list of tasks)")
    try:
        tasks = json.loads(text)
    except ValueError as error:
        raise VoicetuneError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(tasks, list):
        raise VoicetuneError(f"{path}: expected a JSON list of τ²-bench tasks, got a JSON {type(tasks).__name__}")
    personas = []
    for index, task in enumerate(tasks):
        scenario = task.get("user_scenario") if isinstance(task, dict) else None
        if not isinstance(scenario, dict):
            raise VoicetuneError(f"{path}: task {index}: no 'user_scenario' object")
        instructions = scenario.get("instructions")
        reason = instructions.get("reason_for_call") if isinstance(instructions, dict) else instructions
        if not isinstance(reason, str) or not reason.strip():
            raise VoicetuneError(f"{path}: task {index}: no 'user_scenario.instructions.reason_for_call'")
        task_domain = (
            (instructions.get("domain") if isinstance(instructions, dict) else None) or domain or path.parent.name
        )
        task_id = task.get("id", index)
        personas.append(
            Persona(id=f"tau2:{task_domain}:{task_id}", domain=str(task_domain), text=persona_text(scenario))
        )
    if not personas:
        raise VoicetuneError(f"{path}: holds no tasks")
    return personas


def load_personas(path: str | Path) -> list[Persona]:
    """The personas of a τ²-bench ``tasks.json``, or of every ``*/tasks.json`` in a folder (one folder per
    domain, in name order; tasks in file order).

    Raises:
        VoicetuneError: a missing path, a folder without ``*/tasks.json``, or a file that is not a JSON list
            of tasks each with a reason for the call; the message names the file (and the task).
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*/tasks.json")) or ([path / "tasks.json"] if (path / "tasks.json").is_file() else [])
        if not files:
            raise VoicetuneError(
                f"{path}: no */tasks.json in this folder (expected τ²-bench data, one folder per domain)"
            )
        return [persona for file in files for persona in _load_file(file)]
    return _load_file(path)


def default_personas(shared: str | Path | None = None) -> list[Persona]:
    """The τ²-bench personas of ``../shared/data/tau2`` relative to the repository (or of ``shared``: the
    shared folder, its ``data`` folder or the ``tau2`` folder itself); ``[]`` when the data is absent."""
    root = Path(shared) if shared is not None else _REPO_ROOT.parent / "shared"
    for candidate in (root / "data" / "tau2", root / "tau2", root):
        if candidate.is_dir() and any(candidate.glob("*/tasks.json")):
            return load_personas(candidate)
    return []


# --------------------------------------------------------------------------------------------------------
# Answers

_THINKING = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.S | re.I)
_WORD = re.compile(r"\b(understood|repeat|rest)\b", re.I)
_JSON_OBJECT = re.compile(r"\{.*?\}", re.S)
_JSON_KEYS = ("reaction", "answer", "decision", "response")


def parse_reaction(text: str | None) -> Reaction | None:
    """A caller's answer read tolerantly: ``{"reaction": ...}`` JSON, else the first of UNDERSTOOD, REPEAT
    and REST in the text (any case, thinking blocks skipped); ``None`` when there is none."""
    text = _THINKING.sub(" ", text or "")
    for match in _JSON_OBJECT.finditer(text):
        try:
            data = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(data, dict):
            for key, value in data.items():
                if str(key).strip().lower() in _JSON_KEYS and isinstance(value, str):
                    word = _WORD.search(value)
                    if word:
                        return word.group(1).lower()  # type: ignore[return-value]
    word = _WORD.search(text)
    return word.group(1).lower() if word else None  # type: ignore[return-value]


def _short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------
# The caller


class LLMCaller:
    """A caller played by a chat model behind an OpenAI-compatible endpoint.

    Args:
        endpoint: the ``http(s)://HOST[:PORT][/v1]`` URL.
        model: the model name sent with each request.
        personas: who the callers are (:func:`default_personas`, :func:`load_personas`); at least one.
        api_key_env: the environment variable holding the API key.
        timeout: seconds per request.
        cache: an SQLite file caching answers by (model, endpoint, temperature, messages), and the seed when
            the temperature is above 0; ``None``: no cache.
        temperature: 0 (the default) decodes greedily.
        retries: tries after a failed request (with exponential backoff from 1 s).
        max_tokens: the most tokens an answer may have (one word is asked for).

    Attributes:
        errors: answers that could not be read (each taken as ``"understood"``).
        requests: HTTP requests made (the rest came from the cache).

    Raises:
        VoicetuneError: no persona, or an endpoint that is not a URL (at construction); an endpoint that is
            unreachable, too slow, rejects the key or does not answer as OpenAI does (in :meth:`react`),
            naming the URL.
    """

    name = "llm"

    def __init__(
        self,
        endpoint: str,
        model: str,
        personas: Sequence[Persona],
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        cache: str | Path | None = None,
        temperature: float = 0.0,
        retries: int = 3,
        max_tokens: int = 16,
    ):
        if not personas:
            raise VoicetuneError(
                "the LLM caller needs at least one persona (no τ²-bench tasks were found: pass a tasks.json or its "
                "folder)"
            )
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise VoicetuneError(f"{endpoint}: the caller's temperature must be a number >= 0, got {temperature!r}")
        self.chat = CachedChat(
            endpoint,
            model,
            purpose=f"caller:{self.name}",
            cache=ChatCache(cache) if cache is not None else None,
            max_tokens=max_tokens,
            temperature=temperature,
            timeout=timeout,
            retries=retries,
            api_key_env=api_key_env,
        )
        self.endpoint = endpoint.strip()
        self.model = model
        self.personas = tuple(personas)
        self.temperature = float(temperature)
        self.errors = 0
        self._lock = threading.Lock()

    def describe(self) -> dict:
        """What decides this caller's answers: part of the simulation's fingerprint."""
        sample = caller_messages(
            "PERSONA", [("user", "USER"), ("agent", "AGENT")], "TURN", 1
        )  # the template, not just the constant
        return {
            "caller": self.name,
            "endpoint": self.endpoint,
            "model": self.model,
            "prompt": _short_hash([CALLER_PROMPT, sample]),
            "temperature": self.temperature,
            "max_tokens": self.chat.sampling.max_new_tokens,
            "personas": _short_hash([[p.id, p.text] for p in self.personas]),
            "persona_count": len(self.personas),
        }

    def persona_for(self, conversation_id: str, seed: int) -> Persona:
        """The persona of a conversation: a hash of ``(conversation_id, seed)`` only, so every simulated
        system meets the same caller in the same conversation (common random numbers)."""
        digest = hashlib.sha256(f"voicetune-caller\0{seed}\0{conversation_id}".encode()).digest()
        return self.personas[int.from_bytes(digest[:8], "big") % len(self.personas)]

    def react(
        self, *, conversation_id: str, seed: int, heard_so_far: Sequence[tuple[str, str]], agent_turn: str, attempt: int
    ) -> Reaction:
        """How the conversation's caller reacts on hearing ``agent_turn`` (``attempt`` 0 the first time, 1+
        after asking for a repeat), given the call so far as heard (``(role, text)``, role ``user`` or
        ``agent``): ``"understood"``, ``"repeat"`` or ``"rest"``. An unreadable answer is ``"understood"``
        and counts in :attr:`errors`."""
        persona = self.persona_for(conversation_id, seed)
        messages = caller_messages(persona.text, list(heard_so_far), agent_turn, attempt)
        reaction = parse_reaction(self.chat.ask(messages, seed))
        if reaction is None:
            with self._lock:
                self.errors += 1
            return "understood"
        return reaction

    @property
    def requests(self) -> int:
        return self.chat.requests

    def close(self) -> None:
        """Close the answer cache."""
        if self.chat.cache is not None:
            self.chat.cache.close()
            self.chat.cache = None
