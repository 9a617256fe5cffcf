"""Property-based tests (hypothesis) of the input contract: records round-trip whatever their text; importers
either import or raise a VoicetuneError, never another exception, and lose no agent message; the CLI on any
file gives exit 0, or exit 2 with exactly one ``error: `` line, never a traceback.

Examples per run: the sum of the ``max_examples`` below, ``EXAMPLES_PER_RUN`` (printed at the end of the
module with ``pytest -s``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voicetune import import_transcripts
from voicetune.errors import VoicetuneError
from voicetune.records import Message, Turn, load_records, write_records

FORMATS = ("csv", "openai-chat", "tau-bench", "tau-bench-fewshot")
ROUND_TRIP, ANY_BYTES, VALID, CLI_SCORE, CLI_IMPORT = 120, 50, 40, 60, 30
EXAMPLES_PER_RUN = ROUND_TRIP + ANY_BYTES * len(FORMATS) + VALID * 3 + CLI_SCORE + CLI_IMPORT * len(FORMATS)


def _settings(examples: int):
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )


@pytest.fixture(scope="module", autouse=True)
def _report_examples():
    yield
    print(f"\ntest_properties: {EXAMPLES_PER_RUN} hypothesis examples per run")


# Text: any Unicode scalar value (no lone surrogates: they are not text), with the characters that broke
# line-based readers (U+2028, U+2029, U+0085, CR) and emoji made likely.
_CHARS = st.one_of(
    st.characters(blacklist_categories=("Cs",)), st.sampled_from(list("\u2028\u2029\u0085\r\n\t\x00\x1e😀é$0123456789"))
)
TEXT = st.text(_CHARS, max_size=40)
HUGE_NUMBER = st.text("0123456789", min_size=4301, max_size=4400)  # past int()'s 4,300-digit limit
FIELD_TEXT = st.one_of(TEXT, HUGE_NUMBER)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(10**40), 10**40), FINITE, TEXT)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)

TURNS = st.builds(
    Turn,
    id=TEXT,
    domain=TEXT,
    system=st.none() | FIELD_TEXT,
    history=st.lists(st.builds(Message, role=st.sampled_from(["user", "agent"]), text=FIELD_TEXT), max_size=3),
    draft=st.none() | FIELD_TEXT,
    facts=st.none() | st.lists(TEXT, max_size=3),
    reference=st.none() | FIELD_TEXT,
    response=st.none() | FIELD_TEXT,
    scores=st.none() | st.dictionaries(TEXT, FINITE, max_size=3),
    reasons=st.none() | st.lists(TEXT, max_size=2),
    meta=st.dictionaries(TEXT, JSON_VALUE, max_size=3),
)


@_settings(ROUND_TRIP)
@given(turns=st.lists(TURNS, min_size=1, max_size=4))  # an empty file is a user error by design
def test_any_turns_round_trip_through_jsonl(turns):
    with tempfile.TemporaryDirectory() as folder:
        path = write_records(Path(folder) / "t.jsonl", turns)
        raw = path.read_text(encoding="utf-8")
        assert len(raw.splitlines()) == len(turns)  # even a reader that splits on U+2028 sees one line a record
        assert load_records(path) == turns


# ---------------------------------------------------------------------------------------------------------
# Importers on anything: an import, or a VoicetuneError


def _structured(format: str):
    """Inputs shaped like the format (so that the importer gets past the first check), often wrong inside."""
    message = st.fixed_dictionaries(
        {"role": st.one_of(st.sampled_from(["user", "assistant", "tool", "system", "robot"]), JSON_LEAF)},
        optional={"content": st.one_of(TEXT, JSON_VALUE)},
    )
    if format == "csv":
        cells = st.one_of(st.sampled_from(["c1", "user", "agent", "tool", "1", "nan", '"', '""', "", ",", "\n"]), TEXT)
        rows = st.lists(st.lists(cells, max_size=5), max_size=6)
        header = st.sampled_from(["conversation_id,role,text", "conversation_id,role,text,turn", "role,text"])
        return st.builds(lambda h, r: h + "\n" + "\n".join(",".join(row) for row in r), header, rows)
    if format == "openai-chat":
        line = st.one_of(
            st.fixed_dictionaries(
                {"messages": st.lists(message, max_size=4)}, optional={"id": JSON_LEAF, "domain": JSON_LEAF}
            ),
            JSON_VALUE,
        )
        return st.lists(line.map(json.dumps), max_size=4).map("\n".join)
    if format == "tau-bench":
        item = st.fixed_dictionaries(
            {"traj": st.one_of(st.lists(message, max_size=4), JSON_VALUE)},
            optional={"task_id": JSON_LEAF, "trial": JSON_LEAF},
        )
        return st.one_of(st.lists(item, max_size=3), JSON_VALUE).map(json.dumps)
    line = st.fixed_dictionaries(
        {
            "messages_display": st.one_of(
                TEXT,
                st.lists(
                    st.sampled_from(["user: hi", "assistant: None", "assistant: ok", "tool: {}", "more"]), max_size=5
                ).map("\n".join),
                JSON_LEAF,
            )
        }
    )
    return st.lists(line.map(json.dumps), max_size=3).map("\n".join)


def _import_or_user_error(path: Path, format: str):
    try:
        return import_transcripts(path, format)
    except VoicetuneError as error:
        assert len(str(error).splitlines()) == 1
        return None


@pytest.mark.parametrize("format", FORMATS)
def test_any_bytes_import_or_raise_a_user_error(format):
    @_settings(ANY_BYTES)
    @given(
        data=st.one_of(
            st.binary(max_size=200), _structured(format).map(lambda text: text.encode("utf-8", "surrogatepass"))
        )
    )
    def check(data):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "input.data"
            path.write_bytes(data)
            turns = _import_or_user_error(path, format)
            if turns is not None:
                assert len({t.id for t in turns}) == len(turns)

    check()


# ---------------------------------------------------------------------------------------------------------
# Valid conversations: every agent text message becomes one turn, with unique ids

SPOKEN = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
CONVERSATION = st.lists(
    st.tuples(st.sampled_from(["user", "assistant", "tool", "system"]), SPOKEN), min_size=1, max_size=6
)
CONVERSATIONS = st.lists(st.tuples(st.sampled_from(["a", "b", "7", "x-2"]), CONVERSATION), min_size=1, max_size=4)


def _agent_texts(conversations) -> int:
    return sum(1 for _, messages in conversations for role, text in messages if role == "assistant" and text.strip())


def _write(format: str, conversations, path: Path) -> None:
    if format == "openai-chat":
        lines = [
            json.dumps({"id": cid, "messages": [{"role": r, "content": t} for r, t in messages]})
            for cid, messages in conversations
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif format == "tau-bench":
        items = [
            {"task_id": cid, "trial": 0, "traj": [{"role": r, "content": t} for r, t in messages]}
            for cid, messages in conversations
        ]
        path.write_text(json.dumps(items), encoding="utf-8")
    else:  # csv: one conversation per id, so rows of a repeated id form one longer conversation
        buffer = io.StringIO()
        writer = csv.writer(buffer)  # "\r\n" line ends, as spreadsheets write: a CR or LF in a text gets quoted
        writer.writerow(["conversation_id", "role", "text"])
        for cid, messages in conversations:
            writer.writerows([cid, role, text] for role, text in messages)
        path.write_text(buffer.getvalue(), encoding="utf-8")


def _reads_as_a_row(text: str) -> bool:
    """A line of the text that is itself a CSV row with a role: the importer takes that for a quote left open."""
    from voicetune.data.formats.csv_transcripts import ROLES

    rows = [
        next(csv.reader([line]), []) for line in text.splitlines()[1:]
    ]  # every line break, "\r" too (csv refuses a bare one)
    return any(len(row) == 3 and row[1].strip().lower() in ROLES for row in rows)


@pytest.mark.parametrize("format", ["csv", "openai-chat", "tau-bench"])
def test_valid_conversations_import_every_agent_message_with_unique_ids(format):
    @_settings(VALID)
    @given(conversations=CONVERSATIONS)
    def check(conversations):
        if format == "csv" and any(_reads_as_a_row(text) for _, messages in conversations for _, text in messages):
            return  # documented: a quoted text holding a whole CSV row of its own reads as an unclosed quote
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "input.data"
            _write(format, conversations, path)
            if not path.read_text(encoding="utf-8").strip():
                return
            turns = import_transcripts(path, format)
            assert len({t.id for t in turns}) == len(turns)
            assert len(turns) == _agent_texts(conversations)

    check()


# ---------------------------------------------------------------------------------------------------------
# The CLI on any file: exit 0, or exit 2 with one error line


def _run_cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    from voicetune import cli

    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(args)
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def _assert_contract(code: int, err: str) -> None:
    assert "Traceback" not in err
    if code != 0:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)


TURN_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["t1", "t2"]), JSON_LEAF),
        "draft": st.one_of(TEXT, JSON_LEAF),
        "response": st.one_of(TEXT, JSON_LEAF),
        "history": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "agent", "robot"]), "text": st.one_of(TEXT, JSON_LEAF)}
                ),
                max_size=2,
            ),
            JSON_VALUE,
        ),
        "facts": st.one_of(st.lists(TEXT, max_size=2), JSON_LEAF),
        "meta": JSON_VALUE,
    },
)
JSONL = st.lists(
    st.one_of(
        TURN_LIKE.map(json.dumps),
        TEXT,
        st.sampled_from(["NaN", '{"id": "t9", "draft": NaN}', '{"id": "\\ud800"}', "[]"]),
    ),
    max_size=5,
).map("\n".join)


@_settings(CLI_SCORE)
@given(
    content=st.one_of(JSONL.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=100)),
    field=st.sampled_from(["draft", "response"]),
    skip=st.booleans(),
)
@example(content=b"\x1c", field="draft", skip=False)  # found here: white space to str.strip, not to bytes.strip
@example(content=b"{}", field="draft", skip=True)  # found here: every line skipped left nothing to summarise
def test_score_on_any_file_is_exit_0_or_one_error_line(content, field, skip):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "in.jsonl").write_bytes(content)
        args = ["score", "--input", "in.jsonl", "--output", "out.jsonl", "--field", field] + (
            ["--skip-invalid"] if skip else []
        )
        code, _, err = _run_cli(args, Path(folder))
        _assert_contract(code, err)
        if code == 0:
            load_records(Path(folder) / "out.jsonl", unique_ids=True)  # its own output reads back


@pytest.mark.parametrize("format", FORMATS)
def test_data_import_on_any_file_is_exit_0_or_one_error_line(format):
    @_settings(CLI_IMPORT)
    @given(
        content=st.one_of(
            _structured(format).map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=100)
        )
    )
    def check(content):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "input.data").write_bytes(content)
            code, _, err = _run_cli(
                ["data", "import", "input.data", "--format", format, "--out", "turns.jsonl"], Path(folder)
            )
            _assert_contract(code, err)
            if code == 0:
                load_records(Path(folder) / "turns.jsonl", unique_ids=True)

    check()
