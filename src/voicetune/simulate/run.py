"""Simulated calls, top to bottom: responses per system → what the caller hears → each call replayed with a
simulated caller → per-system figures and paired comparisons.

    DIR/simulate.yaml          the resolved config
    DIR/responses/NAME.jsonl   each system's responses to every agent turn (cached as in `voicetune eval`)
    DIR/channel.sqlite         speaking time and transcripts per distinct text (cached: TTS and ASR run once)
    DIR/calls.jsonl            one row per (system, call, seed): events, repeat requests, turns, duration, outcome
    DIR/summary.json           systems (means with 95% CIs over calls), comparisons (paired changes, non-inferiority)
    DIR/summary.md             the same, with one sentence per comparison

A call replays a real conversation. The caller says what the caller said; at each agent turn the system
under test answers (its response to that turn's context). The caller hears it through the channel, may ask
to hear it again (:mod:`voicetune.simulate.caller`), and asks for the rest when a required fact was left
out; the agent then says the draft's sentences that hold it. A call is resolved when every required fact
reached the caller, nothing the caller heard contradicts the drafts, and the caller did not give up.

Every random decision is a common random number: a uniform draw keyed by (seed, call, turn, decision), the
same whichever system is simulated. Two systems that say the same thing get the same call, and a difference
between systems is a paired difference.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError

from voicetune.data import load_turns
from voicetune.errors import VoicetuneError
from voicetune.evaluate.run import all_responses, default_comparisons, parse_comparison
from voicetune.evaluate.stats import bootstrap_interval, non_inferiority, paired_bootstrap, relative_change
from voicetune.evaluate.systems import parse_system
from voicetune.judge.learned import default_judge
from voicetune.provenance import hash_records, package_version
from voicetune.quality import score_response
from voicetune.quality.facts import turn_facts
from voicetune.quality.findings import contradicts
from voicetune.quality.nli import load_nli
from voicetune.quality.scorer import prefetch_meaning
from voicetune.quality.text import MARKDOWN_LINE, sentences, words
from voicetune.records import (
    Turn,
    atomic_write_text,
    dumps,
    iter_numbered_records,
    missing_reason,
    output_folder,
    printable,
    refuse_overwriting_input,
    write_records,
)
from voicetune.settings import dump_yaml
from voicetune.simulate.caller import RuleCaller, heard_fact, redundant_claims
from voicetune.simulate.channel import Channel, Heard, make_channel
from voicetune.simulate.config import CallerModel, SimConfig
from voicetune.simulate.llm_caller import LLMCaller, default_personas, load_personas

Log = Callable[[str], None]
#: The per-call figures, in the order tables show them.
METRICS = ("repeat_requests", "turns", "duration_seconds", "resolved")
#: The caller-model parameters ``--sensitivity`` moves by ±50%.
SENSITIVE = (
    "repair_interval_seconds",
    "info_weight",
    "sentence_weight",
    "list_weight",
    "unspeakable_weight",
    "abandon_per_redundant",
)


def uniform(seed: int, call: str, turn: int, decision: str) -> float:
    """A common random number in [0, 1): the same for every system at this (seed, call, turn, decision)."""
    key = hashlib.sha256(f"{seed}\x1f{call}\x1f{turn}\x1f{decision}".encode()).digest()
    return int.from_bytes(key[:7], "big") / float(1 << 56)


class CallPlace(BaseModel):
    """Where a turn sits in its call, from its ``meta``: ``turn_index`` orders the turns of one call, so it is
    a whole number when given (not null, not text: sorting a call by a mix of them has no answer)."""

    model_config = ConfigDict(extra="ignore")
    turn_index: StrictInt = 0


def call_place_error(turn: Turn) -> str | None:
    """What is wrong with ``turn``'s place in its call (``field 'meta.turn_index': ...``), or None."""
    try:
        CallPlace.model_validate(turn.meta)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in ("meta", *first["loc"]))
        return f"field '{field}': {first['msg'].lower()} (got {printable(repr(first.get('input')))})"
    return None


