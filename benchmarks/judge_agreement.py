"""How often each judge agrees with the hand-labelled pairs, both orders, with its position bias.

Run: .venv/bin/python benchmarks/judge_agreement.py [--endpoint URL --model NAME] [--out runs/judge_agreement]

The rubric judge, and an LLM judge: the given OpenAI-compatible endpoint, or (by default) the embedded
SmolLM2-135M served by a local llama.cpp server, which is what every user has. Each labelled pair is judged
in both orders and reconciled (a flip is a tie); agreement counts a tie as not agreeing. LLM answers are
cached under --out, so a re-run asks nothing twice.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def report(name: str, judged) -> None:
    from voicetune.evaluate import position_bias
    from voicetune.judge import label_agreement

    agreement = label_agreement(judged)
    bias = position_bias(judged)
    print(f"{name}: agrees on {agreement['agree']}/{agreement['n']} = {agreement['accuracy']:.1%} "
          f"({agreement['ties']} ties, {agreement['disagree']} against, {agreement['errors']} unparseable); "
          f"position consistency {bias['position_consistency']:.1%}, first-slot preference "
          f"{bias['first_slot_preference'] if bias['first_slot_preference'] is None else format(bias['first_slot_preference'], '.1%')}")
    for quality, row in agreement["per_quality"].items():
        print(f"    {quality:<15} {row['agree']}/{row['n']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="an OpenAI-compatible URL (default: a local llama.cpp server of the embedded model)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", type=Path, default=Path("runs/judge_agreement"))
    args = parser.parse_args()

    from voicetune.data import builtin_pairs
    from voicetune.evaluate import judge_both_orders
    from voicetune.judge import RubricJudge
    from voicetune.judge.llm import JudgeCache, LLMJudge
    from voicetune.models.llama_server import LlamaServer

    pairs = builtin_pairs()
    print(f"{len(pairs)} labelled pairs")
    report("rubric", judge_both_orders(RubricJudge(), pairs, progress=False))
    server = contextlib.nullcontext(args.endpoint) if args.endpoint else LlamaServer(threads=os.cpu_count())
    with server as url:
        judge = LLMJudge(url, args.model, JudgeCache(args.out / "judge_cache.sqlite"), concurrency=2)
        report(f"llm:{args.model}", judge_both_orders(judge, pairs, progress=True))


if __name__ == "__main__":
    main()
