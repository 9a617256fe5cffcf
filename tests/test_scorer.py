"""The gated voice score: ranges, the faithfulness gate, scoring records, and drafts vs references on the
built-in data."""

from __future__ import annotations

import pytest

import voicetune
from voicetune import Message, Turn, VoicetuneError, score_records, score_response
from voicetune.pipeline import reference_win_rate
from voicetune.quality.scorer import ScorerConfig, combine, turn_facts
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
FAITHFUL = "It's a seventy-five dollar change fee, and the new flight leaves at seven forty-five a.m. on May seventeenth. Want me to book it?"
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
        TURN, "The change fee is a hundred and fifty dollars, and it leaves at seven forty-five in the morning on May seventeenth."
    )
    assert any("$150" in reason for reason in invented.reasons)
    for bad in (evasive, empty, invented):
        assert bad.voice_score < markdown.voice_score  # ...but it still beats what is wrong or empty
        assert bad.voice_score <= 0.25
    assert score_response(TURN, FAITHFUL).voice_score > markdown.voice_score


def test_combine_gate_bounds():
    perfect_style = {name: 1.0 for name in QUALITIES}
    weights = ScorerConfig().style_weights
    assert combine(perfect_style, weights) == 1.0
    assert combine({**perfect_style, "faithfulness": 0.5}, weights) == 0.25
    worst_style = {**{name: 0.0 for name in QUALITIES}, "faithfulness": 1.0}
    assert combine(worst_style, weights) == pytest.approx(0.2)
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
    rate = reference_win_rate(drafts, references)
    losers = [d.id for d, r in zip(drafts, references) if r.scores["voice_score"] <= d.scores["voice_score"]]
    share = rate["reference_wins"] / rate["n"]
    print(f"\nbuilt-in reference beats its draft on {rate['reference_wins']}/{rate['n']} turns ({share:.1%}); not: {losers}")
    assert rate["n"] == len(turns)
    assert share >= 0.95
