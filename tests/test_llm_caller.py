"""The optional LLM caller (:mod:`voicetune.simulate.llm_caller`) against a fake OpenAI-compatible server on
127.0.0.1 (counting its requests), and its τ²-bench personas from ``../shared`` (skipped when absent)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from fake_openai import FakeChatServer, chat_reply
from voicetune.errors import VoicetuneError
from voicetune.models.prompts import CALLER_PROMPT, caller_messages
from voicetune.simulate.llm_caller import LLMCaller, Persona, default_personas, load_personas, parse_reaction

PERSONAS = [
    Persona(id=f"tau2:test:{i}", domain="test", text=f"Why you are calling: you want refund number {i}.")
    for i in range(10)
]
HEARD = [("agent", "Thanks for calling, how can I help?"), ("user", "I want a refund for my order.")]

# What the fake caller model answers, by a word of the agent's turn.
ANSWERS = {
    "fee": "REPEAT",
    "booked": "Understood.",
    "options": "rest",
    "json": '{"reaction": "Repeat"}',
    "garbage": "I am not sure what to say here.",
    "thinking": "<think>Maybe REST? No.</think>\nUNDERSTOOD",
}


class _Caller(FakeChatServer):
    def __init__(self):
        def answer(body: dict):
            turn = body["messages"][-1]["content"].split('"""')[1]
            return 200, chat_reply(next((text for word, text in ANSWERS.items() if word in turn), "UNDERSTOOD"))

        super().__init__(answer)


@pytest.fixture
def server():
    started = _Caller()
    yield started
    started.close()


def _react(caller: LLMCaller, turn: str, conversation_id: str = "c1", seed: int = 0, attempt: int = 0) -> str:
    return caller.react(
        conversation_id=conversation_id, seed=seed, heard_so_far=HEARD, agent_turn=turn, attempt=attempt
    )


def test_answers_map_to_reactions_and_garbage_counts_as_an_error(server):
    caller = LLMCaller(server.url, "caller-model", PERSONAS)
    assert _react(caller, "The fee is $45.00, $12.50 and $7.25 for bags 1, 2 and 3.") == "repeat"
    assert _react(caller, "You're booked on the 6 AM flight.") == "understood"
    assert _react(caller, "There are three options; the first is the 6 AM flight.") == "rest"
    assert _react(caller, "Reply json please") == "repeat"
    assert _react(caller, "With thinking first") == "understood"
    assert caller.errors == 0
    assert _react(caller, "garbage in") == "understood"
    assert caller.errors == 1 and server.calls == 6 == caller.requests
    body = server.bodies[0]
    assert body["model"] == "caller-model" and body["temperature"] == 0.0
    assert body["messages"][0]["content"].startswith(CALLER_PROMPT)
    assert caller.persona_for("c1", 0).text in body["messages"][0]["content"]
    assert (
        "Agent: Thanks for calling" in body["messages"][1]["content"]
        and "You: I want a refund" in body["messages"][1]["content"]
    )


def test_parse_reaction_is_tolerant():
    assert parse_reaction("REPEAT") == "repeat"
    assert parse_reaction("**Rest**, please.") == "rest"
    assert parse_reaction("understood — then repeat") == "understood"  # the first word found
    assert parse_reaction('```json\n{"reaction": "REST"}\n```') == "rest"
    assert parse_reaction('{"answer": "understood"}') == "understood"
    assert parse_reaction("interested restless repeated") is None  # whole words only
    assert parse_reaction("") is None and parse_reaction(None) is None


def test_the_cache_answers_a_rerun_without_a_request(server, tmp_path):
    cache = tmp_path / "caller.sqlite"
    first = LLMCaller(server.url, "m", PERSONAS, cache=cache)
    turns = ["The fee is $45.", "You're booked.", "Three options."]
    answers = [_react(first, turn) for turn in turns]
    first.close()
    assert server.calls == 3
    again = LLMCaller(server.url, "m", PERSONAS, cache=cache)
    assert [_react(again, turn) for turn in turns] == answers == ["repeat", "understood", "rest"]
    assert server.calls == 3 and again.requests == 0
    _react(again, "The fee is $45.", attempt=1)  # another prompt: asked
    assert server.calls == 4
    other_model = LLMCaller(server.url, "other", PERSONAS, cache=cache)
    _react(other_model, "The fee is $45.")  # another model: asked
    assert server.calls == 5
    again.close()
    other_model.close()


