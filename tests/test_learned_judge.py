"""The learned judge: usable first (learned from blind listeners), then style; the order every verdict follows.

The logic of the two-step order is tested on constructed assessments and a stub judge; the fitted judge on the
packaged listener labels is tested against the held-out test half its training never saw.
"""

from __future__ import annotations

import json
import random

import pytest

from voicetune.data.builtin import builtin_turns
from voicetune.data.listener import FAILURES, LabelledResponse, labelled_preferences, labelled_responses
from voicetune.errors import VoicetuneError
from voicetune.judge.decode import pick
from voicetune.judge.learned import (
    FEATURE_NAMES,
    Assessment,
    LearnedJudge,
    default_judge,
    expected_calibration_error,
    features,
    guard_threshold,
    load_judge,
    read_labels,
    train_judge,
    unsupported_words,
)
from voicetune.quality.scorer import score_response
from voicetune.records import Pair, Turn


def _assessment(usable: bool, p: float, style: float = 0.5, failure: str | None = None) -> Assessment:
    return Assessment(usable, p, None if usable else (failure or "invented"), style, rubric=None)  # type: ignore[arg-type]


def test_a_usable_response_always_beats_an_unusable_one_and_two_unusable_tie():
    judge = LearnedJudge({}, {"threshold": 0.5})
    plain = _assessment(True, 0.6, style=0.05)
    slick = _assessment(False, 0.45, style=0.99)
    assert judge.compare(plain, slick) == "a" and judge.compare(slick, plain) == "b"
    assert judge.compare(_assessment(False, 0.1), _assessment(False, 0.4)) == "tie"
    assert judge.compare(_assessment(True, 0.9, 0.8), _assessment(True, 0.9, 0.2)) == "a"
    assert judge.compare(_assessment(True, 0.9, 0.5), _assessment(True, 0.9, 0.51)) == "tie"


def test_every_usable_score_is_above_every_unusable_score():
    usable = [_assessment(True, p, s).score for p in (0.5, 0.7, 0.99) for s in (0.0, 0.3, 1.0)]
    unusable = [_assessment(False, p, s).score for p in (0.0, 0.2, 0.49) for s in (0.0, 1.0)]
    assert min(usable) >= 0.5 > max(unusable)


def test_features_have_their_names_and_see_unsupported_words():
    turn = builtin_turns("dev")[0]
    made_up = "Your six-character code is a great way to keep track of your tickets, just mail it to your bank."
    vector = features(turn, made_up, score_response(turn, made_up))
    assert len(vector) == len(FEATURE_NAMES)
    assert {"mail", "bank"} <= set(unsupported_words(turn, made_up))
    assert unsupported_words(turn, turn.draft or "") == []


def test_calibration_error_and_guard_threshold():
    assert expected_calibration_error([0.1, 0.9], [0, 1]) == pytest.approx(0.1)
    rng = random.Random(0)
    p = [rng.random() for _ in range(400)]
    y = [int(rng.random() < x) for x in p]
    import numpy as np

    t = guard_threshold(np.array(p), np.array(y))
    kept = [yy for pp, yy in zip(p, y, strict=False) if pp >= t]
    assert sum(kept) / len(kept) >= 0.95


def _small_labels() -> list[dict]:
    """Readable labels made for this test: references usable, drafts with markdown unspeakable, loops and
    label-prefixed answers unusable (what a reader says of them), plus a style preference per turn."""
    rows = []
    for t in builtin_turns("dev")[:30]:
        base = t.model_dump(mode="json", exclude={"response", "scores", "findings", "reasons"})
        rows.append({**base, "id": f"{t.id}-ref", "response": t.reference, "usable": True, "reader": "test"})
        rows.append({**base, "id": f"{t.id}-ok", "response": f"Okay. {t.reference}", "usable": True, "reader": "test"})
        rows.append(
            {
                **base,
                "id": f"{t.id}-loop",
                "response": " ".join([t.reference or ""] * 3),
                "usable": False,
                "failure": "loop",
                "reason": "says it three times",
                "reader": "test",
            }
        )
        rows.append(
            {
                **base,
                "id": f"{t.id}-role",
                "response": f"Draft reply: {t.draft}",
                "usable": False,
                "failure": "off_role",
                "reason": "reads its label",
                "reader": "test",
            }
        )
        rows.append(
            {
                **base,
                "id": f"{t.id}-pref",
                "response_a": t.reference,
                "response_b": f"I apologize for any inconvenience. {t.reference} Is there anything else I can assist "
                "you with today?",
                "winner": "a",
                "reader": "test",
                "kind": "style",
            }
        )
    return rows


def test_train_save_load_and_judge_pairs(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _small_labels()), encoding="utf-8")
    responses, preferences = read_labels(path)
    assert len(responses) == 120 and len(preferences) == 30
    judge = train_judge(responses, preferences, tmp_path / "judge", log=lambda m: None)
    loaded = load_judge(tmp_path / "judge")
    assert loaded.meta["responses"] == 120 and loaded.meta["labels"] == judge.meta["labels"]
    turn = builtin_turns("test")[0]
    good, looped = turn.reference or "", " ".join([turn.reference or ""] * 3)
    a, b = loaded.assess([turn, turn], [good, looped])
    assert a.usable and not b.usable and b.failure in FAILURES
    pair = Pair(id="p", history=turn.history, draft=turn.draft, response_a=looped, response_b=good)
    assert loaded.judge_many([pair])[0].winner == "b"


