"""The evaluation, top to bottom: responses per system → pairs → judged in both orders → statistics.

DIR/eval.json                 what was asked: systems, data, judge, seeds
DIR/responses/NAME.jsonl      each system's responses (NAME.seedN.jsonl for further seeds; cached: a re-run
                              regenerates nothing)
DIR/judge_cache.sqlite        the LLM judges' raw answers (a re-run asks nothing twice)
DIR/pairs.jsonl               one judged pair per context and comparison, both orders' verdicts in meta
DIR/summary.json              ``comparisons`` (win rates, CIs, p-values...), ``systems``, ``judge``
DIR/summary.md                the same as Markdown tables
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from voicetune.errors import VoicetuneError
from voicetune.evaluate.compare import judge_both_orders, position_bias
from voicetune.evaluate.report import markdown_summary
from voicetune.evaluate.stats import bootstrap_interval, wilson_interval, win_statistics
from voicetune.evaluate.systems import DETERMINISTIC, System, fallback_rate, system_responses
from voicetune.models.generate import DEFAULT_SAMPLING, make_backend
from voicetune.provenance import hash_records, package_version
from voicetune.quality import ScorerConfig, has_finding, score_response
from voicetune.quality.findings import DROPPED, INVENTED, contradicts
from voicetune.quality.scorer import prefetch_meaning
from voicetune.quality.speech import estimate_seconds
from voicetune.quality.text import words
from voicetune.records import Pair, Turn, atomic_write_text, dumps, write_records

Log = Callable[[str], None]


def _per_seed(answers: dict[int, dict[str, str]], fixed: set[str], name: str) -> list[dict[str, str]]:
    """A system's responses once per seed (a deterministic system's once in all)."""
    return [next(iter(answers.values()))] if name in fixed else list(answers.values())


def default_comparisons(systems: Sequence[System]) -> list[tuple[str, str]]:
    """The first system against each other one."""
    return [(systems[0].name, other.name) for other in systems[1:]]


def parse_comparison(text: str, names: Sequence[str]) -> tuple[str, str]:
    """``A:B`` (or ``A,B`` / ``A-vs-B``) naming two of the systems."""
    for separator in (":", ",", "-vs-"):
        if separator in text:
            a, b = (part.strip() for part in text.split(separator, 1))
            break
    else:
        raise VoicetuneError(f"--pair '{text}': expected A:B, two system names")
    for name in (a, b):
        if name not in names:
            raise VoicetuneError(f"--pair '{text}': no system named '{name}' (systems: {', '.join(names)})")
    if a == b:
        raise VoicetuneError(f"--pair '{text}': a system against itself")
    return a, b


class _Backends:
    """One generation backend at a time, loaded only when something is left to generate (a fully cached
    system loads no model), and kept for the next system that uses the same model."""

    def __init__(self, batch_size: int = 16):
        self.batch_size = batch_size
        self.key: tuple | None = None
        self.backend: Any = None  # make_backend's backends share no declared type

    def __call__(self, system: System):
        backends = self

        class Lazy:
            def generate(self, prompts, sampling, on_batch=None):
                return backends.load(system).generate(prompts, sampling, on_batch=on_batch)

        return Lazy()

    def load(self, system: System):
        key = (system.kind, system.model, system.endpoint, system.api_model)
        if key != self.key:
            self.backend = None  # free the previous model before loading the next
            # an endpoint system has a URL and a model name (an HTTP backend); a model system has neither
            self.backend = make_backend(system.model, system.endpoint, system.api_model, batch_size=self.batch_size)
            self.key = key
        return self.backend


def make_pairs(
    turns: Sequence[Turn], responses: dict[str, dict[str, str]], a: str, b: str, seed: int | None = None
) -> list[Pair]:
    """A pair per turn that both systems answered (``reference`` covers only turns that have one);
    ``seed`` (when several are evaluated) is recorded in the pair's id and ``meta.seed``."""
    pairs = []
    suffix = "" if seed is None else f"#s{seed}"
    for turn in turns:
        if turn.id in responses[a] and turn.id in responses[b]:
            context = turn.model_dump(exclude={"response", "scores", "reasons", "findings"})
            meta = {**turn.meta, "context_id": turn.id, **({"seed": seed} if seed is not None else {})}
            pairs.append(
                Pair.model_validate(
                    {
                        **context,
                        "id": f"{turn.id}#{a}-vs-{b}{suffix}",
                        "response_a": responses[a][turn.id],
                        "response_b": responses[b][turn.id],
                        "system_a": a,
                        "system_b": b,
                        "meta": meta,
                    }
                )
            )
    return pairs


