"""``voicetune serve``: the tuned voice over HTTP, for a voice pipeline to call between its LLM and its TTS.

    POST /v1/speak               {history, draft, facts?, stream?, scores?, seed?} -> {response, fallback, ...}
                                 stream: server-sent events, one ``chunk`` event per sentence, then ``done``
    POST /v1/prepare             {history, draft so far} -> the prompt so far evaluated into the model's cache
                                 (call it while the LLM still writes: the /v1/speak that follows starts sooner)
    POST /v1/chat/completions    OpenAI-compatible: ``messages`` are the history and the draft is ``draft``
                                 (or the last assistant message); ``stream`` gives OpenAI-style chunks
    GET  /health                 {"status": "ok", "model", "backend", "best_of", "guard"}

A bad request gets a 4xx with a one-line reason (``{"error": {"message", "type"}}``, as OpenAI's API answers);
a failure of the model gets a 500 with one line, and the server keeps serving. Requests are served
concurrently; generation itself is one at a time (the :class:`~voicetune.serve.voice.Voice` lock).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Iterator, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voicetune.errors import VoicetuneError
from voicetune.serve.voice import Spoken, Voice, make_turn

#: The longest draft or history message accepted, in characters (a spoken turn is far shorter).
MAX_CHARS = 20_000


class SpeakMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "agent"]
    text: str = Field(max_length=MAX_CHARS)


class SpeakRequest(BaseModel):
    """``POST /v1/speak``: the conversation so far, the agent's written draft, and optionally the facts the
    caller must hear (default: every fact of the draft, as the scorer counts them)."""

    model_config = ConfigDict(extra="forbid")
    history: list[SpeakMessage] = Field(default_factory=list, max_length=200)
    draft: str = Field(min_length=1, max_length=MAX_CHARS)
    facts: list[str] | None = None
    stream: bool = False
    scores: bool = False
    seed: int | None = None


class PrepareRequest(BaseModel):
    """``POST /v1/prepare``: the conversation so far and as much of the draft as the LLM has written."""

    model_config = ConfigDict(extra="forbid")
    history: list[SpeakMessage] = Field(default_factory=list, max_length=200)
    draft: str = Field("", max_length=MAX_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | None = Field(None, max_length=MAX_CHARS)


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``: OpenAI's request; ``draft`` and ``facts`` may ride along as extra fields
    (``extra_body`` in OpenAI's client). Sampling fields are accepted and ignored: the server's settings hold."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    draft: str | None = Field(None, max_length=MAX_CHARS)
    facts: list[str] | None = None
    stream: bool = False
    seed: int | None = None


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": " ".join(str(message).split()), "type": kind}}, status_code=status)


def _validation_message(error: RequestValidationError) -> str:
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'malformed')})"
    if first.get("type") == "extra_forbidden":
        return f"field '{where}': unknown field"
    return f"field '{where}': {str(first.get('msg', 'invalid')).lower()}"


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
    if not draft or not draft.strip():
        raise VoicetuneError("the draft is empty")
    history = [{"role": "user" if m.role == "user" else "agent", "text": m.content} for m in messages]
    return make_turn(history, draft, body.facts)


def create_app(voice: Voice, backend_name: str = "") -> FastAPI:
    """The FastAPI app serving ``voice``."""
    app = FastAPI(title="voicetune serve", description="The tuned voice: a draft in, what to say aloud out.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(error))

    @app.exception_handler(VoicetuneError)
    async def refused(request: Request, error: VoicetuneError) -> JSONResponse:
        return _error(400, str(error))

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:  # the model broke: say so, keep serving
        return _error(500, f"the voice failed: {type(error).__name__}: {error}", "server_error")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": voice.name, "backend": backend_name, "best_of": voice.best_of, "guard": voice.guard}

    @app.post("/v1/speak")
    def speak(body: SpeakRequest):
        turn = make_turn([m.model_dump() for m in body.history], body.draft, body.facts)
        if not body.stream:
            spoken = voice.speak(turn, scores=body.scores, seed=body.seed)
            return {"response": spoken.text, "model": voice.name, "scores": spoken.scores, **spoken.meta()}

        def events() -> Iterator[str]:
            try:
                for item in voice.stream(turn, scores=body.scores, seed=body.seed):
                    if isinstance(item, Spoken):
                        yield _sse("done", {"response": item.text, "model": voice.name, "scores": item.scores, **item.meta()})
                    else:
                        yield _sse("chunk", {"text": item})
            except Exception as error:  # the stream has begun: the failure is an event, not a status
                yield _sse("error", {"message": " ".join(f"the voice failed: {type(error).__name__}: {error}".split())})

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/prepare")
    def prepare(body: PrepareRequest) -> dict:
        """Evaluate the coming request's prompt as far as it is known (the conversation, the draft so far)
        into the model's cache, while the LLM still writes; the /v1/speak that follows starts sooner."""
        started = time.perf_counter()
        tokens = voice.prepare(make_turn([m.model_dump() for m in body.history], body.draft))
        return {"prefilled_tokens": tokens, "seconds": round(time.perf_counter() - started, 3)}

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest):
        turn = chat_turn(body)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not body.stream:
            spoken = voice.speak(turn, seed=body.seed)
            return {"id": ident, "object": "chat.completion", "created": created, "model": voice.name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": spoken.text}, "finish_reason": "stop"}],
                    "voicetune": spoken.meta()}

        def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
            body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": voice.name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant"})
            said = 0
            try:
                for item in voice.stream(turn, seed=body.seed):
                    if isinstance(item, Spoken):
                        yield chunk({}, "stop", {"voicetune": item.meta()})
                    else:
                        yield chunk({"content": (" " if said else "") + item})
                        said += 1
            except Exception as error:
                yield f"data: {json.dumps({'error': {'message': f'the voice failed: {type(error).__name__}: {error}', 'type': 'server_error'}})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def serve(voice: Voice, host: str = "127.0.0.1", port: int = 8010, backend_name: str = "") -> None:
    """Serve ``voice`` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(voice, backend_name), host=host, port=port, log_level="warning")
