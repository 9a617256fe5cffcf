"""``voicetune data facts``: must-convey facts from a teacher model, against a fake OpenAI-compatible server on
127.0.0.1 (counting its requests) and the real llama.cpp server of the embedded model."""

from __future__ import annotations

import re

import pytest

from fake_openai import FakeChatServer, chat_reply
from voicetune.data.teacher_facts import FactsStats, parse_facts_answer, teacher_facts
from voicetune.errors import VoicetuneError
from voicetune.models.prompts import FACTS_PROMPT, build_facts_messages
from voicetune.records import Message, Turn, load_records, write_records

FEE = Turn(
    id="fee",
    domain="airline",
    history=[Message(role="user", text="How much is a checked bag? My booking is ABC123.")],
    draft="Your **checked bag fee** is $45.00 for booking ABC123, and flight UA 123 leaves at 6:00 AM. Card "
    "credit_card_123 is on file.",
)
BYE = Turn(
    id="bye", history=[Message(role="user", text="Thanks, that's all.")], draft="You're welcome! Have a great day."
)
CURATED = Turn(id="curated", draft="Your refund of $120.50 arrives in 5 days.", facts=["$120.50"])
NO_DRAFT = Turn(id="nodraft", history=[Message(role="user", text="Hello?")])

# What the fake teacher answers, by a word of the draft: bullets, numbering, quotes, a case change, a
# repeat, an internal id, and "$99.00", which the draft does not contain.
ANSWERS = {
    "checked bag": '- $45.00\n2. Flight ua 123\n"6:00 AM"\n* $99.00\n$45.00\ncredit_card_123',
    "welcome": "NONE",
    "refund": "1. $120.50\n2. 5 days",
}


class _Teacher(FakeChatServer):
    """A chat-completions server answering from ``ANSWERS`` (by the draft in the prompt); counts requests."""

    def __init__(self, reply=None):
        def answer(body: dict):
            text = next((answer for word, answer in ANSWERS.items() if word in body["messages"][-1]["content"]), "NONE")
            return 200, reply if reply is not None else chat_reply(text)

        super().__init__(answer)

    @property
    def prompts(self) -> list[list[dict]]:
        return [body["messages"] for body in self.bodies]


@pytest.fixture
def teacher():
    started = _Teacher()
    yield started
    started.close()


def _in_draft(fact: str, draft: str) -> bool:
    """A fact is a span of the draft: ignoring case, white space and markdown emphasis."""

    def norm(text: str) -> str:
        return " ".join(re.sub(r"\*\*|__|`", "", text).split()).casefold()

    return norm(fact) in norm(draft)


def test_only_facts_in_the_draft_are_kept_and_none_gives_no_facts(teacher, tmp_path):
    stats = FactsStats()
    result = teacher_facts(
        [FEE, BYE, CURATED, NO_DRAFT],
        teacher.url,
        "teach",
        cache_path=tmp_path / "c.sqlite",
        progress=False,
        stats=stats,
    )
    by_id = {t.id: t for t in result}
    assert by_id["fee"].facts == ["$45.00", "flight UA 123", "6:00 AM"]  # as the draft writes them, once each
    assert by_id["bye"].facts == []
    assert by_id["curated"] == CURATED and by_id["nodraft"] == NO_DRAFT  # left alone, not asked about
    assert by_id["fee"].meta["facts_source"] == {"teacher": "teach", "endpoint": teacher.url}
    assert teacher.calls == 2
    assert (stats.updated, stats.none, stats.kept, stats.dropped, stats.ids_dropped, stats.curated, stats.no_draft) == (
        2,
        1,
        3,
        1,
        1,
        1,
        1,
    )
    assert stats.dropped_examples == ["$99.00"]
    assert [m["role"] for m in teacher.prompts[0]] == ["system", "user"] and teacher.prompts[0][0][
        "content"
    ] == FACTS_PROMPT


