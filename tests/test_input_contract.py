"""The input contract, one regression test per problem an adversarial pass over the CLI found: a bad file,
line, field, flag or URL is ONE line on stderr starting ``error: `` naming it, exit code 2, never a traceback;
nothing is silently dropped or reinterpreted; writes are atomic and never clobber the input."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voicetune import import_transcripts
from voicetune.errors import VoicetuneError
from voicetune.models.generate import HTTPBackend, SamplingConfig
from voicetune.records import Turn, atomic_write_text, dumps, load_records, write_records


def _one_error_line(err: str) -> str:
    """The one ``error: `` line a user error prints (exactly one line, no traceback)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _csv(tmp_path: Path, content: str, name: str = "calls.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _import_error(path: Path, format: str = "csv") -> str:
    with pytest.raises(VoicetuneError) as error:
        import_transcripts(path, format)
    message = str(error.value)
    assert "\n" not in message
    return message


HEADER = "conversation_id,role,text\n"
TURN = json.dumps({"id": "t1", "draft": "Your fee is $75.", "response": "It's seventy-five dollars."})


# 1 ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        # the quote never closes: the rest of the file would be one field
        'c1,user,Hi\nc1,agent,"Hello, how can I help?\nc2,user,Hi\nc2,agent,Sure thing.\nc3,user,Hey\nc3,agent,Yes.\n',
        # a later quote closes it, and the reader stops on what follows
        'c1,user,Hi\nc1,agent,"Hello, how can I help?\nc2,user,Hi\nc2,agent,"Sure" thing.\n',
        # a later quote closes it at a line end: the swallowed rows would import as text without an error
        'c1,user,Hi\nc1,agent,"Hello, how can I help?\nc2,user,Hi\nc2,agent,Sure thing."\nc3,user,Hey\n',
    ],
    ids=["never closed", "closed mid-row", "closed at a line end"],
)
def test_csv_unterminated_quote_is_an_error_naming_the_line_it_opened_on(tmp_path, body):
    path = _csv(tmp_path, HEADER + body)
    message = _import_error(path)
    assert f"{path}:3:" in message and "quote" in message and "line 3" in message


# 2 ---------------------------------------------------------------------------------------------------------
def test_csv_unquoted_commas_in_text_are_an_error_not_a_cut_text(tmp_path):
    path = _csv(tmp_path, HEADER + "c1,user,Hi\nc1,agent,Sure, I can move it, no fee.\n")
    message = _import_error(path)
    assert f"{path}:3: 5 fields, the header has 3; quote the text" in message


# 3 ---------------------------------------------------------------------------------------------------------
def test_csv_row_with_too_few_columns_is_an_error(tmp_path):
    path = _csv(tmp_path, HEADER + "c1,user,Hi\nc1,agent\nc1,user,Bye\n")
    assert f"{path}:3: 2 fields, the header has 3" in _import_error(path)


# 4 ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "Infinity", "NaN"])
def test_csv_non_finite_turn_is_rejected(tmp_path, value):
    path = _csv(tmp_path, f"conversation_id,role,text,turn\nc1,user,Hi,1\nc1,agent,Hello.,2\nc1,user,Bye,{value}\n")
    message = _import_error(path)
    assert f"{path}:4: field 'turn' should be a finite number" in message and value in message


# 5 ---------------------------------------------------------------------------------------------------------
def test_csv_field_larger_than_the_csv_module_default_limit_imports(tmp_path):
    text = "word " * 400_000  # 2 MB in one field; the csv module's default limit is 128 KiB
    path = _csv(tmp_path, HEADER + f'c1,user,Hi\nc1,agent,"{text}"\n')
    (turn,) = import_transcripts(path, "csv")
    assert turn.draft == text.strip()


def test_csv_reader_errors_are_one_line_naming_the_line(tmp_path):
    path = _csv(tmp_path, HEADER + 'c1,user,Hi\nc1,agent,"Hello" there\n')
    assert f"{path}:3:" in _import_error(path)


