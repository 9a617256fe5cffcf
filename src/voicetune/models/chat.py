"""One cached client for chat models behind OpenAI-compatible endpoints: the LLM judge, the LLM caller and the
facts teacher all ask through :class:`CachedChat`.

Answers are kept in SQLite (:class:`ChatCache`), keyed by what decides them: who asks (``purpose``), the model,
the endpoint, the messages, the temperature and token limit, and the seed when the answer is sampled. A re-run
asks only what is missing; a changed prompt or setting asks again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from voicetune.errors import VoicetuneError
from voicetune.models.generate import HTTPBackend, SamplingConfig


class ChatCache:
    """Chat answers in SQLite, keyed by a hash of what decided them (:meth:`key`); safe across threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, judge TEXT, model TEXT, answer TEXT)"
        )
        self._db.commit()
        self.hits = 0

    @staticmethod
    def key(purpose: str, model: str, messages: list[dict[str, str]], settings: dict[str, Any]) -> str:
        blob = json.dumps([purpose, model, messages, settings], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        if row is not None:
            self.hits += 1
        return row[0] if row else None

    def put(self, key: str, purpose: str, model: str, answer: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", (key, purpose, model, answer))
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def open_cache(path: str | Path, what: str) -> ChatCache:
    """The cache at ``path``, or one line naming it and ``what`` it is for when it cannot be opened."""
    try:
        return ChatCache(path)
    except (OSError, sqlite3.Error) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise VoicetuneError(f"{path}: cannot use as the {what} ({reason})") from None


class CachedChat:
    """A chat model behind an OpenAI-compatible ``endpoint``, its answers cached.

    Args:
        purpose: who asks (``llm:MODEL`` for the judge, ``caller:llm``, ``teacher-facts``); part of the key.
        cache: a :class:`ChatCache` (shared), or ``None``: no cache.
        temperature: 0 decodes greedily (the same answer for every seed); above 0, each seed is one draw.
        concurrency, timeout, retries, api_key_env: as :class:`voicetune.models.generate.HTTPBackend`.

    Attributes:
        requests: HTTP requests made (the rest came from the cache).
    """

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        purpose: str,
        cache: ChatCache | None = None,
        max_tokens: int = 200,
        temperature: float = 0.0,
        concurrency: int = 1,
        timeout: float = 60.0,
        retries: int = 3,
        api_key_env: str = "OPENAI_API_KEY",
    ):
        self.client = HTTPBackend(
            endpoint, model, concurrency=concurrency, timeout=timeout, retries=retries, api_key_env=api_key_env
        )
        self.model = model
        self.purpose = purpose
        self.cache = cache
        self.temperature = float(temperature)
        self.sampling = SamplingConfig(
            max_new_tokens=max_tokens, temperature=self.temperature, do_sample=self.temperature > 0, seed=0
        )
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def concurrency(self) -> int:
        return self.client.concurrency

    def key(self, messages: list[dict[str, str]], seed: int = 0) -> str:
        """The cache key of an answer to ``messages``."""
        settings: dict[str, Any] = {
            "endpoint": self.client.url,
            "temperature": self.temperature,
            "max_tokens": self.sampling.max_new_tokens,
        }
        if self.temperature > 0:
            settings["seed"] = seed  # a sampled answer is one draw per seed; a greedy one is the same for all
        return ChatCache.key(self.purpose, self.model, messages, settings)

    def ask(self, messages: list[dict[str, str]], seed: int = 0) -> str:
        """The model's answer to ``messages``: from the cache, else asked (and cached)."""
        key = self.key(messages, seed)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        with self._lock:
            self.requests += 1
        text = self.client.complete(messages, self.sampling, seed=seed)
        if self.cache is not None:
            self.cache.put(key, self.purpose, self.model, text)
        return text
