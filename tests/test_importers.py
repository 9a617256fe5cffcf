"""Importers: the real τ-bench samples (when ../shared/data is present) and small synthetic files for every
format, including bad inputs that must raise a VoicetuneError naming the file and line or item."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from voicetune import VoicetuneError, import_transcripts
from voicetune.data.formats import FORMATS

# ---------------------------------------------------------------------------------------------------------
# The real samples


def _expected_tau_turns(item: dict) -> list[dict]:
    """An independent reading of one τ-bench trajectory: one turn per assistant message with text."""
    history: list[tuple[str, str]] = []
    tools: list[str] = []
    turns = []
    for message in item["traj"]:
        role, text = message["role"], (message.get("content") or "").strip()
        if role == "tool" and text:
            tools.append(text)
        elif role == "user" and text:
            history.append(("user", text))
        elif role == "assistant" and text:
            turns.append({"history": list(history), "draft": text, "tools": list(tools)})
            history.append(("agent", text))
    return turns


@functools.cache
def _load_tau(path: Path):
    return json.loads(path.read_text()), import_transcripts(path, "tau-bench")


@pytest.fixture
def tau_airline(shared_data):
    """The real τ-bench airline trajectories: (raw JSON, imported turns), read once per session."""
    path = shared_data / "tau-bench" / "gpt-4o-airline.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return _load_tau(path)


def test_tau_bench_airline_turns(tau_airline):
    raw, turns = tau_airline
    assert len(turns) > 1000
    assert {t.domain for t in turns} == {"airline"}
    assert len({t.id for t in turns}) == len(turns)
    assert len({t.meta["conversation_id"] for t in turns}) == len(raw)
    assert len({t.meta["task_id"] for t in turns}) == len({item["task_id"] for item in raw})
    assert all(t.system and t.system.startswith("# Airline Agent Policy") for t in turns)


def test_tau_bench_turns_match_an_independent_reading(tau_airline):
    raw, turns = tau_airline
    by_conversation: dict[str, list] = {}
    for turn in turns:
        by_conversation.setdefault(turn.meta["conversation_id"], []).append(turn)
    for item in raw:
        conversation = f"tau-airline-{item['task_id']}-{item['trial']}"
        got = by_conversation.get(conversation, [])
        expected = _expected_tau_turns(item)
        assert len(got) == len(expected), conversation
        for index, (turn, want) in enumerate(zip(got, expected, strict=False)):
            assert turn.meta["turn_index"] == index
            assert turn.meta["trial"] == item["trial"] and turn.meta["reward"] == item["reward"]
            assert turn.draft == want["draft"]
            assert [(m.role, m.text) for m in turn.history] == want["history"]
            assert turn.meta.get("tool_results", []) == want["tools"]


def test_tau_bench_history_holds_only_spoken_texts(tau_airline):
    raw, turns = tau_airline
    tool_outputs = {(m.get("content") or "").strip() for item in raw for m in item["traj"] if m["role"] == "tool"} - {
        ""
    }
    with_tools = 0
    for turn in turns:
        assert turn.history, turn.id
        assert turn.history[0].role == "user"
        assert turn.history[-1].role in ("user", "agent")
        for message in turn.history:
            assert message.role in ("user", "agent")
            assert message.text.strip()
            assert not message.text.lstrip().startswith(("{", "[")), (turn.id, message.text[:80])
            assert message.text not in tool_outputs
        if turn.meta.get("tool_results"):
            with_tools += 1
            assert all(isinstance(r, str) and r for r in turn.tool_results)
    assert with_tools > len(turns) // 2
    # a user message never directly follows another user message: each caller turn is answered
    assert not any(
        a.role == b.role == "user" for turn in turns for a, b in zip(turn.history, turn.history[1:], strict=False)
    )


def test_tau_bench_tool_output_is_json_in_meta(tau_airline):
    _, turns = tau_airline
    parsed = 0
    for turn in turns:
        for result in turn.tool_results:
            if result.startswith("{"):
                json.loads(result)
                parsed += 1
    assert parsed > 100


def test_tau_bench_fewshot_sample(shared_data):
    path = shared_data / "tau-bench" / "airline-few_shot.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    displays = [json.loads(line)["messages_display"] for line in path.read_text().splitlines() if line.strip()]
    turns = import_transcripts(path, "tau-bench-fewshot")
    spoken = sum(len(re.findall(r"(?m)^assistant: (?!None\s*$)\S", d)) for d in displays)
    assert len(turns) == spoken > 50
    assert {t.domain for t in turns} == {"airline"}  # from the file name
    assert len({t.meta["conversation_id"] for t in turns}) <= len(displays)
    for turn in turns:
        assert turn.draft.strip() != "None"
        assert not turn.draft.startswith(("tool:", "user:", "assistant:"))
        for message in turn.history:
            assert message.text.strip() != "None"
            assert not message.text.startswith("tool:")
    tool_texts = {
        line[len("tool: ") :].strip() for d in displays for line in d.splitlines() if line.startswith("tool: ")
    }
    in_meta = [r for t in turns for r in t.tool_results]
    assert in_meta and set(in_meta) <= tool_texts
    assert not any(m.text in tool_texts for t in turns for m in t.history)


# ---------------------------------------------------------------------------------------------------------
# Synthetic τ-bench


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def _traj(system: str = "# Retail agent policy\n\nBe helpful.") -> list[dict]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "Hi, I want to return a lamp."},
        {"role": "assistant", "content": "Sure. What's your order number?"},
        {"role": "user", "content": "It's W4923227."},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "get_order", "arguments": "{}"}}]},
        {"role": "tool", "content": '{"order_id": "#W4923227", "total": 1095.55}'},
        {"role": "assistant", "content": "Found it: order **#W4923227**, total $1,095.55. Return it?"},
        {"role": "user", "content": "Yes please."},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "return_order", "arguments": "{}"}}]},
        {"role": "tool", "content": "Return started."},
        {"role": "assistant", "content": "Done, your return is started."},
    ]


def test_tau_bench_other_domain(tmp_path):
    path = _write_json(
        tmp_path / "gpt-4o-trajectories.json", [{"task_id": 7, "trial": 2, "reward": 1.0, "traj": _traj()}]
    )
    turns = import_transcripts(path, "tau-bench")
    assert [t.draft for t in turns] == [
        "Sure. What's your order number?",
        "Found it: order **#W4923227**, total $1,095.55. Return it?",
        "Done, your return is started.",
    ]
    assert {t.domain for t in turns} == {"retail"}
    assert turns[0].meta["task_id"] == "retail-7" and turns[0].meta["trial"] == 2 and turns[0].meta["reward"] == 1.0
    assert turns[0].id == "tau-retail-7-2-t00"
    assert "tool_results" not in turns[0].meta
    assert turns[1].tool_results == ['{"order_id": "#W4923227", "total": 1095.55}']
    assert turns[2].tool_results == ['{"order_id": "#W4923227", "total": 1095.55}', "Return started."]
    assert [(m.role, m.text) for m in turns[2].history] == [
        ("user", "Hi, I want to return a lamp."),
        ("agent", "Sure. What's your order number?"),
        ("user", "It's W4923227."),
        ("agent", "Found it: order **#W4923227**, total $1,095.55. Return it?"),
        ("user", "Yes please."),
    ]
    assert turns[0].system.startswith("# Retail agent policy")


def test_tau_bench_domain_fallbacks(tmp_path):
    no_title = _traj(system="You are an agent.")
    path = _write_json(tmp_path / "run-telecom.json", {"task_id": 1, "traj": no_title})  # one object is fine
    assert {t.domain for t in import_transcripts(path, "tau-bench")} == {"telecom"}  # from the file name
    assert {t.domain for t in import_transcripts(path, "tau-bench", domain="banking")} == {"banking"}
    plain = _write_json(tmp_path / "run.json", [{"traj": no_title}])
    turns = import_transcripts(plain, "tau-bench")
    assert {t.domain for t in turns} == {"general"}
    assert turns[0].meta["task_id"] == "general-0"  # the item's index when there is no task_id


def _import_error(tmp_path, format: str, filename: str, content: str) -> tuple[str, str]:
    """Import ``content`` as ``format`` from a file; return the file's path and the error message."""
    path = tmp_path / filename
    path.write_text(content)
    with pytest.raises(VoicetuneError) as error:
        import_transcripts(path, format)
    return str(path), str(error.value)


