"""The real ``voicetune`` command in a subprocess: help, user errors (exit 2, one line, no traceback), and
each command end to end on small inputs."""

from __future__ import annotations

import json

import pytest

from voicetune.records import QUALITIES, Pair, Turn, load_records


def _one_error_line(stderr: str) -> str:
    """The one line a user error prints on stderr (checked to be exactly one, with no traceback)."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_version(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("voicetune ")
    assert result.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["score"],
        ["judge"],
        ["run"],
        ["report"],
        ["data"],
        ["data", "import"],
        ["data", "split"],
        ["data", "builtin"],
    ],
    ids=lambda c: " ".join(c) or "top",
)
def test_help_for_every_command(run_cli, command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "--help" in result.stdout


def test_no_arguments_shows_help(run_cli):
    result = run_cli()
    assert result.returncode in (0, 2)
    assert "Usage" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


GOOD = json.dumps({"id": "t1", "draft": "Your fee is $75.", "response": "It's seventy-five dollars."})

BAD_INPUTS = {
    # name: (file content or None for a missing file, what the one error line must contain besides the file name)
    "malformed JSON": ((GOOD + "\n{not json\n").encode(), ["bad.jsonl:2:", "malformed JSON"]),
    "missing field": ((GOOD + "\n" + json.dumps({"draft": "no id"}) + "\n").encode(), ["bad.jsonl:2:", "'id'"]),
    "wrong type": (json.dumps({"id": "a", "history": "hello"}).encode() + b"\n", ["bad.jsonl:1:", "'history'"]),
    "unknown role": (
        json.dumps({"id": "a", "history": [{"role": "robot", "text": "x"}], "response": "Hi there."}).encode() + b"\n",
        ["bad.jsonl:1:", "history.0.role"],
    ),
    "empty file": (b"", ["bad.jsonl", "empty"]),
    "binary file": (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00" * 20, ["bad.jsonl", "binary"]),
    "missing file": (None, ["bad.jsonl", "no such file"]),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_score_bad_input_is_one_error_line_with_exit_code_2(run_cli, tmp_path, case):
    content, expected = BAD_INPUTS[case]
    if content is not None:
        (tmp_path / "bad.jsonl").write_bytes(content)
    result = run_cli("score", "--input", "bad.jsonl", "--output", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    message = _one_error_line(result.stderr)
    for part in expected:
        assert part in message
    assert not (tmp_path / "out.jsonl").exists()


# Regression: errors went through a rich Console, which soft-wraps at 80 columns off a terminal.
def test_long_error_message_stays_on_one_line(run_cli, tmp_path):
    folder = tmp_path / "a_rather_long_folder_name_for_transcripts" / "another_level_of_nesting"
    folder.mkdir(parents=True)
    bad = folder / "turns_with_a_missing_field.jsonl"
    bad.write_text(json.dumps({"draft": "no id"}) + "\n")
    result = run_cli("score", "--input", bad, "--output", tmp_path / "out.jsonl")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {bad}:1: missing field 'id'"]


def test_score_skip_invalid_reports_skipped_lines(run_cli, tmp_path):
    lines = [
        GOOD,
        "{not json",
        json.dumps({"draft": "no id"}),
        json.dumps({"id": "t2", "draft": "Hello.", "response": "Hi, how can I help?"}),
    ]
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("score", "--input", "mixed.jsonl", "--output", "out.jsonl", "--skip-invalid", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    stderr = " ".join(result.stderr.split())
    assert "skipped 2 invalid lines" in stderr
    assert "mixed.jsonl:2:" in stderr and "mixed.jsonl:3:" in stderr
    assert [t.id for t in load_records(tmp_path / "out.jsonl")] == ["t1", "t2"]


def test_skipped_line_reasons_are_one_line_each(run_cli, tmp_path):
    (tmp_path / "mixed.jsonl").write_text(GOOD + "\n{not json\n" + json.dumps({"draft": "no id"}) + "\n")
    result = run_cli("score", "--input", "mixed.jsonl", "--output", "out.jsonl", "--skip-invalid", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reasons = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(reasons) == 2, result.stderr
    assert reasons[0].startswith("mixed.jsonl:2: malformed JSON (") and reasons[0].endswith(")")
    assert reasons[1] == "mixed.jsonl:3: missing field 'id'"


def test_score_bad_options_exit_2(run_cli, tmp_path):
    (tmp_path / "in.jsonl").write_text(GOOD + "\n")
    for extra in (["--field", "summary"], ["--tts", "festival"]):
        result = run_cli("score", "--input", "in.jsonl", "--output", "out.jsonl", *extra, cwd=tmp_path)
        assert result.returncode == 2
        assert extra[1] in _one_error_line(result.stderr)


def test_score_missing_field_in_record_exits_2(run_cli, tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "t1", "draft": "Hello."}) + "\n")
    result = run_cli("score", "--input", "in.jsonl", "--output", "out.jsonl", cwd=tmp_path)  # --field response
    assert result.returncode == 2
    message = _one_error_line(result.stderr)
    assert "t1" in message and "response" in message


def test_data_import_unknown_format_exits_2(run_cli, tmp_path):
    (tmp_path / "x.json").write_text("[]")
    result = run_cli("data", "import", "x.json", "--format", "zoom-vtt", "--out", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    message = _one_error_line(result.stderr)
    assert "zoom-vtt" in message and "tau-bench" in message


def test_data_import_bad_file_exits_2(run_cli, tmp_path):
    (tmp_path / "x.json").write_text('[{"task_id": 1, "traj": [}]')
    result = run_cli("data", "import", "x.json", "--format", "tau-bench", "--out", "t.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "x.json:1:" in _one_error_line(result.stderr)


def test_usage_error_exits_2_without_traceback(run_cli, tmp_path):
    result = run_cli("score", "--output", "out.jsonl", cwd=tmp_path)  # --input is required
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--input" in result.stderr


def test_score_writes_scores_and_reasons(run_cli, tmp_path):
    turns = [
        Turn(
            id="t1",
            history=[{"role": "user", "text": "How much is the change fee?"}],
            draft="The change fee is **$75.00**. Is there anything else I can help you with today?",
            response="It's seventy-five dollars to make the change.",
        ),
        Turn(
            id="t2",
            draft="Your refund of $121 was issued on 2024-05-20.",
            response="- **Refund:** $121\n- **Issued:** 2024-05-20\nI apologize for any inconvenience.",
        ),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(t.model_dump_json(exclude_none=True) for t in turns) + "\n")
    result = run_cli("score", "--input", "in.jsonl", "--output", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote 2 scored records" in result.stderr
    scored = load_records(tmp_path / "out.jsonl")
    assert [s.id for s in scored] == ["t1", "t2"]
    for record in scored:
        assert set(record.scores) == {*QUALITIES, "voice_score"}
        assert all(0.0 <= value <= 1.0 for value in record.scores.values())
        assert isinstance(record.reasons, list)
    assert scored[0].reasons == []
    assert scored[1].reasons  # markdown, screen date, "apologize for any inconvenience"
    assert scored[0].scores["voice_score"] > scored[1].scores["voice_score"]


def test_score_other_field(run_cli, tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "t1", "draft": "**Balance:** $1,095.55"}) + "\n")
    result = run_cli("score", "--input", "in.jsonl", "--output", "out.jsonl", "--field", "draft", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (record,) = load_records(tmp_path / "out.jsonl")
    assert record.scores["clarity"] < 1.0


def test_judge_small_pairs_file(run_cli, tmp_path):
    pairs = [
        Pair(
            id="p1",
            history=[{"role": "user", "text": "When does my flight leave?"}],
            draft="Flight HAT069 departs at 06:00 AM on 2024-05-20.",
            response_a="It leaves at six in the morning on May twentieth. That's flight H A T zero six nine.",
            response_b="As an AI language model, I would like to inform you that **Flight:** HAT069, 2024-05-20, 06:00 "
            "AM.",
            meta={"label": "a"},
        ),
        Pair(
            id="p2",
            draft="Hello there.",
            response_a="Hi, what can I do for you?",
            response_b="Hi, what can I do for you?",
        ),
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(p.model_dump_json(exclude_none=True) for p in pairs) + "\n")
    result = run_cli(
        "judge", "--pairs", "pairs.jsonl", "--output", "judged.jsonl", "--judge", "rubric", cwd=tmp_path
    )  # the CLI path; the learned judge: test_learned_judge
    assert result.returncode == 0, result.stderr
    judged = load_records(tmp_path / "judged.jsonl", Pair)
    assert [p.winner for p in judged] == ["a", "tie"]
    for pair in judged:
        assert set(pair.criteria) == set(QUALITIES)
        assert pair.rationale
    assert "agreement with labels: 1/1" in result.stdout


def test_judge_unknown_judge_exits_2(run_cli, tmp_path):
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"id": "p", "response_a": "a b", "response_b": "c d"}) + "\n")
    result = run_cli("judge", "--pairs", "pairs.jsonl", "--output", "j.jsonl", "--judge", "gpt", cwd=tmp_path)
    assert result.returncode == 2
    assert "gpt" in _one_error_line(result.stderr)


def test_builtin_then_split_round_trip(run_cli, tmp_path):
    result = run_cli("data", "builtin", "--split", "test", "--out", "test.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    turns = load_records(tmp_path / "test.jsonl")
    assert turns and all(t.reference and t.draft for t in turns)

    result = run_cli(
        "data", "split", "test.jsonl", "--out", "splits", "--ratios", "0.6,0.2,0.2", "--seed", "3", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    parts = {name: load_records(tmp_path / "splits" / f"{name}.jsonl") for name in ("train", "dev", "test")}
    assert all(parts.values())
    assert sorted(t.id for part in parts.values() for t in part) == sorted(t.id for t in turns)
    owners = {}
    for name, part in parts.items():
        for turn in part:
            assert owners.setdefault(turn.meta["conversation_id"], name) == name


def test_builtin_pairs_and_bad_split(run_cli, tmp_path):
    result = run_cli("data", "builtin", "--pairs", "--out", "pairs.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(p.meta.get("label") in ("a", "b") for p in load_records(tmp_path / "pairs.jsonl", Pair))
    result = run_cli("data", "builtin", "--split", "validation", "--out", "x.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "validation" in _one_error_line(result.stderr)


def test_split_bad_ratios_exit_2(run_cli, tmp_path):
    (tmp_path / "t.jsonl").write_text(GOOD + "\n")
    for ratios in ("0.8,0.2", "a,b,c", "-1,1,1"):
        result = run_cli("data", "split", "t.jsonl", "--out", "s", "--ratios", ratios, cwd=tmp_path)
        assert result.returncode == 2, ratios
        assert "ratios" in _one_error_line(result.stderr)