def usable_statistics(judge, turns: Sequence[Turn], per_seed: Sequence[dict[str, str]]) -> dict:
    """The share of a system's responses the learned judge calls usable, with its Wilson interval, and the
    failure classes of the rest (empty when ``judge`` is not a learned judge)."""
    if not hasattr(judge, "assess"):
        return {}
    items = [(t, one[t.id]) for one in per_seed for t in turns if t.id in one]
    if not items:
        return {}
    assessed = judge.assess([t for t, _ in items], [text for _, text in items])
    usable = sum(a.usable for a in assessed)
    low, high = wilson_interval(usable, len(assessed))
    failures: dict[str, int] = {}
    for a in assessed:
        if a.failure:
            failures[a.failure] = failures.get(a.failure, 0) + 1
    return {
        "usable_rate": round(usable / len(assessed), 4),
        "usable_ci": [round(low, 4), round(high, 4)],
        "failures": dict(sorted(failures.items(), key=lambda kv: -kv[1])),
    }


def system_statistics(
    turns: Sequence[Turn], answers: dict[str, str] | Sequence[dict[str, str]], scorer: ScorerConfig | None = None
) -> dict:
    """Mean voice_score, faithfulness, speaking time (seconds) and words of one system's responses (over
    every seed when given one ``turn.id -> text`` mapping per seed), and the shares of responses with an
    invented fact (a number or amount the context does not contain), a contradiction (a claim the NLI model
    reads as contradicted, a swapped amount, an action reported done early: see
    :func:`voicetune.quality.findings.contradicts`) and a dropped required fact: typed findings of the scorer."""
    per_seed = [answers] if isinstance(answers, dict) else list(answers)
    prefetch_meaning(((t, one[t.id]) for one in per_seed for t in turns if t.id in one), scorer)
    scored = [(score_response(t, one[t.id], scorer), one[t.id]) for one in per_seed for t in turns if t.id in one]
    if not scored:
        return {"responses": 0}
    return {
        "responses": len(scored),
        "voice_score": round(statistics.mean(s.voice_score for s, _ in scored), 4),
        "faithfulness": round(statistics.mean(s.scores["faithfulness"] for s, _ in scored), 4),
        "invented_fact_rate": round(statistics.mean(has_finding(s.findings, INVENTED) for s, _ in scored), 4),
        "contradiction_rate": round(
            statistics.mean(contradicts(s.findings, (scorer or ScorerConfig()).meaning.entail_low) for s, _ in scored),
            4,
        ),
        "dropped_fact_rate": round(statistics.mean(has_finding(s.findings, DROPPED) for s, _ in scored), 4),
        "speaking_seconds": round(statistics.mean(estimate_seconds(text) for _, text in scored), 2),
        "words": round(statistics.mean(len(words(text)) for _, text in scored), 1),
    }


def _decoding_statistics(folder: Path, system: System, seeds: Sequence[int]) -> dict:
    """A guarded system's fallback rate over its seeds' response files (nothing for other systems)."""
    rate = fallback_rate(folder, system, ["" if n == seeds[0] else f".seed{n}" for n in seeds])
    return {} if rate is None else {"fallback_rate": rate}


