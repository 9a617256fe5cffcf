"""`voicetune serve`: the speak endpoint (whole and streamed), the OpenAI-compatible endpoint, bad input, a
failing model, concurrent requests, best-of-N and the guard; sentence chunking; the real embedded model."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from voicetune.data import builtin_turns  # noqa: E402
from voicetune.quality import score_response  # noqa: E402
from voicetune.serve.app import create_app  # noqa: E402
from voicetune.serve.voice import Spoken, Voice, make_turn, sentence_chunks  # noqa: E402

SPOKEN = "Your new flight leaves at seven forty-five. The change fee is seventy-five dollars. Want me to book it?"
DRAFT = "The change fee is **$75.00** and your new flight departs at 7:45 AM. Shall I book it?"


class Scripted:
    """A backend that answers from a script (cycling), streams word by word, and checks that calls never overlap."""

    def __init__(self, texts=(SPOKEN,), delay: float = 0.0, fail: bool = False, fail_after: int | None = None):
        self.texts, self.delay, self.fail, self.fail_after = list(texts), delay, fail, fail_after
        self.calls, self.active, self.overlapped, self.prompts = 0, 0, False, []

    def _enter(self, messages):
        self.active += 1
        self.overlapped |= self.active > 1
        self.prompts.append(messages)
        time.sleep(self.delay)
        if self.fail:
            self.active -= 1
            raise RuntimeError("model crashed")

    def generate(self, prompts, sampling, on_batch=None):
        self._enter(prompts[0])
        out = [self.texts[(self.calls + i) % len(self.texts)] for i in range(len(prompts))]
        self.calls += 1
        self.active -= 1
        return out

    def stream(self, messages, sampling):
        self._enter(messages)
        text = self.texts[self.calls % len(self.texts)]
        self.calls += 1
        try:
            for index, word in enumerate(text.split(" ")):
                if index == self.fail_after:
                    raise RuntimeError("model crashed mid-sentence")
                yield word + " "
        finally:
            self.active -= 1


def client(voice: Voice) -> TestClient:
    return TestClient(create_app(voice, "scripted"), raise_server_exceptions=False)


def events(text: str) -> list[tuple[str, dict]]:
    """Server-sent events as (event, data) pairs."""
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        found.append(
            (
                lines.get("event", "message"),
                json.loads(lines["data"]) if lines.get("data", "").startswith("{") else lines.get("data"),
            )
        )
    return found


def test_sentence_chunks_come_as_each_sentence_ends():
    pieces = ["Your fl", "ight leaves at 7", ".45 a.m. The fee", " is $75. ", "Want me", " to book it?"]
    assert list(sentence_chunks(pieces)) == [
        "Your flight leaves at 7.45 a.m.",
        "The fee is $75.",
        "Want me to book it?",
    ]
    assert list(sentence_chunks(["One line\n", "two"])) == ["One line", "two"]
    assert list(sentence_chunks([])) == []


def test_the_first_chunk_may_end_at_a_clause_so_the_tts_starts_sooner():
    pieces = [
        "Sure, your new flight leaves",
        " at eight thirty, and the fee",
        " is seventy-five dollars. Want me",
        " to book it?",
    ]
    assert list(sentence_chunks(pieces)) == [
        "Sure, your new flight leaves at eight thirty,",
        "and the fee is seventy-five dollars.",
        "Want me to book it?",
    ]
    # a clause of fewer than four words does not end the first chunk; later chunks are whole sentences
    assert list(sentence_chunks(["Sure, I can. Your flight, the one at eight, leaves soon."])) == [
        "Sure, I can.",
        "Your flight, the one at eight, leaves soon.",
    ]
    assert list(sentence_chunks(["Okay, so your flight leaves at eight, then."], first_clause_words=None)) == [
        "Okay, so your flight leaves at eight, then."
    ]


def test_prepare_is_a_no_op_without_a_prompt_cache_and_answers_over_http():
    app = client(Voice(Scripted()))
    reply = app.post(
        "/v1/prepare", json={"history": [{"role": "user", "text": "Can I move my flight?"}], "draft": "The change fee"}
    )
    assert reply.status_code == 200 and reply.json()["prefilled_tokens"] == 0
    assert app.post("/v1/prepare", json={"draft": 3}).status_code == 400


def test_speak_returns_the_response_and_its_metadata():
    backend = Scripted()
    reply = client(Voice(backend, name="tuned")).post(
        "/v1/speak",
        json={"history": [{"role": "user", "text": "Can I move my flight?"}], "draft": DRAFT, "scores": True},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["response"] == SPOKEN and body["fallback"] is False and body["model"] == "tuned"
    assert 0 <= body["scores"]["voice_score"] <= 1
    # the prompt is the one every stage builds: the draft and the caller's words are in it
    prompt = json.dumps(backend.prompts[0])
    assert "7:45" in prompt and "Can I move my flight?" in prompt


def test_speak_streams_sentence_by_sentence():
    reply = client(Voice(Scripted())).post("/v1/speak", json={"draft": DRAFT, "stream": True})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    found = events(reply.text)
    assert [e for e, _ in found] == ["chunk", "chunk", "chunk", "done"]
    assert [d["text"] for _, d in found[:3]] == [
        "Your new flight leaves at seven forty-five.",
        "The change fee is seventy-five dollars.",
        "Want me to book it?",
    ]
    assert found[-1][1]["response"] == SPOKEN


def test_chat_completions_accepts_the_same_content():
    app = client(Voice(Scripted(), name="tuned"))
    # the draft as an extra field
    reply = app.post(
        "/v1/chat/completions",
        json={
            "model": "x",
            "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "Change my flight?"}],
            "draft": DRAFT,
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"] == {
        "role": "assistant",
        "content": SPOKEN,
    }
    assert body["voicetune"]["fallback"] is False
    # the draft as the last assistant message, streamed as OpenAI chunks
    reply = app.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Change my flight?"}, {"role": "assistant", "content": DRAFT}],
            "stream": True,
        },
    )
    lines = [line.removeprefix("data: ") for line in reply.text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == SPOKEN
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "path, body, says",
    [
        ("/v1/speak", {}, "draft"),
        ("/v1/speak", {"draft": ""}, "draft"),
        ("/v1/speak", {"draft": "Hi.", "mood": "happy"}, "mood"),
        ("/v1/speak", {"draft": "Hi.", "history": [{"role": "robot", "text": "x"}]}, "history.0.role"),
        ("/v1/speak", {"draft": "x" * 20_001}, "draft"),
        ("/v1/speak", {"draft": "Hi.", "facts": "not a list"}, "facts"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "assistant"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(path, body, says):
    reply = client(Voice(Scripted())).post(path, json=body)
    assert 400 <= reply.status_code < 500
    message = reply.json()["error"]["message"]
    assert says in message and "\n" not in message


def test_a_body_that_is_not_json_is_a_4xx():
    reply = client(Voice(Scripted())).post(
        "/v1/speak", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400 and "JSON" in reply.json()["error"]["message"]


def test_a_failing_model_is_a_500_line_and_the_server_keeps_serving():
    backend = Scripted(fail=True)
    app = client(Voice(backend))
    reply = app.post("/v1/speak", json={"draft": DRAFT})
    assert reply.status_code == 500 and "model crashed" in reply.json()["error"]["message"]
    # a stream that fails before its first sentence is a status too; once it has begun, an ``error`` event
    for path in ("/v1/speak", "/v1/chat/completions"):
        reply = app.post(
            path,
            json={
                "draft": DRAFT,
                "stream": True,
                **({"messages": [{"role": "user", "content": "hi"}]} if "chat" in path else {}),
            },
        )
        assert reply.status_code == 500 and "model crashed" in reply.json()["error"]["message"]
    backend.fail, backend.fail_after = False, 10
    streamed = events(app.post("/v1/speak", json={"draft": DRAFT, "stream": True}).text)
    assert streamed[0][0] == "chunk" and streamed[-1][0] == "error" and "model crashed" in streamed[-1][1]["message"]
    backend.fail_after = None
    assert app.post("/v1/speak", json={"draft": DRAFT}).status_code == 200
    assert app.get("/health").json()["status"] == "ok"


def test_concurrent_requests_are_all_answered_one_generation_at_a_time():
    backend = Scripted(delay=0.02)
    app = client(Voice(backend))
    results = []

    def call(index):
        body = {"draft": DRAFT, "stream": index % 2 == 0}
        reply = app.post("/v1/speak", json=body)
        results.append((reply.status_code, SPOKEN.split(".")[0] in reply.text))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, True)] * 8
    assert backend.calls == 8 and not backend.overlapped


def test_best_of_n_returns_the_candidate_the_scorer_rates_highest():
    turn = next(t for t in builtin_turns("test") if t.draft and t.facts)
    good = turn.reference
    candidates = [
        "- **Note:** please see the details below.\n- Item one\n- Item two",
        good,
        "Sorry, I apologize for any inconvenience. " * 3,
    ]
    voice = Voice(Scripted(candidates), best_of=3)
    spoken = voice.speak(turn)
    best = max(candidates, key=lambda text: score_response(turn, text).voice_score)
    assert spoken.text == best == good and spoken.candidates == 3 and not spoken.fallback
    reply = client(voice).post(
        "/v1/speak", json={"history": [m.model_dump() for m in turn.history], "draft": turn.draft, "facts": turn.facts}
    )
    assert reply.json()["response"] == good and reply.json()["candidates"] == 3


def test_the_guard_falls_back_to_the_draft_said_faithfully_when_a_required_fact_is_dropped():
    from voicetune.verbalize import speak_draft

    turn = make_turn([{"role": "user", "text": "How much is the change?"}], DRAFT, facts=["$75.00"])
    dropped = "Sure, your new flight leaves at seven forty-five."  # no fee: drops the required fact
    voice = Voice(
        Scripted([dropped]), guard=True, selector="rubric"
    )  # the rules' guard (the learned one: test_learned_judge)
    spoken = voice.speak(turn)
    assert spoken.fallback and spoken.text == speak_draft(DRAFT)
    assert any("dropped" in kind for kinds in spoken.refused.values() for kind in kinds)
    reply = client(voice).post(
        "/v1/speak",
        json={
            "history": [{"role": "user", "text": "How much is the change?"}],
            "draft": DRAFT,
            "facts": ["$75.00"],
            "stream": True,
        },
    )
    done = events(reply.text)[-1][1]
    assert done["fallback"] is True and done["refused"]
    # a response that conveys the fact passes the guard
    assert not Voice(Scripted([SPOKEN]), guard=True, selector="rubric").speak(turn).fallback


def test_the_stream_releases_the_voice_when_the_reader_stops_early():
    voice = Voice(Scripted())
    stream = voice.stream(make_turn([], DRAFT))
    assert isinstance(next(stream), str)
    stream.close()  # a client that hung up after the first sentence
    deadline = time.time() + 5
    while voice.lock.locked() and time.time() < deadline:
        time.sleep(0.01)
    assert not voice.lock.locked()
    assert isinstance(list(voice.stream(make_turn([], DRAFT)))[-1], Spoken)


def test_the_real_embedded_model_streams_over_http(app_server):
    pytest.importorskip("llama_cpp")
    from voicetune.serve.voice import load_voice

    voice = load_voice("smollm2-135m", "llama.cpp", style="default", max_new_tokens=40, temperature=0)
    turn = builtin_turns("test")[0]
    import httpx

    with app_server(create_app(voice, "llama.cpp")) as base:
        with httpx.stream(
            "POST",
            f"{base}/v1/speak",
            json={"history": [m.model_dump() for m in turn.history], "draft": turn.draft, "stream": True},
            timeout=60,
        ) as reply:
            text = "".join(reply.iter_text())
    found = events(text)
    assert found[-1][0] == "done" and found[-1][1]["response"].strip()
    assert all(e == "chunk" and d["text"].strip() for e, d in found[:-1]) and len(found) >= 2


def test_serve_and_export_flags_fail_in_one_line(cli):
    code, _, err = cli("serve", "smollm2-135m", "--backend", "tensorrt")
    assert code == 2 and err.count("\n") == 1 and "--backend" in err
    code, _, err = cli("export", "smollm2-135m", "--gguf", "x.gguf", "--quant", "q3")
    assert code == 2 and err.count("\n") == 1 and "--quant" in err


def test_preparing_the_prompt_cache_changes_nothing_but_the_time():
    pytest.importorskip("llama_cpp")
    from voicetune.serve.voice import load_voice

    turn = builtin_turns("test")[5]
    voice = load_voice("smollm2-135m", "llama.cpp", style="default", max_new_tokens=24, temperature=0)
    cold = voice.speak(turn).text
    voice.speak(make_turn([], "Something else entirely, to evict the cache."))
    half = turn.draft[: len(turn.draft) // 2]
    prepared = voice.prepare(turn, half)
    assert prepared > 20  # the persona, the conversation and half the draft were evaluated ahead
    assert voice.prepare(turn, half) == 0  # already cached
    assert 0 < voice.prepare(turn) < prepared + 200  # only the rest of the draft
    assert voice.speak(turn).text == cold  # greedy decoding: the cache only saved time


# --------------------------------------------------------------------------------------------------------
# Hostile and careless clients (issue 24): every field bounded, every error in the one shape, a bounded queue


class Tokenizing(Scripted):
    """A Scripted backend that, like a real tokenizer, encodes its prompt as UTF-8, and keeps a prompt cache:
    ``prefill`` records the text it was asked to evaluate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefilled: list[str] = []

    def _enter(self, messages):
        json.dumps(messages, ensure_ascii=False).encode("utf-8")
        super()._enter(messages)

    def prefill(self, messages, marker, text=""):
        self.prefilled.append(text)
        return len(text.encode("utf-8"))