def test_persona_for_is_deterministic_and_spreads(server):
    caller = LLMCaller(server.url, "m", PERSONAS)
    other = LLMCaller(server.url, "another-model", PERSONAS, temperature=0.7)  # another system, same callers
    picks = [caller.persona_for(f"conv-{i}", 3) for i in range(200)]
    assert picks == [other.persona_for(f"conv-{i}", 3) for i in range(200)]
    assert picks == [caller.persona_for(f"conv-{i}", 3) for i in range(200)]
    counts = Counter(p.id for p in picks)
    assert len(counts) == len(PERSONAS) and max(counts.values()) < 40  # every persona, none dominant
    assert [caller.persona_for("conv-1", s) for s in range(20)] != [picks[1]] * 20  # the seed matters
    assert server.calls == 0


def test_describe_is_a_fingerprint(server):
    a = LLMCaller(server.url, "m", PERSONAS).describe()
    assert a == LLMCaller(server.url, "m", PERSONAS).describe()
    assert set(a) >= {"endpoint", "model", "prompt", "temperature", "personas"}
    assert a["personas"] != LLMCaller(server.url, "m", PERSONAS[:5]).describe()["personas"]
    assert a["temperature"] != LLMCaller(server.url, "m", PERSONAS, temperature=0.5).describe()["temperature"]
    json.dumps(a)


def test_caller_messages_say_it_is_a_repeat():
    first = caller_messages("P", HEARD, "The fee is $45.", 0)[1]["content"]
    second = caller_messages("P", HEARD, "The fee is $45.", 1)[1]["content"]
    assert "repeat" not in first.split('"""')[0] and "asked the agent to repeat this once" in second
    assert caller_messages("P", [], "Hi", 0)[1]["content"].startswith("The call is starting.")


def test_load_personas_from_the_shared_tau2_data(shared_data):
    folder = shared_data / "tau2"
    if not folder.is_dir():
        pytest.skip("../shared/data/tau2 is absent")
    personas = load_personas(folder)
    assert {p.domain for p in personas} == {"airline", "retail", "telecom"}
    assert len({p.id for p in personas}) == len(personas)
    tasks = json.loads((folder / "airline" / "tasks.json").read_text())
    by_id = {p.id: p for p in personas}
    for task in tasks[:10]:
        persona = by_id[f"tau2:airline:{task['id']}"]
        reason = " ".join(task["user_scenario"]["instructions"]["reason_for_call"].split())
        assert reason in persona.text
    assert all(p.text.strip() and len(p.text) <= 1500 for p in personas)
    assert not any("tool call" in p.text for p in personas)  # text-and-tools simulator steering dropped
    assert default_personas(shared_data.parent) == personas == default_personas()
    assert load_personas(folder / "retail" / "tasks.json") == [p for p in personas if p.domain == "retail"]


def test_default_personas_is_empty_without_data(tmp_path):
    assert default_personas(tmp_path) == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"id": "0"}', "expected a JSON list"),
        ('[{"id": "0"}]', "task 0: no 'user_scenario'"),
        (
            '[{"id": "0", "user_scenario": {"instructions": {"domain": "x"}}}]',
            "task 0: no 'user_scenario.instructions.reason_for_call'",
        ),
        ("[]", "holds no tasks"),
        ("", "empty"),
    ],
)
def test_a_bad_tasks_file_names_the_file(tmp_path, content, message):
    path = tmp_path / "tasks.json"
    path.write_text(content)
    with pytest.raises(VoicetuneError, match=message) as error:
        load_personas(path)
    assert str(path) in str(error.value)


def test_a_folder_without_tasks_and_no_personas_are_errors(tmp_path, server):
    with pytest.raises(VoicetuneError, match=r"no \*/tasks\.json"):
        load_personas(tmp_path)
    with pytest.raises(VoicetuneError, match="no such file"):
        load_personas(tmp_path / "missing.json")
    with pytest.raises(VoicetuneError, match="at least one persona"):
        LLMCaller(server.url, "m", [])


def test_an_unreachable_endpoint_names_the_url():
    caller = LLMCaller("http://127.0.0.1:9/v1", "m", PERSONAS, timeout=2, retries=0)
    started = time.monotonic()
    with pytest.raises(VoicetuneError, match=r"http://127\.0\.0\.1:9/v1.*unreachable"):
        _react(caller, "Hello?")
    assert time.monotonic() - started < 5
    with pytest.raises(VoicetuneError, match="not an endpoint URL"):
        LLMCaller("localhost:8000", "m", PERSONAS)
