"""Property-based tests (hypothesis) of the speak server's contract with any client: whatever body is sent to
``/v1/speak``, ``/v1/chat/completions`` or ``/v1/prepare`` (any JSON value, wrong types, huge or odd strings with
lone surrogates, NULs, emoji and invisible characters, nested junk, missing and extra fields, bytes that are not
UTF-8 or not JSON), the answer is a 200 with a valid answer or a 4xx whose body is exactly
``{"error": {"message": one line, "type": str}}``, never a 500, and the server still answers ``/health`` after it.

The voice is real (:class:`~voicetune.serve.voice.Voice`, the scorer when ``scores`` is asked) over a fast stub
backend that, like a tokenizer, encodes its prompt as UTF-8 and keeps a prompt cache (``prefill``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from voicetune.serve.app import MAX_CHARS, MAX_FACT_CHARS, MAX_FACTS, MAX_MESSAGES, create_app  # noqa: E402
from voicetune.serve.voice import Voice  # noqa: E402

SPOKEN = "Your new flight leaves at seven forty-five. The change fee is seventy-five dollars."


class Stub:
    """Answers at once; encodes every prompt as UTF-8 (a lone surrogate that reached it would be a 500)."""

    def generate(self, prompts, sampling, on_batch=None):
        json.dumps(prompts, ensure_ascii=False).encode("utf-8")
        return [SPOKEN] * len(prompts)

    def stream(self, messages, sampling):
        json.dumps(messages, ensure_ascii=False).encode("utf-8")
        yield from (word + " " for word in SPOKEN.split(" "))

    def prefill(self, messages, marker, text=""):
        return len((json.dumps(messages, ensure_ascii=False) + text).encode("utf-8")) // 4


def _settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module")
def http():
    with TestClient(create_app(Voice(Stub(), name="stub"), "stub"), raise_server_exceptions=False) as client:
        yield client


# --- strategies ---------------------------------------------------------------------------------------------

#: Strings a careless or hostile client sends: anything, lone surrogates included, and the known troublemakers.
odd_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),  # every code point, lone surrogates included
    st.sampled_from(
        [
            "",
            " ",
            "\u0000",
            "\u0000\u0000",
            "\ud800",
            "a\udfffb",
            "\u200b\ufeff",
            "\x1b[31m",
            "\U0001f600" * 30,
            "\r\n\u2028\u2029",
            "x" * (MAX_CHARS + 1),
            "\U0001f600" * MAX_FACT_CHARS,
            "x" * (MAX_FACT_CHARS + 1),
        ]
    ),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), odd_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=10,
)

#: Text a well-meaning client sends: drafts with markup, amounts, times, emoji, other scripts.
texts = st.one_of(
    st.sampled_from(
        [
            "The change fee is **$75.00** and your new flight departs at 7:45 AM. Shall I book it?",
            "Okay.",
            "| fare | price |\n|---|---|\n| basic | $120 |",
            "Your code is ABC123 \U0001f600",
            "Ihr Flug geht um 7:45 Uhr.",
            "$75.00",
            "7:45 AM",
            "Can I move my flight?",
        ]
    ),
    st.text(st.characters(categories=("L", "N", "P", "Zs", "Sc", "So")), max_size=60),
)
history = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "agent"]), "text": texts}), max_size=3)
facts = st.lists(texts, max_size=4)
seeds = st.integers(0, 2**32 - 1)
plausible_speak = st.fixed_dictionaries(
    {"draft": texts},
    optional={"history": history, "facts": facts, "stream": st.booleans(), "scores": st.booleans(), "seed": seeds},
)
plausible_prepare = st.fixed_dictionaries({}, optional={"draft": texts, "history": history})
plausible_chat = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]), "content": texts}),
            min_size=1,
            max_size=4,
        )
    },
    optional={
        "draft": texts,
        "facts": facts,
        "stream": st.booleans(),
        "seed": seeds,
        "model": st.sampled_from(["voicetune", ""]),
        "temperature": st.floats(0, 2),
    },
)

_GONE = object()


def _mutate(body: dict, changes: list) -> dict:
    for field, value in changes:
        if value is _GONE:
            body.pop(field, None)
        else:
            body[field] = value
    return body


def _bodies(plausible, fields: list[str]):
    """The body as bytes: a plausible one with none, one or two fields removed or replaced by anything (a wrong type,
    odd text, nested junk, a field it does not have), or any JSON value at all; JSON's escapes carry lone surrogates."""
    changed = st.builds(
        _mutate,
        plausible,
        st.lists(
            st.tuples(st.sampled_from([*fields, "mood"]), st.one_of(st.just(_GONE), odd_text, json_values)), max_size=2
        ),
    )
    bounds = st.sampled_from(
        [
            {"history": [{"role": "user", "text": "hi"}] * (MAX_MESSAGES + 1)},
            {"facts": ["$75"] * (MAX_FACTS + 1)},
            {"messages": [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)},
            {"seed": 2**32},
            {"seed": -1},
        ]
    )
    past_bounds = st.builds(lambda body, change: {**body, **change}, plausible, bounds)
    return st.one_of(plausible, changed, changed, past_bounds, json_values).map(
        lambda value: json.dumps(value).encode("ascii")
    )


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda head, junk: head + junk,
        st.sampled_from([b'{"draft": "', b'{"messages": [{"role": "user", "content": "']),
        st.binary(min_size=1, max_size=16),
    ),  # JSON that turns into bytes that are not UTF-8
    st.text(st.characters(exclude_categories=("Cs",)), max_size=32).map(lambda text: text.encode("utf-8")),
)


