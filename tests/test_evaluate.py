"""Evaluation: system specs, the LLM judge's answer parsing, both-order reconciliation, statistics, the
rubric evaluation end to end through the CLI (draft, draft+pipecat, reference), caching and clear errors."""

from __future__ import annotations

import json
import math

import pytest

from voicetune.data import builtin_turns
from voicetune.errors import VoicetuneError
from voicetune.evaluate import evaluate, judge_both_orders, parse_system, position_bias, win_statistics
from voicetune.evaluate.compare import reconcile, swapped
from voicetune.evaluate.run import make_pairs, parse_comparison
from voicetune.evaluate.stats import length_controlled_win_rate, sign_test, wilson_interval
from voicetune.evaluate.systems import pipecat_format
from voicetune.judge import RubricJudge
from voicetune.judge.llm import Judgement, PanelJudge, judge_messages, parse_judgement
from voicetune.models.chat import ChatCache
from voicetune.records import QUALITIES, Pair, load_records

# ------------------------------------------------------------------------------------------------ systems


@pytest.mark.parametrize(
    "text, name, kind, fields",
    [
        ("tuned=runs/train/model", "tuned", "model", {"model": "runs/train/model", "voice": False}),
        ("prompted=smollm2-135m+voice", "prompted", "model", {"model": "smollm2-135m", "voice": True}),
        ("smollm2-135m", "smollm2-135m", "model", {"model": "smollm2-135m"}),
        ("draft", "draft", "draft", {}),
        ("draft+pipecat", "draft+pipecat", "pipecat", {}),
        ("ref=reference", "ref", "reference", {}),
        (
            "gpt=endpoint:http://127.0.0.1:8080/v1#gpt-4o-mini",
            "gpt",
            "endpoint",
            {"endpoint": "http://127.0.0.1:8080/v1", "api_model": "gpt-4o-mini"},
        ),
        ("endpoint:https://api.example.com/v1#m+voice", "m+voice", "endpoint", {"api_model": "m", "voice": True}),
        (
            "runs/train/model+best4",
            "runs_train_model+best4",
            "model",
            {"model": "runs/train/model", "best_of": 4, "guard": False},
        ),
        (
            "g=runs/m+guard+best3+voice",
            "g",
            "model",
            {"model": "runs/m", "best_of": 3, "guard": True, "voice": True, "decoded": True},
        ),
        ("plain=runs/m", "plain", "model", {"best_of": 1, "guard": False, "decoded": False}),
    ],
)
def test_parse_system(text, name, kind, fields):
    system = parse_system(text)
    assert (system.name, system.kind) == (name, kind)
    for key, value in fields.items():
        assert getattr(system, key) == value


@pytest.mark.parametrize(
    "text, message",
    [
        ("x=", "empty spec"),
        ("bad name=draft", "letters, digits"),
        ("e=endpoint:localhost#m", "endpoint:URL#MODEL"),
        ("e=endpoint:http://h/v1", "endpoint:URL#MODEL"),
        ("d=draft+voice", r"\+voice, \+numbers, \+bestN and \+guard apply to models"),
        ("d=draft+best4", "apply to models"),
        ("m=x+best1", "from 2 to 64"),
    ],
)
def test_parse_system_errors_name_the_spec(text, message):
    with pytest.raises(VoicetuneError, match=message):
        parse_system(text)


def test_parse_comparison():
    assert parse_comparison("a:b", ["a", "b"]) == ("a", "b")
    with pytest.raises(VoicetuneError, match="no system named 'c'"):
        parse_comparison("a:c", ["a", "b"])
    with pytest.raises(VoicetuneError, match="itself"):
        parse_comparison("a:a", ["a", "b"])


def test_pipecat_formats_markdown_and_currency():
    (text,) = pipecat_format(["**Total:** $42.50 due on 2024-05-03."])
    assert "**" not in text and "$" not in text
    assert "forty" in text.lower() and "dollars" in text.lower()


