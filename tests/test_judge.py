"""The rubric judge: symmetric, picks the clearly better response, and agrees with the hand labels."""

from __future__ import annotations

import pytest

import voicetune
from voicetune import Message, Pair, judge_pairs, label_agreement
from voicetune.judge.rubric import TIE_MARGIN, compare, judge_pair
from voicetune.records import QUALITIES

SWAP = {"a": "b", "b": "a", "tie": "tie"}


def _swapped(pair: Pair) -> Pair:
    return pair.model_copy(update={"response_a": pair.response_b, "response_b": pair.response_a})


def test_swapping_responses_swaps_every_verdict_on_builtin_pairs():
    pairs = voicetune.builtin_pairs()
    assert len(pairs) >= 20
    judged = judge_pairs(pairs)
    swapped = judge_pairs([_swapped(p) for p in pairs])
    for original, mirror in zip(judged, swapped, strict=False):
        assert mirror.winner == SWAP[original.winner], original.id
        assert set(original.criteria) == set(QUALITIES)
        for name in QUALITIES:
            assert mirror.criteria[name] == SWAP[original.criteria[name]], (original.id, name)


def test_clearly_better_response_wins():
    pair = Pair(
        id="p",
        history=[Message(role="user", text="When does my flight leave?")],
        draft="Flight HAT069 departs at 06:00 AM on 2024-05-20. Is there anything else I can help you with?",
        response_a=(
            "As an AI language model, I am pleased to inform you that **Flight:** HAT069 departs at 06:00 AM on "
            "2024-05-20. Is there anything else I can help you with today?"
        ),
        response_b="It leaves at six in the morning on May twentieth. That's flight H A T zero six nine.",
    )
    judged = judge_pair(pair)
    assert judged.winner == "b"
    assert judged.criteria["clarity"] == "b"
    assert judged.criteria["humanness"] == "b"
    assert judged.criteria["faithfulness"] == "tie"
    assert judged.rationale.startswith("A ") and "B " in judged.rationale
    assert "as an AI" in judged.rationale
    assert pair.winner is None  # the input pair is not changed


def test_faithful_response_beats_a_smooth_wrong_one():
    pair = Pair(
        id="p",
        history=[Message(role="user", text="How much is the change fee?")],
        draft="The change fee is $75.",
        response_a="It's a hundred and fifty dollars.",
        response_b="It's seventy-five dollars.",
    )
    judged = judge_pair(pair)
    assert judged.winner == "b"
    assert judged.criteria["faithfulness"] == "b"


def test_identical_responses_tie():
    pair = Pair(
        id="p", draft="Hello.", response_a="Hi, what can I do for you?", response_b="Hi, what can I do for you?"
    )
    judged = judge_pair(pair)
    assert judged.winner == "tie"
    assert set(judged.criteria.values()) == {"tie"}


def test_compare_margin():
    assert compare(0.8, 0.7) == "a"
    assert compare(0.7, 0.8) == "b"
    assert compare(0.80, 0.80 + TIE_MARGIN / 2) == "tie"
    assert compare(0.5, 0.5, margin=0.0) == "tie"


def _pair(id: str, label: str | None, winner: str, quality: str = "clarity") -> Pair:
    meta = {"quality": quality} if label is None else {"label": label, "quality": quality}
    return Pair(id=id, response_a="a a", response_b="b b", winner=winner, meta=meta)


def test_label_agreement_counts():
    judged = [
        _pair("1", "a", "a", "clarity"),
        _pair("2", "b", "b", "clarity"),
        _pair("3", "a", "b", "faithfulness"),
        _pair("4", "b", "tie", "faithfulness"),
        _pair("5", None, "a"),  # unlabelled: not counted
    ]
    result = label_agreement(judged)
    assert (result["n"], result["agree"], result["disagree"], result["ties"]) == (4, 2, 1, 1)
    assert result["accuracy"] == 0.5
    assert result["per_quality"] == {
        "clarity": {"n": 2, "agree": 2, "accuracy": 1.0},
        "faithfulness": {"n": 2, "agree": 0, "accuracy": 0.0},
    }


def test_label_agreement_without_labels():
    result = label_agreement([_pair("1", None, "a")])
    assert result["n"] == 0
    assert result["accuracy"] is None
    assert label_agreement([])["n"] == 0


def test_rubric_agrees_with_builtin_labels():
    pairs = voicetune.builtin_pairs()
    assert all(p.meta.get("label") in ("a", "b") for p in pairs)
    assert {p.meta["label"] for p in pairs} == {"a", "b"}  # labels are not all on one side
    result = label_agreement(judge_pairs(pairs))
    print(
        f"\nrubric judge agrees with {result['agree']}/{result['n']} labelled pairs ({result['accuracy']:.1%}), "
        f"{result['ties']} ties, {result['disagree']} disagreements"
    )
    assert result["n"] == len(pairs)
    assert result["accuracy"] >= 0.7


@pytest.mark.parametrize("pair", voicetune.builtin_pairs()[:5], ids=lambda p: p.id)
def test_judged_pair_round_trips_through_records(tmp_path, pair):
    judged = judge_pair(pair)
    voicetune.write_records(tmp_path / "j.jsonl", [judged])
    assert voicetune.load_records(tmp_path / "j.jsonl", Pair) == [judged]