# 6 ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["score", "score via a symlink", "data import", "data split"])
def test_output_equal_to_input_is_refused(cli, tmp_path, command):
    source = tmp_path / "train.jsonl"
    source.write_text(TURN + "\n{not json\n")
    before = source.read_bytes()
    if command == "score":
        args = ["score", "--input", source, "--output", "train.jsonl", "--skip-invalid"]
    elif command == "score via a symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
        args = ["score", "--input", source, "--output", "link.jsonl", "--skip-invalid"]
    elif command == "data import":
        source.write_text(json.dumps({"messages": [{"role": "assistant", "content": "Hi."}]}) + "\n")
        before = source.read_bytes()
        args = ["data", "import", "train.jsonl", "--format", "openai-chat", "--out", source]
    else:
        args = ["data", "split", "train.jsonl", "--out", ".", "--skip-invalid"]
    code, _, err = cli(*args)
    assert code == 2
    assert "input" in _one_error_line(err) and "train.jsonl" in err
    assert source.read_bytes() == before


# 7 ---------------------------------------------------------------------------------------------------------
OUTPUT_FLAG = {
    "score": ["score", "--input", "in.jsonl", "--field", "draft", "--output"],
    "judge": ["judge", "--pairs", "pairs.jsonl", "--output"],
    "data import": ["data", "import", "chat.jsonl", "--format", "openai-chat", "--out"],
    "data split": ["data", "split", "in.jsonl", "--out"],
    "data builtin": ["data", "builtin", "--split", "test", "--out"],
    "generate": [
        "generate",
        "--input",
        "in.jsonl",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        "--api-model",
        "m",
        "--output",
    ],
    "train": ["train", "--data", "in.jsonl", "--out"],
    "eval": ["eval", "--system", "draft", "--system", "reference", "--out"],
    "run": ["run", "--out"],
}
FOLDER_OUTPUTS = {"data split", "train", "eval", "run"}  # these take a folder: an existing one is fine