def test_a_system_with_no_responses_is_read_back_on_a_rerun(tmp_path):
    from voicetune.evaluate.systems import system_responses

    turns = [t.model_copy(update={"reference": None}) for t in builtin_turns("test")[:3]]
    first = system_responses(parse_system("reference"), turns, tmp_path, 0, backend_for=None)
    again = system_responses(
        parse_system("reference"), turns, tmp_path, 0, backend_for=None
    )  # τ-bench has no references
    assert first == again == {}


def test_reference_system_covers_only_turns_with_a_reference(tmp_path):
    turns = builtin_turns("test")[:4]
    turns[1] = turns[1].model_copy(update={"reference": None})
    from voicetune.evaluate.systems import system_responses

    answers = system_responses(parse_system("reference"), turns, tmp_path, 0, backend_for=None)
    assert set(answers) == {t.id for t in turns} - {turns[1].id}
    pairs = make_pairs(turns, {"draft": {t.id: t.draft for t in turns}, "reference": answers}, "draft", "reference")
    assert len(pairs) == 3 and all(p.system_a == "draft" and p.system_b == "reference" for p in pairs)


# ------------------------------------------------------------------------------------------------ parsing


def test_parse_judgement_reads_json():
    answer = (
        'Sure.\n```json\n{"non_repetition": "tie", "conciseness": "A", "clarity": "Reply B", "humanness": "b", '
        '"faithfulness": "equal", "overall": "A", "rationale": "A is shorter."}\n```'
    )
    result = parse_judgement(answer)
    assert result.error is None and result.winner == "a"
    assert result.criteria == {
        "non_repetition": "tie",
        "conciseness": "a",
        "clarity": "b",
        "humanness": "b",
        "faithfulness": "tie",
        "overall": "a",
    }
    assert result.rationale == "A is shorter."


def test_parse_judgement_tolerates_single_quotes_and_aliases():
    result = parse_judgement("{'winner': 'Response B', 'clarity': 'B'}")
    assert result.winner == "b" and result.criteria["clarity"] == "b"


def test_parse_judgement_falls_back_to_lines():
    answer = "Non-repetition: tie\nConciseness: A\nClarity - B\n**Overall:** Reply B, because it is easier to follow."
    result = parse_judgement(answer)
    assert result.winner == "b"
    assert (
        result.criteria["non_repetition"] == "tie"
        and result.criteria["conciseness"] == "a"
        and result.criteria["clarity"] == "b"
    )


def test_parse_judgement_does_not_read_the_article_a_as_a_verdict():
    result = parse_judgement("Overall: a reply that is shorter would be better, but both are long.")
    assert result.error is not None and result.winner is None


@pytest.mark.parametrize("answer", ["", "I cannot decide.", '{"clarity": "A"}', "Both replies are fine."])
def test_unparseable_answer_is_an_error_not_a_tie(answer):
    result = parse_judgement(answer)
    assert result.winner is None and result.error and "no overall verdict" in result.error


def test_judge_prompt_names_every_criterion_and_both_replies():
    pair = Pair(
        id="p", draft="Your refund of $20 is on its way.", response_a="First reply.", response_b="Second reply."
    )
    prompt = judge_messages(pair)[-1]["content"]
    assert "First reply." in prompt and "Second reply." in prompt and "$20" in prompt
    for name in (*QUALITIES, "overall"):
        assert name in prompt


# ------------------------------------------------------------------------------------------------ both orders


class _FixedJudge:
    """Answers from a table keyed by the response shown first: lets a test script position bias."""

    name = "scripted"

    def __init__(self, table):
        self.table = table

    def judge_many(self, pairs, progress=False):
        return [self.table[p.response_a] for p in pairs]


def _pair(i=0):
    return Pair(id=f"t{i}#x-vs-y", draft="d", response_a=f"x{i}", response_b=f"y{i}", system_a="x", system_b="y")


