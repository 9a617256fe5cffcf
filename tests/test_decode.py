"""Decoding that keeps facts, with the rubric's rules as the selector: best-of-N picks what the voice score rates
highest; the guard falls back to the draft said faithfully (draft+voicetune) when every candidate drops a required fact
or says what the
draft does not. (The learned judge's order, the default, is tested in tests/test_learned_judge.py.)"""

from __future__ import annotations

import pytest

from voicetune.evaluate import evaluate
from voicetune.evaluate.systems import fallback_rate, parse_system, system_responses
from voicetune.judge import RubricJudge
from voicetune.judge.decode import pick, refusal
from voicetune.quality import score_response
from voicetune.records import Turn, load_records
from voicetune.verbalize import speak_draft

DRAFT = "Your refund of **$45.00** was issued to your Visa. It will post in 3-5 business days."
GOOD = "Your forty-five dollar refund went back to your Visa. It'll show up in three to five business days."
PADDED = "Thank you so much for your patience! " + GOOD + " Is there anything else I can help you with today?"
DROPS = "Your refund went back to your card. Anything else?"
INVENTS = "Your refund of ninety-five dollars went back to your Visa. It'll show up in three to five business days."


def turn(turn_id: str = "t1", draft: str = DRAFT) -> Turn:
    return Turn(id=turn_id, draft=draft, history=[{"role": "user", "text": "Where is my refund?"}])


class Scripted:
    """A generation backend that answers each prompt with the next scripted text (cycling)."""

    def __init__(self, texts: list[str]):
        self.texts, self.calls = texts, 0

    def generate(self, prompts, sampling, on_batch=None):
        out = [self.texts[(self.calls + i) % len(self.texts)] for i in range(len(prompts))]
        self.calls += len(prompts)
        if on_batch:
            on_batch(list(range(len(prompts))), out)
        return out


def test_best_of_n_keeps_the_candidate_the_reward_rates_highest():
    candidates = [PADDED, GOOD, DROPS]
    scores = [score_response(turn(), c).voice_score for c in candidates]
    choice = pick(turn(), candidates, selector="rubric")
    assert choice.index == scores.index(max(scores)) == 1 and choice.text == GOOD and not choice.fallback
    assert choice.voice_score == max(scores)


def test_the_guard_refuses_a_dropped_fact_and_an_invented_amount():
    assert "dropped_fact" in refusal(score_response(turn(), DROPS).findings)
    assert "invented_amount" in refusal(score_response(turn(), INVENTS).findings)
    assert refusal(score_response(turn(), GOOD).findings) == []
    choice = pick(turn(), [DROPS, INVENTS, GOOD], guard=True, selector="rubric")
    assert choice.index == 2 and set(choice.refused) == {0, 1}


def test_the_guard_falls_back_to_the_draft_said_faithfully_when_every_candidate_is_refused():
    choice = pick(turn(), [DROPS, INVENTS], guard=True, selector="rubric")
    assert choice.fallback and choice.index is None
    assert choice.text == speak_draft(DRAFT) and "**" not in choice.text
    assert not pick(
        turn(), [DROPS, INVENTS], selector="rubric"
    ).fallback  # without the guard the best of the two is kept


def test_guarded_best_of_system_in_eval_reports_its_fallback_rate(tmp_path):
    turns = [turn("a"), turn("b")]
    system = parse_system("m=org/some-model+best2+guard")
    # turn a gets (DROPS, GOOD); turn b gets (INVENTS, DROPS): a keeps GOOD, b falls back
    backend = Scripted([DROPS, GOOD, INVENTS, DROPS])
    answers = system_responses(
        system,
        turns,
        tmp_path,
        0,
        backend_for=lambda s: backend,
        progress=False,
        log=lambda m: None,
        judge=RubricJudge(),
    )
    assert answers["a"] == GOOD and answers["b"] == speak_draft(DRAFT)
    rows = {t.id: t.meta["decoding"] for t in load_records(tmp_path / "m.jsonl")}
    assert rows["a"] == {"candidates": 2, "chosen": 1, "fallback": False, "refused": {"0": ["dropped_fact"]}}
    assert rows["b"]["fallback"] and rows["b"]["chosen"] is None
    assert fallback_rate(tmp_path, system, [""]) == 0.5
    assert len(load_records(tmp_path / "m.candidates.jsonl")) == 4
    # a re-run reuses the decoded responses: nothing is generated again
    again = system_responses(
        system,
        turns,
        tmp_path,
        0,
        backend_for=lambda s: Scripted(["unused"]),
        progress=False,
        log=lambda m: None,
        judge=RubricJudge(),
    )
    assert again == answers


def test_eval_summary_has_contradiction_and_fallback_rates(tmp_path, monkeypatch):
    from voicetune.evaluate import run as run_module

    turns = [turn("a"), turn("b")]
    monkeypatch.setattr(run_module._Backends, "load", lambda self, system: Scripted([DROPS, GOOD, INVENTS, DROPS]))
    systems = [parse_system("guarded=org/some-model+best2+guard"), parse_system("draft+pipecat")]
    summary = evaluate(systems, turns, RubricJudge(), tmp_path, progress=False, log=lambda m: None)
    guarded = summary["systems"]["guarded"]
    assert guarded["fallback_rate"] == 0.5 and "fallback_rate" not in summary["systems"]["draft+pipecat"]
    assert {"contradiction_rate", "dropped_fact_rate", "invented_fact_rate"} <= set(guarded)
    assert "fallbacks" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("spec", ["draft+guard", "reference+best4", "draft+pipecat+guard"])
def test_decoding_applies_to_models_only(spec):
    from voicetune.errors import VoicetuneError

    with pytest.raises(VoicetuneError, match="apply to models"):
        parse_system(spec)
