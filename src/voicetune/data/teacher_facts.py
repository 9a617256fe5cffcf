"""Must-convey facts from a teacher model: ``voicetune data facts``.

Imported transcripts have no ``facts``, so the scorer treats every fact it finds in a draft as required, even
a code the caller read out a minute ago. :func:`teacher_facts` asks any OpenAI-compatible chat model (a
*teacher*) which spans of each draft the caller must hear in this reply (the prompt is
:data:`voicetune.models.prompts.FACTS_PROMPT`) and writes them as the turn's ``facts``.

A teacher cannot invent a fact: an answer line is kept only when it is a span of the draft (ignoring case,
white space and markdown emphasis, on word boundaries), and is stored as the draft writes it. ``NONE`` gives
``facts = []``; an answer with no span of the draft and no ``NONE`` leaves the turn as it was (the scorer
then extracts facts from the draft as before). Raw answers are cached in SQLite, keyed by a sha256 of the
endpoint, the model and the prompt, so a killed run resumes without asking again.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from voicetune.models.chat import CachedChat, open_cache
from voicetune.models.prompts import build_facts_messages
from voicetune.progress import bar
from voicetune.quality.facts import INTERNAL_ID, URL
from voicetune.records import Turn

__all__ = ["FactsAnswer", "FactsStats", "parse_facts_answer", "teacher_facts"]

_THINKING = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.S | re.I)
_FENCE = re.compile(r"^\s*```\w*\s*$")
_BULLET = re.compile(
    r"^(?:[-*>–—]+\s+|[•·‣◦▪]\s*|\d{1,2}[.)]\s+|\(\d{1,2}\)\s+|\(?[A-Za-z]\)\s+|(?:facts?|span)\s*\d*\s*[:.)-]\s+)",
    re.I,
)
_ENDS = " \t\"'“”‘’„«»`*_"
_TRAILING = ".,;:!?"
_ABBREVIATION_END = re.compile(r"\.\w\.$")
_EMPHASIS = re.compile(r"\*\*|__|`")
_NONE = re.compile(r"^(?:none|n/a|nothing|no (?:specific |new )?facts?)\b", re.I)
_SPLIT = re.compile(r"\s*(?:;|\s\|\s|•)\s*")


@dataclass
class FactsAnswer:
    """A teacher's answer read against the draft: the facts kept (as the draft writes them), the lines
    dropped as not in the draft, and whether it said ``NONE``."""

    facts: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    ids_dropped: list[str] = field(default_factory=list)
    none: bool = False

    @property
    def usable(self) -> bool:
        """Whether the answer decides the turn's facts: some fact of the draft, or ``NONE``."""
        return bool(self.facts) or self.none


@dataclass
class FactsStats:
    """What a :func:`teacher_facts` run did (filled in when passed as ``stats``)."""

    turns: int = 0
    asked: int = 0  # turns the teacher was asked about (from the cache or over HTTP)
    requests: int = 0  # HTTP requests made (the rest came from the cache)
    cached: int = 0
    updated: int = 0  # turns whose facts the teacher set (``none`` of them to [])
    none: int = 0
    unusable: int = 0  # answers with no span of the draft and no NONE: the turn is left as it was
    kept: int = 0
    dropped: int = 0  # answer lines that are not a span of the draft
    ids_dropped: int = 0  # spans of the draft that are only an internal id or a URL
    curated: int = 0  # turns that already had facts (left alone without ``overwrite``)
    no_draft: int = 0
    dropped_examples: list[str] = field(default_factory=list)


def _clean(line: str) -> str:
    """An answer line without list markers, quotes, emphasis or trailing punctuation."""
    text = line.strip()
    while True:
        before = text
        text = _BULLET.sub("", text, count=1).strip(_ENDS)
        if not _ABBREVIATION_END.search(text):  # "6:00 a.m." keeps its last dot, "$45.00." does not
            text = text.rstrip(_TRAILING).strip(_ENDS)
        if text == before:
            return _EMPHASIS.sub("", text).strip()


def _find(fact: str, plain_draft: str) -> str | None:
    """The span of the draft (emphasis removed) that ``fact`` is, ignoring case and white space, on word
    boundaries; written as the draft writes it (white space collapsed). ``None`` when there is none."""
    tokens = fact.split()
    if not tokens:
        return None
    pattern = r"\s+".join(re.escape(token) for token in tokens)
    if re.match(r"\w", tokens[0]):
        pattern = r"(?<!\w)" + pattern
    if re.search(r"\w$", tokens[-1]):
        pattern += r"(?!\w)"
    match = re.search(pattern, plain_draft, re.I)
    return " ".join(match.group(0).split()) if match else None


def _not_a_fact(span: str) -> bool:
    """A span that is only an internal id (credit_card_123) or a URL: never something to say aloud."""
    return bool(INTERNAL_ID.fullmatch(span) or URL.fullmatch(span))


