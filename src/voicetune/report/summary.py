"""A run's figures in one JSON-able dict (``RUN/summary.json``), read from the stages' outputs.

Nothing here computes a statistic anew: the judge's win rates are ``voicetune eval``'s, the reviewers' come
from :func:`voicetune.review.agreement.review_agreement` on the live votes, the calls' from ``voicetune
simulate``. What this module adds is the headline: each figure as a typed :class:`Verdict` against the
thresholds fixed in the run's config before it ran (rendered into sentences by :mod:`voicetune.report.render`).
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voicetune.errors import VoicetuneError
from voicetune.judge.llm import prompt_fingerprint
from voicetune.layout import TUNED, RunPaths
from voicetune.models.loading import model_identity
from voicetune.provenance import hash_file, hash_tree
from voicetune.quality.speech import estimate_seconds
from voicetune.records import Pair, Turn, load_records
from voicetune.review.agreement import review_agreement
from voicetune.review.store import ReviewStore

#: The packages whose versions the manifest records.
PACKAGES = (
    "voicetune",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "onnxruntime",
    "piper-tts",
    "faster-whisper",
    "pipecat-ai",
    "numpy",
    "scipy",
)
#: How many samples of each kind the report shows.
SAMPLES = {"win": 3, "loss": 3, "random": 3}


class Thresholds(BaseModel):
    """What the headline judges the figures against, fixed before the run (the run config's ``thresholds``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    win_rate: float = Field(
        0.6,
        ge=0,
        le=1,
        description="the tuned model meets the bar against a baseline when it wins at least this share of pairs (ties "
        "count half), for the judge and for the reviewers",
    )
    repeat_requests_change: float = Field(
        -0.1,
        description="simulated calls: the relative change in repeat requests against each baseline must be at most "
        "this (-0.1: at least 10% fewer)",
    )
    duration_change: float = Field(
        0.0,
        description="simulated calls: the relative change in call duration must be at most this (0: calls no longer)",
    )
    resolution_margin: float = Field(
        0.02,
        ge=0,
        le=1,
        description="simulated calls: resolution must be non-inferior at this margin (the one-sided 95% lower bound of "
        "the difference above -margin)",
    )


class Verdict(BaseModel):
    """One headline figure judged against its threshold.

    ``kind`` says what the figure is: ``win_rate`` (a share of pairs, ties half, with its 95% interval),
    ``change`` (a relative change in calls, with its 95% interval) or ``non_inferiority`` (a difference in
    resolution with its one-sided 95% lower bound). ``meets`` is None when there is nothing to judge yet;
    ``includes_null`` is true when the interval includes no difference (50% for a win rate, 0 for a change).
    """

    proof: Literal["judge", "humans", "calls"]
    metric: str
    kind: Literal["win_rate", "change", "non_inferiority"]
    baseline: str
    value: float | None = None
    ci: tuple[float | None, float | None] | None = None
    threshold: float
    meets: bool | None = None
    includes_null: bool | None = None
    n: int = 0


class MissingOutput(BaseModel):
    """A stage whose record says it finished while a file it produces is not there (moved or deleted since):
    the report says so (rendered by :func:`voicetune.report.render.missing_sentence`) instead of leaving the
    stage's figures out in silence, and its timing row says ``missing`` rather than ``done``."""

    stage: Literal["data", "train", "eval", "review", "simulate"]
    files: list[str]


class RunFacts(BaseModel):
    """What the report needs from a run's config and stages, given by :func:`voicetune.pipeline.run.report_run`
    (the report reads the run's outputs, never its config's types)."""

    thresholds: Thresholds
    baselines: list[str] = Field(description="the baselines' system names")
    base_model: str = Field(description="the policy's base model spec")
    threads: int | None = None
    seeds: dict[str, object] = Field(default_factory=dict, description="every stage's seeds, for the manifest")
    scorer_fingerprint: str = Field(description="the reward's scorer config fingerprint")
    review_seed: int = 0
    missing: list[MissingOutput] = Field(
        default_factory=list, description="stages recorded as done whose outputs are gone"
    )


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise VoicetuneError(f"{path}: cannot read ({error})") from None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------------------------
# The verdicts