def score_difference(
    turns: Sequence[Turn],
    answers_a: Sequence[dict[str, str]],
    answers_b: Sequence[dict[str, str]],
    scorer: ScorerConfig | None = None,
    seed: int = 0,
) -> dict:
    """The paired voice_score difference ``a - b`` per context (each side averaged over its seeds), its mean
    and a 95% bootstrap interval over contexts, and the share of contexts where ``a`` scores higher."""

    def per_context(answers: Sequence[dict[str, str]]) -> dict[str, float]:
        means = {}
        for turn in turns:
            values = [score_response(turn, one[turn.id], scorer).voice_score for one in answers if turn.id in one]
            if values:
                means[turn.id] = statistics.mean(values)
        return means

    a, b = per_context(answers_a), per_context(answers_b)
    shared = [i for i in a if i in b]
    differences = [a[i] - b[i] for i in shared]
    if not differences:
        return {"n": 0}
    low, high = bootstrap_interval(differences, seed=seed)
    return {
        "n": len(differences),
        "mean": round(statistics.mean(differences), 4),
        "ci": [round(low, 4), round(high, 4)],
        "a_better_share": round(sum(d > 0 for d in differences) / len(differences), 4),
    }


def _manifest(folder: Path, turns: Sequence[Turn], scorer: ScorerConfig | None) -> dict:
    """What the figures were made from: the package version, the data, the scorer config, and each response
    file's fingerprint digest (its system's weights hash or endpoint, seed and sampling)."""
    responses = {}
    for record in sorted(folder.glob("*.fingerprint.json")):
        try:
            responses[record.name.removesuffix(".fingerprint.json")] = json.loads(
                record.read_text(encoding="utf-8")
            ).get("digest")
        except (OSError, ValueError):
            continue
    return {
        "version": package_version(),
        "data": hash_records(turns),
        "scorer": (scorer or ScorerConfig()).fingerprint(),
        "responses": responses,
    }


def all_responses(
    systems: Sequence[System],
    turns: Sequence[Turn],
    folder: Path,
    seeds: Sequence[int],
    *,
    temperature: float = DEFAULT_SAMPLING.temperature,
    max_new_tokens: int = DEFAULT_SAMPLING.max_new_tokens,
    batch_size: int = 16,
    progress: bool = True,
    log: Log = print,
    scorer: ScorerConfig | None = None,
    judge=None,
) -> dict[str, dict[int, dict[str, str]]]:
    """Every system's responses to ``turns``, once per seed: ``name -> seed -> turn.id -> text``, cached in
    ``folder`` (see :func:`~voicetune.evaluate.systems.system_responses`; the first seed's file is
    ``NAME.jsonl``, the others ``NAME.seedN.jsonl``). A deterministic system (draft, draft+pipecat,
    reference) answers once and that answer stands for every seed. One model is loaded at a time, and only
    when something is left to generate. Decoded systems (``+bestN``, ``+guard``) choose with ``judge``'s order
    (the rubric judge: the rules; any other: the learned judge)."""
    backends = _Backends(batch_size)
    responses: dict[str, dict[int, dict[str, str]]] = {}
    for system in systems:
        log(f"responses: {system.name} ({system.spec})")
        responses[system.name] = {}
        deterministic = system.kind in DETERMINISTIC
        for number in seeds[:1] if deterministic else seeds:
            responses[system.name][number] = system_responses(
                system,
                turns,
                folder,
                number,
                backends,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                progress=progress,
                file_suffix="" if number == seeds[0] else f".seed{number}",
                log=log,
                scorer=scorer,
                judge=judge,
            )
        for number in seeds[1:] if deterministic else ():
            responses[system.name][number] = responses[system.name][seeds[0]]
    return responses