@pytest.mark.parametrize("kind", ["parent is a file", "a directory", "empty", "unwritable"])
@pytest.mark.parametrize("command", list(OUTPUT_FLAG))
def test_unwritable_output_is_one_error_line(cli, tmp_path, monkeypatch, command, kind):
    if kind == "a directory" and command in FOLDER_OUTPUTS:
        pytest.skip("an existing folder is a valid output for this command")
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "t1", "draft": "Hi there.", "reference": "Hi."}) + "\n")
    (tmp_path / "pairs.jsonl").write_text(
        json.dumps({"id": "p", "response_a": "Yes, it is.", "response_b": "No, it isn't."}) + "\n"
    )
    (tmp_path / "chat.jsonl").write_text(json.dumps({"messages": [{"role": "assistant", "content": "Hi."}]}) + "\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    target = {"parent is a file": "afile/out", "a directory": "adir", "empty": "", "unwritable": "denied/out"}[kind]
    if kind == "unwritable":  # root may write anywhere: refuse the creation of files as a read-only disk would
        real_open, real_mkdir = os.open, os.mkdir

        def refusing_open(path, *args, **kwargs):
            if "denied" in str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        def refusing_mkdir(path, *args, **kwargs):
            if "denied" in str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
        monkeypatch.setattr(os, "mkdir", refusing_mkdir)
    code, _, err = cli(*OUTPUT_FLAG[command], target)
    assert code == 2, err
    message = _one_error_line(err)
    assert ("empty path" in message) if kind == "empty" else (target.split("/")[0] in message)


def test_atomic_write_errors_name_the_path_and_reason(tmp_path, monkeypatch):
    with pytest.raises(VoicetuneError, match="empty path"):
        atomic_write_text("", "x")
    with pytest.raises(VoicetuneError, match=r"adir: is a directory"):
        (tmp_path / "adir").mkdir()
        atomic_write_text(tmp_path / "adir", "x")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(VoicetuneError, match=r"afile/sub/out\.jsonl: cannot write \(.*afile is a file, not a folder\)"):
        atomic_write_text(tmp_path / "afile" / "sub" / "out.jsonl", "x")

    def refusing_open(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(VoicetuneError, match=r"out\.jsonl: cannot write \(Permission denied\)"):
        atomic_write_text(tmp_path / "out.jsonl", "x")


# 8 ---------------------------------------------------------------------------------------------------------
def test_lone_surrogate_in_a_record_names_file_line_and_field(tmp_path, cli):
    path = tmp_path / "in.jsonl"
    path.write_text(
        TURN + "\n" + '{"id": "t2", "history": [{"role": "user", "text": "hi \\ud800"}], "draft": "Hello."}\n'
    )
    with pytest.raises(VoicetuneError, match=r"in\.jsonl:2: field 'history\.0\.text': not valid Unicode text"):
        load_records(path)
    code, _, err = cli("score", "--input", path, "--output", "out.jsonl", "--field", "draft")
    assert code == 2 and "in.jsonl:2: field 'history.0.text'" in _one_error_line(err)
    # a well-formed pair of surrogate escapes is just an emoji
    path.write_text('{"id": "t3", "draft": "Great \\ud83d\\ude00"}\n')
    assert load_records(path)[0].draft == "Great \U0001f600"


@pytest.mark.parametrize(
    "format, content, where",
    [
        (
            "openai-chat",
            '{"messages": [{"role": "user", "content": "ok"}]}\n{"messages": [{"role": "assistant", "content": '
            '"x\\udc00"}]}\n',
            ":2: field 'messages.0.content'",
        ),
        (
            "tau-bench",
            '[{"task_id": 1,\n "traj": [{"role": "assistant", "content": "\\ud800 hi"}]}]',
            ":2: field '0.traj.0.content'",
        ),
        ("tau-bench-fewshot", '{"messages_display": "assistant: \\ud800"}\n', ":1: field 'messages_display'"),
    ],
)
def test_lone_surrogate_in_an_importer_input_names_file_line_and_field(tmp_path, format, content, where):
    path = tmp_path / "input.json"
    path.write_text(content)
    message = _import_error(path, format)
    assert f"{path}{where}: not valid Unicode text" in message


# 9 ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["draft", "response", "both"])
def test_number_with_more_than_4300_digits_does_not_crash_the_scorer(where):
    from voicetune.quality import score_response

    huge = "9" * 5000
    draft = f"Your balance is ${huge}.50 and the code is {huge}." if where in ("draft", "both") else "Your fee is $75."
    response = (
        f"It's {huge} dollars, and {huge}.5 more." if where in ("response", "both") else "It's seventy-five dollars."
    )
    result = score_response(Turn(id="t", draft=draft), response)
    assert 0.0 <= result.voice_score <= 1.0


# 10 --------------------------------------------------------------------------------------------------------
class _FixedReplyServer:
    """A local HTTP server that answers every POST with ``body`` (bytes), optionally one byte per ``drip``
    seconds; bounded: it stops writing once the client hangs up or after ``limit_s``."""

    def __init__(self, body: bytes, drip: float = 0.0, limit_s: float = 10.0):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not drip:
                    self.wfile.write(body)
                    return
                started = time.monotonic()
                for index in range(len(body)):
                    if time.monotonic() - started > limit_s:
                        return
                    try:
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up
                    time.sleep(drip)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    "reply",
    [
        "[]",
        '{"choices": null}',
        '{"choices": []}',
        '{"choices": [{"message": {"content": 5}}]}',
        '{"choices": [{"message": null}]}',
        '{"id": 1}',
    ],
)
def test_endpoint_reply_that_is_not_a_chat_completion_names_the_url(reply):
    server = _FixedReplyServer(reply.encode())
    try:
        with pytest.raises(VoicetuneError) as error:
            HTTPBackend(server.url, "m", retries=0, timeout=5).complete(
                [{"role": "user", "content": "hi"}], SamplingConfig(), 0
            )
        message = str(error.value)
        assert message.startswith(server.url) and "not an OpenAI-compatible chat completion" in message
    finally:
        server.close()


# 11 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "endpoint", ["foo", "127.0.0.1:8000/v1", "ftp://host/v1", "http://", "http://host:notaport/v1"]
)
def test_endpoint_without_scheme_or_host_is_refused_at_construction(endpoint):
    with pytest.raises(VoicetuneError) as error:
        HTTPBackend(endpoint, "m")
    assert endpoint in str(error.value) and "http://" in str(error.value)


