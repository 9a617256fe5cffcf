"""Does post-training help? The tuned model against the base model on the same prompts and sampling.

Run: .venv/bin/python benchmarks/tuned_vs_base.py --tuned runs/train/model [--seeds 0 1 2] [--tau-turns N]

A thin front end over the one evaluation path, :func:`voicetune.evaluate.evaluate` (the same code as
``voicetune eval``): for the built-in test split and for real τ-bench airline turns (from ../shared, skipped
when absent; the turns of the held-out test tasks, all 141 unless --tau-turns samples fewer), both models
answer every turn once per seed (temperature 0.7, no style prompt), and the rubric judge compares them.
Prints each model's mean voice_score, faithfulness and invented-fact rate (a typed finding of the scorer),
the mean paired difference (tuned - base, averaged over seeds per turn) with its 95% bootstrap CI over
turns, the judge's win rate, and a few side-by-side examples. Responses are cached in --work and keyed by
the models' weights, so a re-run only judges, and a retrained model is answered again.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"


def compare(name: str, turns, tuned: str, base: str, seeds: list[int], work: Path, scorer_config: Path | None) -> None:
    from voicetune.evaluate import evaluate, parse_system
    from voicetune.judge import RubricJudge
    from voicetune.quality import load_scorer_config
    from voicetune.records import load_records

    scorer = load_scorer_config(scorer_config)
    folder = work / name.split()[0].lower().replace("τ-", "tau-")
    summary = evaluate(
        [parse_system(f"tuned={tuned}"), parse_system(f"base={base}")],
        turns,
        RubricJudge(scorer),
        folder,
        seed=seeds,
        data_name=name,
        temperature=0.7,
        max_new_tokens=96,
        progress=True,
        log=lambda _: None,
        scorer=scorer,
    )
    comparison = summary["comparisons"][0]
    print(f"\n== {name}: {len(turns)} turns x {len(seeds)} seeds ==")
    for label in ("base", "tuned"):
        stats = summary["systems"][label]
        print(
            f"{label:>6}: voice_score {stats['voice_score']:.3f}  faithfulness {stats['faithfulness']:.3f}  "
            f"invented-fact rate {stats['invented_fact_rate']:.1%}  speaking {stats['speaking_seconds']:.1f} s"
        )
    difference = comparison["voice_score_difference"]
    low, high = difference["ci"]
    print(
        f"tuned - base voice_score: {difference['mean']:+.3f}  95% bootstrap CI [{low:+.3f}, {high:+.3f}]  "
        f"(tuned better on {difference['a_better_share']:.0%} of turns)"
    )
    print(
        f"rubric judge: tuned wins {comparison['win_rate']:.0%} [{comparison['ci_low']:.0%}, "
        f"{comparison['ci_high']:.0%}] "
        f"(W/L/T {comparison['wins']}/{comparison['losses']}/{comparison['ties']}, sign test p "
        f"{comparison['p_value']:.2g})"
    )
    answers = {
        label: {t.id: t.response for t in load_records(folder / "responses" / f"{label}.jsonl")}
        for label in ("base", "tuned")
    }
    for turn in random.Random(0).sample(list(turns), min(3, len(turns))):
        print(f"\n  draft:     {' '.join((turn.draft or '').split())[:220]}")
        print(f"  base:      {' '.join(answers['base'][turn.id].split())[:220]}")
        print(f"  tuned:     {' '.join(answers['tuned'][turn.id].split())[:220]}")
        if turn.reference:
            print(f"  reference: {turn.reference[:220]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuned", required=True)
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--tau-turns",
        type=int,
        default=None,
        help="a random sample of this many τ-bench turns (default: every held-out turn)",
    )
    parser.add_argument("--work", type=Path, default=Path("runs/tuned_vs_base"))
    parser.add_argument(
        "--scorer-config", type=Path, default=None, help="a YAML scorer config (default: the built-in reward)"
    )
    args = parser.parse_args()

    from voicetune.data import builtin_turns, import_transcripts, split_records

    compare(
        "built-in test split", builtin_turns("test"), args.tuned, args.base, args.seeds, args.work, args.scorer_config
    )
    if SHARED_TAU.exists():
        tau = split_records(import_transcripts(SHARED_TAU, "tau-bench"))["test"]
        if args.tau_turns:
            tau = random.Random(0).sample(tau, min(args.tau_turns, len(tau)))
        compare(
            "τ-bench airline (held-out tasks)", tau, args.tuned, args.base, args.seeds, args.work, args.scorer_config
        )
    else:
        print("\n../shared/data/tau-bench is absent: τ-bench evaluation skipped")


if __name__ == "__main__":
    main()