class Held(Scripted):
    """A backend whose every generation waits until ``release`` is set: requests pile up behind it."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def _enter(self, messages):
        assert self.release.wait(30), "the test never released the backend"
        super()._enter(messages)


def shape(reply) -> str:
    """The error's message, once the body is checked to be exactly ``{"error": {"message": one line, "type"}}``."""
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type"}, body
    assert isinstance(body["error"]["type"], str) and "\n" not in body["error"]["message"]
    return body["error"]["message"]


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "path, body, says",
    [
        ("/v1/speak", {"draft": "Hi.", "facts": ["$75"] * 65}, "facts"),
        ("/v1/speak", {"draft": "Hi.", "facts": ["x" * 301]}, "facts.0"),
        ("/v1/speak", {"draft": "Hi.", "history": [{"role": "user", "text": "hi"}] * 201}, "history"),
        ("/v1/speak", {"draft": "Hi.", "history": [{"role": "user", "text": "x" * 20_001}]}, "history.0.text"),
        ("/v1/speak", {"draft": "Hi.", "seed": -1}, "seed"),
        ("/v1/speak", {"draft": "Hi.", "seed": 2**32}, "seed"),
        ("/v1/prepare", {"draft": "x" * 20_001}, "draft"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}] * 201, "draft": "Hi."}, "messages"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x" * 20_001}], "draft": "Hi."},
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "draft": "Hi.", "facts": ["$75"] * 65},
            "facts",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "draft": "Hi.", "model": "m" * 257},
            "model",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "draft": "Hi.", "seed": 2**40},
            "seed",
        ),
    ],
)
def test_every_request_field_is_bounded(path, body, says):
    from voicetune.serve import app as served

    assert (served.MAX_FACTS, served.MAX_FACT_CHARS, served.MAX_MESSAGES, served.MAX_CHARS, served.MAX_SEED) == (
        64,
        300,
        200,
        20_000,
        2**32 - 1,
    )
    backend = Scripted()
    reply = client(Voice(backend)).post(path, json=body)
    assert reply.status_code == 400 and f"'{says}'" in shape(reply)
    assert backend.calls == 0


