"""The gated voice score: ranges, the faithfulness gate, scoring records, and drafts vs references on the
built-in data."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import voicetune
from voicetune import Message, Pair, Turn, VoicetuneError, score_records, score_response
from voicetune.judge.rubric import TIE_MARGIN, judge_pair
from voicetune.quality import Finding, count_findings, load_scorer_config, render
from voicetune.quality import config as config_module
from voicetune.quality import findings as findings_module
from voicetune.quality.facts import turn_facts
from voicetune.quality.findings import INVENTED, KINDS, TEMPLATES, has_finding
from voicetune.quality.scorer import ScorerConfig, combine
from voicetune.records import QUALITIES

TURN = Turn(
    id="fee",
    history=[
        Message(role="user", text="I need to move my flight to Friday."),
        Message(role="agent", text="Sure, let me look that up."),
        Message(role="user", text="How much is the change?"),
    ],
    draft="The change fee is **$75.00** and your new flight departs at 7:45 AM on 2024-05-17. Shall I book it?",
)
FAITHFUL = (
    "It's a seventy-five dollar change fee, and the new flight leaves at seven forty-five a.m. on May "
    "seventeenth. Want me to book it?"
)
MARKDOWN = "- **Fee:** $75.00\n- **Departs:** 7:45 AM\n- **Date:** 2024-05-17"


def test_score_response_has_every_quality_in_unit_range():
    for response in (FAITHFUL, MARKDOWN, "Let me check on that for you.", TURN.draft):
        result = score_response(TURN, response)
        assert set(result.scores) == {*QUALITIES, "voice_score"}
        assert all(0.0 <= value <= 1.0 for value in result.scores.values())
        assert result.voice_score == result.scores["voice_score"]


def test_clean_faithful_response_scores_high():
    result = score_response(TURN, FAITHFUL)
    assert result.voice_score >= 0.9, result.reasons
    assert result.scores["faithfulness"] == 1.0


@pytest.mark.parametrize("response", ["", "   ", "Okay."])
def test_empty_response_scores_zero(response):
    result = score_response(TURN, response)
    assert result.scores == {**{name: 0.0 for name in QUALITIES}, "voice_score": 0.0}
    assert result.reasons == ["says nothing"]


def test_gate_puts_unfaithful_responses_below_a_faithful_badly_formatted_one():
    markdown = score_response(TURN, MARKDOWN)
    assert markdown.scores["faithfulness"] == 1.0
    assert markdown.scores["clarity"] < 0.7  # it is badly formatted...
    evasive = score_response(TURN, "Let me check on that for you.")
    empty = score_response(TURN, "")
    invented = score_response(
        TURN,
        "The change fee is a hundred and fifty dollars, and it leaves at seven forty-five in the morning on May "
        "seventeenth.",
    )
    assert any("$150" in reason for reason in invented.reasons)
    for bad in (evasive, empty, invented):
        assert bad.voice_score < markdown.voice_score  # ...but it still beats what is wrong or empty
        assert bad.voice_score <= 0.5  # faithfulness <= 0.5 gates the score to at most that
    assert score_response(TURN, FAITHFUL).voice_score > markdown.voice_score


def test_combine_gate_bounds():
    perfect_style = {name: 1.0 for name in QUALITIES}
    weights = ScorerConfig().style_weights
    assert combine(perfect_style, weights) == 1.0
    assert combine({**perfect_style, "faithfulness": 0.5}, weights) == 0.5
    assert combine({**perfect_style, "faithfulness": 0.5}, weights, gate_power=2.0) == 0.25
    worst_style = {**{name: 0.0 for name in QUALITIES}, "faithfulness": 1.0}
    assert combine(worst_style, weights) == pytest.approx(0.2)
    # Sharpness 3: a style mean of 0.9 counts as 0.7; sharpness 1 is the plain mean.
    nine_tenths = {**{name: 0.9 for name in QUALITIES}, "faithfulness": 1.0}
    assert combine(nine_tenths, weights) == pytest.approx(0.2 + 0.8 * 0.7)
    assert combine(nine_tenths, weights, style_sharpness=1.0) == pytest.approx(0.2 + 0.8 * 0.9)
    assert combine({**perfect_style, "faithfulness": 0.0}, weights) == 0.0


def test_given_facts_override_the_draft():
    turn = TURN.model_copy(update={"facts": ["$75.00"]})
    assert [f.text for f in turn_facts(turn)] == ["$75.00"]
    result = score_response(turn, "It's seventy-five dollars to change. Want me to book it?")
    assert result.scores["faithfulness"] == 1.0
    assert score_response(TURN, "It's seventy-five dollars to change. Want me to book it?").scores["faithfulness"] < 1.0


def test_repeated_code_from_last_turn_costs_non_repetition():
    turn = Turn(
        id="r",
        history=[
            Message(role="user", text="What's my confirmation?"),
            Message(role="agent", text="Your confirmation code is HAT069."),
            Message(role="user", text="Great, and is my seat a window?"),
        ],
        draft="Yes, seat 14A is a window seat.",
    )
    plain = score_response(turn, "Yes, fourteen A is a window.")
    repeated = score_response(turn, "Yes, on H A T zero six nine, fourteen A is a window.")
    assert repeated.scores["non_repetition"] < plain.scores["non_repetition"]
    assert any("HAT069" in reason for reason in repeated.reasons)


def test_espeak_config_is_validated():
    with pytest.raises(ValueError):
        ScorerConfig(tts="festival")
    with pytest.raises(ValueError):
        ScorerConfig(words_per_minute=0)


def test_score_records_each_field():
    turns = [
        TURN.model_copy(update={"id": "a", "reference": FAITHFUL, "response": MARKDOWN}),
        TURN.model_copy(update={"id": "b", "reference": FAITHFUL, "response": "Let me check on that for you."}),
    ]
    for field in ("draft", "reference", "response"):
        scored = score_records(turns, field=field)
        assert [t.id for t in scored] == ["a", "b"]
        for turn in scored:
            assert set(turn.scores) == {*QUALITIES, "voice_score"}
            assert turn.scores["voice_score"] == score_response(turn, getattr(turn, field)).voice_score
    assert turns[0].scores is None  # the input records are not changed
    by_field = {field: score_records(turns, field=field)[0].scores["voice_score"] for field in ("draft", "reference")}
    assert by_field["reference"] > by_field["draft"]


def test_score_records_missing_field_names_the_record():
    turns = [Turn(id="has-draft", draft="Hi."), Turn(id="no-response", draft="Hi.")]
    with pytest.raises(VoicetuneError, match="no-response.*'response'|has-draft.*'response'"):
        score_records(turns, field="response")
    with pytest.raises(VoicetuneError, match="'reference'"):
        score_records(turns, field="reference")


def test_score_records_unknown_field():
    with pytest.raises(VoicetuneError, match="summary"):
        score_records([Turn(id="x", draft="Hi.")], field="summary")


def test_builtin_references_beat_their_drafts():
    turns = voicetune.builtin_turns()
    assert len(turns) >= 100
    drafts = score_records(turns, field="draft")
    references = score_records(turns, field="reference")
    losers = [
        d.id for d, r in zip(drafts, references, strict=False) if r.scores["voice_score"] <= d.scores["voice_score"]
    ]
    share = 1 - len(losers) / len(turns)
    print(
        f"\nbuilt-in reference beats its draft on {len(turns) - len(losers)}/{len(turns)} turns ({share:.1%}); not: "
        f"{losers}"
    )
    assert len(drafts) == len(references) == len(turns)
    assert share >= 0.95


# ---------------------------------------------------------------------------------------------------------
# typed findings

INVENTED_RESPONSE = (
    "The change fee is a hundred and fifty dollars, and it leaves at seven forty-five in the morning "
    "on May seventeenth."
)


def test_findings_are_typed_and_render_the_reasons():
    result = score_response(TURN, MARKDOWN)
    assert result.findings and all(isinstance(f, Finding) for f in result.findings)
    assert result.reasons == [render(f) for f in result.findings]
    assert {f.kind for f in result.findings} <= KINDS
    assert all(f.quality in QUALITIES for f in result.findings)
    assert all(f.penalty > 0 for f in result.findings)
    assert count_findings(result.findings, {"markdown_emphasis", "list_bullets"}) == 2
    invented = score_response(TURN, INVENTED_RESPONSE)
    assert [(f.kind, f.text) for f in invented.findings if f.kind in INVENTED] == [("invented_amount", "$150")]
    assert count_findings(invented.findings, INVENTED) == 1 and has_finding(invented.findings, "invented_amount")
    assert not has_finding(score_response(TURN, FAITHFUL).findings, INVENTED)


def test_says_nothing_is_an_overall_finding():
    result = score_response(TURN, "Okay.")
    assert [(f.kind, f.quality) for f in result.findings] == [("says_nothing", "overall")]


def test_rewording_a_template_changes_no_score_and_no_count(monkeypatch):
    turns = voicetune.builtin_turns()[:40]
    before = [score_response(t, t.draft) for t in turns]
    old_reasons = [result.reasons for result in before]
    reworded = {kind: f"[{kind}] {template} (reworded)" for kind, template in TEMPLATES.items()}
    monkeypatch.setattr(findings_module, "TEMPLATES", reworded)
    after = [score_response(t, t.draft) for t in turns]
    for old, new in zip(before, after, strict=False):
        assert new.scores == old.scores
        for kind in KINDS:
            assert count_findings(new.findings, kind) == count_findings(old.findings, kind)
        assert all(reason.startswith("[") for reason in new.reasons)
    assert [len(reasons) for reasons in old_reasons] == [len(result.reasons) for result in after]
    assert any(old != new.reasons for old, new in zip(old_reasons, after, strict=False) if old)


def test_score_records_writes_findings_as_plain_dicts():
    record = TURN.model_copy(update={"id": "x", "response": INVENTED_RESPONSE})
    scored = score_records([record])[0]
    assert scored.findings and all(isinstance(f, dict) for f in scored.findings)
    assert count_findings(scored.findings, INVENTED) == 1
    assert [render(Finding.model_validate(f)) for f in scored.findings] == scored.reasons
    assert Turn.model_validate_json(scored.model_dump_json()).findings == scored.findings


def test_render_gives_the_readme_sentences():
    assert (
        render(Finding(kind="invented_amount", quality="faithfulness", text="$150"))
        == "states $150 that the context does not contain"
    )
    assert (
        render(Finding(kind="dropped_fact", quality="faithfulness", text="$45.00", values={"fact_kind": "money"}))
        == "drops the amount $45.00"
    )
    assert (
        render(Finding(kind="url_read", quality="clarity", text="https://x.io")) == "reads the URL https://x.io aloud"
    )
    over = Finding(kind="over_budget", quality="conciseness", values={"seconds": 30.0, "facts": 1, "budget": 8.5})
    assert render(over) == "takes 30 s to say 1 fact (budget 8 s)"
    with pytest.raises(ValueError):
        Finding(kind="x", quality="clarity", unknown=1)


# ---------------------------------------------------------------------------------------------------------
# the reward as configuration


def test_default_config_and_fingerprint():
    assert ScorerConfig is config_module.ScorerConfig
    assert load_scorer_config(None) == ScorerConfig()
    assert ScorerConfig().fingerprint() == ScorerConfig().fingerprint()
    assert len(ScorerConfig().fingerprint()) == 16
    assert ScorerConfig(gate_floor=0.3).fingerprint() != ScorerConfig().fingerprint()


def test_raising_the_invented_amount_penalty_lowers_faithfulness():
    default = score_response(TURN, FAITHFUL + " Shipping was twelve dollars.")
    harsher = ScorerConfig(faithfulness={"invented_amount": 0.8})
    stricter = score_response(TURN, FAITHFUL + " Shipping was twelve dollars.", harsher)
    assert stricter.scores["faithfulness"] < default.scores["faithfulness"]
    assert stricter.voice_score < default.voice_score
    (invented,) = [f for f in stricter.findings if f.kind == "invented_amount"]
    assert invented.penalty == 0.8


def test_style_penalties_and_gate_change_the_score_in_the_expected_direction():
    lenient = ScorerConfig(
        clarity={"markdown": 0.0, "digits": 0.0, "screen_number": 0.0, "symbol": 0.0, "enumeration_item": 0.0}
    )
    assert score_response(TURN, MARKDOWN, lenient).scores["clarity"] > score_response(TURN, MARKDOWN).scores["clarity"]
    long_ok = ScorerConfig(conciseness={"base_seconds": 60.0})
    assert (
        score_response(TURN, TURN.draft, long_ok).scores["conciseness"]
        >= score_response(TURN, TURN.draft).scores["conciseness"]
    )
    harsher_gate = ScorerConfig(gate_power=3.0)
    assert (
        score_response(TURN, INVENTED_RESPONSE, harsher_gate).voice_score
        < score_response(TURN, INVENTED_RESPONSE).voice_score
    )
    assert (
        combine({name: 0.0 for name in QUALITIES} | {"faithfulness": 1.0}, ScorerConfig().style_weights, 2.0, 0.5)
        == 0.5
    )


def test_tie_margin_changes_a_rubric_verdict():
    assert TIE_MARGIN == ScorerConfig().tie_margin == 0.02
    pair = Pair(id="p", draft=TURN.draft, history=TURN.history, response_a=FAITHFUL, response_b=MARKDOWN)
    a, b = score_response(pair, FAITHFUL).voice_score, score_response(pair, MARKDOWN).voice_score
    assert a - b > 0.02
    assert judge_pair(pair).winner == "a"
    assert judge_pair(pair, ScorerConfig(tie_margin=round(a - b + 0.01, 4))).winner == "tie"


def test_load_scorer_config_reads_nested_overrides(tmp_path):
    path = tmp_path / "scorer.yaml"
    path.write_text("gate_floor: 0.3\nfaithfulness:\n  invented_amount: 0.6\nclarity:\n  long_sentence_words: 30\n")
    config = load_scorer_config(path)
    assert (
        config.gate_floor == 0.3
        and config.faithfulness.invented_amount == 0.6
        and config.clarity.long_sentence_words == 30
    )
    assert (
        config.faithfulness.invented_number == ScorerConfig().faithfulness.invented_number
    )  # the rest keep their defaults


@pytest.mark.parametrize(
    "text, field",
    [
        ("clarity:\n  urls: 0.3\n", "clarity.urls"),
        ("gate_floorr: 0.3\n", "gate_floorr"),
        ("faithfulness:\n  invented_amount: -1\n", "faithfulness.invented_amount"),
        ("style_weights:\n  warmth: 1.0\n", "style_weights"),
    ],
)
def test_load_scorer_config_names_the_file_and_the_field(tmp_path, text, field):
    path = tmp_path / "scorer.yaml"
    path.write_text(text)
    with pytest.raises(VoicetuneError) as error:
        load_scorer_config(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and f"'{field}'" in message


def test_load_scorer_config_missing_file(tmp_path):
    with pytest.raises(VoicetuneError, match="no such config file"):
        load_scorer_config(tmp_path / "absent.yaml")


def _undocumented(model, prefix=""):
    missing = []
    for name, info in model.model_fields.items():
        if not (info.description or "").strip():
            missing.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            missing += _undocumented(annotation, f"{prefix}{name}.")
    return missing


def test_every_scorer_setting_is_documented():
    assert _undocumented(ScorerConfig) == []
    sections = {
        name: info.annotation
        for name, info in ScorerConfig.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }
    assert set(sections) >= {"non_repetition", "conciseness", "clarity", "humanness", "faithfulness"}
    assert sum(len(section.model_fields) for section in sections.values()) >= 50