def test_curated_facts_are_replaced_only_with_overwrite(teacher, tmp_path):
    [kept] = teacher_facts([CURATED], teacher.url, "teach", cache_path=tmp_path / "c.sqlite", progress=False)
    assert kept.facts == ["$120.50"] and "facts_source" not in kept.meta and teacher.calls == 0
    [replaced] = teacher_facts(
        [CURATED], teacher.url, "teach", cache_path=tmp_path / "c.sqlite", progress=False, overwrite=True
    )
    assert replaced.facts == ["$120.50", "5 days"] and teacher.calls == 1


def test_a_second_run_answers_from_the_cache(teacher, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = teacher_facts([FEE, BYE], teacher.url, "teach", cache_path=cache, progress=False)
    assert teacher.calls == 2
    stats = FactsStats()
    second = teacher_facts([FEE, BYE], teacher.url, "teach", cache_path=cache, progress=False, stats=stats)
    assert second == first and teacher.calls == 2 and (stats.requests, stats.cached) == (0, 2)
    teacher_facts([FEE], teacher.url, "another-model", cache_path=cache, progress=False)  # another teacher: asked
    assert teacher.calls == 3


def test_parsing_is_tolerant_and_invents_nothing():
    draft = "Your flight leaves at 6:00 a.m. from Gate B12; the fee is $45.00. Details: https://example.com/x"
    answer = (
        "<think>The caller needs $45.00 and more.</think>\nHere are the facts:\n```\n1) gate "
        'b12.\n**$45.00**\n```\n"6:00 a.m."\nhttps://example.com/x\n$5; Gate B1'
    )
    parsed = parse_facts_answer(answer, draft)
    assert parsed.facts == ["Gate B12", "$45.00", "6:00 a.m."]  # "Gate B1" is no whole span of "Gate B12"
    assert parsed.dropped == ["$5; Gate B1"] and parsed.ids_dropped == ["https://example.com/x"]
    assert parse_facts_answer("None.", draft).none and parse_facts_answer("nothing new", draft).facts == []
    junk = parse_facts_answer("The caller should hear about the weather.", draft)
    assert not junk.usable and junk.dropped == ["The caller should hear about the weather"]


def test_an_answer_without_a_span_of_the_draft_leaves_the_turn_as_it_was(tmp_path):
    ANSWERS["cloudy"] = "sunny skies"
    server = _Teacher()
    try:
        turn = Turn(id="w", draft="It is cloudy today.")
        stats = FactsStats()
        assert teacher_facts(
            [turn], server.url, "teach", cache_path=tmp_path / "c.sqlite", progress=False, stats=stats
        ) == [turn]
        assert stats.unusable == 1 and stats.dropped == 1
    finally:
        del ANSWERS["cloudy"]
        server.close()


def test_a_reply_that_is_not_a_chat_completion_names_the_url(tmp_path):
    server = _Teacher(reply={"result": "ok"})
    try:
        with pytest.raises(VoicetuneError, match=re.escape(server.url) + r".*not an OpenAI-compatible chat completion"):
            teacher_facts([FEE], server.url, "teach", cache_path=tmp_path / "c.sqlite", progress=False)
    finally:
        server.close()


def test_the_prompt_shows_the_call_and_the_whole_draft():
    long = Turn(
        id="l",
        history=[Message(role="user", text="My code is HAT069."), Message(role="agent", text="Thanks.")],
        draft="x " * 800 + "$9.99",
    )
    user = build_facts_messages(long)[1]["content"]
    assert "Caller: My code is HAT069." in user and "Agent: Thanks." in user and "$9.99" in user
    assert "NONE" in FACTS_PROMPT and "credit_card_123" in FACTS_PROMPT and "first three" in FACTS_PROMPT


def test_cli_round_trip(teacher, tmp_path, run_cli):
    source = write_records(tmp_path / "turns.jsonl", [FEE, BYE, CURATED])
    result = run_cli(
        "data",
        "facts",
        "--input",
        source,
        "--output",
        tmp_path / "out.jsonl",
        "--teacher",
        teacher.url,
        "--teacher-model",
        "teach",
    )
    assert result.returncode == 0, result.stderr
    turns = {t.id: t for t in load_records(tmp_path / "out.jsonl")}
    assert (
        turns["fee"].facts == ["$45.00", "flight UA 123", "6:00 AM"]
        and turns["bye"].facts == []
        and turns["curated"].facts == ["$120.50"]
    )
    summary = result.stderr.strip().splitlines()
    assert (
        len(summary) == 1
        and summary[0].startswith("facts for 2 of 3 turns")
        and "kept 3 facts, 1 dropped as not in the draft" in summary[0]
    )
    assert (tmp_path / "out.jsonl.facts_cache.sqlite").is_file() and teacher.calls == 2
    again = run_cli(
        "data",
        "facts",
        "-i",
        source,
        "-o",
        tmp_path / "out2.jsonl",
        "--teacher",
        teacher.url,
        "--teacher-model",
        "teach",
        "--cache",
        tmp_path / "out.jsonl.facts_cache.sqlite",
        "--overwrite-facts",
    )
    assert again.returncode == 0, again.stderr
    assert teacher.calls == 3  # only the curated turn was new
    assert load_records(tmp_path / "out2.jsonl")[2].facts == ["$120.50", "5 days"]


@pytest.fixture
def quick_cli(cli, monkeypatch):
    """``voicetune ARGS`` in-process (the shared ``cli`` fixture) with no backoff waits: (exit code, stderr)."""
    monkeypatch.setattr("voicetune.models.generate.time.sleep", lambda seconds: None)

    def run(*args):
        code, _, err = cli(*args)
        return code, err

    return run


def test_unreachable_teacher_is_one_error_line(quick_cli, tmp_path):
    write_records(tmp_path / "turns.jsonl", [FEE])
    code, err = quick_cli(
        "data",
        "facts",
        "--input",
        "turns.jsonl",
        "--output",
        "out.jsonl",
        "--teacher",
        "http://127.0.0.1:9/v1",
        "--teacher-model",
        "m",
        "--timeout",
        "2",
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: http://127.0.0.1:9/v1/chat/completions: unreachable")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--output", "turns.jsonl"], "is the input file"),
        (["--output", "out.jsonl", "--cache", "turns.jsonl"], "is the input file"),
        (["--output", "out.jsonl", "--cache", "out.jsonl"], "is also the --output file"),
        (["--output", "out.jsonl", "--teacher", "localhost:8000"], "not an endpoint URL"),
    ],
)
def test_bad_flags_are_one_error_line(quick_cli, tmp_path, args, message):
    write_records(tmp_path / "turns.jsonl", [FEE])
    base = ["data", "facts", "--input", "turns.jsonl", "--teacher-model", "m"]
    if "--teacher" not in args:
        base += ["--teacher", "http://127.0.0.1:9/v1"]
    code, err = quick_cli(*base, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


@pytest.mark.slow
def test_real_llama_server_teacher(llama_server, tmp_path):
    from voicetune.data import builtin_turns

    turns = [t.model_copy(update={"facts": None}) for t in builtin_turns("test")[:3]]
    stats = FactsStats()
    result = teacher_facts(
        turns, llama_server, "smollm2-135m", cache_path=tmp_path / "c.sqlite", timeout=120, progress=False, stats=stats
    )
    assert stats.asked == len(turns) and [t.id for t in result] == [t.id for t in turns]
    for turn in result:
        Turn.model_validate(turn.model_dump())
        assert all(_in_draft(fact, turn.draft) for fact in turn.facts or [])
    write_records(tmp_path / "out.jsonl", result)
    assert len(load_records(tmp_path / "out.jsonl")) == len(turns)