def evaluate(
    systems: Sequence[System],
    turns: Sequence[Turn],
    judge,
    out: str | Path,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int | Sequence[int] = 0,
    data_name: str = "",
    temperature: float = DEFAULT_SAMPLING.temperature,
    max_new_tokens: int = DEFAULT_SAMPLING.max_new_tokens,
    batch_size: int = 16,
    progress: bool = True,
    log: Log = print,
    scorer: ScorerConfig | None = None,
    responses_dir: str | Path | None = None,
) -> dict:
    """Run the evaluation into ``out`` and return its summary (also written as JSON and Markdown).

    Responses are cached in ``out/responses`` unless ``responses_dir`` names another folder (a second judge
    over the same responses, the simulated calls of the same run).

    With several seeds every model system answers every context once per seed and each (context, seed) is
    a pair; deterministic systems (draft, draft+pipecat, reference) answer once, and a comparison of two of
    them is judged once. The bootstrap interval resamples contexts, so seeds of one context stay together.
    """
    out = Path(out)
    seeds = [seed] if isinstance(seed, int) else list(dict.fromkeys(seed))
    if not seeds:
        raise VoicetuneError("--seed: give at least one seed")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise VoicetuneError(f"two systems share a name: {', '.join(names)} (use NAME=SPEC)")
    if len(systems) < 2:
        raise VoicetuneError("an evaluation needs at least two --system")
    if not turns:
        raise VoicetuneError(f"{data_name or 'the data'}: no turns to evaluate")
    seen: dict[str, int] = {}
    for index, turn in enumerate(turns):
        if turn.id in seen:  # one turn's context would be paired with another's responses
            raise VoicetuneError(
                f"{data_name or 'the data'}: turns {seen[turn.id] + 1} and {index + 1} share the id '{turn.id}'"
            )
        seen[turn.id] = index
    comparisons = list(comparisons or default_comparisons(systems))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "eval.json",
        dumps(
            {
                "systems": {s.name: s.spec for s in systems},
                "data": data_name,
                "turns": len(turns),
                "judge": judge.name,
                "comparisons": comparisons,
                "seeds": seeds,
                "temperature": temperature,
                "max_new_tokens": max_new_tokens,
                "scorer": (scorer or ScorerConfig()).model_dump(),
            },
            indent=2,
        )
        + "\n",
    )

    fixed = {s.name for s in systems if s.kind in DETERMINISTIC}
    folder = Path(responses_dir) if responses_dir is not None else out / "responses"
    responses = all_responses(
        systems,
        turns,
        folder,
        seeds,
        judge=judge,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
        log=log,
        scorer=scorer,
    )
    for system in systems:
        if not responses[system.name][seeds[0]]:
            log(
                f"{system.name}: no turn has a response (reference needs records with 'reference'); its comparisons "
                "are empty"
            )

    pairs = []
    for a, b in comparisons:
        for number in seeds[:1] if {a, b} <= fixed else seeds:
            by_name = {a: responses[a][number], b: responses[b][number]}
            pairs += make_pairs(turns, by_name, a, b, number if len(seeds) > 1 else None)
    log(f"judging {len(pairs)} pairs in both orders with {judge.name}")
    judged = judge_both_orders(judge, pairs, progress=progress)
    write_records(out / "pairs.jsonl", judged)

    results = []
    for a, b in comparisons:
        subset = [p for p in judged if p.system_a == a and p.system_b == b]
        compared = {p.meta["context_id"] for p in subset}
        on_contexts = {
            name: system_statistics(
                [t for t in turns if t.id in compared], _per_seed(responses[name], fixed, name), scorer
            )
            for name in (a, b)
        }
        results.append(
            {
                "system_a": a,
                "system_b": b,
                "judge": judge.name,
                **win_statistics(subset, seed=seeds[0]),
                "speaking_seconds": {name: stats.get("speaking_seconds") for name, stats in on_contexts.items()},
                "faithfulness": {name: stats.get("faithfulness") for name, stats in on_contexts.items()},
                "invented_fact_rate": {name: stats.get("invented_fact_rate") for name, stats in on_contexts.items()},
                "contradiction_rate": {name: stats.get("contradiction_rate") for name, stats in on_contexts.items()},
                "voice_score_difference": score_difference(
                    [t for t in turns if t.id in compared],
                    _per_seed(responses[a], fixed, a),
                    _per_seed(responses[b], fixed, b),
                    scorer,
                    seeds[0],
                ),
            }
        )
    summary = {
        "data": data_name,
        "turns": len(turns),
        "seeds": seeds,
        "comparisons": results,
        "systems": {
            s.name: {
                "spec": s.spec,
                **system_statistics(turns, _per_seed(responses[s.name], fixed, s.name), scorer),
                **usable_statistics(judge, turns, _per_seed(responses[s.name], fixed, s.name)),
                **_decoding_statistics(folder, s, seeds),
            }
            for s in systems
        },
        "judge": {"name": judge.name, **position_bias(judged), "errors": sum(p.winner is None for p in judged)},
        "manifest": _manifest(folder, turns, scorer),
    }
    atomic_write_text(out / "summary.json", dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", markdown_summary(summary))
    return summary
