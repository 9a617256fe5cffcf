"""The tuned voice in a Pipecat pipeline: between the LLM service and the TTS service, what the LLM wrote is
rewritten into what to say aloud before the TTS speaks it.

A Pipecat user adds three lines::

    from voicetune.integrations.pipecat import VoicetuneProcessor
    voice = VoicetuneProcessor(url="http://127.0.0.1:8010")  # `voicetune serve` (or
    VoicetuneProcessor(load_voice(...)))
    pipeline = Pipeline([transport.input(), stt, context_aggregator.user(), llm, voice, tts, transport.output(),
    context_aggregator.assistant()])

:class:`VoicetuneProcessor` holds back one LLM reply (the ``LLMTextFrame`` tokens between
``LLMFullResponseStartFrame`` and ``LLMFullResponseEndFrame``) as the written *draft*, asks the voice for the
spoken version (the conversation so far and the draft), and pushes that downstream sentence by sentence as
``LLMTextFrame`` frames between the same start and end frames, so the TTS service and the assistant context
aggregator behave exactly as they do behind a plain LLM (the context records what was said aloud). Every other
frame passes through untouched and in order.

The voice is either a :class:`~voicetune.serve.voice.Voice` in this process (run in a thread: the event loop
never blocks) or the base URL of ``voicetune serve`` (``POST /v1/speak`` streamed as server-sent events). When
no first sentence arrives within ``timeout`` seconds, or the voice fails in any way, the reply falls back to
the draft said faithfully (:func:`voicetune.verbalize.speak_draft`: markdown gone, codes, amounts, times and
dates spoken; Pipecat's rule-based ``VoiceFormatter`` when that fails; one warning in the log); a voice failure
never raises out of the processor. An ``InterruptionFrame`` drops the reply being collected or spoken.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMContextUserTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.text.transforms.voice_formatter import VoiceFormatter

from voicetune.errors import VoicetuneError
from voicetune.serve.voice import Spoken, make_turn, sentence_chunks
from voicetune.verbalize import speak_draft

if TYPE_CHECKING:
    from voicetune.serve.voice import Voice

__all__ = ["SpokenReply", "VoicetuneProcessor"]

#: Characters of new draft after which the voice's prompt cache is brought up to date while the LLM writes.
PREPARE_CHARS = 48

#: How many times ``timeout`` the voice may take for each sentence after the first (the TTS is already
#: speaking by then); a voice that stalls longer ends the reply with what it has said.
STALL_FACTOR = 3.0

#: How many messages of the conversation the processor keeps (it sends the last ``history_turns``).
_KEPT_MESSAGES = 200


@dataclass
class SpokenReply:
    """What the processor said for one LLM reply, and how.

    ``source``: ``"voice"`` (the tuned voice said it) or ``"fallback"`` (the draft through Pipecat's
    ``VoiceFormatter``, because of ``error``); ``fallback``: the reply is the formatted draft, whether the
    processor fell back or the voice's own guard did; ``first_seconds``: from the end of the LLM reply to
    the first sentence pushed.
    """

    text: str
    fallback: bool
    source: str
    draft: str
    sentences: list[str]
    first_seconds: float | None = None
    seconds: float = 0.0
    error: str | None = None


class VoicetuneProcessor(FrameProcessor):
    """Rewrites each LLM reply into its spoken version with voicetune's tuned voice (see the module docstring).

    Args:
        voice: an in-process :class:`~voicetune.serve.voice.Voice` (e.g. ``load_voice("smollm2-135m")``).
        url: the base URL of ``voicetune serve`` (e.g. ``http://127.0.0.1:8010``); give this or ``voice``.
        timeout: seconds to wait for the voice's first sentence before speaking the formatted draft instead.
        history_turns: how many of the last conversation messages are sent with each draft.
        **kwargs: passed to :class:`~pipecat.processors.frame_processor.FrameProcessor` (e.g. ``name``).

    Attributes:
        history: the conversation it has seen (``{"role": "user"|"agent", "text"}``): the user's turns from
            ``LLMContextUserTurnFrame`` (what the user context aggregator wrote) or ``TranscriptionFrame``,
            and what it said itself.
        last_spoken: the :class:`SpokenReply` of the last reply (None before the first).
    """

    def __init__(
        self,
        voice: Voice | None = None,
        *,
        url: str | None = None,
        timeout: float = 3.0,
        history_turns: int = 6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (voice is None) == (url is None):
            raise ValueError(
                "VoicetuneProcessor needs exactly one of voice (an in-process Voice) or url (voicetune serve)"
            )
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if url is not None:
            try:
                import httpx  # noqa: F401, PLC0415 (optional: httpx, only for url=)
            except ImportError:
                raise ImportError("VoicetuneProcessor(url=...) needs httpx: pip install httpx") from None
        self._voice = voice
        self._url = url.rstrip("/") if url else None
        self._timeout = float(timeout)
        self._history_turns = max(0, int(history_turns))
        self._formatter = VoiceFormatter()
        self._client = None  # httpx.AsyncClient, made in the event loop on first use
        self.history: list[dict[str, str]] = []
        self.last_spoken: SpokenReply | None = None
        self._draft: list[str] | None = None  # the reply being collected; None outside one
        self._prepared = 0  # characters of the draft handed to the voice's prompt cache so far
        self._preparing: asyncio.Task | None = None
        self._user_open = False  # the last history message is the user's, built from transcriptions

    # ------------------------------------------------------------------------------------------------------
    # Frames

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)

        if isinstance(frame, InterruptionFrame):
            self._draft = None  # the reply being collected (or spoken: its task was just cancelled) is dropped
            await self.push_frame(frame, direction)
        elif direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMFullResponseStartFrame) and not frame.skip_tts:
            self._draft, self._prepared = [], 0
            self._prepare("")  # the conversation so far, while the LLM starts writing
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMTextFrame) and self._draft is not None and not frame.skip_tts:
            self._draft.append(frame.text)
            so_far = "".join(self._draft)
            if len(so_far) - self._prepared >= PREPARE_CHARS:
                self._prepare(so_far)
        elif isinstance(frame, LLMFullResponseEndFrame) and self._draft is not None:
            draft, self._draft = "".join(self._draft).strip(), None
            if draft:
                await self._say(draft)
            await self.push_frame(frame, direction)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._draft = None
            await self.push_frame(frame, direction)
        else:
            if isinstance(frame, TranscriptionFrame):
                self._heard(frame.text, transcription=True)
            elif isinstance(frame, LLMContextUserTurnFrame):
                self._heard(frame.text, transcription=False)
            await self.push_frame(frame, direction)

    async def cleanup(self):
        await super().cleanup()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _heard(self, text: str, *, transcription: bool) -> None:
        """Record what the user said: transcriptions are joined into the open user turn, which the user context
        aggregator's turn text (the same words, as written to the LLM context) then replaces."""
        text = " ".join(text.split())
        if not text:
            return
        if self._user_open and self.history and self.history[-1]["role"] == "user":
            if transcription:
                self.history[-1]["text"] += " " + text
            else:
                self.history[-1]["text"] = text
        else:
            self._remember("user", text)
        self._user_open = transcription

    def _remember(self, role: str, text: str) -> None:
        self.history.append({"role": role, "text": text})
        del self.history[:-_KEPT_MESSAGES]
        self._user_open = False

    # ------------------------------------------------------------------------------------------------------
    # Preparing: the voice evaluates the prompt as far as it is known while the LLM still writes the draft

    def _prepare(self, draft_so_far: str) -> None:
        """Hand the conversation and the draft so far to the voice's prompt cache, in the background (one at a
        time; a failure is ignored: preparing only saves time)."""
        if self._preparing is not None and not self._preparing.done():
            return
        self._prepared = len(draft_so_far)
        history = [dict(m) for m in self.history[-self._history_turns :]] if self._history_turns else []
        self._preparing = asyncio.get_running_loop().create_task(self._prepare_now(history, draft_so_far))

    async def _prepare_now(self, history: list[dict], draft_so_far: str) -> None:
        try:
            if self._url:
                await self._http().post(
                    f"{self._url}/v1/prepare", json={"history": history, "draft": draft_so_far}, timeout=self._timeout
                )
            elif self._voice is not None:
                await asyncio.to_thread(self._voice.prepare, make_turn(history, draft_so_far))
        except Exception as error:  # noqa: BLE001 - preparing is an optimisation; the reply itself reports failures
            logger.debug(f"{self}: preparing the voice failed ({type(error).__name__}: {error})")

    # ------------------------------------------------------------------------------------------------------
    # Speaking

    async def _push_sentence(self, text: str, first: bool) -> None:
        # LLM tokens carry their own spaces (LLMTextFrame.includes_inter_frame_spaces), and the TTS's sentence
        # aggregator needs the space between sentences to find their ends.
        await self.push_frame(LLMTextFrame(text if first else " " + text))

    async def _say(self, draft: str) -> None:
        """Ask the voice for the spoken version of ``draft`` and push it, sentence by sentence; on a timeout or
        a failure before the first sentence, push the formatted draft instead."""
        started = time.perf_counter()
        history = [dict(m) for m in self.history[-self._history_turns :]] if self._history_turns else []
        said: list[str] = []
        first_seconds = None
        guard_fallback = False
        error = None
        chunks = self._remote_chunks(history, draft) if self._url else self._local_chunks(history, draft)
        try:
            while True:
                limit = self._timeout if not said else self._timeout * STALL_FACTOR
                try:
                    async with asyncio.timeout(limit):
                        kind, value = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise TimeoutError(f"no {'next' if said else 'first'} sentence within {limit:g} s") from None
                if kind == "done":
                    guard_fallback = isinstance(value, dict) and bool(value.get("fallback"))
                    break
                text = str(value).strip()
                if text:
                    if first_seconds is None:
                        first_seconds = time.perf_counter() - started
                    await self._push_sentence(text, first=not said)
                    said.append(text)
            if not said:
                raise VoicetuneError("the voice said nothing")
        except TimeoutError as failure:
            error = str(failure)
        except Exception as failure:  # a voice failure is never the pipeline's: fall back (cancellation passes)
            error = " ".join(f"{type(failure).__name__}: {failure}".split())
        finally:
            await _close(chunks)

        if error is None or said:
            if error is not None:
                logger.warning(
                    f"{self}: voicetune voice stopped after {len(said)} sentence(s) ({error}); ending the reply there"
                )
            self.last_spoken = SpokenReply(
                text=" ".join(said),
                fallback=guard_fallback,
                source="voice",
                draft=draft,
                sentences=said,
                first_seconds=first_seconds,
                seconds=time.perf_counter() - started,
                error=error,
            )
        else:
            logger.warning(f"{self}: voicetune voice failed ({error}); speaking the draft as voicetune renders it")
            said = await self._push_fallback(draft)
            self.last_spoken = SpokenReply(
                text=" ".join(said),
                fallback=True,
                source="fallback",
                draft=draft,
                sentences=said,
                first_seconds=time.perf_counter() - started,
                seconds=time.perf_counter() - started,
                error=error,
            )
        if said:
            self._remember("agent", self.last_spoken.text)

    async def _push_fallback(self, draft: str) -> list[str]:
        try:
            formatted = speak_draft(draft)
        except Exception as failure:  # noqa: BLE001 - the renderer broke: Pipecat's formatter, then the draft as written
            logger.warning(
                f"{self}: speak_draft failed ({type(failure).__name__}: {failure}); speaking the draft through "
                "VoiceFormatter"
            )
            try:
                formatted = await self._formatter(draft, "sentence")
            except Exception as again:  # the formatter broke too: the draft as written is better than silence
                logger.warning(
                    f"{self}: VoiceFormatter failed ({type(again).__name__}: {again}); speaking the draft as written"
                )
                formatted = draft
        said = list(sentence_chunks([formatted]))
        for index, sentence in enumerate(said):
            await self._push_sentence(sentence, first=index == 0)
        return said

    # ------------------------------------------------------------------------------------------------------
    # Voices: ("chunk", sentence) items, then ("done", metadata); a failure raises

    async def _local_chunks(self, history: list[dict], draft: str) -> AsyncIterator[tuple[str, object]]:
        """The in-process voice's stream, run in a thread of its own and handed over through a queue."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        end = object()
        voice = self._voice
        assert voice is not None  # called only without url, so with a voice (see __init__)

        def hand(item) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening
                stop.set()

        def produce() -> None:
            try:
                for item in voice.stream(make_turn(history, draft)):
                    if stop.is_set():
                        return
                    hand(item)
            except BaseException as failure:  # handed to the reader, which raises it
                hand(failure)
            hand(end)

        threading.Thread(target=produce, name="voicetune-voice", daemon=True).start()
        try:
            while (item := await items.get()) is not end:
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Spoken):
                    yield "done", {"response": item.text, **item.meta()}
                else:
                    yield "chunk", str(item)
        finally:
            stop.set()

    def _http(self):
        if self._client is None:
            import httpx  # noqa: PLC0415 (optional: httpx, only for url=)

            # The processor bounds the waits itself (timeout, STALL_FACTOR); the client only bounds connecting.
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=self._timeout))
        return self._client

    async def _remote_chunks(self, history: list[dict], draft: str) -> AsyncIterator[tuple[str, object]]:
        """``POST {url}/v1/speak`` with ``stream: true``: its ``chunk`` events, then ``done``; ``error`` raises."""
        body = {"history": history, "draft": draft, "facts": None, "stream": True}
        async with self._http().stream(
            "POST", f"{self._url}/v1/speak", json=body, headers={"Accept": "text/event-stream"}
        ) as response:
            if response.status_code >= 400:
                raise VoicetuneError(
                    f"{self._url}/v1/speak answered {response.status_code}: {_error_message(await response.aread())}"
                )
            event, data = "message", []
            async for line in response.aiter_lines():
                if line:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                    continue
                if data:
                    payload = json.loads("\n".join(data))
                    if event == "error":
                        raise VoicetuneError(f"{self._url}/v1/speak: {payload.get('message', payload)}")
                    if event == "chunk":
                        yield "chunk", str(payload.get("text", ""))
                    elif event == "done":
                        yield "done", payload
                        return
                event, data = "message", []


def _error_message(raw: bytes) -> str:
    """The one-line reason of a ``voicetune serve`` error body, or the body itself."""
    text = raw.decode("utf-8", "replace")
    try:
        return str(json.loads(text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return " ".join(text.split())[:300] or "(no body)"


async def _close(chunks) -> None:
    try:
        await chunks.aclose()
    except Exception:  # noqa: BLE001 - closing a broken stream must not hide what broke it
        pass