def test_the_test_half_is_never_trained_on(tmp_path):
    rows = _small_labels()
    for row in rows[:40]:
        row["split"] = "test"
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    responses, preferences = read_labels(path)
    judge = train_judge(responses, preferences, None, log=lambda m: None)
    assert judge.meta["responses"] == sum(1 for r in responses if r.split != "test")


def test_bad_labels_name_the_file_and_line(tmp_path, run_cli):
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"id": "x", "response": "Hi there.", "usable": true}\n{"id": "y", "response": "Hi.", "usable": "maybe"}\n',
        encoding="utf-8",
    )
    with pytest.raises(VoicetuneError, match=r"labels.jsonl:2: field 'usable'"):
        read_labels(path)
    result = run_cli("judge", "train", "--labels", path, "--out", tmp_path / "j")
    assert result.returncode == 2 and "labels.jsonl:2" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("judge", "--pairs", path)
    assert result.returncode == 2 and "--output" in result.stderr


class _Stub:
    """A judge whose verdicts are given: text -> (usable_p, style)."""

    def __init__(self, verdicts: dict[str, tuple[float, float]], guard: float = 0.8):
        self.verdicts, self.guard_threshold, self.threshold = verdicts, guard, 0.5

    def assess(self, turns, texts, progress=False):
        out = []
        for text in texts:
            p, style = self.verdicts.get(text, (0.0, 0.0))
            out.append(_assessment(p >= 0.5, p, style))
        return out


def test_best_of_and_the_guard_follow_the_learned_order():
    turn = Turn(id="t", draft="Your refund of $45.00 was issued.", history=[{"role": "user", "text": "My refund?"}])
    judge = _Stub({"slick but wrong": (0.3, 0.99), "plain and right": (0.9, 0.2), "borderline": (0.6, 0.9)})
    choice = pick(turn, ["slick but wrong", "plain and right"], judge=judge)
    assert choice.text == "plain and right"
    guarded = pick(turn, ["slick but wrong", "borderline", "plain and right"], guard=True, judge=judge)
    assert guarded.text == "plain and right" and set(guarded.refused) == {0, 1}
    fallback = pick(
        turn, ["slick but wrong"], guard=True, judge=judge, fallback_text="Your forty-five dollar refund was issued."
    )
    assert fallback.fallback and fallback.text.startswith("Your forty-five")


def test_the_simulated_caller_asks_again_after_an_unusable_turn(monkeypatch, tmp_path):
    import voicetune.simulate.run as simulate_run
    from voicetune.simulate.config import SimConfig
    from voicetune.simulate.run import _Simulator

    turns = builtin_turns("test")[:2]
    for t in turns:
        t.meta["conversation_id"] = "c1"
    good = {t.id: t.reference or "" for t in turns}
    bad = {
        turns[0].id: "Your six-character code is a great way to keep track of your tickets.",
        turns[1].id: good[turns[1].id],
    }
    monkeypatch.setattr(
        simulate_run,
        "default_judge",
        lambda *a, **k: _Stub({**{v: (0.9, 0.5) for v in good.values()}, bad[turns[0].id]: (0.1, 0.9)}),
    )
    config = SimConfig(systems=["reference"], timing="estimate", tts="espeak")

    class Channel:
        def hear(self, text):
            from types import SimpleNamespace

            return SimpleNamespace(text=text, seconds=len(text.split()) / 2.5)

    simulator = _Simulator(
        config,
        Channel(),
        __import__("voicetune.simulate.caller", fromlist=["RuleCaller"]).RuleCaller(config.caller_model),
        {},
    )
    clean = simulator.call("good", "c1", turns, good, 0, 0, config.caller_model)
    garbled = simulator.call("bad", "c1", turns, bad, 0, 0, config.caller_model)
    assert clean.unusable_turns == 0
    assert garbled.unusable_turns == 1 and not garbled.resolved
    assert any(e["kind"] == "unusable_request" and e["text"] == "Sorry, what?" for e in garbled.events)
    assert garbled.repeat_requests >= clean.repeat_requests + 1 and garbled.duration_seconds > clean.duration_seconds


# ------------------------------------------------------------------------------------- the packaged labels


def test_the_packaged_labels_are_large_blind_and_split_by_conversation():
    responses = labelled_responses()
    if not responses:
        pytest.skip("no packaged listener labels")
    assert all(isinstance(r, LabelledResponse) for r in responses[:5])
    halves: dict[str, set] = {}
    for r in responses:
        halves.setdefault(r.meta.get("conversation_id") or r.meta.get("task_id") or r.meta["context_id"], set()).add(
            r.split
        )
    assert all(len(h) == 1 for h in halves.values())
    readers = {r.split: set() for r in responses}
    for r in responses:
        readers[r.split].add(r.reader)
    assert not (readers.get("dev", set()) & readers.get("test", set())), (
        "a reader of the test half labelled training data"
    )
    assert {r.failure for r in responses if not r.usable} <= set(FAILURES)
    assert labelled_preferences()


@pytest.mark.slow
def test_the_default_judge_on_the_held_out_test_half():
    """The judge trained on the dev half, against readers' labels on the test half (never trained on)."""
    responses = [r for r in labelled_responses() if r.split == "test"]
    if len(responses) < 200:
        pytest.skip("no packaged test-half labels")
    judge = default_judge(log=lambda m: None)
    assessed = judge.assess(responses, [r.response or "" for r in responses])
    accuracy = sum(a.usable == r.usable for a, r in zip(assessed, responses, strict=False)) / len(responses)
    bad = [a for a, r in zip(assessed, responses, strict=False) if not r.usable]
    missed = sum(a.usable for a in bad) / len(bad)
    assert accuracy >= 0.8, accuracy
    assert missed <= 0.2, missed