def parse_facts_answer(answer: str, draft: str) -> FactsAnswer:
    """Read a teacher's answer: one fact a line (bullets, numbering, quotes and emphasis stripped; a line
    holding several facts split on ``;`` or `` | ``), kept when it is a span of ``draft`` and deduplicated;
    ``NONE`` (or "n/a", "nothing") marks an answer with no fact. Reasoning in ``<think>`` tags, code fences
    and header lines ending in ``:`` are ignored."""
    result = FactsAnswer()
    plain_draft = _EMPHASIS.sub("", draft or "")
    seen: set[str] = set()

    def keep(span: str) -> None:
        if _not_a_fact(span):
            result.ids_dropped.append(span)
        elif span.casefold() not in seen:
            seen.add(span.casefold())
            result.facts.append(span)

    for raw in _THINKING.sub("", answer or "").splitlines():
        if not raw.strip() or _FENCE.match(raw) or raw.rstrip().endswith(":"):
            continue
        text = _clean(raw)
        if not text:
            continue
        span = _find(text, plain_draft)
        if span is not None:
            keep(span)
            continue
        if _NONE.match(text):
            result.none = True
            continue
        parts = [_clean(part) for part in _SPLIT.split(text)]
        spans = [_find(part, plain_draft) for part in parts if part]
        if len(spans) > 1 and any(spans):
            for part, span in zip([p for p in parts if p], spans, strict=True):
                if span is not None:
                    keep(span)
                else:
                    result.dropped.append(part)
            continue
        result.dropped.append(text)
    return result


def teacher_facts(
    turns: Sequence[Turn],
    endpoint: str,
    model: str,
    *,
    cache_path: str | Path,
    concurrency: int = 2,
    timeout: float = 60.0,
    api_key_env: str = "OPENAI_API_KEY",
    progress: bool = True,
    overwrite: bool = False,
    retries: int = 3,
    max_tokens: int = 512,
    stats: FactsStats | None = None,
) -> list[Turn]:
    """The turns with ``facts`` from a teacher model behind an OpenAI-compatible ``endpoint``.

    Every turn with a draft and no ``facts`` (every turn with a draft when ``overwrite``) is sent to the
    teacher (:func:`voicetune.models.prompts.build_facts_messages`, greedy decoding); its answer is read by
    :func:`parse_facts_answer`. A usable answer sets ``facts`` (``[]`` for ``NONE``) and
    ``meta.facts_source = {"teacher": model, "endpoint": endpoint}``; any other turn is returned unchanged.
    Answers are cached at ``cache_path`` (SQLite) as they arrive, so a re-run asks only what is missing.

    Args:
        concurrency: parallel requests; timeout: seconds one request may take in all (then retried
            ``retries`` times with backoff); api_key_env: the variable holding the endpoint's API key.
        stats: a :class:`FactsStats` to fill with what was done (kept and dropped facts, cache hits).

    Raises:
        VoicetuneError: a URL that is not an endpoint, an endpoint that is unreachable, too slow, rejects the
            key or does not answer with a chat completion (naming the URL), or a cache that cannot be opened.
    """
    stats = stats if stats is not None else FactsStats()
    chat = CachedChat(
        endpoint,
        model,
        purpose="teacher-facts",
        max_tokens=max_tokens,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        api_key_env=api_key_env,
    )
    source = {"teacher": model, "endpoint": endpoint.strip()}
    stats.turns = len(turns)
    todo: list[int] = []
    for index, turn in enumerate(turns):
        if not (turn.draft or "").strip():
            stats.no_draft += 1
        elif turn.facts is not None and not overwrite:
            stats.curated += 1
        else:
            todo.append(index)
    stats.asked = len(todo)
    result = list(turns)
    if not todo:
        return result
    cache = chat.cache = open_cache(cache_path, "facts cache")
    failed = threading.Event()

    def answer(turn: Turn) -> str:
        messages = build_facts_messages(turn)
        if failed.is_set():  # an earlier request failed: its error stops the run, ask nothing more
            raise RuntimeError("stopped after an earlier request failed")
        try:
            return chat.ask(messages)
        except BaseException:
            failed.set()
            raise

    try:
        with ThreadPoolExecutor(chat.concurrency) as pool, bar(len(todo), f"facts ({model})", progress) as advance:
            futures = {pool.submit(answer, turns[index]): index for index in todo}
            try:
                for future, index in futures.items():
                    turn = turns[index]
                    parsed = parse_facts_answer(future.result(), turn.draft or "")
                    advance(1)
                    stats.kept += len(parsed.facts)
                    stats.dropped += len(parsed.dropped)
                    stats.ids_dropped += len(parsed.ids_dropped)
                    stats.dropped_examples.extend(parsed.dropped[: max(0, 5 - len(stats.dropped_examples))])
                    if not parsed.usable:
                        stats.unusable += 1
                        continue
                    stats.updated += 1
                    stats.none += not parsed.facts
                    result[index] = turn.model_copy(
                        update={"facts": parsed.facts, "meta": {**turn.meta, "facts_source": dict(source)}}
                    )
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # a dead endpoint: stop now, not after every retry
                raise
    finally:
        stats.cached = cache.hits
        stats.requests = chat.requests
        cache.close()
    return result
