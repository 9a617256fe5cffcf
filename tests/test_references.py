"""The spoken references: every turn a voice can be trained on, with its reference and facts, split by
conversation, and τ-bench text read from ../shared only (never stored in the package)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from voicetune.data import load_turns
from voicetune.data.labelled import default_shared_data
from voicetune.data.references import HERE, SPLITS, reference_turns
from voicetune.data.split import group_key
from voicetune.errors import VoicetuneError

TAU = (default_shared_data() / "tau-bench" / "gpt-4o-airline.json").is_file()


def test_every_reference_is_usable_text_with_facts_from_its_draft():
    turns = reference_turns(source="conversations") + reference_turns(source="builtin")
    assert len(turns) > 1500
    for turn in turns:
        assert turn.reference.strip() and turn.draft.strip()
        assert "**" not in turn.reference and "\n" not in turn.reference.strip()
    squashed = lambda text: " ".join(text.split()).lower()  # noqa: E731
    written = reference_turns(source="conversations")
    assert all(squashed(fact) in squashed(t.draft) for t in written for fact in t.facts or [])


def test_conversations_never_straddle_splits():
    turns = reference_turns()
    split_of: dict[str, set[str]] = {}
    for turn in turns:
        split_of.setdefault(group_key(turn), set()).add(turn.meta["reference_split"])
    assert all(len(splits) == 1 for splits in split_of.values())
    assert {t.meta["reference_split"] for t in turns} == set(SPLITS)


def test_the_listener_test_half_is_never_training_data():
    from voicetune.data.listener import contexts

    test_contexts = {cid for cid, turn in contexts().items() if turn.meta["pool_split"] == "test"}
    assert test_contexts, "the listener labels have a test half"
    assert not test_contexts & {t.id for t in reference_turns("train")}


def test_domains_and_the_spoken_data_spec():
    domains = Counter(t.domain for t in reference_turns())
    assert len(domains) >= 8
    assert {t.id for t in load_turns("spoken:dev")} == {t.id for t in reference_turns("dev")}
    with pytest.raises(VoicetuneError, match="unknown split"):
        reference_turns("holdout")
    with pytest.raises(VoicetuneError, match="unknown reference source"):
        load_turns("spoken:test:nowhere")


def test_tau_bench_text_is_not_stored_in_the_package():
    rows = [
        json.loads(line) for line in (HERE / "tau_bench.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    assert rows and all(set(row) == {"id", "reference", "facts"} for row in rows)


@pytest.mark.skipif(not TAU, reason="../shared/data (τ-bench transcripts) is absent")
def test_every_tau_bench_agent_turn_has_a_reference():
    tau = reference_turns(source="tau-bench")
    assert len(tau) >= 1500 and len(reference_turns()) >= 3000
    held_out = {t.meta["task_id"] for t in tau if t.meta["reference_split"] == "test" and "task_id" in t.meta}
    trained = {t.meta["task_id"] for t in tau if t.meta["reference_split"] == "train" and "task_id" in t.meta}
    assert held_out and not held_out & trained