def check_call_turns(turns: Iterable[tuple[int | None, Turn]], source: str | Path) -> None:
    """Refuse turns a call cannot be simulated from, naming the file and line (or the turn where there is
    no line): a ``meta.turn_index`` that is not a whole number, and a turn without a draft. The draft is what
    a call is judged against (its facts, what the caller asks for again, what contradicts it), and the draft
    systems answer with it; without one the agent would say nothing and, with nothing required, the silent
    call would count as resolved. So such input is refused rather than scored."""
    for line, turn in turns:
        where = f"{source}:{line}" if line is not None else f"{source}: turn {printable(repr(turn.id))}"
        problem = call_place_error(turn)
        if problem is not None:
            raise VoicetuneError(f"{where}: {problem}")
        if not (turn.draft or "").strip():
            raise VoicetuneError(
                f"{where}: field 'draft': the turn has no draft; a simulated call is judged against each turn's draft "
                "(its facts, what the caller asks to hear again), so every turn needs one"
            )


def group_calls(turns: Sequence[Turn]) -> dict[str, list[Turn]]:
    """Turns grouped into calls by ``meta.conversation_id`` (a turn without one is a call of its own), each
    call in ``meta.turn_index`` order (a turn_index that is not a whole number is a VoicetuneError naming the
    turn)."""
    calls: dict[str, list[Turn]] = defaultdict(list)
    for turn in turns:
        problem = call_place_error(turn)
        if problem is not None:
            raise VoicetuneError(f"turn {printable(repr(turn.id))}: {problem}")
        calls[str(turn.meta.get("conversation_id") or turn.id)].append(turn)
    for call in calls.values():
        call.sort(key=lambda t: t.meta.get("turn_index", 0))
    return dict(calls)


def load_call_turns(spec: str) -> list[Turn]:
    """The turns of ``spec`` (``builtin:SPLIT``, ``spoken:...`` or a turn records file) checked for calls
    (:func:`check_call_turns`), a file's problems named by line."""
    if spec.startswith(("builtin", "spoken")):
        turns = load_turns(spec)
        check_call_turns(((None, turn) for turn in turns), spec)
        return turns
    path = Path(spec)
    if not path.exists():
        raise VoicetuneError(f"{path}: {missing_reason(path)} (conversations: turn records, JSONL)")
    numbered = list(iter_numbered_records(path, Turn, unique_ids=True))
    check_call_turns(numbered, path)
    return [turn for _, turn in numbered]


def rest_text(draft: str, pending: Sequence) -> str:
    """What the agent says when the caller asks for the rest: the draft's sentences (list markers dropped)
    that hold the pending facts, in draft order, or the facts themselves where no sentence holds them."""
    plain = [MARKDOWN_LINE.sub("", s).replace("**", "").strip() for s in sentences(draft or "")]
    chosen: list[str] = []
    for fact in pending:
        sentence = next((s for s in plain if fact.text in s), None) or fact.text
        if sentence not in chosen:
            chosen.append(sentence)
    return " ".join(s if s.endswith((".", "!", "?")) else s + "." for s in chosen)


@dataclass
class CallResult:
    """One simulated call of one system under one seed."""

    system: str
    call: str
    seed: int
    response_seed: int
    repeat_requests: int = 0
    rest_requests: int = 0
    turns: int = 0
    duration_seconds: float = 0.0
    agent_seconds: float = 0.0
    resolved: bool = False
    abandoned: bool = False
    contradicted: bool = False
    facts_required: int = 0
    facts_missing: list[str] = field(default_factory=list)
    facts_heard: float = 1.0  # the share of the call's required facts that reached the caller
    redundant: int = 0
    unusable_turns: int = 0  # agent turns the learned judge calls unusable: each met with "sorry, what?"
    events: list[dict] = field(default_factory=list)