@pytest.mark.parametrize(
    "flags",
    [
        [
            "eval",
            "--system",
            "draft",
            "--system",
            "reference",
            "--judge",
            "llm",
            "--judge-endpoint",
            "foo",
            "--judge-model",
            "m",
        ],
        ["generate", "--input", "in.jsonl", "--output", "out.jsonl", "--endpoint", "foo", "--api-model", "m"],
    ],
)
def test_endpoint_flag_without_scheme_is_one_error_line(cli, tmp_path, flags):
    (tmp_path / "in.jsonl").write_text(TURN + "\n")
    code, _, err = cli(*flags, "--out" if flags[0] == "eval" else "--seed", "run" if flags[0] == "eval" else "0")
    assert code == 2 and "'foo'" in _one_error_line(err)


# 12 --------------------------------------------------------------------------------------------------------
def test_eval_concurrency_zero_is_rejected_at_the_flag(cli):
    code, _, err = cli("eval", "--system", "draft", "--system", "reference", "--concurrency", "0", "--out", "run")
    assert code == 2 and "--concurrency" in _one_error_line(err)


# 13 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["-1", "0"])
def test_eval_limit_below_one_is_rejected(cli, limit):
    code, _, err = cli("eval", "--system", "draft", "--system", "reference", "--limit", limit, "--out", "run")
    assert code == 2 and "--limit" in _one_error_line(err)


# 14 --------------------------------------------------------------------------------------------------------
DUPLICATES = (
    "\n".join(
        [
            json.dumps(
                {
                    "id": "x",
                    "draft": "Your fee is $75.",
                    "response": "Seventy-five dollars.",
                    "reference": "It's seventy-five dollars.",
                }
            ),
            json.dumps({"id": "y", "draft": "Hello there.", "response": "Hi.", "reference": "Hi there."}),
            json.dumps(
                {
                    "id": "x",
                    "draft": "Your flight leaves at 6 AM.",
                    "response": "At six.",
                    "reference": "It leaves at six.",
                }
            ),
        ]
    )
    + "\n"
)


def test_duplicate_ids_are_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "turns.jsonl"
    path.write_text(DUPLICATES)
    assert [t.id for t in load_records(path)] == ["x", "y", "x"]  # plain reading keeps every line
    with pytest.raises(VoicetuneError, match=r"turns\.jsonl:3: id 'x' on line 3 is already on line 1"):
        load_records(path, unique_ids=True)
    skipped: list[str] = []
    assert [t.id for t in load_records(path, skip_invalid=True, skipped=skipped, unique_ids=True)] == ["x", "y"]
    assert skipped == [f"{path}:3: id 'x' on line 3 is already on line 1"]


@pytest.mark.parametrize("command", ["score", "eval", "generate"])
def test_duplicate_ids_stop_every_command_that_pairs_by_id(cli, tmp_path, command):
    (tmp_path / "turns.jsonl").write_text(DUPLICATES)
    args = {
        "score": ["score", "--input", "turns.jsonl", "--output", "out.jsonl"],
        "eval": ["eval", "--system", "draft", "--system", "reference", "--data", "turns.jsonl", "--out", "run"],
        "generate": [
            "generate",
            "--input",
            "turns.jsonl",
            "--output",
            "out.jsonl",
            "--endpoint",
            "http://127.0.0.1:9/v1",
            "--api-model",
            "m",
        ],
    }[command]
    code, _, err = cli(*args)
    assert code == 2 and "turns.jsonl:3: id 'x' on line 3 is already on line 1" in _one_error_line(err)


# 15 --------------------------------------------------------------------------------------------------------
def test_importers_make_duplicate_conversation_ids_unique(tmp_path):
    trajectory = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    tau = tmp_path / "airline.json"
    tau.write_text(
        json.dumps([{"task_id": 3, "trial": 0, "traj": trajectory}, {"task_id": 3, "trial": 0, "traj": trajectory}])
    )
    turns = import_transcripts(tau, "tau-bench")
    assert [t.id for t in turns] == ["tau-airline-3-0-t00", "tau-airline-3-0-2-t00"]
    assert {t.meta["task_id"] for t in turns} == {"airline-3"}  # still one task for the split

    chat = tmp_path / "chats.jsonl"
    line = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
    chat.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {**line, "id": "a"},
                {**line, "id": "a"},
                line,
                {**line, "id": "chats-00003"},
                {**line, "id": "a-2"},
            ]
        )
        + "\n"
    )
    turns = import_transcripts(chat, "openai-chat")
    assert [t.meta["conversation_id"] for t in turns] == ["a", "a-2", "chats-00003", "chats-00003-2", "a-2-2"]
    assert len({t.id for t in turns}) == len(turns)


