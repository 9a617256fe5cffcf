"""How often a judge agrees with the hand-labelled pairs, against the length baselines.

Run: .venv/bin/python benchmarks/judge_agreement.py [--split test|dev|all] [--sources builtin,tau-bench,synthetic]
         [--pairs FILE] [--scorer-config FILE] [--judge rubric | --llm URL --model NAME] [--json OUT]

Each labelled pair is judged in both orders (voicetune.evaluate.judge_both_orders; a verdict that flips with
the order is a tie) and compared with its label: a tie or a judge error counts as not agreeing. The same
figures for two judges that only count words (shorter wins, longer wins) show how much of the agreement
length alone would give. One table: overall, per quality, per failure class and per source, with each
judge accuracy's 95% percentile bootstrap interval over pairs (voicetune.judge.agreement.agreement_report).

Pairs: the built-in labelled pairs of --sources (voicetune.data.labelled; τ-bench pairs need
../shared/data or $VOICETUNE_SHARED_DATA and are skipped with a note without it), or a user's own file of
full Pair lines (--pairs). --split picks the half (by a hash of the pair's context: see
voicetune.data.labelled.split_of); its default is test for the built-in pairs, which the rubric was tuned
beside, and all for --pairs, whose pairs nothing was tuned on.

--judge llm (or --llm URL) uses an LLM judge: the given OpenAI-compatible endpoint, or without --llm the
embedded SmolLM2-135M behind a local llama.cpp server; answers are cached in --cache, so a re-run asks
nothing twice.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


#: Groups with fewer pairs than this are marked: their bootstrap interval is too crude to mean much.
SMALL = 10


def _percent(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def _rows(report: dict) -> list[tuple[str, str]]:
    """(group heading or "", value) for every row of a report, in table order."""
    rows = [("overall", "")]
    for key, values in report["groups"].items():
        rows += [(key, value) for value in values]
    return rows


def _row(report: dict, key: str, value: str) -> dict:
    return report["overall"] if key == "overall" else report["groups"][key][value]


def table(reports: dict[str, dict], judge_name: str) -> str:
    """The reports as one aligned text table: rows overall, per quality, failure class and source."""
    judge = reports["judge"]
    header = ["", "n", f"{judge_name} accuracy [95% CI]", "ties", "shorter-wins", "longer-wins"]
    lines = [header]
    last_key = None
    for key, value in _rows(judge):
        if key != "overall" and key != last_key:
            lines.append([f"by {key.replace('_', ' ')}", "", "", "", "", ""])
            last_key = key
        row = _row(judge, key, value)
        ci = "" if row["ci_low"] is None else f" [{row['ci_low']:.0%}, {row['ci_high']:.0%}]"
        lines.append(
            [
                "overall" if key == "overall" else f"  {value}",
                str(row["n"]) + ("*" if row["n"] < SMALL else ""),
                f"{_percent(row['accuracy'])}{ci}",
                str(row["ties"]),
                _percent(_row(reports["shorter"], key, value)["accuracy"]),
                _percent(_row(reports["longer"], key, value)["accuracy"]),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=False)
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    if any(line[1].endswith("*") for line in lines):
        out.append(f"* fewer than {SMALL} pairs: the interval (and the accuracy) is anecdote, not evidence")
    return "\n".join(out)


def load_pairs(args) -> tuple[list, str]:
    """The labelled pairs the arguments ask for, and a description of them."""
    from collections import Counter

    from voicetune.data.labelled import labelled_pairs, load_labelled_file, select_split

    if args.pairs:
        split = args.split or "all"
        every = load_labelled_file(args.pairs)
        where = str(args.pairs)
    else:
        split = args.split or "test"
        sources = [s for part in args.sources for s in part.replace(",", " ").split()]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            every = labelled_pairs(sources)
        for warning in caught:
            print(f"note: {warning.message}")
        where = "built-in labelled pairs (" + ", ".join(sources) + ")"
    pairs = select_split(every, split)
    per_source = Counter(p.meta.get("source", "unknown") for p in pairs)
    detail = ", ".join(f"{source} {count}" for source, count in per_source.items())
    return pairs, f"split {split}: {len(pairs)} of {len(every)} {where}" + (f"; by source: {detail}" if detail else "")


def main(argv: list[str] | None = None) -> int:
    from voicetune.data.labelled import SOURCES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split",
        choices=("test", "dev", "all"),
        default=None,
        help="which half of the pairs (default: test for the built-in pairs, all for --pairs)",
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        default=[",".join(SOURCES)],
        metavar="SOURCE",
        help=f"built-in label sources, comma- or space-separated (default: {','.join(SOURCES)})",
    )
    parser.add_argument(
        "--pairs",
        type=Path,
        help="a file of your own labelled pairs (Pair lines with meta.label) instead of the built-ins",
    )
    parser.add_argument(
        "--scorer-config", type=Path, help="a YAML scorer config for the rubric judge (default: the built-in one)"
    )
    parser.add_argument("--judge", choices=("rubric", "llm"), default=None, help="rubric (default) or llm")
    parser.add_argument(
        "--llm",
        "--endpoint",
        dest="endpoint",
        metavar="URL",
        help="an OpenAI-compatible endpoint for the LLM judge (implies --judge llm; without it --judge llm serves the "
        "embedded model locally)",
    )
    parser.add_argument("--model", default="smollm2-135m", help="the LLM judge's model name (default: smollm2-135m)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("runs/judge_agreement/judge_cache.sqlite"),
        help="the LLM judge's answer cache",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the reports as JSON")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples per interval (default 2000)")
    args = parser.parse_args(argv)

    from voicetune.errors import VoicetuneError
    from voicetune.evaluate import judge_both_orders, position_bias
    from voicetune.judge.agreement import agreement_report, length_baseline
    from voicetune.records import atomic_write_text, dumps

    kind = args.judge or ("llm" if args.endpoint else "rubric")
    try:
        pairs, description = load_pairs(args)
        print(description)
        if not pairs:
            print("no labelled pairs to judge")
            return 1
        if kind == "rubric":
            from voicetune.judge import RubricJudge
            from voicetune.quality import load_scorer_config

            name = "rubric"
            judged = judge_both_orders(RubricJudge(load_scorer_config(args.scorer_config)), pairs, progress=False)
        else:
            from voicetune.judge.llm import LLMJudge
            from voicetune.models.chat import ChatCache

            name = f"llm:{args.model}"
            if args.endpoint:
                server = contextlib.nullcontext(args.endpoint)
            else:
                from voicetune.models.llama_server import LlamaServer

                server = LlamaServer(threads=os.cpu_count())
            with server as url:
                judge = LLMJudge(url, args.model, ChatCache(args.cache), concurrency=2)
                judged = judge_both_orders(judge, pairs, progress=True)
    except VoicetuneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    reports = {
        "judge": agreement_report(judged, n_boot=args.n_boot),
        "shorter": agreement_report(length_baseline(pairs, "shorter"), n_boot=args.n_boot),
        "longer": agreement_report(length_baseline(pairs, "longer"), n_boot=args.n_boot),
    }
    print()
    print(table(reports, name))
    bias = position_bias(judged)
    preference = bias["first_slot_preference"]
    overall = reports["judge"]["overall"]
    print(
        f"\n{name}: a tie ({overall['ties']}) or an error ({overall['errors']}) counts as not agreeing; position "
        "consistency "
        f"{_percent(bias['position_consistency'])}, first-slot preference {_percent(preference)}"
    )
    if args.json:
        document = {
            "description": description,
            "judge_name": name,
            "position_bias": bias,
            **reports,
            "pairs": [
                {
                    "id": p.id,
                    "label": p.meta.get("label"),
                    "winner": p.winner,
                    "split": p.meta.get("split"),
                    "source": p.meta.get("source"),
                    "quality": p.meta.get("quality"),
                    "failure_class": p.meta.get("failure_class"),
                }
                for p in judged
            ],
        }
        try:
            atomic_write_text(args.json, dumps(document, indent=2) + "\n")
        except VoicetuneError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