TAU_BAD = {
    "malformed JSON": ('[\n  {"task_id": 1,\n   "traj": [}\n]', ":3:"),
    "not a list": ('"hello"', "expected a JSON list"),
    "item not an object": ('[{"traj": []}, 5]', "item 1"),
    "missing traj": ('[{"task_id": 1}]', "item 0: missing field 'traj'"),
    "traj not a list": ('[{"traj": "hi"}]', "item 0: field 'traj'"),
    "unknown role": ('[{"traj": [{"role": "wizard", "content": "x"}]}]', "item 0: messages[0]: field 'role'"),
    "message without role": (
        '[{"traj": [{"role": "user", "content": "x"}, {"content": "y"}]}]',
        "item 0: messages[1]: missing field 'role'",
    ),
    "content not text": ('[{"traj": [{"role": "user", "content": 5}]}]', "item 0: messages[0]: field 'content'"),
    "message not an object": ('[{"traj": ["hello"]}]', "item 0: messages[0]"),
}


@pytest.mark.parametrize("case", TAU_BAD, ids=list(TAU_BAD))
def test_tau_bench_bad_input(tmp_path, case):
    content, expected = TAU_BAD[case]
    path, message = _import_error(tmp_path, "tau-bench", "bad.json", content)
    assert path in message and expected in message


