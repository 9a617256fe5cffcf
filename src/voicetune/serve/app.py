"""``voicetune serve``: the tuned voice over HTTP, for a voice pipeline to call between its LLM and its TTS.

    POST /v1/speak               {history, draft, facts?, stream?, scores?, seed?} -> {response, fallback, ...}
                                 stream: server-sent events, one ``chunk`` event per sentence, then ``done``
    POST /v1/prepare             {history, draft so far} -> the prompt so far evaluated into the model's cache
                                 (call it while the LLM still writes: the /v1/speak that follows starts sooner)
    POST /v1/chat/completions    OpenAI-compatible: ``messages`` are the history and the draft is ``draft``
                                 (or the last assistant message); ``stream`` gives OpenAI-style chunks
    GET  /health                 {"status": "ok", "model", "backend", "best_of", "guard"}

Every error is one line in OpenAI's shape, ``{"error": {"message", "type"}}``: a bad request (a field out of its
bounds below, a blank draft, text that is not valid Unicode, a body that is not UTF-8 JSON, an unknown path or
method, a request that does not fit the model's context) is a 4xx; a full queue is a 503 with ``Retry-After``; a
failure of the model is a 500, and the server keeps serving. Requests are served concurrently; generation is
one at a time (the :class:`~voicetune.serve.voice.Voice` lock), and at most ``queue`` requests wait for it.
The server has no authentication: it is meant for 127.0.0.1 or a private network behind the pipeline.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from voicetune import web
from voicetune.errors import VoicetuneError
from voicetune.serve.voice import BLANK_DRAFT, Spoken, Voice, blank, make_turn

#: The longest draft or history message accepted, in characters (a spoken turn is far shorter; the prompt
#: carries at most the first 600 characters of the draft and 160 of the last message, :mod:`voicetune.models.prompts`).
MAX_CHARS = 20_000
#: The most history (or chat) messages in one request (the prompt carries only the last).
MAX_MESSAGES = 200
#: The most facts one request may name, and the longest fact in characters: a fact is a short span of the draft
#: (an amount, a time, a code), and every fact is checked against the response, so their number is its cost.
MAX_FACTS = 64
MAX_FACT_CHARS = 300
#: The sampling seeds accepted (the samplers' range, :class:`voicetune.models.generate.SamplingConfig`).
MAX_SEED = 2**32 - 1
#: The longest model name a chat request may carry (it is ignored: the server serves one model).
MAX_NAME_CHARS = 256
#: The largest request body, in bytes: it bounds what the fields above cannot (the fields a chat request may
#: carry and the server ignores) before anything is parsed; past it, a 413.
MAX_BODY_BYTES = 4 * 2**20
#: How many requests may wait for the voice while one generates (``voicetune serve --queue``): at about a second
#: a generation the last waits some eight seconds, past any caller's patience; beyond it, a 503 at once.
QUEUE = 8


def _unicode(value: object) -> object:
    """Refuse a lone surrogate (JSON's ``"\\ud800"``): UTF-8 cannot encode it, so the tokenizer would fail on it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"character {error.start} is a lone surrogate ({value[error.start]!a}): not valid Unicode text"
            ) from None
    return value


def _said(text: str) -> str:
    """Refuse a draft with nothing to say (:func:`voicetune.serve.voice.blank`): the model would invent one."""
    if blank(text):
        raise ValueError(BLANK_DRAFT)
    return text


Text = Annotated[str, Field(max_length=MAX_CHARS), BeforeValidator(_unicode)]
Draft = Annotated[str, Field(min_length=1, max_length=MAX_CHARS), BeforeValidator(_unicode), AfterValidator(_said)]
Fact = Annotated[str, Field(max_length=MAX_FACT_CHARS), BeforeValidator(_unicode)]
Facts = Annotated[list[Fact], Field(max_length=MAX_FACTS)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class SpeakMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "agent"]
    text: Text