# 16 --------------------------------------------------------------------------------------------------------
SEPARATORS = "one\u2028two\u2029three\u0085four"


def test_line_separators_round_trip_and_are_written_escaped(tmp_path, cli):
    path = write_records(tmp_path / "t.jsonl", [Turn(id="a", draft=SEPARATORS), Turn(id="b", draft="plain")])
    raw = path.read_text(encoding="utf-8")
    assert not any(c in raw for c in "\u2028\u2029\u0085") and "\\u2028" in raw
    assert [t.draft for t in load_records(path)] == [SEPARATORS, "plain"]
    # a file another tool wrote with them raw inside strings reads too, and a command's output feeds the next
    (tmp_path / "raw.jsonl").write_text(
        json.dumps({"id": "a", "draft": SEPARATORS}, ensure_ascii=False) + "\r\n", encoding="utf-8"
    )
    assert load_records(tmp_path / "raw.jsonl")[0].draft == SEPARATORS
    chat = {
        "messages": [
            {"role": "user", "content": "Hi\u2028there"},
            {"role": "assistant", "content": "Your fee\u2029is $75.\u0085Okay?"},
        ]
    }
    (tmp_path / "chat.jsonl").write_text(json.dumps(chat, ensure_ascii=False) + "\n", encoding="utf-8")
    assert cli("data", "import", "chat.jsonl", "--format", "openai-chat", "--out", "turns.jsonl")[0] == 0
    code, _, err = cli("score", "--input", "turns.jsonl", "--output", "scored.jsonl", "--field", "draft")
    assert code == 0, err
    assert load_records(tmp_path / "scored.jsonl")[0].draft == "Your fee\u2029is $75.\u0085Okay?"


# 17 --------------------------------------------------------------------------------------------------------
def test_non_finite_numbers_are_written_as_null_and_rejected_when_read(tmp_path):
    text = dumps({"p_value": float("nan"), "ci": [float("inf"), -math.inf, 0.5], "n": 3})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"wrote {name}")) == {
        "p_value": None,
        "ci": [None, None, 0.5],
        "n": 3,
    }
    for token in ("NaN", "Infinity", "-Infinity"):
        path = tmp_path / "t.jsonl"
        path.write_text(TURN + "\n" + '{"id": "b", "scores": {"clarity": ' + token + "}}\n")
        with pytest.raises(VoicetuneError, match=rf"t\.jsonl:2: malformed JSON \({token} is not valid JSON"):
            load_records(path)


# 18 --------------------------------------------------------------------------------------------------------
def test_score_record_without_the_field_names_file_and_line_and_is_skippable(cli, tmp_path):
    (tmp_path / "in.jsonl").write_text(
        json.dumps({"id": "a", "draft": "Hello there."}) + "\n" + json.dumps({"id": "b", "response": "Hi."}) + "\n"
    )
    code, _, err = cli("score", "--input", "in.jsonl", "--output", "out.jsonl", "--field", "draft")
    assert code == 2
    assert "in.jsonl:2: missing field 'draft'" in _one_error_line(err) and "'b'" in err
    code, _, err = cli("score", "--input", "in.jsonl", "--output", "out.jsonl", "--field", "draft", "--skip-invalid")
    assert code == 0, err
    assert "skipped 1 invalid line" in err and "in.jsonl:2: missing field 'draft'" in err
    assert [t.id for t in load_records(tmp_path / "out.jsonl")] == ["a"]