# --- the contract ---------------------------------------------------------------------------------------------


def _check(http: TestClient, path: str, body: bytes) -> None:
    reply = http.post(path, content=body, headers={"Content-Type": "application/json"})
    event(f"{path} {reply.status_code}")  # pytest --hypothesis-show-statistics: how many got past validation
    if reply.status_code == 200:
        _valid_answer(path, reply)
    else:
        assert 400 <= reply.status_code < 500, (path, body[:300], reply.status_code, reply.text[:300])
        error = reply.json()
        assert set(error) == {"error"} and set(error["error"]) == {"message", "type"}, error
        message = error["error"]["message"]
        assert isinstance(message, str) and message and isinstance(error["error"]["type"], str)
        assert message == " ".join(message.split()) and message.splitlines() == [message]  # one line
    assert http.get("/health").json()["status"] == "ok"


def _valid_answer(path: str, reply) -> None:
    if path == "/v1/prepare":
        assert isinstance(reply.json()["prefilled_tokens"], int)
    elif reply.headers["content-type"].startswith("text/event-stream"):
        blocks = [block for block in reply.text.split("\n\n") if block.strip()]
        if path == "/v1/speak":
            assert (
                blocks[-1].startswith("event: done")
                and json.loads(blocks[-1].split("data: ", 1)[1])["response"] == SPOKEN
            )
        else:
            assert blocks[-1] == "data: [DONE]" and all(
                json.loads(b.removeprefix("data: "))["object"] for b in blocks[:-1]
            )
    elif path == "/v1/speak":
        assert reply.json()["response"] == SPOKEN
    else:
        assert reply.json()["choices"][0]["message"] == {"role": "assistant", "content": SPOKEN}


@_settings(200)
@given(body=_bodies(plausible_speak, ["draft", "history", "facts", "stream", "scores", "seed"]))
def test_speak_answers_any_body_with_a_200_or_a_4xx_in_shape(http, body):
    _check(http, "/v1/speak", body)


@_settings(150)
@given(body=_bodies(plausible_chat, ["messages", "draft", "facts", "stream", "seed", "model"]))
def test_chat_answers_any_body_with_a_200_or_a_4xx_in_shape(http, body):
    _check(http, "/v1/chat/completions", body)


@_settings(100)
@given(body=_bodies(plausible_prepare, ["draft", "history"]))
def test_prepare_answers_any_body_with_a_200_or_a_4xx_in_shape(http, body):
    _check(http, "/v1/prepare", body)


@_settings(100)
@given(path=st.sampled_from(["/v1/speak", "/v1/chat/completions", "/v1/prepare"]), body=raw_bodies)
def test_any_bytes_are_a_200_or_a_4xx_in_shape(http, path, body):
    _check(http, path, body)