class _Simulator:
    """Replays calls for one configuration; the channel and the scorer's verdicts are shared and cached."""

    def __init__(self, config: SimConfig, channel: Channel, caller, heard: dict[str, Heard], log: Log = print):
        self.config = config
        self.channel = channel
        self.caller = caller
        self.heard = heard
        self.timing = config.timing_model
        meaning = config.scorer.meaning
        self.nli = load_nli(meaning.model, meaning.threads) if meaning.model != "none" else None
        self._contradiction: dict[tuple[str, str], bool] = {}
        self._facts: dict[str, tuple] = {}
        self._usable: dict[tuple[str, str], tuple[bool, str | None]] = {}
        self.log = log

    def judge_usable(self, items: Sequence[tuple[Turn, str]]) -> None:
        """Ask the learned judge about every (turn, response) at once (cached): :meth:`usable` reads the answers."""
        if not self.config.usable_check:
            return
        todo = list(
            {(t.id, text): (t, text) for t, text in items if (t.id, text) not in self._usable and text.strip()}.values()
        )
        if not todo:
            return
        judge = default_judge(self.config.scorer, log=self.log)
        for (turn, text), verdict in zip(todo, judge.assess([t for t, _ in todo], [x for _, x in todo]), strict=True):
            self._usable[(turn.id, text)] = (verdict.usable, verdict.failure)

    def usable(self, turn: Turn, text: str) -> tuple[bool, str | None]:
        """Whether the learned judge calls ``text`` usable for ``turn`` (always, with ``usable_check`` off,
        except silence: an agent turn that says nothing is never usable, whatever the check)."""
        if not text.strip():
            return False, "dropped_need"
        if not self.config.usable_check:
            return True, None
        if (turn.id, text) not in self._usable:
            self.judge_usable([(turn, text)])
        return self._usable[(turn.id, text)]

    def hear(self, text: str) -> Heard:
        if text not in self.heard:
            self.heard[text] = self.channel.hear(text)
        return self.heard[text]

    def caller_seconds(self, text: str) -> float:
        return len(words(text)) * 60.0 / self.timing.caller_words_per_minute

    def required(self, turn: Turn) -> tuple:
        if turn.id not in self._facts:
            self._facts[turn.id] = tuple(f for f in turn_facts(turn, self.config.scorer.facts) if f.required)
        return self._facts[turn.id]

    def contradicted(self, turn: Turn, text: str) -> bool:
        key = (turn.id, text)
        if key not in self._contradiction:
            findings = score_response(turn, text, self.config.scorer).findings
            self._contradiction[key] = contradicts(findings, self.config.scorer.meaning.entail_low)
        return self._contradiction[key]

    def _agent_says(
        self, result: CallResult, text: str, kind: str, k: int, heard_so_far: list, caller_model: CallerModel
    ) -> Heard:
        """The agent says ``text`` (a turn, or the rest), and the caller asks to hear it again as often as the
        caller decides: each request a caller turn and the agent's repeat."""
        heard = self.hear(text)
        result.turns += 1
        result.duration_seconds += self.timing.agent_latency_seconds + heard.seconds
        result.agent_seconds += heard.seconds
        result.events.append(
            {"who": "agent", "kind": kind, "text": text, "heard": heard.text, "seconds": round(heard.seconds, 2)}
        )
        attempt = 0
        while self.caller.wants_repeat(
            heard=heard.text,
            seconds=heard.seconds,
            attempt=attempt,
            u=uniform(result.seed, result.call, k, f"{kind}-repeat-{attempt}"),
            conversation_id=result.call,
            seed=result.seed,
            heard_so_far=heard_so_far,
        ):
            request = self.timing.repeat_request
            result.repeat_requests += 1
            result.turns += 2
            repeat_seconds = (
                self.timing.caller_gap_seconds
                + self.caller_seconds(request)
                + self.timing.agent_latency_seconds
                + heard.seconds
            )
            result.duration_seconds += repeat_seconds
            result.agent_seconds += heard.seconds
            result.events.append({"who": "caller", "kind": "repeat_request", "text": request})
            result.events.append({"who": "agent", "kind": "repeat", "text": text, "seconds": round(heard.seconds, 2)})
            attempt += 1
        heard_so_far.append(("agent", heard.text))
        return heard

    def call(
        self,
        system: str,
        call_id: str,
        turns: Sequence[Turn],
        responses: dict[str, str],
        seed: int,
        response_seed: int,
        caller_model: CallerModel,
    ) -> CallResult:
        similarity = caller_model.heard_similarity if self.config.channel == "speech" else None
        heard_it = lambda fact, text: heard_fact(fact, text, similarity)  # noqa: E731

        result = CallResult(system=system, call=call_id, seed=seed, response_seed=response_seed)
        heard_so_far: list[tuple[str, str]] = []
        agent_heard: list[str] = []
        missing: list[str] = []
        seen_history = 0
        for k, turn in enumerate(turns):
            for message in turn.history[seen_history:]:
                if message.role == "user":  # the caller's own words, as in the real call
                    result.turns += 1
                    result.duration_seconds += (
                        self.timing.caller_gap_seconds if result.events else 0.0
                    ) + self.caller_seconds(message.text)
                    result.events.append({"who": "caller", "kind": "says", "text": message.text})
                    heard_so_far.append(("caller", message.text))
            seen_history = len(turn.history) + 1  # the next turn's history holds this agent turn, then the caller
            response = responses.get(turn.id, "")
            heard = self._agent_says(result, response, "turn", k, heard_so_far, caller_model)
            usable, failure = self.usable(turn, response)
            if not usable:  # the caller cannot use what was said: "sorry, what?", and the agent can only say it again
                request = self.timing.unusable_request
                result.unusable_turns += 1
                result.repeat_requests += 1
                result.turns += 2
                result.duration_seconds += (
                    self.timing.caller_gap_seconds
                    + self.caller_seconds(request)
                    + self.timing.agent_latency_seconds
                    + heard.seconds
                )
                result.agent_seconds += heard.seconds
                result.events.append({"who": "caller", "kind": "unusable_request", "text": request, "failure": failure})
                result.events.append(
                    {"who": "agent", "kind": "repeat", "text": response, "seconds": round(heard.seconds, 2)}
                )
            repeated = redundant_claims(
                heard.text, agent_heard, caller_model.redundancy_overlap, self.nli, self.config.scorer.meaning
            )
            result.redundant += len(repeated)
            if any(
                uniform(seed, call_id, k, f"abandon-{j}") < caller_model.abandon_per_redundant
                for j in range(len(repeated))
            ):
                result.abandoned = True
                result.events.append({"who": "caller", "kind": "gives_up", "text": "(hangs up)"})
                missing += [f.text for t in turns[k:] for f in self.required(t)]
                break
            agent_heard.append(heard.text)
            result.contradicted |= self.contradicted(turn, heard.text)
            required = self.required(turn)
            result.facts_required += len(required)
            pending = [f for f in required if not heard_it(f, heard.text)]
            if pending and caller_model.ask_rest:
                request = self.timing.rest_request
                result.rest_requests += 1
                result.turns += 1
                result.duration_seconds += self.timing.caller_gap_seconds + self.caller_seconds(request)
                result.events.append({"who": "caller", "kind": "rest_request", "text": request})
                rest = self._agent_says(
                    result, rest_text(turn.draft or "", pending), "rest", k, heard_so_far, caller_model
                )
                agent_heard.append(rest.text)
                pending = [f for f in pending if not heard_it(f, rest.text)]
            missing += [f.text for f in pending]
        result.facts_missing = missing
        total = result.facts_required + (len(missing) if result.abandoned else 0)
        result.facts_heard = round(1.0 - len(missing) / total, 4) if total else 1.0
        result.resolved = not result.abandoned and not missing and not result.contradicted and not result.unusable_turns
        result.duration_seconds = round(result.duration_seconds, 2)
        result.agent_seconds = round(result.agent_seconds, 2)
        return result


