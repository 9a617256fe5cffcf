"""How fast the voice scorer runs: responses scored per second on one core, on imported τ-bench turns.

Run: .venv/bin/python benchmarks/bench_scorer.py [--tau PATH] [--repeat N] [--config SCORER.yaml]

It imports the τ-bench airline trajectories from ../shared (the built-in data when absent) and scores every
turn's draft as a response (a new string each time, so no cache has seen the response): first with cold
caches (every context seen for the first time), then with the contexts known (the training case: several
sampled candidates per context). It prints responses per second and the ratio to the 5,000/s target. The
process is pinned to one core. ``--config`` scores with a scorer configuration file (default: the defaults).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from voicetune.data import builtin_turns, import_transcripts
from voicetune.quality import facts, scorer, speech, text

TARGET_PER_SECOND = 5000
DEFAULT_TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"


def clear_caches() -> None:
    for module in (facts, text, speech):
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()


def rate(turns, responses, config=None) -> float:
    start = time.perf_counter()
    for turn, response in zip(turns, responses):
        scorer.score_response(turn, response, config)
    return len(turns) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tau", type=Path, default=DEFAULT_TAU)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", type=Path, default=None, help="a scorer YAML file (default: the default ScorerConfig)")
    args = parser.parse_args()
    config = scorer.load_scorer_config(args.config)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.tau.exists():
        turns, source = import_transcripts(args.tau, "tau-bench"), f"τ-bench ({args.tau.name})"
    else:
        turns, source = builtin_turns(), "built-in turns (τ-bench data absent)"
    drafts = [t.draft or "" for t in turns]
    words = sum(len(d.split()) for d in drafts) / len(drafts)
    print(f"data: {len(turns)} turns from {source}, {words:.0f} words per response on average, one core, scorer config {config.fingerprint()}")

    def fresh(suffix: str) -> list[str]:
        # Each turn's draft as a screen-style response, made a new string so no cache knows it yet.
        return [draft + suffix for draft in drafts]

    cold = []
    for _ in range(args.repeat):
        clear_caches()
        cold.append(rate(turns, fresh(" "), config))
    # Known contexts, new responses: what scoring N sampled candidates per training context costs.
    warm = [rate(turns, fresh(" " * (2 + i)), config) for i in range(args.repeat)]
    print(f"cold (new contexts, new responses): {max(cold):,.0f} responses/s (runs: {', '.join(f'{r:,.0f}' for r in cold)})")
    print(f"warm (known contexts, new responses, as for N candidates per context): {max(warm):,.0f} responses/s (runs: {', '.join(f'{r:,.0f}' for r in warm)})")
    print(f"ratio to the {TARGET_PER_SECOND:,}/s target: cold {max(cold) / TARGET_PER_SECOND:.2f}x, warm {max(warm) / TARGET_PER_SECOND:.2f}x")

    # Spoken-length responses (what a tuned model says): the built-in references, about 30 words.
    references = builtin_turns()
    clear_caches()
    spoken_cold = rate(references, [t.reference + " " for t in references], config)
    spoken_warm = max(rate(references, [t.reference + " " * (2 + i) for t in references], config) for i in range(args.repeat))
    spoken_words = sum(len(t.reference.split()) for t in references) / len(references)
    print(f"spoken-length responses (built-in references, {spoken_words:.0f} words): cold {spoken_cold:,.0f}/s, warm {spoken_warm:,.0f}/s")


if __name__ == "__main__":
    main()
