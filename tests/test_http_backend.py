"""The OpenAI-compatible HTTP backend against a small server on 127.0.0.1: replies, retries, clear errors."""

from __future__ import annotations

import pytest

from fake_openai import FakeChatServer, chat_reply
from voicetune.data import builtin_turns
from voicetune.errors import VoicetuneError
from voicetune.models.generate import HTTPBackend, SamplingConfig, generate_turns


class _Server(FakeChatServer):
    """Answers chat completions with the last user message's length; fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0, status: int = 500):
        def answer(body: dict):
            if self.calls <= failures:
                return status, None
            return 200, chat_reply(f"{body['model']} heard {len(body['messages'][-1]['content'])} characters")

        super().__init__(answer)


@pytest.fixture
def server():
    started = _Server()
    yield started
    started.close()


def test_http_backend_fills_responses(tmp_path, server):
    turns = builtin_turns("test")[:3]
    result = generate_turns(
        HTTPBackend(server.url, "tiny", concurrency=2),
        turns,
        tmp_path / "out.jsonl",
        None,
        SamplingConfig(),
        progress=False,
    )
    assert all(t.response.startswith("tiny heard ") for t in result)
    assert server.calls == 3


def test_http_backend_retries_server_errors(monkeypatch):
    monkeypatch.setattr("voicetune.models.generate.time.sleep", lambda seconds: None)  # no real backoff waits
    flaky = _Server(failures=2)
    try:
        text = HTTPBackend(flaky.url, "tiny", retries=3).complete(
            [{"role": "user", "content": "hi"}], SamplingConfig(), seed=0
        )
        assert text == "tiny heard 2 characters" and flaky.calls == 3
    finally:
        flaky.close()


def test_http_backend_names_the_url_when_the_key_is_rejected():
    rejecting = _Server(failures=10, status=401)
    try:
        with pytest.raises(VoicetuneError, match="rejected the API key"):
            HTTPBackend(rejecting.url, "tiny", retries=0).complete(
                [{"role": "user", "content": "hi"}], SamplingConfig(), 0
            )
    finally:
        rejecting.close()


def test_http_backend_names_the_url_when_unreachable():
    backend = HTTPBackend("http://127.0.0.1:9/v1", "tiny", retries=0, timeout=2)
    with pytest.raises(VoicetuneError, match=r"127\.0\.0\.1:9.*unreachable"):
        backend.complete([{"role": "user", "content": "hi"}], SamplingConfig(), 0)
