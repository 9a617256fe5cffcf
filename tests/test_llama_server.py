"""A real OpenAI-compatible endpoint: the embedded model served by llama.cpp on 127.0.0.1, exercised by the
HTTP generation backend, the ``endpoint:`` system of ``voicetune eval`` and the LLM judge (no mock)."""

from __future__ import annotations

import json

import pytest

from voicetune.data import builtin_turns
from voicetune.evaluate import evaluate, parse_system
from voicetune.judge import RubricJudge
from voicetune.judge.llm import LLMJudge
from voicetune.models.chat import ChatCache
from voicetune.models.generate import HTTPBackend, SamplingConfig, generate_turns

pytestmark = pytest.mark.slow


def test_http_backend_generates_with_the_server(llama_server, tmp_path):
    turns = builtin_turns("test")[:3]
    backend = HTTPBackend(llama_server, "smollm2-135m", concurrency=2)
    done = generate_turns(
        backend, turns, tmp_path / "out.jsonl", None, SamplingConfig(max_new_tokens=32, seed=1), progress=False
    )
    assert [t.id for t in done] == [t.id for t in turns]
    assert all(t.response and t.response.strip() for t in done)


def test_endpoint_system_and_cached_rerun(llama_server, tmp_path, monkeypatch):
    turns = builtin_turns("test")[:3]
    systems = [parse_system(f"served=endpoint:{llama_server}#smollm2-135m"), parse_system("draft")]
    summary = evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=48)
    assert summary["comparisons"][0]["n"] == 3
    rows = [json.loads(line) for line in (tmp_path / "responses" / "served.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["response"] for r in rows)

    def no_requests(*args, **kwargs):
        raise AssertionError("a re-run must reuse the cached responses")

    monkeypatch.setattr(HTTPBackend, "complete", no_requests)
    again = evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None, max_new_tokens=48)
    assert again["comparisons"] == summary["comparisons"]


def test_llm_judge_with_the_server_counts_errors_and_caches(llama_server, tmp_path):
    turns = builtin_turns("test")[:3]
    systems = [parse_system("reference"), parse_system("draft")]
    judge = LLMJudge(llama_server, "smollm2-135m", ChatCache(tmp_path / "cache.sqlite"), concurrency=2, max_tokens=120)
    summary = evaluate(systems, turns, judge, tmp_path, progress=False, log=lambda m: None)
    assert judge.requests == 6  # 3 pairs, both orders
    comparison = summary["comparisons"][0]
    assert comparison["judge"] == "llm:smollm2-135m"
    assert comparison["n"] + comparison["errors"] == 3  # an unparseable answer is counted, never a silent tie
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert all((p.get("winner") is not None) != ("error" in p["meta"]) for p in pairs)

    rerun = LLMJudge(llama_server, "smollm2-135m", ChatCache(tmp_path / "cache.sqlite"), concurrency=2, max_tokens=120)
    assert (
        evaluate(systems, turns, rerun, tmp_path, progress=False, log=lambda m: None)["comparisons"]
        == summary["comparisons"]
    )
    assert rerun.requests == 0


def test_eval_cli_with_llm_judge_and_unreachable_judge(llama_server, run_cli, tmp_path):
    result = run_cli(
        "eval",
        "--system",
        "reference",
        "--system",
        "draft",
        "--data",
        "builtin:test",
        "--limit",
        "2",
        "--judge",
        "llm",
        "--judge-endpoint",
        llama_server,
        "--judge-model",
        "smollm2-135m",
        "--out",
        tmp_path / "ev",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "llm:smollm2-135m" in result.stdout and (tmp_path / "ev" / "judge_cache.sqlite").is_file()

    result = run_cli(
        "eval",
        "--system",
        "reference",
        "--system",
        "draft",
        "--data",
        "builtin:test",
        "--limit",
        "1",
        "--timeout",
        "2",
        "--judge",
        "llm",
        "--judge-endpoint",
        "http://127.0.0.1:9/v1",
        "--judge-model",
        "m",
        "--out",
        tmp_path / "dead",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: http://127.0.0.1:9/v1/chat/completions: unreachable")
    )