# ---------------------------------------------------------------------------------------------------------
# Synthetic τ-bench few-shot


def test_tau_bench_fewshot_synthetic(tmp_path):
    display = "\n".join(
        [
            "user: Hi, I need to cancel my trip.",
            "assistant: Sure. What's your user ID?",
            "user: mia_li_3668",
            "assistant: None",
            'tool: {"reservations": ["NO6JO3"]}',
            "assistant: I found one reservation:",
            "1. NO6JO3, MCO to CLT",
            "Cancel it?",
            "user: Yes.",
            "assistant: None",
            "tool: Cancelled",
            "assistant: Done, it's cancelled.",
        ]
    )
    path = tmp_path / "retail-dialogues.jsonl"
    path.write_text(
        json.dumps({"messages_display": display})
        + "\n\n"
        + json.dumps({"messages_display": "user: Hello\nassistant: Hi!"})
        + "\n"
    )
    turns = import_transcripts(path, "tau-bench-fewshot")
    assert [t.draft for t in turns] == [
        "Sure. What's your user ID?",
        "I found one reservation:\n1. NO6JO3, MCO to CLT\nCancel it?",
        "Done, it's cancelled.",
        "Hi!",
    ]
    assert {t.domain for t in turns} == {"retail"}
    assert [t.meta["conversation_id"] for t in turns] == ["retail-dialogues-0001"] * 3 + ["retail-dialogues-0003"]
    assert turns[0].tool_results == []
    assert turns[1].tool_results == ['{"reservations": ["NO6JO3"]}']
    assert turns[2].tool_results == ['{"reservations": ["NO6JO3"]}', "Cancelled"]
    assert [m.role for m in turns[2].history] == ["user", "agent", "user", "agent", "user"]
    assert all("None" not in m.text for t in turns for m in t.history)


FEWSHOT_BAD = {
    "malformed line": ('{"messages_display": "user: hi"}\n{oops\n', ":2: malformed JSON"),
    "missing field": ('{"display": "user: hi"}\n', ":1: missing field 'messages_display'"),
    "wrong type": ('{"messages_display": ["user: hi"]}\n', ":1: field 'messages_display'"),
    "no role": ('{"messages_display": "hello\\nuser: hi"}\n', ":1: field 'messages_display'"),
    "not an object": ('["user: hi"]\n', ":1: expected a JSON object"),
}


@pytest.mark.parametrize("case", FEWSHOT_BAD, ids=list(FEWSHOT_BAD))
def test_tau_bench_fewshot_bad_input(tmp_path, case):
    content, expected = FEWSHOT_BAD[case]
    path, message = _import_error(tmp_path, "tau-bench-fewshot", "bad.jsonl", content)
    assert f"{path}{expected}" in message


