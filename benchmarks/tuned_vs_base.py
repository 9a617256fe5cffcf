"""Does post-training help? The tuned model against the base model on the same prompts and sampling.

Run: .venv/bin/python benchmarks/tuned_vs_base.py --tuned runs/train/model [--seeds 0 1 2] [--tau-turns N]

For the built-in test split and for real τ-bench airline turns (from ../shared, skipped when absent; the
turns of the held-out test tasks, all 141 unless --tau-turns samples fewer), both models generate a
response per turn and seed; every response is scored. Prints each model's mean voice_score and
faithfulness, the share of responses that state a number the context does not contain (invented facts),
the mean paired difference (tuned - base, averaged over seeds per turn) with a 95% bootstrap CI over
turns, and a few side-by-side examples. Generations are cached under --work, so a re-run only scores.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"


def responses(model: str, turns, seed: int, path: Path, backends: dict):
    from voicetune.models.generate import SamplingConfig, TransformersBackend, generate_turns

    if model not in backends:
        backends.clear()
        backends[model] = TransformersBackend(model, batch_size=16)
    return generate_turns(backends[model], turns, path, None, SamplingConfig(max_new_tokens=96, seed=seed), progress=False)


def evaluate(name: str, turns, models: dict[str, str], seeds: list[int], work: Path) -> None:
    import numpy as np
    from scipy.stats import bootstrap

    from voicetune.quality import score_response

    backends: dict = {}
    scores: dict[str, dict[str, list]] = {label: {} for label in models}
    texts: dict[str, dict[str, str]] = {label: {} for label in models}
    for label, model in models.items():
        for seed in seeds:
            for turn in responses(model, turns, seed, work / name / f"{label}-seed{seed}.jsonl", backends):
                result = score_response(turn, turn.response or "")
                scores[label].setdefault(turn.id, []).append(result)
                texts[label].setdefault(turn.id, turn.response or "")
    ids = [t.id for t in turns]
    print(f"\n== {name}: {len(ids)} turns x {len(seeds)} seeds ==")
    per_turn = {}
    for label in models:
        voice = [statistics.mean(r.voice_score for r in scores[label][i]) for i in ids]
        faith = [statistics.mean(r.scores["faithfulness"] for r in scores[label][i]) for i in ids]
        invented = statistics.mean(
            any("that the context does not contain" in reason for reason in r.reasons) for i in ids for r in scores[label][i]
        )
        per_turn[label] = np.array(voice)
        print(f"{label:>6}: voice_score {statistics.mean(voice):.3f}  faithfulness {statistics.mean(faith):.3f}  invented-fact rate {invented:.1%}")
    difference = per_turn["tuned"] - per_turn["base"]
    ci = bootstrap((difference,), np.mean, confidence_level=0.95, n_resamples=5000, random_state=0, method="percentile").confidence_interval
    print(f"tuned - base voice_score: {difference.mean():+.3f}  95% bootstrap CI [{ci.low:+.3f}, {ci.high:+.3f}]  (tuned better on {np.mean(difference > 0):.0%} of turns)")
    for turn in random.Random(0).sample(list(turns), 3):
        print(f"\n  draft:     {' '.join((turn.draft or '').split())[:220]}")
        print(f"  base:      {' '.join(texts['base'][turn.id].split())[:220]}")
        print(f"  tuned:     {' '.join(texts['tuned'][turn.id].split())[:220]}")
        if turn.reference:
            print(f"  reference: {turn.reference[:220]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuned", required=True)
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tau-turns", type=int, default=None, help="a random sample of this many τ-bench turns (default: every held-out turn)")
    parser.add_argument("--work", type=Path, default=Path("runs/tuned_vs_base"))
    args = parser.parse_args()

    from voicetune.data import builtin_turns, import_transcripts, split_records

    models = {"base": args.base, "tuned": args.tuned}
    evaluate("built-in test split", builtin_turns("test"), models, args.seeds, args.work)
    if SHARED_TAU.exists():
        tau = split_records(import_transcripts(SHARED_TAU, "tau-bench"))["test"]
        if args.tau_turns:
            tau = random.Random(0).sample(tau, min(args.tau_turns, len(tau)))
        evaluate("τ-bench airline (held-out tasks)", tau, models, args.seeds, args.work)
    else:
        print("\n../shared/data/tau-bench is absent: τ-bench evaluation skipped")


if __name__ == "__main__":
    main()