# 19 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (["score", "--bogus"], "No such option: --bogus (see 'voicetune score --help')"),
        (["score", "--output", "out.jsonl"], "Missing option '--input'"),
        (["data", "split", "in.jsonl", "--seed", "abc"], "'--seed'"),
        (["frobnicate"], "frobnicate"),
    ],
    ids=["unknown option", "missing option", "bad value", "unknown command"],
)
def test_usage_errors_are_one_line(run_cli, tmp_path, args, expected):
    result = run_cli(*args, cwd=tmp_path)  # the real entry point, in a subprocess
    assert result.returncode == 2
    assert expected in _one_error_line(result.stderr)


def test_help_and_version_still_exit_0(cli):
    code, out, _ = cli("score", "--help")
    assert code == 0 and "Usage" in out
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("voicetune ")


# 20 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_timeout_not_positive_is_rejected_at_the_flag(cli, timeout):
    code, _, err = cli("eval", "--system", "draft", "--system", "reference", "--timeout", timeout, "--out", "run")
    assert code == 2 and "--timeout" in _one_error_line(err)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_http_backend_refuses_a_timeout_that_is_not_positive(timeout):
    with pytest.raises(VoicetuneError, match="timeout must be a positive number"):
        HTTPBackend("http://127.0.0.1:9/v1", "m", timeout=timeout)


# 21 --------------------------------------------------------------------------------------------------------
def test_timeout_is_a_deadline_for_the_whole_request():
    reply = json.dumps({"choices": [{"message": {"content": "x" * 100}}]}).encode()
    server = _FixedReplyServer(reply, drip=0.05, limit_s=15)  # a byte every 50 ms: about 7 s for the reply
    try:
        backend = HTTPBackend(server.url, "m", retries=0, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(VoicetuneError, match=r"unreachable or too slow \(no complete reply within 1 s\)") as error:
            backend.complete([{"role": "user", "content": "hi"}], SamplingConfig(), 0)
        elapsed = time.monotonic() - started
        assert str(error.value).startswith(server.url)
        assert elapsed < 2.5, f"a 1 s timeout held the request {elapsed:.1f} s"
    finally:
        server.close()


# 22 --------------------------------------------------------------------------------------------------------
def test_leftover_temporary_files_of_dead_writers_are_removed(tmp_path, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is no longer running
    target = tmp_path / "out.jsonl"
    stale = tmp_path / f".out.jsonl.{dead.pid}.0123abcd.tmp"
    live = tmp_path / f".out.jsonl.{os.getppid()}.89abcdef.tmp"  # a running writer's file: kept
    other = tmp_path / f".other.jsonl.{dead.pid}.0123abcd.tmp"  # another target's: not ours to remove
    for path in (stale, live, other):
        path.write_text("half a fi")
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(Path(src).name), real_replace(src, dst)))
    atomic_write_text(target, "whole\n")
    assert target.read_text() == "whole\n"
    assert not stale.exists() and live.exists() and other.exists()
    assert seen and seen[0].startswith(f".out.jsonl.{os.getpid()}.") and seen[0].endswith(".tmp")