def judge_verdicts(comparisons: list[dict], thresholds: Thresholds, proof: str = "judge") -> list[Verdict]:
    """Tuned vs each baseline from eval-style comparison rows (the judge's, or the reviewers')."""
    verdicts = []
    for row in comparisons:
        if row.get("system_a") != TUNED:
            continue
        rate, low, high = row.get("win_rate"), row.get("ci_low"), row.get("ci_high")
        verdicts.append(
            Verdict(
                proof=proof,
                metric="win_rate",
                kind="win_rate",
                baseline=row["system_b"],
                value=rate,
                ci=(low, high),
                threshold=thresholds.win_rate,
                meets=None if rate is None else rate >= thresholds.win_rate,
                includes_null=None if low is None or high is None else low <= 0.5 <= high,
                n=row.get("n", 0),
            )
        )
    return verdicts


def call_verdicts(comparisons: list[dict], thresholds: Thresholds) -> list[Verdict]:
    """Repeat requests, duration and resolution of tuned vs each baseline in the simulated calls."""
    verdicts = []
    for row in comparisons:
        if row.get("a") != TUNED:
            continue
        for metric, threshold in (
            ("repeat_requests", thresholds.repeat_requests_change),
            ("duration_seconds", thresholds.duration_change),
        ):
            change, (low, high) = row[metric]["change"], row[metric]["ci"]
            verdicts.append(
                Verdict(
                    proof="calls",
                    metric=metric,
                    kind="change",
                    baseline=row["b"],
                    value=change,
                    ci=(low, high),
                    threshold=threshold,
                    meets=None if change is None else change <= threshold,
                    includes_null=None if low is None or high is None else low <= 0 <= high,
                    n=row.get("calls", 0),
                )
            )
        resolution = row["resolution"]
        verdicts.append(
            Verdict(
                proof="calls",
                metric="resolution",
                kind="non_inferiority",
                baseline=row["b"],
                value=resolution["difference"],
                ci=(resolution["lower_bound"], None),
                threshold=resolution["margin"],
                meets=resolution["non_inferior"],
                includes_null=None if resolution["lower_bound"] is None else resolution["lower_bound"] < 0,
                n=row.get("calls", 0),
            )
        )
    return verdicts


# --------------------------------------------------------------------------------------------------------
# The sections


def _logged_steps(paths: RunPaths) -> list[dict]:
    """The training's logged steps (``train/metrics.jsonl`` rows with a loss; a stage's last line, its totals,
    has none), in order."""
    metrics = paths.train / "train" / "metrics.jsonl"
    rows = []
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if isinstance(row, dict) and "loss" in row and "step" in row and "stage" in row:
                rows.append(row)
    return rows


def _train_section(paths: RunPaths, stages: dict) -> dict | None:
    summary = _read_json(paths.train / "summary.json")
    if summary is None:
        return None
    final: dict[str, dict] = {}
    for row in _logged_steps(paths):
        final[row["stage"]] = {
            k: row[k]
            for k in ("step", "loss", "rewards/accuracies", "rewards/margins", "mean_token_accuracy")
            if k in row
        }
    return {
        "seconds": (stages.get("train") or {}).get("seconds"),
        "targets": summary.get("targets"),
        "rounds": summary.get("rounds"),
        "timings": summary.get("timings"),
        "final": final,
        "model": str(paths.model),
        "base_model": summary.get("base_model"),
    }


def _eval_section(paths: RunPaths, folder: Path) -> dict | None:
    summary = _read_json(folder / "summary.json")
    if summary is None:
        return None
    return {
        "judge": summary["judge"],
        "turns": summary["turns"],
        "seeds": summary["seeds"],
        "comparisons": [c for c in summary["comparisons"] if c["system_a"] == TUNED],
        "systems": summary["systems"],
    }


def _review_section(paths: RunPaths, seed: int) -> dict | None:
    if not paths.review_db.is_file():
        return None
    store = ReviewStore(paths.review_db)
    meta = store.meta()
    votes = store.votes()
    section = {
        "db": str(paths.review_db),
        "pairs": len(store.pairs()),
        "reviewers": sorted(store.reviewers()),
        "mode": meta.get("mode"),
        "voice": meta.get("voice"),
        "votes": len(votes),
    }  # no links: their tokens are secrets, and a report is shared
    if votes:
        section["agreement"] = review_agreement(votes, store.judge_verdicts(), seed=seed)
    return section