def test_reconcile():
    assert reconcile("a", "a") == "a"
    assert reconcile("a", "b") == "tie"
    assert reconcile("tie", "tie") == "tie"
    assert reconcile(None, "a") is None


def test_swapped_swaps_responses_and_systems():
    pair = _pair()
    back = swapped(pair)
    assert (back.response_a, back.response_b, back.system_a, back.system_b) == ("y0", "x0", "y", "x")


def test_consistent_verdict_stands_and_flipped_verdict_becomes_a_tie():
    always_first = {
        "x0": Judgement("a", {"overall": "a", "clarity": "a"}),
        "y0": Judgement("a", {"overall": "a", "clarity": "b"}),
    }
    (judged,) = judge_both_orders(_FixedJudge(always_first), [_pair()], progress=False)
    assert judged.winner == "tie" and judged.meta["consistent"] is False
    assert judged.criteria["clarity"] == "a"  # A-B says a; B-A says b, i.e. x again: consistent
    bias = position_bias([judged])
    assert bias["position_consistency"] == 0.0 and bias["first_slot_preference"] == 1.0

    consistent = {"x0": Judgement("a", {"overall": "a"}), "y0": Judgement("b", {"overall": "b"})}
    (judged,) = judge_both_orders(_FixedJudge(consistent), [_pair()], progress=False)
    assert judged.winner == "a" and judged.meta["consistent"] is True
    assert position_bias([judged])["first_slot_preference"] == 0.5


def test_an_error_in_either_order_leaves_no_verdict_and_is_counted():
    table = {"x0": Judgement("a", {"overall": "a"}), "y0": Judgement(None, {}, error="no overall verdict")}
    (judged,) = judge_both_orders(_FixedJudge(table), [_pair()], progress=False)
    assert judged.winner is None and "no overall verdict" in judged.meta["error"]
    stats = win_statistics([judged])
    assert stats["n"] == 0 and stats["errors"] == 1


def test_rubric_judge_is_position_consistent():
    turns = builtin_turns("test")[:6]
    pairs = [
        Pair.model_validate(
            {
                **t.model_dump(exclude={"response", "scores", "reasons", "findings"}),
                "id": f"{t.id}#d-vs-r",
                "response_a": t.draft,
                "response_b": t.reference,
            }
        )
        for t in turns
    ]
    judged = judge_both_orders(RubricJudge(), pairs, progress=False)
    assert position_bias(judged)["position_consistency"] == 1.0
    assert all(p.winner == "b" for p in judged)  # the spoken reference beats the written draft


def test_panel_majority_and_abstention():
    class Fixed:
        def __init__(self, name, verdict):
            self.name, self.verdict = name, verdict

        def judge_many(self, pairs, progress=False):
            return [self.verdict for _ in pairs]

    a, b, bad = (
        Judgement("a", {"overall": "a", "clarity": "a"}),
        Judgement("b", {"overall": "b", "clarity": "a"}),
        Judgement(None, error="x"),
    )
    (result,) = PanelJudge([Fixed("j1", a), Fixed("j2", a), Fixed("j3", b)]).judge_many([_pair()])
    assert result.winner == "a" and result.criteria["clarity"] == "a"
    (result,) = PanelJudge([Fixed("j1", a), Fixed("j2", b), Fixed("j3", bad)]).judge_many([_pair()])
    assert result.winner == "tie"  # no majority among the two valid votes
    (result,) = PanelJudge([Fixed("j1", bad), Fixed("j2", bad)]).judge_many([_pair()])
    assert result.winner is None and result.error


def test_judge_cache_round_trip(tmp_path):
    cache = ChatCache(tmp_path / "cache.sqlite")
    key = ChatCache.key("llm:m", "m", [{"role": "user", "content": "hi"}], {"max_tokens": 10})
    assert cache.get(key) is None
    cache.put(key, "llm:m", "m", '{"overall": "A"}')
    cache.close()
    again = ChatCache(tmp_path / "cache.sqlite")
    assert again.get(key) == '{"overall": "A"}' and again.hits == 1
    assert ChatCache.key("llm:m", "m", [{"role": "user", "content": "hi!"}], {"max_tokens": 10}) != key