def _per_call(results: Sequence[CallResult], metric: str) -> dict[str, float]:
    """A metric per call, averaged over the call's seeds (the unit the intervals resample)."""
    values: dict[str, list[float]] = defaultdict(list)
    for r in results:
        values[r.call].append(float(getattr(r, metric)))
    return {call: statistics.mean(v) for call, v in values.items()}


def system_figures(results: Sequence[CallResult], seed: int = 0) -> dict:
    """Each metric's mean over calls and seeds with a 95% bootstrap interval over calls (seeds of one call
    stay together), and the timing sources used."""
    figures: dict = {"calls": len({r.call for r in results}), "simulated": len(results)}
    for metric in METRICS + (
        "facts_heard",
        "rest_requests",
        "abandoned",
        "contradicted",
        "redundant",
        "unusable_turns",
    ):
        per_call = list(_per_call(results, metric).values())
        low, high = bootstrap_interval(per_call, seed=seed) if per_call else (None, None)
        figures[metric] = {
            "mean": round(statistics.mean(per_call), 4) if per_call else None,
            "ci": [None if low is None else round(low, 4), None if high is None else round(high, 4)],
        }
    return figures


def compare(a: Sequence[CallResult], b: Sequence[CallResult], margin: float, seed: int = 0) -> dict:
    """A against B on the same calls and seeds: the paired relative change of each count and the duration
    with a bootstrap CI over calls, the resolution difference and the non-inferiority test."""
    out: dict = {}
    for metric in ("repeat_requests", "turns", "duration_seconds"):
        pa, pb = _per_call(a, metric), _per_call(b, metric)
        shared = sorted(set(pa) & set(pb))
        out[metric] = relative_change([pa[c] for c in shared], [pb[c] for c in shared], seed=seed)
    ra, rb = _per_call(a, "resolved"), _per_call(b, "resolved")
    shared = sorted(set(ra) & set(rb))
    out["resolution"] = non_inferiority([ra[c] for c in shared], [rb[c] for c in shared], margin, seed=seed)
    fa, fb = _per_call(a, "facts_heard"), _per_call(b, "facts_heard")
    found = paired_bootstrap(
        [fa[c] for c in shared], [fb[c] for c in shared], lambda x, y: np.mean(x) - np.mean(y), seed=seed
    )
    out["facts_heard"] = {
        "difference": None if found is None else round(found[0], 4),
        "ci": [None, None] if found is None else [round(found[1], 4), round(found[2], 4)],
    }
    out["calls"] = len(shared)
    return out