# 23 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_created_files_get_the_usual_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_records(tmp_path / "out.jsonl", [Turn(id="a")])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    path.chmod(0o640)  # replacing a file keeps the mode it was given
    write_records(path, [Turn(id="b")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# Found by the property suite (tests/test_properties.py) ---------------------------------------------------
@pytest.mark.parametrize("content", [b"\x1c\n", "\u2028\n\u00a0".encode()], ids=["separator control", "unicode spaces"])
def test_file_of_unicode_white_space_is_empty_not_a_crash(cli, tmp_path, content):
    (tmp_path / "in.jsonl").write_bytes(content)
    code, _, err = cli("score", "--input", "in.jsonl", "--output", "out.jsonl")
    assert code == 2 and "empty" in _one_error_line(err)


def test_score_with_every_line_skipped_is_one_error_line(cli, tmp_path):
    (tmp_path / "in.jsonl").write_text("{}\n{not json\n")
    code, _, err = cli("score", "--input", "in.jsonl", "--output", "out.jsonl", "--skip-invalid")
    assert code == 2 and "no record to score, all 2 lines are invalid" in _one_error_line(err)
    assert not (tmp_path / "out.jsonl").exists()


def test_data_import_of_a_file_without_agent_text_is_one_error_line(cli, tmp_path):
    (tmp_path / "calls.csv").write_text("conversation_id,role,text\nc1,user,Hello?\n")
    code, _, err = cli("data", "import", "calls.csv", "--format", "csv", "--out", "turns.jsonl")
    assert code == 2 and "no agent text message" in _one_error_line(err)
    assert not (tmp_path / "turns.jsonl").exists()


# 15: sampling seeds (issue 24): -1 would mean "random" to llama.cpp and 2**32 would wrap; both are refused ----
@pytest.mark.parametrize("seed", ["-1", str(2**32), "100000000000000000000"])
@pytest.mark.parametrize("command", ["eval", "generate"])
def test_sampling_seed_out_of_range_is_one_error_line(cli, command, seed):
    flags = (
        ["eval", "--system", "draft", "--system", "reference", "--out", "run"]
        if command == "eval"
        else ["generate", "--input", "in.jsonl", "--output", "out.jsonl"]
    )
    code, _, err = cli(*flags, "--seed", seed)
    assert code == 2 and "--seed" in _one_error_line(err)


def test_sampling_config_refuses_seeds_it_could_not_honour():
    from voicetune.errors import VoicetuneError
    from voicetune.models.generate import MAX_SEED, SamplingConfig, request_seed

    for bad in (-1, MAX_SEED + 1, 1.5, True):
        with pytest.raises(VoicetuneError, match="seed"):
            SamplingConfig(seed=bad)
    assert SamplingConfig(seed=MAX_SEED).seed == MAX_SEED
    # a server request never carries llama.cpp's "random" seed, even at the top of the range
    assert all(0 <= request_seed(MAX_SEED, i) < 0xFFFFFFFF for i in range(3))


# 16: a symbolic link loop on the way to an output is named, not "File exists" (issue 24) ---------------------
def test_a_symlink_loop_on_the_way_to_an_output_is_named(tmp_path):
    from voicetune.errors import VoicetuneError
    from voicetune.records import atomic_write_text, ensure_dir

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for write in (
        lambda: ensure_dir(tmp_path / "a" / "x"),
        lambda: atomic_write_text(tmp_path / "a" / "x" / "y.txt", "hi"),
    ):
        with pytest.raises(VoicetuneError, match="symbolic link loop"):
            write()


# 17: configs and outputs a hostile user would try (issue 24, a second battery) -------------------------------
@pytest.mark.parametrize(
    "text, says",
    [
        ("data: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
        ('review: {reviewers: ["x\\ud800"]}\n', "review.reviewers.0"),
        ("threads: 99999999999999999999\n", "threads"),
    ],
)
@pytest.mark.parametrize("command", ["run", "simulate"])
def test_a_config_that_would_crash_later_is_one_line_now(cli, tmp_path, text, says, command):
    (tmp_path / "c.yaml").write_text(text)
    args = ["run", "c.yaml", "--out", "r"] if command == "run" else ["simulate", "--config", "c.yaml", "--out", "r"]
    code, _, err = cli(*args)
    assert code == 2 and says in _one_error_line(err)
    assert not (tmp_path / "r").exists()


def test_a_folder_or_a_pipe_as_the_config_is_named_for_what_it_is(cli, tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "folder.yaml").mkdir()
    for name, says in (("pipe.yaml", "not a regular file"), ("folder.yaml", "a folder")):
        code, _, err = cli("run", name, "--out", "r")
        assert code == 2 and says in _one_error_line(err)


def test_an_atomic_write_never_replaces_a_device_or_a_pipe(tmp_path):
    import os
    import stat

    from voicetune.errors import VoicetuneError
    from voicetune.records import atomic_write_text

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(VoicetuneError, match="not a regular file"):
        atomic_write_text(tmp_path / "pipe", "hi")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_a_setting_of_infinity_or_nan_fails_at_validation(cli, tmp_path, value):
    (tmp_path / "c.yaml").write_text(f"train: {{sft: {{epochs: {value}}}}}\n")
    code, _, err = cli("run", "c.yaml", "--out", "r")
    assert code == 2 and "train.sft.epochs" in _one_error_line(err) and not (tmp_path / "r").exists()
