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

    def __init__(self, texts=(SPOKEN,), delay: float = 0.0, fail: bool = False):
        self.texts, self.delay, self.fail = list(texts), delay, fail
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
            for word in text.split(" "):
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
        found.append((lines.get("event", "message"), json.loads(lines["data"]) if lines.get("data", "").startswith("{") else lines.get("data")))
    return found


def test_sentence_chunks_come_as_each_sentence_ends():
    pieces = ["Your fl", "ight leaves at 7", ".45 a.m. The fee", " is $75. ", "Want me", " to book it?"]
    assert list(sentence_chunks(pieces)) == ["Your flight leaves at 7.45 a.m.", "The fee is $75.", "Want me to book it?"]
    assert list(sentence_chunks(["One line\n", "two"])) == ["One line", "two"]
    assert list(sentence_chunks([])) == []


def test_the_first_chunk_may_end_at_a_clause_so_the_tts_starts_sooner():
    pieces = ["Sure, your new flight leaves", " at eight thirty, and the fee", " is seventy-five dollars. Want me", " to book it?"]
    assert list(sentence_chunks(pieces)) == ["Sure, your new flight leaves at eight thirty,", "and the fee is seventy-five dollars.", "Want me to book it?"]
    # a clause of fewer than four words does not end the first chunk; later chunks are whole sentences
    assert list(sentence_chunks(["Sure, I can. Your flight, the one at eight, leaves soon."])) == ["Sure, I can.", "Your flight, the one at eight, leaves soon."]
    assert list(sentence_chunks(["Okay, so your flight leaves at eight, then."], first_clause_words=None)) == ["Okay, so your flight leaves at eight, then."]


def test_prepare_is_a_no_op_without_a_prompt_cache_and_answers_over_http():
    app = client(Voice(Scripted()))
    reply = app.post("/v1/prepare", json={"history": [{"role": "user", "text": "Can I move my flight?"}], "draft": "The change fee"})
    assert reply.status_code == 200 and reply.json()["prefilled_tokens"] == 0
    assert app.post("/v1/prepare", json={"draft": 3}).status_code == 400


def test_speak_returns_the_response_and_its_metadata():
    backend = Scripted()
    reply = client(Voice(backend, name="tuned")).post("/v1/speak", json={"history": [{"role": "user", "text": "Can I move my flight?"}], "draft": DRAFT, "scores": True})
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
    assert [d["text"] for _, d in found[:3]] == ["Your new flight leaves at seven forty-five.", "The change fee is seventy-five dollars.", "Want me to book it?"]
    assert found[-1][1]["response"] == SPOKEN


def test_chat_completions_accepts_the_same_content():
    app = client(Voice(Scripted(), name="tuned"))
    # the draft as an extra field
    reply = app.post("/v1/chat/completions", json={"model": "x", "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "Change my flight?"}], "draft": DRAFT})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"] == {"role": "assistant", "content": SPOKEN}
    assert body["voicetune"]["fallback"] is False
    # the draft as the last assistant message, streamed as OpenAI chunks
    reply = app.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Change my flight?"}, {"role": "assistant", "content": DRAFT}], "stream": True})
    lines = [line.removeprefix("data: ") for line in reply.text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == SPOKEN
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("path, body, says", [
    ("/v1/speak", {}, "draft"),
    ("/v1/speak", {"draft": ""}, "draft"),
    ("/v1/speak", {"draft": "Hi.", "mood": "happy"}, "mood"),
    ("/v1/speak", {"draft": "Hi.", "history": [{"role": "robot", "text": "x"}]}, "history.0.role"),
    ("/v1/speak", {"draft": "x" * 20_001}, "draft"),
    ("/v1/speak", {"draft": "Hi.", "facts": "not a list"}, "facts"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "assistant"),
    ("/v1/chat/completions", {"messages": []}, "messages"),
])
def test_bad_requests_get_a_4xx_with_one_line(path, body, says):
    reply = client(Voice(Scripted())).post(path, json=body)
    assert 400 <= reply.status_code < 500
    message = reply.json()["error"]["message"]
    assert says in message and "\n" not in message


def test_a_body_that_is_not_json_is_a_4xx():
    reply = client(Voice(Scripted())).post("/v1/speak", content=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and "JSON" in reply.json()["error"]["message"]


def test_a_failing_model_is_a_500_line_and_the_server_keeps_serving():
    backend = Scripted(fail=True)
    app = client(Voice(backend))
    reply = app.post("/v1/speak", json={"draft": DRAFT})
    assert reply.status_code == 500 and "model crashed" in reply.json()["error"]["message"]
    streamed = events(app.post("/v1/speak", json={"draft": DRAFT, "stream": True}).text)
    assert streamed[-1][0] == "error" and "model crashed" in streamed[-1][1]["message"]
    backend.fail = False
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
    candidates = ["- **Note:** please see the details below.\n- Item one\n- Item two", good, "Sorry, I apologize for any inconvenience. " * 3]
    voice = Voice(Scripted(candidates), best_of=3)
    spoken = voice.speak(turn)
    best = max(candidates, key=lambda text: score_response(turn, text).voice_score)
    assert spoken.text == best == good and spoken.candidates == 3 and not spoken.fallback
    reply = client(voice).post("/v1/speak", json={"history": [m.model_dump() for m in turn.history], "draft": turn.draft, "facts": turn.facts})
    assert reply.json()["response"] == good and reply.json()["candidates"] == 3


def test_the_guard_falls_back_to_the_draft_said_faithfully_when_a_required_fact_is_dropped():
    from voicetune.verbalize import speak_draft

    turn = make_turn([{"role": "user", "text": "How much is the change?"}], DRAFT, facts=["$75.00"])
    dropped = "Sure, your new flight leaves at seven forty-five."  # no fee: drops the required fact
    voice = Voice(Scripted([dropped]), guard=True, selector="rubric")  # the rules' guard (the learned one: test_learned_judge)
    spoken = voice.speak(turn)
    assert spoken.fallback and spoken.text == speak_draft(DRAFT)
    assert any("dropped" in kind for kinds in spoken.refused.values() for kind in kinds)
    reply = client(voice).post("/v1/speak", json={"history": [{"role": "user", "text": "How much is the change?"}], "draft": DRAFT, "facts": ["$75.00"], "stream": True})
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
        with httpx.stream("POST", f"{base}/v1/speak", json={"history": [m.model_dump() for m in turn.history], "draft": turn.draft, "stream": True}, timeout=60) as reply:
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
