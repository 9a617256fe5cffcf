"""The simulation's configuration: every ``voicetune simulate`` setting, with the source of each caller-model
constant (``voicetune simulate --help-config``).

The caller model's constants are of two kinds. Some come from the literature and say so (the base rate of
repair requests, working-memory span, readable sentence length, conversational speech rate, turn gaps). The
others weigh how much each kind of load adds; no study gives them for synthetic speech on a phone line, so
they are stated guesses, and ``voicetune simulate --sensitivity`` reruns the comparison with each of the main
parameters at half and at one and a half times its value, so that a conclusion never hangs on one of them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voicetune.models.generate import DEFAULT_SAMPLING
from voicetune.quality import ScorerConfig
from voicetune.threads import MAX_THREADS


class CallerModel(BaseModel):
    """The rule-based caller: when it asks "sorry, can you say that again?", asks for the rest, or gives up.

    The chance of a repeat request after one agent turn is ``1 - exp(-hazard)`` with
    ``hazard = seconds / repair_interval_seconds * (1 + load)``: a constant rate of trouble per second of
    speech, raised by what makes speech hard to follow. ``load`` adds, each term never negative, so a longer or
    denser turn never lowers the chance: ``info_weight`` per information unit (a number, amount, date, time or
    code) beyond ``chunk_limit``, ``sentence_weight`` per 10 words of the longest sentence beyond
    ``sentence_words``, ``list_weight`` per list item, and ``unspeakable_weight`` per token a voice reads badly
    (markdown and symbols, URLs, e-mail addresses, long ids).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting
    repair_interval_seconds: float = Field(
        84.0,
        gt=0,
        description="seconds of talk per repair request at no extra load. Source: Dingemanse et al. 2015, 'Universal "
        "principles in the repair of communication problems' (PLoS ONE 10(9)): in conversation across 12 "
        "languages people initiate a repair about once every 84 seconds (1.4 minutes)",
    )
    chunk_limit: int = Field(
        4,
        ge=0,
        description="information units a listener holds without effort. Source: Cowan 2001, 'The magical number 4 in "
        "short-term memory' (Behavioral and Brain Sciences 24): about four chunks",
    )
    info_weight: float = Field(
        0.25,
        ge=0,
        description="added load per information unit beyond chunk_limit. A stated guess (no study measures it for "
        "synthetic speech); --sensitivity varies it ±50%",
    )
    sentence_words: float = Field(
        20.0,
        gt=0,
        description="the longest sentence a listener follows without effort, in words. Source: plain-language guidance "
        "(Cutts, Oxford Guide to Plain English: an average of 15-20 words, and long sentences are what "
        "listeners lose)",
    )
    sentence_weight: float = Field(
        0.5,
        ge=0,
        description="added load per 10 words of the longest sentence beyond sentence_words. A stated guess; "
        "--sensitivity varies it ±50%",
    )
    list_weight: float = Field(
        0.15,
        ge=0,
        description="added load per list item read aloud (a bullet, a numbered line, a table row). A stated guess; "
        "--sensitivity varies it ±50%",
    )
    unspeakable_weight: float = Field(
        0.3,
        ge=0,
        description="added load per token a voice reads badly: markdown and symbols, URLs, e-mail addresses, ids of 8+ "
        "characters. A stated guess; --sensitivity varies it ±50%",
    )
    repeat_relief: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a repeated turn is heard a second time knowing what to listen for: its repeat chance is "
        "multiplied by this. A stated guess",
    )
    max_repeats: int = Field(
        2, ge=0, description="repeat requests per agent turn at most; then the caller moves on with what they got"
    )
    ask_rest: bool = Field(
        True,
        description="the caller asks for the rest ('okay, and then?') when a turn leaves a required fact out, and the "
        "agent then says it",
    )
    heard_similarity: float = Field(
        0.8,
        gt=0,
        le=1,
        description="speech channel: a fact counts as heard when a stretch of the transcript (letters and digits only) "
        "matches it at this similarity (difflib ratio), since recognisers write '8.30 a.m.' for '08:30 "
        "AM'; a name that comes back as other words stays unheard",
    )
    redundancy_overlap: float = Field(
        0.6,
        gt=0,
        le=1,
        description="a sentence says the same thing as an earlier agent turn when this share of its content words "
        "(stems; numbers in their spoken form) occurs in that turn",
    )
    abandon_per_redundant: float = Field(
        0.03,
        ge=0,
        le=1,
        description="the chance the caller gives up (an unresolved call) each time a sentence repeats what the agent "
        "already said. A stated guess; --sensitivity varies it ±50%",
    )