def _simulation_section(paths: RunPaths) -> dict | None:
    summary = _read_json(paths.simulate / "summary.json")
    if summary is None:
        return None
    return {
        "calls": summary["calls"],
        "seeds": summary["seeds"],
        "channel": summary["channel"],
        "caller": summary["caller"],
        "timing": summary.get("timing"),
        "margin": summary["margin"],
        "systems": summary["systems"],
        "relative_change": [c for c in summary["comparisons"] if c["a"] == TUNED],
        "sensitivity_ranges": summary.get("sensitivity_ranges"),
    }


def read_stages(paths: RunPaths) -> dict:
    """Each stage's record: status, seconds, when it finished, its digest."""
    stages = {}
    for record in sorted(paths.stages.glob("*.fingerprint.json")):
        data = _read_json(record) or {}
        stages[data.get("step", record.name.removesuffix(".fingerprint.json"))] = {
            "status": data.get("status"),
            "seconds": data.get("seconds"),
            "finished_at": data.get("finished_at"),
            "digest": data.get("digest"),
        }
    return stages


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def manifest(
    facts: RunFacts, paths: RunPaths, eval_summary: dict | None, simulation: dict | None, review: dict | None
) -> dict:
    """What the figures were made from: package versions, model and data hashes, seeds, the judge prompt and
    the scorer config (hashes), the TTS engine and voice, the machine."""
    models: dict = {}
    try:
        models["base"] = {"spec": facts.base_model, **model_identity(facts.base_model)}
    except VoicetuneError as error:
        models["base"] = {"spec": facts.base_model, "error": str(error)}
    if paths.model.is_dir():
        models["tuned"] = {"path": str(paths.model), "weights": hash_tree(paths.model)}
    sim = _read_json(paths.simulate / "summary.json") or {}
    return {
        "versions": _versions(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "threads": facts.threads or "auto",
        },
        "models": models,
        "data": {
            name: hash_file(paths.split(name)) for name in ("train", "dev", "test") if paths.split(name).is_file()
        },
        "seeds": facts.seeds,
        "judge": {
            "name": (eval_summary or {}).get("judge", {}).get("name"),
            "llm_prompt": prompt_fingerprint(),
            "scorer_config": facts.scorer_fingerprint,
        },
        "responses": (eval_summary or {}).get("manifest", {}).get("responses") if eval_summary else None,
        "tts": {"review": (review or {}).get("voice"), "simulate": (sim.get("manifest") or {}).get("channel")},
        "config": (paths.root / "config.yaml").read_text(encoding="utf-8"),
    }


# --------------------------------------------------------------------------------------------------------
# Samples: the clearest wins and losses and a random few, with audio where the review set has it


def _criteria_margin(pair: Pair) -> int:
    """Criteria won by system_a minus those won by system_b (the judge's per-quality verdicts)."""
    criteria = pair.criteria or {}
    return sum(1 for v in criteria.values() if v == "a") - sum(1 for v in criteria.values() if v == "b")


def samples(paths: RunPaths, review: dict | None, seed: int = 0) -> list[dict]:
    """Side-by-side samples: the judge's clearest wins and losses of the tuned model and a random few, taken
    from the review set (so that they have audio and votes) or, without one, from the judged pairs."""
    pairs_path = paths.eval / "pairs.jsonl"
    if not pairs_path.is_file():
        return []
    judged = {p.id: p for p in load_records(pairs_path, Pair) if p.system_a == TUNED and p.winner}
    store = None
    if review is not None:
        store = ReviewStore(paths.review_db)
        in_review = {row["id"]: row for row in store.pairs()}
        pool = [judged[i] for i in in_review if i in judged]
    else:
        in_review, pool = {}, list(judged.values())
    pool.sort(key=lambda p: (-_criteria_margin(p), p.id))
    wins = [p for p in pool if p.winner == "a"][: SAMPLES["win"]]
    losses = [p for p in reversed(pool) if p.winner == "b"][: SAMPLES["loss"]]
    rest = [p for p in pool if p not in wins and p not in losses]
    chosen = [("clearest win", p) for p in wins] + [("clearest loss", p) for p in losses]
    chosen += [("random", p) for p in random.Random(seed).sample(rest, min(SAMPLES["random"], len(rest)))]
    votes_by_pair: dict[str, list] = {}
    if store is not None:
        for vote in store.votes():
            if vote.showing == 1:
                votes_by_pair.setdefault(vote.pair_id, []).append(vote)
    out = []
    for why, pair in chosen:
        votes = votes_by_pair.get(pair.id, [])
        ranked = Counter(v.winner for v in votes).most_common()
        majority = None if not ranked else ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else "split"
        row = in_review.get(pair.id) or {}
        out.append(
            {
                "why": why,
                "pair_id": pair.id,
                "baseline": pair.system_b,
                "domain": pair.domain,
                "history": [m.model_dump() for m in pair.history[-4:]],
                "draft": pair.draft,
                "tuned": pair.response_a,
                "other": pair.response_b,
                "judge": {"winner": pair.winner, "criteria": pair.criteria or {}, "rationale": pair.rationale},
                "votes": [{"reviewer": v.reviewer, "winner": v.winner, "mode": v.mode} for v in votes],
                "human_majority": majority,
                "disagrees": majority not in (None, "split") and majority != pair.winner,
                "audio": {"tuned": row.get("audio_a"), "other": row.get("audio_b")},
            }
        )
    return out