# ---------------------------------------------------------------------------------------------------------
# OpenAI chat JSONL


def test_openai_chat(tmp_path):
    lines = [
        {
            "id": "call-1",
            "domain": "telecom",
            "messages": [
                {"role": "system", "content": "You are a phone agent."},
                {"role": "user", "content": "My internet is down."},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "check", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"status": "outage", "eta": "2:30 PM"}'},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "There's an outage in your area."},
                        {"type": "text", "text": "It should be fixed by 2:30 PM."},
                    ],
                },
                {"role": "user", "content": [{"type": "text", "text": "Thanks."}]},
                {"role": "assistant", "content": "You're welcome."},
            ],
        },
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"}]},
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    turns = import_transcripts(path, "openai-chat")
    assert [t.draft for t in turns] == [
        "There's an outage in your area.\nIt should be fixed by 2:30 PM.",
        "You're welcome.",
        "Hello, how can I help?",
    ]
    assert [t.id for t in turns] == ["call-1-t00", "call-1-t01", "chats-00002-t00"]
    assert [t.domain for t in turns] == ["telecom", "telecom", "general"]
    assert turns[0].system == "You are a phone agent."
    assert turns[0].tool_results == ['{"status": "outage", "eta": "2:30 PM"}']
    assert [(m.role, m.text) for m in turns[1].history] == [
        ("user", "My internet is down."),
        ("agent", "There's an outage in your area.\nIt should be fixed by 2:30 PM."),
        ("user", "Thanks."),
    ]
    assert turns[2].meta["source"] == "openai-chat"


OPENAI_BAD = {
    "malformed line": ('{"messages": []}\n{"messages": [\n', ":2: malformed JSON"),
    "missing messages": ('{"id": "x"}\n', ":1: missing field 'messages'"),
    "messages not a list": ('{"messages": "hi"}\n', ":1: field 'messages' should be list"),
    "unknown role": (
        '{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}\n',
        ":1: messages[1]: field 'role'",
    ),
    "content a number": ('{"messages": [{"role": "user", "content": 42}]}\n', ":1: messages[0]: field 'content'"),
    "message not an object": ('{"messages": ["hi"]}\n', ":1: messages[0]: expected an object"),
}


@pytest.mark.parametrize("case", OPENAI_BAD, ids=list(OPENAI_BAD))
def test_openai_chat_bad_input(tmp_path, case):
    content, expected = OPENAI_BAD[case]
    path, message = _import_error(tmp_path, "openai-chat", "bad.jsonl", content)
    assert f"{path}{expected}" in message