class Timing(BaseModel):
    """How long each part of a call takes: the agent's speech (from the synthesised audio, or estimated), the
    caller's speech from their words, and the gaps between turns."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting
    caller_words_per_minute: float = Field(
        170.0,
        gt=0,
        description="the caller's speaking rate. Source: Yuan, Liberman and Cieri 2006, 'Towards an integrated "
        "understanding of speaking rate in conversation' (Interspeech): about 170-180 words a minute in "
        "English telephone conversation",
    )
    agent_latency_seconds: float = Field(
        1.0,
        ge=0,
        description="from the end of the caller's turn to the agent's first audio: speech recognition, the model and "
        "the TTS's first chunk (production voice agents report 0.5-1.5 s)",
    )
    caller_gap_seconds: float = Field(
        0.2,
        ge=0,
        description="from the end of the agent's turn to the caller's reply. Source: Stivers et al. 2009, 'Universals "
        "and cultural variation in turn-taking in conversation' (PNAS 106): gaps cluster around 0-200 ms",
    )
    repeat_request: str = Field(
        "Sorry, can you say that again?",
        description="what the caller says to ask for a repeat (its length sets its time)",
    )
    rest_request: str = Field("Okay, and then?", description="what the caller says to ask for the rest")
    unusable_request: str = Field(
        "Sorry, what?",
        description="what the caller says after a turn the learned judge calls unusable (invented, garbled, "
        "off-role...)",
    )


class LLMCallerOptions(BaseModel):
    """An LLM playing a τ²-bench persona instead of the rule-based caller (any OpenAI-compatible endpoint)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting
    endpoint: str | None = Field(None, description="the caller model's OpenAI-compatible URL")
    model: str | None = Field(None, description="the model name the endpoint expects")
    personas: str | None = Field(
        None,
        description="a τ²-bench tasks.json or a folder of them (default: ../shared/data/tau2 beside the repository)",
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="the environment variable holding the endpoint's API key")
    timeout: float = Field(60.0, gt=0, description="seconds one request may take in all")


class SimConfig(BaseModel):
    """Everything ``voicetune simulate`` does; every field has a default except the systems."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a setting of .inf or .nan is no setting
    systems: list[str] = Field(
        default_factory=list,
        description="NAME=SPEC for each system, as `voicetune eval` takes them (a model, MODEL+voice, draft, "
        "draft+pipecat, endpoint:URL#MODEL, ...)",
    )
    conversations: str = Field(
        "builtin:test",
        description="turn records (JSONL, e.g. imported τ-bench trajectories) or builtin:SPLIT; turns are grouped into "
        "calls by meta.conversation_id and ordered by meta.turn_index",
    )
    comparisons: list[str] = Field(
        default_factory=list, description="A:B comparisons (empty: the first system against each other one)"
    )
    seeds: int = Field(
        5,
        ge=1,
        le=1000,
        description="the caller's random streams per call: every system meets the same streams (common random "
        "numbers), so differences are paired",
    )
    response_seeds: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="sampling seeds of model systems; each answers every turn once per seed, and caller seed k hears "
        "response seed k mod len(response_seeds)",
    )
    channel: Literal["text", "speech"] = Field(
        "text",
        description="what the caller hears: the text (default), or speech, each turn synthesised and transcribed by "
        "offline ASR (faster-whisper tiny.en), where a fact whose words come through garbled is not heard",
    )
    tts: str = Field(
        "auto",
        description="the TTS engine for speaking time and the speech channel: auto, piper, espeak (see voicetune.tts)",
    )
    timing: Literal["tts", "estimate"] = Field(
        "tts",
        description="agent speaking time from the synthesised audio (tts; the estimate when no engine is installed, "
        "flagged in the output) or always the words-per-minute estimate",
    )
    caller: Literal["rules", "llm"] = Field(
        "rules", description="the rule-based caller model (caller_model) or an LLM playing τ²-bench personas (llm)"
    )
    caller_model: CallerModel = Field(
        default_factory=CallerModel, description="the rule-based caller's constants, each with its source"
    )
    timing_model: Timing = Field(default_factory=Timing, description="speech rates and gaps")
    llm: LLMCallerOptions = Field(default_factory=LLMCallerOptions, description="the LLM caller (caller: llm)")
    margin: float = Field(
        0.02,
        ge=0,
        le=1,
        description="the non-inferiority margin on the resolution rate: A is non-inferior to B when the lower end of "
        "the one-sided 95% interval of (A - B) is above -margin",
    )
    temperature: float = Field(DEFAULT_SAMPLING.temperature, ge=0, description="sampling temperature of model systems")
    max_new_tokens: int = Field(
        DEFAULT_SAMPLING.max_new_tokens, gt=0, description="the longest model response, in tokens"
    )
    batch_size: int = Field(16, gt=0, description="prompts generated together")
    threads: int = Field(0, ge=0, le=MAX_THREADS, description="CPU threads (0: the cores no other process is using)")
    limit: int | None = Field(None, ge=1, description="only the first N calls (null: all)")
    usable_check: bool = Field(
        True,
        description="the caller hears each agent turn through the learned judge: an unusable turn (invented, "
        "contradicted, garbled, off-role, a loop) makes the caller ask 'sorry, what?' and the call "
        "unresolved, instead of passing silently",
    )
    scorer: ScorerConfig = Field(
        default_factory=ScorerConfig,
        description="the scorer whose fact and contradiction checks decide what the caller got (facts conveyed, "
        "contradictions heard)",
    )