def speaking_seconds(paths: RunPaths, names: list[str]) -> dict[str, list[float]]:
    """Each system's estimated speaking time per response (first seed), from the evaluation's responses."""
    found = {}
    for name in names:
        path = paths.responses / f"{name}.jsonl"
        if path.is_file():
            found[name] = [round(estimate_seconds(t.response), 2) for t in load_records(path, Turn) if t.response]
    return found


def training_curves(paths: RunPaths) -> dict[str, list[tuple[int, float]]]:
    """The loss at each logged step, per training stage (SFT, DPO)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in _logged_steps(paths):
        curves.setdefault(row["stage"], []).append((int(row["step"]), float(row["loss"])))
    return curves


def collect(paths: RunPaths, facts: RunFacts) -> dict:
    """Everything the report shows, as the JSON written to ``RUN/summary.json``."""
    stages = read_stages(paths)
    eval_summary = _read_json(paths.eval / "summary.json")
    evaluation = _eval_section(paths, paths.eval)
    review = _review_section(paths, facts.review_seed)
    simulation = _simulation_section(paths)
    thresholds = _read_json(paths.root / "thresholds.json") or {
        "thresholds": facts.thresholds.model_dump(),
        "set_at": None,
    }
    headline = judge_verdicts((evaluation or {}).get("comparisons", []), facts.thresholds)
    human_rows = ((review or {}).get("agreement") or {}).get("comparisons", [])
    headline += judge_verdicts(human_rows, facts.thresholds, proof="humans")
    headline += call_verdicts((simulation or {}).get("relative_change", []), facts.thresholds)
    missing = facts.missing
    for gap in missing:  # the record says done, but what it made is gone: the timings must not say done
        stages[gap.stage] = {**stages[gap.stage], "status": "missing"}
    results_at = max((s.get("finished_at") or 0 for s in stages.values()), default=0)
    command = (
        (paths.root / "command.txt").read_text(encoding="utf-8").strip()
        if (paths.root / "command.txt").is_file()
        else None
    )
    return {
        "run": str(paths.root),
        "made_at": time.time(),
        "baselines": facts.baselines,
        "headline": [v.model_dump() for v in headline],
        "thresholds": {
            **thresholds,
            "changed_after_results": bool(
                thresholds.get("set_at") and results_at and thresholds["set_at"] > results_at
            ),
        },
        "data": {
            name: sum(1 for _ in paths.split(name).open(encoding="utf-8"))
            for name in ("train", "dev", "test")
            if paths.split(name).is_file()
        },
        "train": _train_section(paths, stages),
        "eval": evaluation,
        "eval_llm": _eval_section(paths, paths.eval_llm),
        "review": review,
        "simulation": simulation,
        "missing": [gap.model_dump() for gap in missing],
        "timings": {name: {"seconds": s.get("seconds"), "status": s.get("status")} for name, s in stages.items()},
        "manifest": manifest(facts, paths, eval_summary, simulation, review),
        "command": command,
        "reproduce": f"voicetune run {paths.root / 'config.yaml'} --out {paths.root}-again",
    }
