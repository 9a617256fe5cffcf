"""Labelled pairs from every source, their dev/test split, the agreement report with its bootstrap intervals,
the length baselines, and the judge-agreement benchmark as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from voicetune.data import builtin_pairs, labelled
from voicetune.data.labelled import FAILURE_CLASSES, SOURCES, labelled_pairs, load_labelled_file, split_of
from voicetune.errors import VoicetuneError
from voicetune.judge.agreement import agreement_report, label_agreement, length_baseline
from voicetune.records import Message, Pair

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = REPO_ROOT / "benchmarks" / "judge_agreement.py"

# A made-up τ-bench trajectory (the shape of ../shared/data/tau-bench/gpt-4o-airline.json, none of its text).
FAKE_TAU = [
    {
        "task_id": 7,
        "trial": 0,
        "reward": 1.0,
        "traj": [
            {"role": "system", "content": "# Airline Agent Policy\n\nHelp callers with their bookings."},
            {"role": "user", "content": "Hi, can you tell me when my flight leaves? Reservation ZZ1234."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_reservation", "arguments": '{"id": "ZZ1234"}'},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "name": "get_reservation",
                "content": '{"flight": "HAT101", "departs": "08:15"}',
            },
            {"role": "assistant", "content": "Reservation **ZZ1234**: flight HAT101 departs at 08:15. Anything else?"},
            {"role": "user", "content": "No, thanks."},
            {"role": "assistant", "content": "You're welcome. Have a good trip!"},
        ],
    }
]


def _pair(id: str, draft: str, a: str, b: str, **meta) -> dict:
    return {
        "id": id,
        "domain": "airline",
        "history": [{"role": "user", "text": "When does my flight leave?"}],
        "draft": draft,
        "response_a": a,
        "response_b": b,
        "meta": meta,
    }


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """Empty stand-ins for the three built-in label files, and a made-up shared-data folder."""
    folder = tmp_path / "builtin"
    folder.mkdir()
    monkeypatch.setattr(labelled, "_BUILTIN_DIR", folder)
    labelled._builtin_drafts.cache_clear()
    shared = tmp_path / "shared"
    (shared / "tau-bench").mkdir(parents=True)
    (shared / "tau-bench" / "gpt-4o-airline.json").write_text(json.dumps(FAKE_TAU), encoding="utf-8")
    yield folder, shared
    labelled._builtin_drafts.cache_clear()


def _three_sources(folder: Path) -> None:
    _write(
        folder / "labelled_pairs.jsonl",
        [
            _pair(
                "b1",
                "Flight 418 departs at 7:45 AM.",
                "It leaves at seven forty-five.",
                "Flight 418 departs at 7:45 AM.",
                label="a",
                quality="clarity",
                why="B reads digits",
            ),  # an older line: no failure_class, no source
            _pair(
                "b2",
                "Refund of $42 issued.",
                "Your refund of forty-two dollars is on its way.",
                "It's done.",
                label="a",
                quality="faithfulness",
                failure_class="dropped_fact",
                why="B drops the amount",
                source="builtin",
            ),
        ],
    )
    _write(
        folder / "labelled_pairs_tau.jsonl",
        [
            {
                "id": "t1",
                "turn_id": "tau-airline-7-0-t00",
                "response_a": "Your flight leaves at eight fifteen. Anything else?",
                "response_b": "Reservation Z Z one two three four, flight H A T one zero one, departs at zero eight "
                "fifteen.",
                "meta": {
                    "label": "a",
                    "quality": "clarity",
                    "failure_class": "read_aloud",
                    "why": "B reads codes",
                    "source": "tau-bench",
                },
            },
        ],
    )
    _write(
        folder / "labelled_pairs_synthetic.jsonl",
        [
            _pair(
                "s1",
                "Flight 418 departs at 7:45 AM.",
                "Flight four eighteen leaves at seven forty-five.",
                "Flight four eighteen leaves at seven forty-five. Flight four eighteen leaves at seven forty-five.",
                label="a",
                quality="non_repetition",
                failure_class="repetition",
                why="B says it twice",
                source="synthetic",
                from_turn="b1",
            ),
        ],
    )


# ------------------------------------------------------------------------------------------------ loading


def test_all_three_sources_load_with_defaults_and_splits(sources):
    folder, shared = sources
    _three_sources(folder)
    pairs = labelled_pairs(shared_data=shared)
    assert [p.id for p in pairs] == ["b1", "b2", "t1", "s1"]
    by_id = {p.id: p for p in pairs}
    assert by_id["b1"].meta["failure_class"] == "unclassified" and by_id["b1"].meta["source"] == "builtin"
    assert [p.meta["source"] for p in pairs] == ["builtin", "builtin", "tau-bench", "synthetic"]
    assert all(p.meta["split"] in ("dev", "test") for p in pairs)
    tau = by_id["t1"]  # resolved from the transcripts: context, draft and tool results, none of it in the label file
    assert tau.domain == "airline" and tau.system.startswith("# Airline Agent Policy")
    assert tau.history == [Message(role="user", text="Hi, can you tell me when my flight leaves? Reservation ZZ1234.")]
    assert tau.draft.startswith("Reservation **ZZ1234**")
    assert "HAT101" in tau.meta["tool_results"][0] and tau.meta["turn_id"] == "tau-airline-7-0-t00"
    assert [p.id for p in labelled_pairs(["synthetic", "builtin"], shared_data=shared)] == ["b1", "b2", "s1"]
    halves = {split: {p.id for p in labelled_pairs(split=split, shared_data=shared)} for split in ("dev", "test")}
    assert halves["dev"] | halves["test"] == set(by_id) and not halves["dev"] & halves["test"]


def test_shared_data_comes_from_the_environment(sources, monkeypatch):
    folder, shared = sources
    _three_sources(folder)
    monkeypatch.setenv("VOICETUNE_SHARED_DATA", str(shared))
    assert [p.id for p in labelled_pairs(["tau-bench"])] == ["t1"]


def test_tau_source_is_skipped_with_a_warning_without_shared_data(sources, tmp_path, monkeypatch):
    folder, _ = sources
    _three_sources(folder)
    monkeypatch.setenv("VOICETUNE_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match="absent.*tau-bench labelled pairs"):
        pairs = labelled_pairs()
    assert [p.id for p in pairs] == ["b1", "b2", "s1"]


def test_sources_not_written_yet_have_no_pairs(sources):
    folder, shared = sources
    _write(folder / "labelled_pairs.jsonl", [_pair("b1", "d", "x", "y z", label="b", quality="conciseness")])
    assert [p.id for p in labelled_pairs(shared_data=shared)] == ["b1"]


def test_unknown_turn_id_is_an_error_naming_the_line(sources):
    folder, shared = sources
    _three_sources(folder)
    path = folder / "labelled_pairs_tau.jsonl"
    line = json.loads(path.read_text())
    _write(path, [line, {**line, "id": "t2", "turn_id": "tau-airline-99-0-t00"}])
    with pytest.raises(VoicetuneError, match=r"labelled_pairs_tau\.jsonl:2: .*tau-airline-99-0-t00"):
        labelled_pairs(["tau-bench"], shared_data=shared)


@pytest.mark.parametrize(
    "meta, field",
    [
        ({"label": "c", "quality": "clarity"}, "meta.label"),
        ({"label": "a", "quality": "speed"}, "meta.quality"),
        ({"label": "a", "quality": "clarity", "failure_class": "rude"}, "meta.failure_class"),
        ({"label": "a", "quality": "clarity", "source": "synthetic"}, "meta.source"),
    ],
)
def test_a_bad_label_in_a_builtin_file_names_file_line_and_field(sources, meta, field):
    folder, shared = sources
    _write(
        folder / "labelled_pairs.jsonl",
        [_pair("b1", "d", "x", "y", label="a", quality="clarity"), _pair("b2", "d2", "x", "y", **meta)],
    )
    with pytest.raises(VoicetuneError, match=rf"labelled_pairs\.jsonl:2: field '{field}'"):
        labelled_pairs(["builtin"], shared_data=shared)


def test_real_tau_labels_resolve_against_the_real_transcripts(shared_data):
    path = labelled.source_file("tau-bench")
    if not path.exists():
        pytest.skip("labelled_pairs_tau.jsonl is not written yet")
    pairs = labelled_pairs(["tau-bench"], shared_data=shared_data)
    assert pairs and all(p.draft and p.history and p.meta["source"] == "tau-bench" for p in pairs)
    assert all(p.meta["failure_class"] in FAILURE_CLASSES or p.meta["failure_class"] == "unclassified" for p in pairs)


def test_the_real_label_files_load():
    pairs = labelled_pairs(["builtin", "synthetic"])
    assert len(pairs) >= 70
    assert {p.meta["source"] for p in pairs} <= set(SOURCES)
    assert len({p.id for p in pairs}) == len(pairs)
    assert [p.id for p in builtin_pairs()] == [p.id for p in pairs if p.meta["source"] == "builtin"]  # still works


def test_a_users_file_needs_only_label_and_quality(tmp_path):
    path = _write(
        tmp_path / "mine.jsonl",
        [
            _pair(
                "m1",
                "Flight 418 departs at 7:45 AM.",
                "It leaves at seven forty-five.",
                "Flight 418 at 7:45.",
                label="a",
                quality="clarity",
            ),
            _pair("m2", "Refund issued.", "Done.", "Your refund is issued.", label="b"),
        ],
    )
    pairs = load_labelled_file(path)
    assert [p.meta["quality"] for p in pairs] == ["clarity", "unlabelled"]
    assert {p.meta["failure_class"] for p in pairs} == {"unclassified"}
    assert {p.meta["source"] for p in pairs} == {"mine"}
    assert [p.meta["split"] for p in pairs] == [split_of(p) for p in pairs]


@pytest.mark.parametrize(
    "second_line, message",
    [
        ("{not json", r"mine\.jsonl:2: malformed JSON"),
        (json.dumps(_pair("m2", "d", "x", "y", quality="clarity")), r"mine\.jsonl:2: field 'meta\.label'"),
        (
            json.dumps({"id": "m2", "response_a": "x", "meta": {"label": "a"}}),
            r"mine\.jsonl:2: missing field 'response_b'",
        ),
        (json.dumps(_pair("m1", "d", "x", "y", label="a")), r"mine\.jsonl:2: id 'm1' on line 2 is already on line 1"),
    ],
)
def test_errors_in_a_users_file_name_file_and_line(tmp_path, second_line, message):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(_pair("m1", "d", "x", "y", label="a")) + "\n" + second_line + "\n", encoding="utf-8")
    with pytest.raises(VoicetuneError, match=message):
        load_labelled_file(path)


# ------------------------------------------------------------------------------------------------ splits


def test_split_is_a_stable_hash_of_the_draft():
    def pair(draft: str, **update) -> Pair:
        return Pair(id="x", draft=draft, response_a="a", response_b="b").model_copy(update=update)

    # Fixed values: a change of the rule would silently move pairs between dev and test.
    assert split_of(pair("Flight 418 departs at 7:45 AM.")) == "dev"
    assert split_of(pair("Your refund of $42 is on its way.")) == "test"
    assert split_of(pair("Flight  418 departs\nat 7:45 AM. ")) == "dev"  # white space does not matter
    assert split_of(pair("Your refund of $42 is on its way.", id="other", response_a="zzz")) == "test"


def test_real_builtin_split_is_deterministic_and_balanced():
    first = {p.id: p.meta["split"] for p in labelled_pairs(["builtin"])}
    again = {p.id: p.meta["split"] for p in labelled_pairs(["builtin"])}
    assert first == again
    share = Counter(first.values())["test"] / len(first)
    assert 0.4 <= share <= 0.6, share


def test_pairs_about_one_context_never_straddle_the_split():
    pairs = labelled_pairs(["builtin", "synthetic"])
    by_draft: dict[str, set[str]] = {}
    for pair in pairs:
        by_draft.setdefault(" ".join(pair.draft.split()), set()).add(pair.meta["split"])
    assert all(len(splits) == 1 for splits in by_draft.values())
    base = pairs[0]
    for variant in (
        base.model_copy(update={"id": "v", "response_a": "Something else.", "meta": {}}),
        base.model_copy(update={"id": "w", "history": [], "facts": None}),
    ):
        assert split_of(variant) == base.meta["split"]
    # a synthetic pair takes the draft of the built-in turn it came from, whatever its own draft says
    synthetic = Pair(id="s", draft="A rewritten draft.", response_a="a", response_b="b", meta={"from_turn": base.id})
    assert split_of(synthetic) == base.meta["split"]


# ------------------------------------------------------------------------------------------------ report


def _judged(outcomes: str, **meta) -> list[Pair]:
    """Pairs labelled "a" whose winner is given per character: A agree, B disagree, T tie, E error."""
    winners = {"A": "a", "B": "b", "T": "tie", "E": None}
    return [
        Pair(id=f"p{i}", response_a="x", response_b="y", winner=winners[c], meta={"label": "a", **meta})
        for i, c in enumerate(outcomes)
    ]


def test_agreement_report_counts_and_its_interval_contains_the_accuracy():
    judged = (
        _judged("AAAAAAAAAABBBT", quality="clarity", failure_class="read_aloud", source="builtin")
        + _judged("AAAABBE", quality="faithfulness", source="tau-bench")
        + [Pair(id="u", response_a="x", response_b="y", winner="a", meta={})]
    )
    report = agreement_report(judged)
    overall = report["overall"]
    assert (overall["n"], overall["agree"], overall["disagree"], overall["ties"], overall["errors"]) == (
        21,
        14,
        5,
        1,
        1,
    )
    assert overall["accuracy"] == round(14 / 21, 4) and report["unlabelled"] == 1
    assert list(report["groups"]) == ["quality", "failure_class", "source"]
    assert list(report["groups"]["quality"]) == ["clarity", "faithfulness"]
    assert list(report["groups"]["failure_class"]) == ["read_aloud", "unclassified"]
    assert report["groups"]["source"]["tau-bench"]["errors"] == 1
    rows = [overall] + [row for group in report["groups"].values() for row in group.values()]
    for row in rows:
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert 0.4 < overall["ci_low"] < overall["accuracy"] < overall["ci_high"] < 0.9
    assert agreement_report(judged) == report  # the same seed: the same intervals
    assert agreement_report(judged, seed=1)["overall"]["ci_low"] is not None
    assert label_agreement(judged)["agree"] == 14  # the old summary still works


def test_length_baselines_on_three_pairs():
    pairs = [
        Pair(
            id="1",
            response_a="Leaves at eight.",
            response_b="It leaves at eight in the morning, I think.",
            meta={"label": "a", "quality": "conciseness"},
        ),
        Pair(
            id="2",
            response_a="Sure thing, your refund is on its way now.",
            response_b="Refund sent.",
            meta={"label": "b", "quality": "conciseness"},
        ),
        Pair(id="3", response_a="one two three", response_b="four five six", meta={"label": "a", "quality": "clarity"}),
    ]
    shorter, longer = length_baseline(pairs, "shorter"), length_baseline(pairs, "longer")
    assert [p.winner for p in shorter] == ["a", "b", "tie"]
    assert [p.winner for p in longer] == ["b", "a", "tie"]
    assert shorter[0].rationale == "A 3 words, B 9 words"
    short, long = agreement_report(shorter)["overall"], agreement_report(longer)["overall"]
    assert (short["n"], short["agree"], short["disagree"], short["ties"]) == (3, 2, 0, 1)
    assert (long["n"], long["agree"], long["disagree"], long["ties"]) == (3, 0, 2, 1)
    assert agreement_report(shorter)["groups"]["quality"]["conciseness"]["accuracy"] == 1.0
    assert pairs[0].winner is None  # pure: the input is left alone
    with pytest.raises(ValueError):
        length_baseline(pairs, "middle")


# ------------------------------------------------------------------------------------------------ benchmark


def test_benchmark_runs_on_a_users_file(tmp_path):
    pairs = _write(
        tmp_path / "mine.jsonl",
        [
            _pair(
                "m1",
                "Flight 418 departs at 7:45 AM.",
                "Your flight leaves at seven forty-five in the morning.",
                "**Flight 418** departs at 7:45 AM.",
                label="a",
                quality="clarity",
                failure_class="read_aloud",
            ),
            _pair(
                "m2",
                "Refund of $42 issued.",
                "Your refund of forty-two dollars is on its way.",
                "Your refund is on its way.",
                label="a",
                quality="faithfulness",
                failure_class="dropped_fact",
            ),
            _pair(
                "m3",
                "Your bag fee is $35.",
                "The bag fee is thirty-five dollars.",
                "As an AI language model, I must inform you that the bag fee is thirty-five dollars, kindly note.",
                label="a",
                quality="humanness",
            ),
        ],
    )
    scorer = tmp_path / "scorer.yaml"
    scorer.write_text("meaning:\n  model: none\n", encoding="utf-8")  # no NLI model: fast and the same everywhere
    out = tmp_path / "report.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--pairs", str(pairs), "--scorer-config", str(scorer), "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "split all: 3 of 3" in text
    for heading in (
        "rubric accuracy [95% CI]",
        "shorter-wins",
        "longer-wins",
        "overall",
        "by quality",
        "by failure class",
        "by source",
        "clarity",
        "read_aloud",
        "unclassified",
        "mine",
    ):
        assert heading in text, heading
    report = json.loads(out.read_text())
    assert report["judge"]["overall"]["n"] == 3 and len(report["pairs"]) == 3
    assert report["shorter"]["overall"]["agree"] == 1 and report["longer"]["overall"]["agree"] == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text(pairs.read_text() + "{oops\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--pairs", str(bad), "--split", "test"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2 and "bad.jsonl:4: malformed JSON" in result.stderr