def sentence(a: str, b: str, comparison: dict) -> str:
    """One comparison in the terms of the published live-call results."""

    def change(name: str) -> str:
        item = comparison[name]
        if item["change"] is None:
            return "n/a (none in B)"
        low, high = item["ci"]
        return (
            f"{100 * item['change']:+.0f}% [{100 * low:+.0f}%, {100 * high:+.0f}%]"
            if low is not None and high is not None
            else f"{100 * item['change']:+.0f}%"
        )

    resolution = comparison["resolution"]
    verdict = {True: "yes", False: "no", None: "n/a"}[resolution["non_inferior"]]
    delta = (
        "n/a"
        if resolution["difference"] is None
        else f"{100 * resolution['difference']:+.1f} points (lower bound {100 * resolution['lower_bound']:+.1f})"
    )
    return (
        f"{a} vs {b}: repeat requests {change('repeat_requests')}, turns {change('turns')}, duration "
        f"{change('duration_seconds')}, "
        f"resolution {delta}, non-inferior (margin {100 * resolution['margin']:.0f} points): {verdict}"
    )


def markdown(summary: dict) -> str:
    """The summary as Markdown: each system's means with CIs, then one sentence per comparison."""

    def cell(item: dict, pct: bool = False) -> str:
        mean, (low, high) = item["mean"], item["ci"]
        if mean is None:
            return "–"
        if pct:
            return f"{100 * mean:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"
        return f"{mean:.2f} [{low:.2f}, {high:.2f}]"

    lines = [
        f"# Simulated calls: {summary['conversations']} ({summary['calls']} calls × {summary['seeds']} seeds, channel "
        f"{summary['channel']}, caller {summary['caller']})",
        "",
    ]
    estimated, total = summary["timing"].get("estimate", 0), sum(summary["timing"].values())
    if estimated:
        lines += [
            f"**Agent speaking time is a words-per-minute estimate for {estimated} of {total} texts** (timing: "
            "estimate, "
            "or no TTS engine installed); the rest from synthesised audio.",
            "",
        ]
    else:
        lines += [f"Agent speaking time from synthesised audio ({', '.join(sorted(summary['timing']))}).", ""]
    lines += [
        "| system | repeat requests / call | turns / call | duration / call (s) | resolved | facts heard | rest "
        "requests | abandoned |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, fig in summary["systems"].items():
        heard = cell(fig["facts_heard"], True) if "facts_heard" in fig else "–"
        lines.append(
            f"| {name} | {cell(fig['repeat_requests'])} | {cell(fig['turns'])} | {cell(fig['duration_seconds'])} | "
            f"{cell(fig['resolved'], True)} | {heard} | {cell(fig['rest_requests'])} | {cell(fig['abandoned'], True)} |"
        )
    lines += ["", "## Comparisons (paired over the same calls and seeds; 95% bootstrap CIs over calls)", ""]
    lines += [f"- {c['sentence']}" for c in summary["comparisons"]]
    if summary.get("sensitivity"):
        lines += [
            "",
            "## Sensitivity: the range over every caller-model parameter at 0.5× and 1.5×",
            "",
            "| comparison | repeat requests | turns | duration | resolution Δ (points) | non-inferior |",
            "|---|---|---|---|---|---|",
        ]
        for row in sensitivity_ranges(summary):
            span = lambda pair: "–" if pair is None else f"{_signed(pair[0])} to {_signed(pair[1])}"  # noqa: E731
            resolution = (
                "–"
                if row["resolution"] is None
                else f"{100 * row['resolution'][0]:+.1f} to {100 * row['resolution'][1]:+.1f}"
            )
            lines.append(
                f"| {row['a']} vs {row['b']} | {span(row['repeat_requests'])} | {span(row['turns'])} | "
                f"{span(row['duration_seconds'])} | "
                f"{resolution} | {row['non_inferior']} of {row['settings']} |"
            )
        lines += [
            "",
            "## Sensitivity: each caller-model parameter at 0.5× and 1.5×",
            "",
            "| parameter | × | comparison | repeat requests | duration | resolution Δ | non-inferior |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in summary["sensitivity"]:
            for c in row["comparisons"]:
                rep, dur, res = c["repeat_requests"], c["duration_seconds"], c["resolution"]
                delta = "–" if res["difference"] is None else f"{100 * res['difference']:+.1f}"
                verdict = {True: "yes", False: "no", None: "–"}[res["non_inferior"]]
                lines.append(
                    f"| {row['parameter']} | {row['factor']} | {c['a']} vs {c['b']} | {_signed(rep['change'])} | "
                    f"{_signed(dur['change'])} | {delta} | {verdict} |"
                )
    return "\n".join(lines) + "\n"


def sensitivity_ranges(summary: dict) -> list[dict]:
    """Per comparison, the lowest and highest value each figure takes over the sensitivity settings (the
    baseline included), and in how many of them resolution is non-inferior: how far the conclusion moves when
    the caller model's guessed constants do."""
    settings = [summary["comparisons"]] + [row["comparisons"] for row in summary.get("sensitivity", [])]
    ranges = []
    for index, base in enumerate(summary["comparisons"]):
        rows = [setting[index] for setting in settings]
        entry: dict = {"a": base["a"], "b": base["b"], "settings": len(rows)}
        for metric in ("repeat_requests", "turns", "duration_seconds"):
            values = [r[metric]["change"] for r in rows if r[metric]["change"] is not None]
            entry[metric] = (min(values), max(values)) if values else None
        differences = [r["resolution"]["difference"] for r in rows if r["resolution"]["difference"] is not None]
        entry["resolution"] = (min(differences), max(differences)) if differences else None
        entry["non_inferior"] = sum(bool(r["resolution"]["non_inferior"]) for r in rows)
        ranges.append(entry)
    return ranges


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.0f}%"


class _LLMRepeats:
    """The LLM caller as a :class:`~voicetune.simulate.caller.Caller`: it asks for a repeat when the model
    answers REPEAT (at most ``max_repeats`` times a turn); what it leaves pending is still the facts'."""

    name = "llm"

    def __init__(self, llm, max_repeats: int):
        self.llm = llm
        self.max_repeats = max_repeats

    def describe(self) -> dict:
        return {"caller": "llm", **self.llm.describe()}

    def wants_repeat(
        self,
        *,
        heard: str,
        seconds: float,
        attempt: int,
        u: float,
        conversation_id: str,
        seed: int,
        heard_so_far: Sequence[tuple[str, str]],
    ) -> bool:
        if attempt >= self.max_repeats:
            return False
        return (
            self.llm.react(
                conversation_id=conversation_id, seed=seed, heard_so_far=heard_so_far, agent_turn=heard, attempt=attempt
            )
            == "repeat"
        )


def _make_caller(config: SimConfig, cache: Path):
    if config.caller == "rules":
        return RuleCaller(config.caller_model)
    options = config.llm
    if not options.endpoint or not options.model:
        raise VoicetuneError("caller: llm needs llm.endpoint and llm.model (an OpenAI-compatible endpoint)")
    personas = load_personas(options.personas) if options.personas else default_personas()
    if not personas:
        raise VoicetuneError(
            "caller: llm needs τ²-bench personas: set llm.personas to a tasks.json (../shared/data/tau2 is absent)"
        )
    llm = LLMCaller(
        options.endpoint, options.model, personas, api_key_env=options.api_key_env, timeout=options.timeout, cache=cache
    )
    return _LLMRepeats(llm, config.caller_model.max_repeats)


def run_calls(
    simulator: _Simulator,
    systems: Sequence[str],
    calls: dict[str, list[Turn]],
    responses: dict,
    config: SimConfig,
    caller_model: CallerModel,
) -> dict[str, list[CallResult]]:
    """Every system through every call under every seed."""
    results: dict[str, list[CallResult]] = {name: [] for name in systems}
    for name in systems:
        for seed in range(config.seeds):
            response_seed = config.response_seeds[seed % len(config.response_seeds)]
            answers = responses[name][response_seed]
            simulator.judge_usable([(t, answers.get(t.id, "")) for turns in calls.values() for t in turns])
            for call_id, turns in calls.items():
                results[name].append(simulator.call(name, call_id, turns, answers, seed, response_seed, caller_model))
    return results


def _comparisons(results: dict[str, list[CallResult]], pairs: Sequence[tuple[str, str]], margin: float) -> list[dict]:
    out = []
    for a, b in pairs:
        comparison = {"a": a, "b": b, **compare(results[a], results[b], margin)}
        comparison["sentence"] = sentence(a, b, comparison)
        out.append(comparison)
    return out


#: What a simulation writes in its output folder (files, and the responses folder).
WRITES = (
    "simulate.yaml",
    "responses",
    "channel.sqlite",
    "caller_cache.sqlite",
    "calls.jsonl",
    "summary.json",
    "summary.md",
)


def simulation_inputs(config: SimConfig, systems: Sequence) -> list[Path]:
    """The files and folders a simulation reads that could sit where it writes: the conversations file, the
    personas, the systems' local models."""
    found = [] if config.conversations.startswith(("builtin", "spoken")) else [Path(config.conversations)]
    found += [Path(config.llm.personas)] if config.llm.personas else []
    found += [Path(system.model).expanduser() for system in systems if system.kind == "model" and system.model]
    return found


def simulate(
    config: SimConfig,
    out: str | Path,
    *,
    sensitivity: bool = False,
    progress: bool = True,
    log: Log = print,
    responses_dir: str | Path | None = None,
) -> dict:
    """Run the simulation of ``config`` into ``out`` (see the module docstring) and return its summary.

    Responses are cached in ``out/responses`` unless ``responses_dir`` names another folder (an evaluation's
    ``responses/``, when it used the same systems and sampling settings: then nothing is generated again).

    With ``sensitivity`` the rule-based caller is rerun with each parameter of :data:`SENSITIVE` at half and
    one and a half times its value (on the same responses and channel, so only the caller changes), and the
    comparisons under each setting are added to the summary.
    """
    out = Path(out)
    systems = [parse_system(text) for text in config.systems]
    names = [s.name for s in systems]
    if len(systems) < 2:
        raise VoicetuneError("a simulation compares at least two --system")
    if len(set(names)) != len(names):
        raise VoicetuneError(f"two systems share a name: {', '.join(names)} (use NAME=SPEC)")
    if out.exists() and not out.is_dir():
        raise VoicetuneError(f"{out}: is a file, expected the simulation's output folder (--out)")
    refuse_overwriting_input(out, *simulation_inputs(config, systems), writes=WRITES)
    calls = group_calls(load_call_turns(config.conversations))
    if config.limit:
        calls = dict(list(calls.items())[: config.limit])
    if not calls:
        raise VoicetuneError(f"{config.conversations}: no conversations to simulate")
    turns = [t for call in calls.values() for t in call]
    pairs = [parse_comparison(text, names) for text in config.comparisons] or default_comparisons(systems)
    if sensitivity and config.caller != "rules":
        raise VoicetuneError("--sensitivity moves the rule-based caller's parameters; it does not apply to caller: llm")
    output_folder(out, "the simulation's output folder (--out)")
    caller = _make_caller(config, out / "caller_cache.sqlite")  # a bad caller setting fails now, not after generation
    atomic_write_text(out / "simulate.yaml", dump_yaml(config))

    responses = all_responses(
        systems,
        turns,
        Path(responses_dir) if responses_dir is not None else out / "responses",
        config.response_seeds,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        progress=progress,
        log=log,
        scorer=config.scorer,
    )
    channel = make_channel(config.channel, tts=config.tts, cache=out / "channel.sqlite", timing=config.timing)
    texts = sorted(
        {text for by_seed in responses.values() for answers in by_seed.values() for text in answers.values()}
    )
    log(f"hearing {len(texts)} distinct agent turns through the {config.channel} channel")
    heard = dict(zip(texts, channel.hear_many(texts, progress=progress), strict=True))
    by_id = {t.id: t for t in turns}
    prefetch_meaning(
        (
            (by_id[i], heard[text].text)
            for by_seed in responses.values()
            for answers in by_seed.values()
            for i, text in answers.items()
            if i in by_id
        ),
        config.scorer,
        progress=progress,
    )
    simulator = _Simulator(config, channel, caller, heard, log)
    log(f"simulating {len(calls)} calls × {config.seeds} seeds × {len(systems)} systems ({caller.name} caller)")
    results = run_calls(simulator, names, calls, responses, config, config.caller_model)
    write_records(out / "calls.jsonl", [asdict(r) for name in names for r in results[name]])
    timing = Counter(h.timing for h in simulator.heard.values())
    summary: dict = {
        "conversations": config.conversations,
        "calls": len(calls),
        "seeds": config.seeds,
        "channel": config.channel,
        "caller": caller.name,
        "timing": dict(timing),
        "margin": config.margin,
        "systems": {
            name: {"spec": s.spec, **system_figures(results[name])} for name, s in zip(names, systems, strict=True)
        },
        "comparisons": _comparisons(results, pairs, config.margin),
        "manifest": {
            "version": package_version(),
            "data": hash_records(turns),
            "caller": caller.describe(),
            "channel": channel.describe(),
        },
    }
    if sensitivity:
        rows = []
        for parameter in SENSITIVE:
            for factor in (0.5, 1.5):
                model = config.caller_model.model_copy(
                    update={parameter: getattr(config.caller_model, parameter) * factor}
                )
                simulator.caller = RuleCaller(model)
                moved = run_calls(simulator, names, calls, responses, config, model)
                rows.append(
                    {"parameter": parameter, "factor": factor, "comparisons": _comparisons(moved, pairs, config.margin)}
                )
        summary["sensitivity"] = rows
        summary["sensitivity_ranges"] = sensitivity_ranges(summary)
    atomic_write_text(out / "summary.json", dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", markdown(summary))
    return summary