# ------------------------------------------------------------------------------------------------ statistics


def test_wilson_interval_known_value():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert math.isnan(wilson_interval(0, 0)[0])


def test_sign_test():
    assert sign_test(10, 0) == pytest.approx(2 / 1024)
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 0) == 1.0


def test_length_controlled_win_rate_removes_a_pure_length_effect():
    # A wins exactly when it is longer; half the time it is longer: the length-free win rate is about 0.5,
    # while a system that wins regardless of length keeps a high rate.
    lengths_a = [100, 300] * 20 + [120, 280]
    lengths_b = [200] * 42
    by_length = [1.0 if la > lb else 0.0 for la, lb in zip(lengths_a, lengths_b, strict=False)]
    by_length[0], by_length[1] = 1.0, 0.0  # not perfectly separable
    lc = length_controlled_win_rate(by_length, lengths_a, lengths_b)
    assert lc is not None and abs(lc - 0.5) < 0.1
    assert length_controlled_win_rate([1.0] * 10, [1] * 10, [2] * 10) is None


def test_win_statistics_counts_and_intervals():
    def judged(i, winner, clarity):
        return _pair(i).model_copy(update={"winner": winner, "criteria": {"clarity": clarity}})

    pairs = (
        [judged(i, "a", "a") for i in range(12)]
        + [judged(12 + i, "b", "tie") for i in range(4)]
        + [judged(16 + i, "tie", "b") for i in range(4)]
    )
    stats = win_statistics(pairs)
    assert (stats["n"], stats["wins"], stats["losses"], stats["ties"]) == (20, 12, 4, 4)
    assert stats["win_rate"] == 0.7 and stats["win_rate_no_ties"] == 0.75
    assert stats["ci_low"] < 0.7 < stats["ci_high"]
    assert stats["bootstrap_ci"][0] < 0.7 < stats["bootstrap_ci"][1]
    assert stats["p_value"] == pytest.approx(sign_test(12, 4), rel=1e-2)
    assert stats["per_criterion"]["clarity"] == {"win_rate": 0.7, "wins": 12, "losses": 4, "ties": 4}


# ------------------------------------------------------------------------------------------------ end to end


def test_evaluate_rubric_library_api(tmp_path):
    from voicetune.evaluate.systems import parse_system as parse

    turns = builtin_turns("test")[:12]
    systems = [parse("reference"), parse("draft"), parse("draft+pipecat")]
    summary = evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None)
    names = [(c["system_a"], c["system_b"]) for c in summary["comparisons"]]
    assert names == [("reference", "draft"), ("reference", "draft+pipecat")]
    first = summary["comparisons"][0]
    assert (
        first["speaking_seconds"]["reference"] < first["speaking_seconds"]["draft"]
        and first["faithfulness"]["draft"] == 1.0
    )
    assert first["n"] == 12 and first["win_rate"] > 0.8 and first["ci_low"] > 0.5 and first["p_value"] < 0.05
    assert summary["judge"]["position_consistency"] == 1.0
    assert summary["systems"]["reference"]["speaking_seconds"] < summary["systems"]["draft"]["speaking_seconds"]
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and all(set(r["meta"]["orders"]) == {"ab", "ba"} for r in rows)
    assert (tmp_path / "responses" / "draft+pipecat.jsonl").is_file()
    assert "| reference vs draft |" in (tmp_path / "summary.md").read_text()