@pytest.mark.parametrize(
    "line",
    [
        {"domain": 5, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": 5}]},
            ]
        },
    ],
    ids=["domain not a string", "text part not a string"],
)
# Regression: a numeric 'domain' raised pydantic's ValidationError and a numeric text part a TypeError.
def test_openai_chat_mistyped_optional_fields_are_user_errors(tmp_path, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(VoicetuneError, match=r"bad\.jsonl:1"):
        import_transcripts(path, "openai-chat")


# ---------------------------------------------------------------------------------------------------------
# CSV


def test_csv_documented_columns(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text(
        "conversation_id,role,text,turn,domain,reference\n"
        'c1,agent,"Your balance is $1,095.55. Anything else?",2,banking,"It\'s ten ninety-five fifty-five."\n'
        "c2,customer,Hi there,1,,\n"
        "c1,user,What's my balance?,1,banking,\n"
        'c1,tool,{"balance": 1095.55},1.5,banking,\n'
        "c1,caller,No thanks,3,banking,\n"
        "c1,assistant,Bye!,4,banking,\n"
        "c2,agent,Hello! How can I help?,2,,\n"
    )
    turns = import_transcripts(path, "csv")
    assert [(t.id, t.draft) for t in turns] == [
        ("c1-t00", "Your balance is $1,095.55. Anything else?"),
        ("c1-t01", "Bye!"),
        ("c2-t00", "Hello! How can I help?"),
    ]
    assert turns[0].reference == "It's ten ninety-five fifty-five."
    assert turns[1].reference is None
    assert turns[0].tool_results == ['{"balance": 1095.55}']
    assert [(m.role, m.text) for m in turns[0].history] == [("user", "What's my balance?")]
    assert [(m.role, m.text) for m in turns[1].history] == [
        ("user", "What's my balance?"),
        ("agent", "Your balance is $1,095.55. Anything else?"),
        ("user", "No thanks"),
    ]
    assert [t.domain for t in turns] == ["banking", "banking", "general"]
    assert turns[2].history[0].text == "Hi there"
    assert {t.meta["source"] for t in turns} == {"csv"}


def test_csv_file_order_without_turn_column_and_header_case(tmp_path):
    path = tmp_path / "healthcare-export.csv"
    path.write_bytes(
        ("\ufeffConversation_ID, Role ,TEXT\na,user,Hi\na,agent,Hello.\na,user,Bye\na,agent,Take care.\n").encode(
            "utf-8"
        )
    )
    turns = import_transcripts(path, "csv")
    assert [t.draft for t in turns] == ["Hello.", "Take care."]
    assert {t.domain for t in turns} == {"healthcare"}


@pytest.mark.parametrize(
    "header, missing",
    [
        ("conversation_id,role", "'text'"),
        ("id,role,text", "'conversation_id'"),
        ("conversation_id,speaker,text", "'role'"),
    ],
)
def test_csv_missing_column_names_it(tmp_path, header, missing):
    path = tmp_path / "bad.csv"
    path.write_text(header + "\nc1,user,hi\n")
    with pytest.raises(VoicetuneError) as error:
        import_transcripts(path, "csv")
    message = str(error.value)
    assert f"{path}:1:" in message and "missing column" in message and missing in message


CSV_BAD = {
    "unknown role": ("conversation_id,role,text\nc1,user,hi\nc1,robot,beep\n", ":3: field 'role'"),
    "empty conversation id": ("conversation_id,role,text\n,user,hi\n", ":2: field 'conversation_id'"),
    "turn not a number": ("conversation_id,role,text,turn\nc1,user,hi,first\n", ":2: field 'turn'"),
}


@pytest.mark.parametrize("case", CSV_BAD, ids=list(CSV_BAD))
def test_csv_bad_rows(tmp_path, case):
    content, expected = CSV_BAD[case]
    path, message = _import_error(tmp_path, "csv", "bad.csv", content)
    assert f"{path}{expected}" in message


# Regression: rows were numbered, not lines, so a multi-line quoted text shifted every later error.
def test_csv_error_line_after_a_multiline_text(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('conversation_id,role,text\nc1,agent,"Your options:\n1. Economy\n2. Business"\nc1,robot,beep\n')
    with pytest.raises(VoicetuneError, match=r"bad\.csv:5: field 'role'"):
        import_transcripts(path, "csv")


# ---------------------------------------------------------------------------------------------------------
# Whole-file checks, every format


@pytest.mark.parametrize("format", list(FORMATS))
@pytest.mark.parametrize(
    "content, expected",
    [(b"", "empty"), (b" \n\n", "empty"), (b"\x00\x01\x02binary\x00", "binary"), (b"caf\xe9\n", "UTF-8")],
    ids=["empty", "blank", "binary", "latin-1"],
)
def test_whole_file_errors_every_format(tmp_path, format, content, expected):
    path = tmp_path / "input.data"
    path.write_bytes(content)
    with pytest.raises(VoicetuneError) as error:
        import_transcripts(path, format)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(VoicetuneError, match="no such file"):
        import_transcripts(tmp_path / "nope.json", "tau-bench")
    with pytest.raises(VoicetuneError, match="unknown format 'vtt'.*tau-bench"):
        import_transcripts(tmp_path / "nope.json", "vtt")


def test_every_format_gives_unique_turn_ids(tmp_path):
    path = tmp_path / "a.jsonl"
    line = {
        "id": "same",
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ],
    }
    path.write_text(json.dumps(line) + "\n")
    turns = import_transcripts(path, "openai-chat")
    assert Counter(t.id for t in turns).most_common(1)[0][1] == 1
