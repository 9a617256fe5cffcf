"""Records: JSONL round trips, atomic writes, and errors that name the file, line and field."""

from __future__ import annotations

import json
import os

import pytest

from voicetune.errors import VoicetuneError
from voicetune.records import Message, Pair, Turn, atomic_write_text, iter_records, load_records, write_records


def _turn(index: int = 0, **extra) -> Turn:
    return Turn(
        id=f"conv-{index}-t00",
        domain="airline",
        system="You are Dana, a phone agent.",
        history=[
            Message(role="user", text="Can I move my flight?"),
            Message(role="agent", text="Sure, which day?"),
            Message(role="user", text="Friday."),
        ],
        draft="Flight **SV 1182** departs 07:45 AM. Change fee: $75.00.",
        facts=["07:45 AM", "$75.00"],
        reference="There's a seven forty-five on Friday, and the change fee is seventy-five dollars.",
        meta={"conversation_id": f"conv-{index}", "turn_index": 0, "tool_results": ['{"fee": 75}']},
        **extra,
    )


def test_turn_round_trip(tmp_path):
    turns = [
        _turn(0),
        _turn(
            1,
            response="It's seventy-five dollars.",
            scores={"clarity": 1.0, "voice_score": 0.9},
            reasons=["says nothing new"],
        ),
        Turn(id="bare"),
    ]
    path = write_records(tmp_path / "turns.jsonl", turns)
    assert path == tmp_path / "turns.jsonl"
    loaded = load_records(path)
    assert loaded == turns
    assert loaded[0].last_user_text == "Friday."
    assert loaded[0].tool_results == ['{"fee": 75}']
    assert loaded[2].history == [] and loaded[2].domain == "general"


def test_write_omits_none_fields_and_keeps_unicode(tmp_path):
    path = write_records(tmp_path / "t.jsonl", [Turn(id="a", draft="Café — 5 €")])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert "response" not in data and "scores" not in data and "facts" not in data
    assert "Café — 5 €" in lines[0]  # not \u-escaped


def test_turn_keeps_extra_fields(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "a", "draft": "Hi.", "speaker": "Dana"}) + "\n")
    (turn,) = load_records(path)
    assert turn.model_extra == {"speaker": "Dana"}
    write_records(tmp_path / "again.jsonl", [turn])
    assert json.loads((tmp_path / "again.jsonl").read_text())["speaker"] == "Dana"


def test_pair_round_trip(tmp_path):
    pairs = [
        Pair(
            id="pair-1",
            history=[Message(role="user", text="What's my balance?")],
            draft="Balance: $1,095.55",
            response_a="It's ten ninety-five fifty-five.",
            response_b="Your balance is $1,095.55.",
            meta={"label": "a", "quality": "clarity"},
        ),
        Pair(
            id="pair-2",
            response_a="Yes.",
            response_b="No.",
            winner="tie",
            criteria={"clarity": "a", "faithfulness": "tie"},
            rationale="both short",
            system_a="base",
            system_b="tuned",
        ),
    ]
    path = write_records(tmp_path / "pairs.jsonl", pairs)
    assert load_records(path, Pair) == pairs


def test_write_empty_list_writes_empty_file(tmp_path):
    path = write_records(tmp_path / "none.jsonl", [])
    assert path.read_text() == ""


def test_write_accepts_plain_dicts(tmp_path):
    path = write_records(tmp_path / "d.jsonl", [{"id": "x", "draft": "Hello."}])
    assert load_records(path) == [Turn(id="x", draft="Hello.")]


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    out = tmp_path / "sub" / "turns.jsonl"  # the folder is created
    write_records(out, [_turn(0)])
    write_records(out, [_turn(1), _turn(2)])  # overwrite
    assert sorted(p.name for p in out.parent.iterdir()) == ["turns.jsonl"]
    assert [t.id for t in load_records(out)] == ["conv-1-t00", "conv-2-t00"]


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path, monkeypatch):
    out = tmp_path / "turns.jsonl"
    write_records(out, [_turn(0)])
    before = out.read_text()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(
        VoicetuneError, match=r"turns\.jsonl: cannot write \(disk full\)"
    ):  # a user error naming the path
        atomic_write_text(out, "half a fi")
    assert out.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["turns.jsonl"]


GOOD = json.dumps({"id": "good", "draft": "Hello."})

