"""How long a text takes to say: a words-per-minute estimate, or the real espeak-ng audio duration."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.quality.text import words

#: A calm phone agent's pace; conversational English runs at 140 to 170 words a minute.
WORDS_PER_MINUTE = 150.0
#: The pause a listener hears at a sentence or line break.
PAUSE_SECONDS = 0.25

_BREAKS = (". ", "! ", "? ", "; ", ": ")  # with line breaks and the final stop: where a listener hears a pause
_SYMBOLS = "$%@&#/+="


def _number_length(token: str) -> float:
    """Words a TTS voice says for a number: "1095" takes about four, a long digit string one per digit."""
    return min(len(token), 4) * 0.9 + 0.5 if len(token) <= 4 else float(len(token))


def estimate_seconds(
    text: str, words_per_minute: float = WORDS_PER_MINUTE, pause_seconds: float = PAUSE_SECONDS
) -> float:
    """Estimated speaking time: spoken words at ``words_per_minute`` plus ``pause_seconds`` at each break.

    A word counts one; a number counts the words it is read as (a price like 1,095.55 takes about seven);
    symbols a voice reads out ($, %, @, &, /, #, +, =) count one each.
    """
    tokens = words(text)
    spoken = float(len(tokens))
    for token in tokens:
        if token[0].isdigit():
            spoken += _number_length(token) - 1.0
    spoken += sum(text.count(symbol) for symbol in _SYMBOLS)
    breaks = sum(text.count(mark) for mark in _BREAKS) + text.count("\n") + text.rstrip().endswith((".", "!", "?"))
    return spoken * 60.0 / words_per_minute + pause_seconds * breaks


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
        subprocess.run(
            [binary, "-s", str(int(words_per_minute)), "-w", str(out), "--", text], check=True, capture_output=True
        )
        with wave.open(str(out)) as audio:
            return audio.getnframes() / float(audio.getframerate())


def speaking_seconds(
    text: str,
    engine: str = "estimate",
    words_per_minute: float = WORDS_PER_MINUTE,
    pause_seconds: float = PAUSE_SECONDS,
) -> float:
    """Speaking time of ``text`` by ``engine``: ``"estimate"`` (fast) or ``"espeak"`` (real audio, its own pauses)."""
    if engine == "espeak":
        return espeak_seconds(text, words_per_minute)
    if engine != "estimate":
        raise VoicetuneError(f"unknown TTS engine '{engine}': use 'estimate' or 'espeak'")
    return estimate_seconds(text, words_per_minute, pause_seconds)
