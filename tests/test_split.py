"""Splits by conversation and by task: nothing straddles two splits, nothing is lost, same seed same split."""

from __future__ import annotations

import pytest

import voicetune
from voicetune import Turn, VoicetuneError, import_transcripts, split_records
from voicetune.data.split import SPLITS, group_key


def _turns(conversations: int, per_conversation: int = 3, task_trials: int = 1) -> list[Turn]:
    """Turns of ``conversations`` conversations; with ``task_trials`` > 1, that many conversations share a task."""
    turns = []
    for c in range(conversations):
        meta = {"conversation_id": f"conv-{c}"}
        if task_trials > 1:
            meta["task_id"] = f"task-{c // task_trials}"
        for t in range(per_conversation):
            turns.append(Turn(id=f"conv-{c}-t{t:02d}", draft="Hello.", meta={**meta, "turn_index": t}))
    return turns


def _owner(parts: dict[str, list[Turn]], key) -> dict[str, str]:
    owner: dict[str, str] = {}
    for name, part in parts.items():
        for turn in part:
            assert owner.setdefault(key(turn), name) == name, f"{key(turn)} is in {owner[key(turn)]} and {name}"
    return owner


def _ids(parts):
    return sorted(t.id for part in parts.values() for t in part)


def _assignment(parts):
    return {name: sorted(t.id for t in part) for name, part in parts.items()}


def test_every_conversation_in_exactly_one_split():
    turns = _turns(40)
    parts = split_records(turns)
    assert set(parts) == set(SPLITS)
    assert _ids(parts) == sorted(t.id for t in turns)
    owner = _owner(parts, lambda t: t.meta["conversation_id"])
    assert len(owner) == 40
    assert all(parts.values())


def test_every_task_in_exactly_one_split():
    turns = _turns(40, task_trials=4)  # 10 tasks, 4 trials each
    parts = split_records(turns, (0.6, 0.2, 0.2), seed=1)
    assert _ids(parts) == sorted(t.id for t in turns)
    tasks = _owner(parts, lambda t: t.meta["task_id"])
    assert len(tasks) == 10
    _owner(parts, lambda t: t.meta["conversation_id"])
    for part in parts.values():
        assert len(part) % 12 == 0  # whole tasks: 4 trials x 3 turns


def test_group_key_prefers_task_then_conversation_then_id():
    assert group_key(Turn(id="x", meta={"task_id": "t1", "conversation_id": "c1"})) == "task_id:t1"
    assert group_key(Turn(id="x", meta={"task_id": "", "conversation_id": "c1"})) == "conversation_id:c1"
    assert group_key(Turn(id="x")) == "id:x"


def test_turns_without_conversation_are_split_one_by_one():
    turns = [Turn(id=f"t{i}") for i in range(50)]
    parts = split_records(turns)
    assert _ids(parts) == sorted(t.id for t in turns)
    assert len(parts["train"]) == 40 and len(parts["dev"]) == 5 and len(parts["test"]) == 5


def test_deterministic_for_a_seed():
    turns = _turns(30)
    first = split_records(turns, seed=7)
    again = split_records(list(turns), seed=7)
    assert {k: [t.id for t in v] for k, v in first.items()} == {k: [t.id for t in v] for k, v in again.items()}
    others = [split_records(turns, seed=seed) for seed in range(1, 6)]
    assert any(_assignment(other) != _assignment(first) for other in others)


def test_input_order_does_not_matter_for_the_assignment():
    turns = _turns(30)
    forward = split_records(turns, seed=3)
    backward = split_records(list(reversed(turns)), seed=3)
    assert _assignment(forward) == _assignment(backward)


def test_small_dataset_still_gets_dev_and_test():
    parts = split_records(_turns(4, per_conversation=2))
    assert parts["dev"] and parts["test"] and parts["train"]
    assert all(len(part) % 2 == 0 for part in parts.values())  # whole conversations
    _owner(parts, lambda t: t.meta["conversation_id"])


def test_zero_ratio_split_stays_empty():
    parts = split_records(_turns(20), (0.9, 0.0, 0.1))
    assert parts["dev"] == []
    assert parts["train"] and parts["test"]
    assert split_records(_turns(5), (1, 0, 0))["train"] and not split_records(_turns(5), (1, 0, 0))["test"]


def test_ratios_are_normalised():
    a = split_records(_turns(30), (8, 1, 1))
    b = split_records(_turns(30), (0.8, 0.1, 0.1))
    assert _assignment(a) == _assignment(b)


def test_roughly_matches_ratios_on_builtin_data():
    turns = voicetune.builtin_turns()
    parts = split_records(turns)
    _owner(parts, lambda t: t.meta["conversation_id"])
    assert _ids(parts) == sorted(t.id for t in turns)
    shares = {name: len(part) / len(turns) for name, part in parts.items()}
    assert shares["train"] == pytest.approx(0.8, abs=0.05)
    assert shares["dev"] == pytest.approx(0.1, abs=0.04)
    assert shares["test"] == pytest.approx(0.1, abs=0.04)
    assert [t.id for t in voicetune.builtin_turns("test")] == [t.id for t in parts["test"]]


def test_builtin_splits_are_disjoint_and_cover_everything():
    ids = {name: {t.id for t in voicetune.builtin_turns(name)} for name in SPLITS}
    assert not (ids["train"] & ids["dev"]) and not (ids["train"] & ids["test"]) and not (ids["dev"] & ids["test"])
    assert set().union(*ids.values()) == {t.id for t in voicetune.builtin_turns()}


def test_real_tau_bench_tasks_do_not_straddle_splits(shared_data):
    path = shared_data / "tau-bench" / "gpt-4o-airline.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    turns = import_transcripts(path, "tau-bench")
    parts = split_records(turns)
    assert _ids(parts) == sorted(t.id for t in turns)
    tasks = _owner(parts, lambda t: t.meta["task_id"])
    _owner(parts, lambda t: t.meta["conversation_id"])
    assert set(tasks.values()) == set(SPLITS)
    trials = {}
    for turn in turns:
        trials.setdefault(turn.meta["task_id"], set()).add(turn.meta["trial"])
    assert max(len(t) for t in trials.values()) > 1  # the sample does have several trials per task


@pytest.mark.parametrize(
    "ratios",
    [(0.8, 0.2), (0.5, 0.3, 0.1, 0.1), (-0.1, 0.6, 0.5), (0, 0, 0), ()],
    ids=["two", "four", "negative", "all zero", "none"],
)
def test_bad_ratios_raise(ratios):
    with pytest.raises(VoicetuneError, match="ratios"):
        split_records(_turns(5), ratios)


# Regression: a NaN ratio passed the checks and put every turn in train.
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_ratio_is_refused(bad):
    with pytest.raises(VoicetuneError, match="ratios"):
        split_records(_turns(10), (bad, 0.1, 0.1))