BAD_LINES = {
    "malformed JSON": (GOOD + "\n" + '{"id": "x", "draft": }' + "\n", 2, "malformed JSON"),
    "missing id": (json.dumps({"draft": "Hello."}) + "\n", 1, "missing field 'id'"),
    "history as a string": (GOOD + "\n" + json.dumps({"id": "a", "history": "hi there"}) + "\n", 2, "'history'"),
    "role robot": (
        GOOD + "\n" + GOOD + "\n" + json.dumps({"id": "a", "history": [{"role": "robot", "text": "beep"}]}) + "\n",
        3,
        "'history.0.role'",
    ),
    "message without text": (json.dumps({"id": "a", "history": [{"role": "user"}]}) + "\n", 1, "'history.0.text'"),
    "id as a number": (json.dumps({"id": 7}) + "\n", 1, "'id'"),
    "scores not numbers": (json.dumps({"id": "a", "scores": {"clarity": "high"}}) + "\n", 1, "'scores.clarity'"),
    "a list, not an object": ("[1, 2, 3]\n", 1, "list"),
    "a bare string": ('"just text"\n', 1, "str"),
    "blank lines still count": (GOOD + "\n\n" + '{"id": }' + "\n", 3, "malformed JSON"),
}


@pytest.mark.parametrize("case", BAD_LINES, ids=list(BAD_LINES))
def test_bad_line_error_names_file_line_and_field(tmp_path, case):
    content, line, expected = BAD_LINES[case]
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(VoicetuneError) as error:
        load_records(path)
    message = str(error.value)
    assert f"{path}:{line}:" in message
    assert expected in message
    assert "\n" not in message


def test_pair_missing_response_names_the_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"id": "p", "response_a": "Yes."}) + "\n")
    with pytest.raises(VoicetuneError, match=r"pairs\.jsonl:1: missing field 'response_b'"):
        load_records(path, Pair)


def test_pair_bad_winner_names_the_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"id": "p", "response_a": "a", "response_b": "b", "winner": "both"}) + "\n")
    with pytest.raises(VoicetuneError, match=r":1: field 'winner'"):
        load_records(path, Pair)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (b"  \n\n \t\n", "empty"),
        (b"\x00\x01\x02\x03binary\x00data", "binary"),
        (b'{"id": "a", "draft": "caf\xe9"}\n', "UTF-8"),
    ],
    ids=["empty", "whitespace only", "binary", "not utf-8"],
)
def test_whole_file_errors_name_the_file(tmp_path, content, expected):
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)
    with pytest.raises(VoicetuneError) as error:
        load_records(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(VoicetuneError, match="no such file") as error:
        load_records(tmp_path / "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in str(error.value)
    with pytest.raises(VoicetuneError, match="directory"):
        load_records(tmp_path)


def test_iter_records_is_lazy_and_fails_at_the_bad_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(GOOD + "\n" + GOOD + "\n" + "{oops\n")
    records = iter_records(path)
    assert next(records).id == "good"
    assert next(records).id == "good"
    with pytest.raises(VoicetuneError, match=":3: malformed JSON"):
        next(records)


def test_skip_invalid_keeps_good_records_and_reports_each_skipped_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps({"id": "one", "draft": "First."}),
        "{not json",
        json.dumps({"draft": "no id"}),
        json.dumps({"id": "two", "draft": "Second."}),
        json.dumps({"id": "bad", "history": [{"role": "robot", "text": "x"}]}),
        "[1]",
        "",
        json.dumps({"id": "three"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    skipped: list[str] = []
    records = load_records(path, skip_invalid=True, skipped=skipped)
    assert [r.id for r in records] == ["one", "two", "three"]
    assert len(skipped) == 4
    assert skipped[0].startswith(f"{path}:2: malformed JSON")
    assert skipped[1] == f"{path}:3: missing field 'id'"
    assert skipped[2].startswith(f"{path}:5: field 'history.0.role'")
    assert skipped[3].startswith(f"{path}:6: malformed JSON") and "list" in skipped[3]


def test_skip_invalid_without_a_list_still_skips(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(GOOD + "\n{bad\n")
    assert [r.id for r in load_records(path, skip_invalid=True)] == ["good"]


def test_skip_invalid_does_not_hide_whole_file_errors(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(VoicetuneError, match="empty"):
        load_records(path, skip_invalid=True, skipped=[])