def test_a_body_past_the_limit_is_a_413_read_or_not():
    from voicetune.serve.app import MAX_BODY_BYTES

    app = client(Voice(Scripted()))
    big = json.dumps(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "draft": "Hi.",
            "tools": ["x" * 1000] * (MAX_BODY_BYTES // 1000),
        }
    )
    reply = app.post("/v1/chat/completions", content=big, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and str(MAX_BODY_BYTES) in shape(reply)
    chunked = app.post(
        "/v1/chat/completions",
        content=iter([big[i : i + 65536].encode() for i in range(0, len(big), 65536)]),
        headers={"Content-Type": "application/json"},
    )  # no Content-Length: counted as it comes
    assert chunked.status_code == 413 and str(MAX_BODY_BYTES) in shape(chunked)
    assert app.get("/health").status_code == 200


@pytest.mark.parametrize(
    "path, raw, where",
    [
        ("/v1/speak", b'{"draft": "The fee is $75.", "facts": ["\\ud800"]}', "facts.0"),
        ("/v1/speak", b'{"draft": "The fee is \\udc00 $75."}', "draft"),
        ("/v1/speak", b'{"draft": "Hi.", "history": [{"role": "user", "text": "\\ud83d"}]}', "history.0.text"),
        ("/v1/prepare", b'{"draft": "So \\ud800"}', "draft"),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "\\udfff"}], "draft": "Hi."}',
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "hi"}], "draft": "Hi.", "facts": ["\\ud800"]}',
            "facts.0",
        ),
    ],
)
def test_a_lone_surrogate_is_a_400_not_a_500(path, raw, where):
    backend = Tokenizing()
    reply = client(Voice(backend)).post(path, content=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert f"'{where}'" in (message := shape(reply)) and "surrogate" in message
    assert backend.calls == 0 and not backend.prefilled


class Context(Tokenizing):
    """A backend with a small context, failing as llama.cpp does on a prompt longer than it."""

    def _enter(self, messages):
        if len(json.dumps(messages)) > 2000:
            raise ValueError(f"Requested tokens ({len(json.dumps(messages))}) exceed context window of 2000")
        super()._enter(messages)


def test_a_request_longer_than_the_models_context_is_a_4xx():
    from voicetune.serve.voice import PromptTooLong

    facts = ["a fact of three hundred characters " * 8] * 8
    voice = Voice(Context())
    with pytest.raises(PromptTooLong):
        voice.speak(make_turn([], DRAFT, facts))
    app = client(voice)
    for path, body in [
        ("/v1/speak", {"draft": DRAFT, "facts": facts}),
        ("/v1/speak", {"draft": DRAFT, "facts": facts, "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT, "facts": facts}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "draft": DRAFT, "facts": facts, "stream": True},
        ),
    ]:
        reply = app.post(path, json=body)
        assert reply.status_code == 400 and "context" in shape(reply), (path, reply.text)
    assert app.post("/v1/speak", json={"draft": DRAFT, "facts": facts[:1]}).status_code == 200


def test_facts_past_the_real_models_context_are_a_4xx():
    pytest.importorskip("llama_cpp")
    from voicetune.serve.app import MAX_FACT_CHARS
    from voicetune.serve.voice import load_voice

    voice = load_voice("smollm2-135m", "llama.cpp", max_new_tokens=8, temperature=0)
    facts = ["\U0001f600" * MAX_FACT_CHARS] * 8  # within every bound, but some 7,000 tokens: the context is 2,048
    app = client(voice)
    for stream in (False, True):
        reply = app.post("/v1/speak", json={"draft": "The fee is $75.", "facts": facts, "stream": stream})
        assert reply.status_code == 400 and "context" in shape(reply)
    assert not voice.lock.locked()


def test_prepare_evaluates_no_more_of_the_draft_than_speak_would():
    from voicetune.models.prompts import build_messages

    backend = Tokenizing()
    app = client(Voice(backend))
    draft = "Your flight to Boston leaves at seven forty-five from gate twelve. " * 300  # 20,100 characters
    reply = app.post(
        "/v1/prepare", json={"history": [{"role": "user", "text": "When do I leave?"}], "draft": draft[:20_000]}
    )
    assert reply.status_code == 200 and reply.json()["prefilled_tokens"] > 0
    prepared = backend.prefilled[-1]
    spoken_prompt = build_messages(make_turn([], draft[:20_000]))[1]["content"]
    assert 0 < len(prepared) <= 600 and prepared in spoken_prompt  # the draft as the request's own prompt carries it
    # a draft under the limit is prepared whole, so the request evaluates only what follows
    assert (
        app.post("/v1/prepare", json={"draft": "The change fee"}).status_code == 200
        and backend.prefilled[-1] == "The change fee"
    )


def test_a_full_queue_is_a_503_with_retry_after_and_health_still_answers():
    backend = Held()
    app = create_app(Voice(backend), "held", queue=1)
    line = app.state.queue
    answers: list[int] = []
    with TestClient(app, raise_server_exceptions=False) as http:
        callers = [
            threading.Thread(target=lambda body=body: answers.append(http.post("/v1/speak", json=body).status_code))
            for body in ({"draft": DRAFT}, {"draft": DRAFT, "stream": True})
        ]  # one generates, one waits: the queue is full
        for caller in callers:
            caller.start()
        wait_for(lambda: line.admitted == 2)
        for path, body in [
            ("/v1/speak", {"draft": DRAFT}),
            ("/v1/speak", {"draft": DRAFT, "stream": True}),
            ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": DRAFT}], "stream": True}),
        ]:
            reply = http.post(path, json=body)
            assert reply.status_code == 503 and int(reply.headers["Retry-After"]) >= 1
            assert "busy" in shape(reply) and reply.json()["error"]["type"] == "overloaded_error"
        assert http.get("/health").json()["status"] == "ok"
        assert http.post("/v1/prepare", json={"draft": "The fee"}).json()["prefilled_tokens"] == 0
        backend.release.set()
        for caller in callers:
            caller.join()
        assert sorted(answers) == [200, 200] and line.admitted == 0
        assert http.post("/v1/speak", json={"draft": DRAFT}).status_code == 200  # places are given back


def test_health_answers_behind_sixty_waiting_generations():
    backend = Held()
    app = create_app(Voice(backend), "held", queue=60)
    answers: list[int] = []
    with TestClient(app, raise_server_exceptions=False) as http:
        callers = [
            threading.Thread(
                target=lambda i=i: answers.append(
                    http.post("/v1/speak", json={"draft": DRAFT, "stream": i % 3 == 0}).status_code
                )
            )
            for i in range(60)
        ]
        for caller in callers:
            caller.start()
        wait_for(lambda: app.state.queue.admitted == 60)  # more than the threadpool's 40 threads, all waiting
        health: list[int] = []
        checker = threading.Thread(target=lambda: health.append(http.get("/health").status_code))
        checker.start()
        checker.join(20)  # a health check that needs a worker thread would wait here for the whole queue
        answered_while_queued = list(health)
        backend.release.set()
        for caller in callers + [checker]:
            caller.join()
    assert answered_while_queued == [200]
    assert answers == [200] * 60 and backend.calls == 60 and not backend.overlapped


@pytest.mark.parametrize(
    "method, path, content, status, says",
    [
        ("GET", "/v1/nowhere", None, 404, "no such endpoint"),
        ("GET", "/v1/speak", None, 405, "POST"),
        ("PUT", "/health", None, 405, "GET"),
        ("POST", "/v1/speak", b'{"draft": "\xff\xfe caf\xe9"}', 400, "UTF-8"),
        ("POST", "/v1/chat/completions", b"\x80\x81", 400, "UTF-8"),
        ("POST", "/v1/speak", b'{"draft": ', 400, "JSON"),
        ("POST", "/v1/speak", b"", 400, "body"),
    ],
)
def test_the_frameworks_own_errors_are_in_the_error_shape(method, path, content, status, says):
    reply = client(Voice(Scripted())).request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == status and says in shape(reply)


@pytest.mark.parametrize(
    "draft", ["   ", "\u0000\u0000", "\t\n\r", "\u200b\u200d\ufeff\u2063", "\x01\x1b\x7f\x9b", "\u0301\u20dd"]
)
def test_a_blank_draft_is_refused_by_the_voice_and_the_server(draft):
    from voicetune.errors import VoicetuneError

    backend = Scripted([SPOKEN])
    voice = Voice(backend, guard=True, selector="rubric")
    with pytest.raises(VoicetuneError, match="blank"):
        voice.speak(make_turn([], draft))
    with pytest.raises(VoicetuneError, match="blank"):
        list(Voice(backend).stream(make_turn([], draft)))
    app = client(voice)
    for path, body in [
        ("/v1/speak", {"draft": draft}),
        ("/v1/speak", {"draft": draft, "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": draft}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "draft": draft}),
    ]:
        reply = app.post(path, json=body)
        assert reply.status_code == 400 and "blank" in shape(reply)
    assert backend.calls == 0
    assert app.post("/v1/speak", json={"draft": draft + "$75."}).status_code == 200  # something to say: served


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_model(monkeypatch):
    """``voicetune serve`` with loading and serving stubbed: the voice is a Scripted one, ``serve`` records its call."""
    import voicetune.serve.app as served
    import voicetune.serve.voice as voices

    calls = {"load": 0, "serve": []}

    def load(*args, **kwargs):
        calls["load"] += 1
        return Voice(Scripted())

    def serve(*args, **kwargs):
        calls["serve"].append(kwargs)

    monkeypatch.setattr(voices, "load_voice", load)
    monkeypatch.setattr(served, "serve", serve)
    return calls


def test_serve_checks_the_port_before_loading_the_model(cli, no_model):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = cli("serve", "smollm2-135m", "--port", port)
    assert (
        code == 2
        and err.count("\n") == 1
        and err.startswith("error: ")
        and str(port) in err
        and "serving" not in out + err
    )
    assert no_model == {"load": 0, "serve": []}
    for port in ("0", "65536"):
        code, _, err = cli("serve", "smollm2-135m", "--port", port)
        assert code == 2 and err.count("\n") == 1 and "--port" in err
    code, _, err = cli("serve", "smollm2-135m", "--queue", "-1")
    assert code == 2 and err.count("\n") == 1 and "--queue" in err


def test_serve_warns_when_it_listens_beyond_this_machine(cli, no_model):
    port = free_port()
    code, _, err = cli("serve", "smollm2-135m", "--host", "0.0.0.0", "--port", port, "--queue", 3)
    assert code == 0 and no_model["serve"][0]["queue"] == 3
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "no authentication" in warning[0] and "0.0.0.0" in warning[0]
    code, _, err = cli("serve", "smollm2-135m", "--port", free_port())
    assert code == 0 and "warning" not in err and "serving" in err


def test_a_model_file_that_is_not_gguf_is_one_line(cli, tmp_path):
    pytest.importorskip("llama_cpp")
    from voicetune.models.loading import embedded_gguf

    (tmp_path / "notes.gguf").write_text("not a model\n")
    (tmp_path / "cut.gguf").write_bytes(embedded_gguf("smollm2-135m").read_bytes()[:3_000_000])  # a download cut short
    for name, says in (("notes.gguf", "not a GGUF file"), ("cut.gguf", "cannot load")):
        code, out, err = cli("serve", str(tmp_path / name), "--port", free_port())
        assert code == 2 and err.count("\n") == 1 and name in err and says in err and "serving" not in out + err