class SpeakRequest(BaseModel):
    """``POST /v1/speak``: the conversation so far, the agent's written draft, and optionally the facts the
    caller must hear (default: every fact of the draft, as the scorer counts them)."""

    model_config = ConfigDict(extra="forbid")
    history: list[SpeakMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    draft: Draft
    facts: Facts | None = None
    stream: bool = False
    scores: bool = False
    seed: Seed | None = None


class PrepareRequest(BaseModel):
    """``POST /v1/prepare``: the conversation so far and as much of the draft as the LLM has written (maybe none)."""

    model_config = ConfigDict(extra="forbid")
    history: list[SpeakMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    draft: Text = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text | None = None


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``: OpenAI's request; ``draft`` and ``facts`` may ride along as extra fields
    (``extra_body`` in OpenAI's client). Sampling fields are accepted and ignored: the server's settings hold."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, max_length=MAX_NAME_CHARS)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    draft: Text | None = None
    facts: Facts | None = None
    stream: bool = False
    seed: Seed | None = None


def _error(
    status: int, message: str, kind: str = "invalid_request_error", headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error shape: one line (a user's text quoted in it is clipped, and a lone surrogate escaped)."""
    line = " ".join(str(message).split()).encode("utf-8", "backslashreplace").decode("utf-8")
    line = line if len(line) <= 500 else line[:499] + "\u2026"
    return JSONResponse({"error": {"message": line, "type": kind}}, status_code=status, headers=headers)


def _validation_message(error: RequestValidationError) -> str:
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")[:100] or "body"
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'malformed')})"
    if first.get("type") == "extra_forbidden":
        return f"field '{where}': unknown field"
    if first.get("type") == "value_error":  # ours (_unicode, _said): already a sentence
        return f"field '{where}': {first.get('ctx', {}).get('error', first.get('msg'))}"
    return f"field '{where}': {str(first.get('msg', 'invalid')).lower()}"


def _http_message(request: Request, error: HTTPException) -> str:
    """Starlette's and FastAPI's own errors (an unknown path, a wrong method, a body that cannot be read) in words."""
    if error.status_code == 404:
        return (
            f"no such endpoint: {request.method} {request.url.path} "
            "(the endpoints: POST /v1/speak, /v1/prepare, /v1/chat/completions; GET /health)"
        )
    if error.status_code == 405:
        return (
            f"{request.url.path} does not take {request.method} (it takes "
            f"{(error.headers or {}).get('Allow', 'another')})"
        )
    if isinstance(error.__cause__, UnicodeDecodeError):
        return f"the body is not UTF-8 text ({error.__cause__.reason} at byte {error.__cause__.start})"
    if error.status_code == 400:
        return "the body is not valid JSON"
    return str(error.detail)


class Queue:
    """The requests for the voice: one generates (the :class:`Voice` lock) and at most ``depth`` wait; the rest are
    answered 503 at once. Unbounded, a burst would park a thread per request, and each would be answered long after
    its caller stopped listening."""

    def __init__(self, depth: int = QUEUE):
        if depth < 0:
            raise VoicetuneError(f"--queue must be 0 or more, got {depth}")
        self.depth, self.admitted, self.seconds = depth, 0, 1.0  # seconds: a running estimate of one request's turn
        self._lock = threading.Lock()

    def admit(self) -> Callable[[], None] | None:
        """A place in the queue (call what it returns when the request is done, as often as you like), or None: full."""
        with self._lock:
            if self.admitted > self.depth:
                return None
            self.admitted += 1
            ahead, entered = self.admitted - 1, time.monotonic()
        left: list[bool] = []

        def leave() -> None:
            with self._lock:
                if not left:
                    left.append(True)
                    self.admitted -= 1
                    self.seconds += 0.3 * ((time.monotonic() - entered) / (ahead + 1) - self.seconds)

        return leave

    def full(self) -> JSONResponse:
        """The 503 of a full queue, with when to try again (the turns ahead at the recent pace)."""
        retry = max(1, math.ceil(self.seconds * self.admitted))
        message = (
            f"the voice is busy: {self.admitted} requests are in line, at most {self.depth} may wait; retry in "
            f"{retry} s"
        )
        return _error(503, message, "overloaded_error", headers={"Retry-After": str(retry)})


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def chat_turn(body: ChatRequest):
    """The turn a chat request asks for: history from the messages (system prompts dropped: the voice has its
    own), the draft from ``draft`` or the last assistant message."""
    messages = [m for m in body.messages if m.role in ("user", "assistant") and m.content]
    draft = body.draft
    if draft is None:
        if not messages or messages[-1].role != "assistant":
            raise VoicetuneError("give the draft as 'draft', or as the last message with role 'assistant'")
        draft, messages = messages[-1].content, messages[:-1]
    if draft is None or blank(draft):  # None: not after the filter above
        raise VoicetuneError(BLANK_DRAFT)
    history = [{"role": "user" if m.role == "user" else "agent", "text": m.content} for m in messages]
    return make_turn(history, draft, body.facts)


_END = object()


async def _primed(items: Iterator, leave: Callable[[], None]) -> Iterator:
    """``items`` (a voice's stream) with its first item already read, in the threadpool: a failure before the first
    sentence (a prompt too long for the model, a model that fails at once) is a status, not an event in a 200."""
    try:
        first = await run_in_threadpool(next, items, _END)
    except BaseException:
        leave()
        raise
    return items if first is _END else itertools.chain([first], items)


async def _body(events: Iterator[str], leave: Callable[[], None]) -> AsyncIterator[str]:
    """``events`` read in the threadpool (each may wait for the model); the request leaves the queue when they end
    or the client hangs up."""
    try:
        while (event := await run_in_threadpool(next, events, None)) is not None:  # events are never None
            yield event
    finally:
        leave()


def create_app(voice: Voice, backend_name: str = "", queue: int = QUEUE) -> FastAPI:
    """The FastAPI app serving ``voice``, with at most ``queue`` requests waiting for it (see :class:`Queue`)."""
    app = FastAPI(title="voicetune serve", description="The tuned voice: a draft in, what to say aloud out.")
    app.add_middleware(web.BodyLimit, limit=MAX_BODY_BYTES)
    app.state.queue = line = Queue(queue)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        return _error(error.status_code, _http_message(request, error), kind, headers=error.headers)

    @app.exception_handler(VoicetuneError)
    async def refused(request: Request, error: VoicetuneError) -> JSONResponse:
        return _error(400, str(error))

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:  # the model broke: say so, keep serving
        return _error(500, f"the voice failed: {type(error).__name__}: {error}", "server_error")

    @app.get("/health")
    async def health() -> dict:  # on the event loop: it answers at once however many requests wait for the voice
        return {
            "status": "ok",
            "model": voice.name,
            "backend": backend_name,
            "best_of": voice.best_of,
            "guard": voice.guard,
        }

    @app.post("/v1/speak")
    async def speak(body: SpeakRequest):
        turn = make_turn([m.model_dump() for m in body.history], body.draft, body.facts)
        if (leave := line.admit()) is None:
            return line.full()
        if not body.stream:
            try:
                spoken = await run_in_threadpool(voice.speak, turn, scores=body.scores, seed=body.seed)
            finally:
                leave()
            return {"response": spoken.text, "model": voice.name, "scores": spoken.scores, **spoken.meta()}
        items = await _primed(voice.stream(turn, scores=body.scores, seed=body.seed), leave)

        def events() -> Iterator[str]:
            try:
                for item in items:
                    if isinstance(item, Spoken):
                        yield _sse(
                            "done", {"response": item.text, "model": voice.name, "scores": item.scores, **item.meta()}
                        )
                    else:
                        yield _sse("chunk", {"text": item})
            except Exception as error:  # the stream has begun: the failure is an event, not a status
                yield _sse("error", {"message": " ".join(f"the voice failed: {type(error).__name__}: {error}".split())})

        return StreamingResponse(
            _body(events(), leave), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.post("/v1/prepare")
    async def prepare(body: PrepareRequest) -> dict:
        """Evaluate the coming request's prompt as far as it is known (the conversation, the draft so far, clipped as
        /v1/speak clips it) into the model's cache while the LLM still writes; the /v1/speak that follows starts
        sooner. Only an idle voice prepares: with a request in line, the cache would be overwritten before use."""
        started = time.perf_counter()
        turn = make_turn([m.model_dump() for m in body.history], body.draft)
        tokens = 0 if line.admitted else await run_in_threadpool(voice.prepare, turn)
        return {"prefilled_tokens": tokens, "seconds": round(time.perf_counter() - started, 3)}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest):
        turn = chat_turn(body)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if (leave := line.admit()) is None:
            return line.full()
        if not body.stream:
            try:
                spoken = await run_in_threadpool(voice.speak, turn, seed=body.seed)
            finally:
                leave()
            return {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": voice.name,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": spoken.text}, "finish_reason": "stop"}
                ],
                "voicetune": spoken.meta(),
            }
        items = await _primed(voice.stream(turn, seed=body.seed), leave)

        def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
            body = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": voice.name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **(extra or {}),
            }
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant"})
            said = 0
            try:
                for item in items:
                    if isinstance(item, Spoken):
                        yield chunk({}, "stop", {"voicetune": item.meta()})
                    else:
                        yield chunk({"content": (" " if said else "") + item})
                        said += 1
            except Exception as error:
                failure = {"message": f"the voice failed: {type(error).__name__}: {error}", "type": "server_error"}
                yield f"data: {json.dumps({'error': failure})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            _body(events(), leave), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app


def serve(
    voice: Voice,
    host: str = "127.0.0.1",
    port: int = 8010,
    backend_name: str = "",
    queue: int = QUEUE,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``voice`` until interrupted, on ``sock`` (:func:`voicetune.web.bind`; by default bound here)."""
    web.run(create_app(voice, backend_name, queue), sock or web.bind(host, port))
