"""How long a text takes to say: a words-per-minute estimate, or the real espeak-ng audio duration."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

from voicetune.errors import VoicetuneError

#: A calm phone agent's pace; conversational English runs at 140 to 170 words a minute.
WORDS_PER_MINUTE = 150.0
#: The pause a listener hears at a sentence or line break.
PAUSE_SECONDS = 0.25

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[A-Za-z]+(?:['’][A-Za-z]+)*|[$%@&#/+=]")
_BREAK = re.compile(r"[.!?;:]\s|\n")
_SYMBOL_WORDS = {"$": 1, "%": 1, "@": 1, "&": 1, "#": 1, "/": 1, "+": 1, "=": 1}


def _spoken_length(token: str) -> float:
    """Words a TTS voice says for one token: a number like 1,095.55 takes about seven."""
    if token in _SYMBOL_WORDS:
        return _SYMBOL_WORDS[token]
    if token[0].isdigit():
        groups = re.split(r"[.,:]", token)
        return sum(min(len(g), 4) * 0.9 + 0.5 if len(g) <= 4 else len(g) for g in groups)
    return 1.0 + max(0, len(token) - 10) / 6  # long words (and run-together ids) take longer


def estimate_seconds(text: str, words_per_minute: float = WORDS_PER_MINUTE) -> float:
    """Estimated speaking time: spoken words at ``words_per_minute`` plus a short pause at each break."""
    words = sum(_spoken_length(t) for t in _TOKEN.findall(text))
    return words * 60.0 / words_per_minute + PAUSE_SECONDS * len(_BREAK.findall(text))


@lru_cache(maxsize=8192)
def espeak_seconds(text: str, words_per_minute: float = WORDS_PER_MINUTE) -> float:
    """The duration of espeak-ng's audio for ``text`` at ``words_per_minute`` (needs the espeak-ng binary)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise VoicetuneError("espeak-ng is not installed (apt-get install espeak-ng), or use --tts estimate")
    if not text.strip():
        return 0.0
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "speech.wav"
        subprocess.run([binary, "-s", str(int(words_per_minute)), "-w", str(out), "--", text], check=True, capture_output=True)
        with wave.open(str(out)) as audio:
            return audio.getnframes() / float(audio.getframerate())


def speaking_seconds(text: str, engine: str = "estimate", words_per_minute: float = WORDS_PER_MINUTE) -> float:
    """Speaking time of ``text`` by ``engine``: ``"estimate"`` (fast) or ``"espeak"`` (real audio)."""
    if engine == "espeak":
        return espeak_seconds(text, words_per_minute)
    if engine != "estimate":
        raise VoicetuneError(f"unknown TTS engine '{engine}': use 'estimate' or 'espeak'")
    return estimate_seconds(text, words_per_minute)