def test_eval_cli_rubric(run_cli, tmp_path):
    result = run_cli(
        "eval",
        "--system",
        "ref=reference",
        "--system",
        "draft",
        "--system",
        "draft+pipecat",
        "--pair",
        "draft+pipecat:draft",
        "--data",
        "builtin:test",
        "--limit",
        "8",
        "--out",
        tmp_path / "ev",
        "--judge",
        "rubric",
    )
    assert result.returncode == 0, result.stderr
    assert "| draft+pipecat vs draft | rubric | 8 |" in result.stdout
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert [(c["system_a"], c["system_b"], c["judge"]) for c in summary["comparisons"]] == [
        ("draft+pipecat", "draft", "rubric")
    ]
    for key in (
        "n",
        "wins",
        "losses",
        "ties",
        "win_rate",
        "win_rate_no_ties",
        "ci_low",
        "ci_high",
        "p_value",
        "per_criterion",
        "length_controlled_win_rate",
    ):
        assert key in summary["comparisons"][0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--system", "draft"], "at least two --system"),
        (["--system", "draft", "--system", "draft"], "share a name"),
        (["--system", "draft", "--system", "reference", "--judge", "oracle"], "--judge 'oracle'"),
        (["--system", "draft", "--system", "reference", "--judge", "llm"], "--judge-endpoint"),
        (["--system", "draft", "--system", "reference", "--data", "builtin:nope"], "built-in splits"),
        (["--system", "draft", "--system", "reference", "--data", "missing.jsonl"], "missing.jsonl: no such file"),
    ],
)
def test_eval_cli_errors_are_one_line(run_cli, tmp_path, args, message):
    result = run_cli("eval", *args, "--out", tmp_path / "ev")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "answer, winner", [("A", "a"), ("B.\nBecause it is shorter.", "b"), ("**Tie**", "tie"), ("Reply B", "b")]
)
def test_a_bare_verdict_on_the_first_line_is_the_overall_preference(answer, winner):
    assert parse_judgement(answer).winner == winner


def test_model_systems_are_generated_once_and_regenerated_when_the_seed_changes(tmp_path, tiny_model, monkeypatch):
    from voicetune.models.generate import TransformersBackend

    turns = builtin_turns("test")[:4]
    systems = [
        parse_system(f"tiny={tiny_model}"),
        parse_system(f"tiny-voice={tiny_model}+voice"),
        parse_system("draft"),
    ]
    first = evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=6)
    assert [c["n"] for c in first["comparisons"]] == [4, 4]
    for name in ("tiny", "tiny-voice"):
        assert len((tmp_path / "responses" / f"{name}.jsonl").read_text().splitlines()) == 4

    calls = []
    original = TransformersBackend.__init__
    monkeypatch.setattr(
        TransformersBackend, "__init__", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    again = evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=6)
    assert calls == [] and again["comparisons"] == first["comparisons"]

    evaluate(systems, turns, RubricJudge(), tmp_path, seed=1, progress=False, log=lambda m: None, max_new_tokens=6)
    assert len(calls) == 1  # one model load serves both systems of that model; the old responses set aside
    assert list(
        (tmp_path / "responses" / ".superseded").glob("responses tiny-*/tiny.jsonl")
    )  # the old responses kept aside


def test_retraining_a_model_into_the_same_path_regenerates_only_its_responses(tmp_path, tiny_model):
    """The responses are keyed by the model's weights, not its path; the deterministic systems' are kept."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    turns = builtin_turns("test")[:3]
    systems = [parse_system(f"tuned={model_dir}"), parse_system("draft"), parse_system("reference")]
    out = tmp_path / "eval"
    messages: list[str] = []
    evaluate(systems, turns, RubricJudge(), out, progress=False, log=messages.append, max_new_tokens=6)
    stamps = {
        name: (out / "responses" / f"{name}.jsonl").stat().st_mtime_ns for name in ("tuned", "draft", "reference")
    }

    model = AutoModelForCausalLM.from_pretrained(model_dir)  # "retrain": new weights at the same path
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)
    model.save_pretrained(model_dir)
    messages.clear()
    evaluate(systems, turns, RubricJudge(), out, progress=False, log=messages.append, max_new_tokens=6)
    assert (out / "responses" / "tuned.jsonl").stat().st_mtime_ns != stamps["tuned"]
    assert [m for m in messages if "redoing" in m and "tuned" in m and "system.model.weights" in m]
    for name in ("draft", "reference"):
        assert (out / "responses" / f"{name}.jsonl").stat().st_mtime_ns == stamps[name]
    assert not [m for m in messages if "redoing" in m and ("draft" in m or "reference" in m)]


def test_a_changed_turn_is_answered_again_and_the_others_are_reused(tmp_path, tiny_model):
    turns = builtin_turns("test")[:3]
    systems = [parse_system(f"tiny={tiny_model}"), parse_system("draft")]
    evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=6)
    first = {t.id: t.response for t in load_records(tmp_path / "responses" / "tiny.jsonl")}
    changed = [turns[0].model_copy(update={"draft": "Your new total is $99.50."}), *turns[1:]]
    evaluate(systems, changed, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=6, seed=0)
    second = {t.id: t.response for t in load_records(tmp_path / "responses" / "tiny.jsonl")}
    assert all(second[t.id] == first[t.id] for t in turns[1:])
    drafts = {t.id: t.response for t in load_records(tmp_path / "responses" / "draft.jsonl")}
    assert drafts[turns[0].id] == "Your new total is $99.50."


def test_record_ids_with_separators_flow_through_eval(tmp_path, tiny_model):
    odd = ["support#case-17", "a/b c", "x#c1", "ünïcödé 名前"]
    turns = [t.model_copy(update={"id": name}) for t, name in zip(builtin_turns("test"), odd, strict=False)]
    systems = [parse_system(f"tiny={tiny_model}"), parse_system("draft")]
    summary = evaluate(
        systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=6, seed=[0, 1]
    )
    assert summary["comparisons"][0]["n"] == 8
    assert {p.meta["context_id"] for p in load_records(tmp_path / "pairs.jsonl", Pair)} == set(odd)


def test_duplicate_ids_stop_the_evaluation(tmp_path):
    turns = builtin_turns("test")[:2]
    with pytest.raises(VoicetuneError, match="share the id"):
        evaluate(
            [parse_system("draft"), parse_system("reference")],
            [turns[0], turns[0]],
            RubricJudge(),
            tmp_path,
            progress=False,
            log=lambda m: None,
        )


@pytest.mark.parametrize(
    "answer, winner", [("The answer is: - A", "a"), ("The answer is: B", "b"), ("Winner is Reply B.", "b")]
)
def test_a_stated_answer_is_the_overall_preference(answer, winner):
    assert parse_judgement(answer).winner == winner


def test_an_answer_about_the_question_is_not_a_verdict():
    assert parse_judgement("The answer to the question of which reply is better for a caller depends.").error


def test_several_seeds_pair_each_context_once_per_seed(tmp_path, tiny_model):
    turns = builtin_turns("test")[:3]
    systems = [parse_system(f"tiny={tiny_model}"), parse_system("draft"), parse_system("reference")]
    summary = evaluate(
        systems,
        turns,
        RubricJudge(),
        tmp_path,
        comparisons=[("tiny", "draft"), ("draft", "reference")],
        seed=[0, 1],
        progress=False,
        log=lambda m: None,
        max_new_tokens=6,
    )
    assert summary["seeds"] == [0, 1]
    by_pair = {(c["system_a"], c["system_b"]): c for c in summary["comparisons"]}
    assert by_pair[("tiny", "draft")]["n"] == 6  # 3 contexts x 2 seeds
    assert by_pair[("draft", "reference")]["n"] == 3  # neither depends on the seed: judged once
    assert (tmp_path / "responses" / "tiny.seed1.jsonl").is_file() and not (
        tmp_path / "responses" / "draft.seed1.jsonl"
    ).exists()
    assert summary["systems"]["tiny"]["responses"] == 6 and summary["systems"]["draft"]["responses"] == 3
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert sorted(r["meta"].get("seed") for r in rows if r["system_a"] == "tiny") == [0, 0, 0, 1, 1, 1]
