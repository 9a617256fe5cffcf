"""The learned judge against blind listeners, on the test half of the packaged listener labels.

Run: .venv/bin/python benchmarks/judge_listener.py [--out runs/judge_listener] [--judge-dir DIR]

The judge is the default one (trained on the dev half only, cached); nothing here is chosen on the test half.
Prints and writes (``OUT/judge_listener.json``, ``OUT/reliability.png``):

* usable/unusable: accuracy and balanced accuracy overall, on real and on synthetic items apart, per failure
  class (how many of the class the judge calls unusable, and balanced accuracy against every usable item),
  per domain and per source system; the share of unusable responses judged usable;
* pairwise agreement with the readers' decisive preferences, both orders (a verdict that flips with the order
  is a tie, and a tie counts as wrong): the learned judge beside the rubric, shorter-wins and longer-wins;
* calibration: expected calibration error and a reliability plot;
* agreement between two readers of the same item (Cohen's κ), and scoring throughput.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def _balanced(y_true: list[int], y_pred: list[int]) -> float | None:
    from sklearn.metrics import balanced_accuracy_score

    return round(float(balanced_accuracy_score(y_true, y_pred)), 4) if len(set(y_true)) == 2 else None


def pointwise(labels, assessed) -> dict:
    y = [int(r.usable) for r in labels]
    pred = [int(a.usable) for a in assessed]
    out: dict = {
        "n": len(y),
        "usable_share": round(float(np.mean(y)), 4),
        "accuracy": round(float(np.mean(np.equal(y, pred))), 4),
        "balanced_accuracy": _balanced(y, pred),
    }
    bad = [i for i, v in enumerate(y) if not v]
    out["unusable_judged_usable"] = round(float(np.mean([pred[i] for i in bad])), 4) if bad else None
    for name, keep in (
        ("real", lambda r: not r.meta.get("synthetic")),
        ("synthetic", lambda r: bool(r.meta.get("synthetic"))),
    ):
        idx = [i for i, r in enumerate(labels) if keep(r)]
        if idx:
            yy, pp = [y[i] for i in idx], [pred[i] for i in idx]
            bb = [i for i in idx if not y[i]]
            out[name] = {
                "n": len(idx),
                "accuracy": round(float(np.mean(np.equal(yy, pp))), 4),
                "balanced_accuracy": _balanced(yy, pp),
                "unusable_judged_usable": round(float(np.mean([pred[i] for i in bb])), 4) if bb else None,
            }
    usable_idx = [i for i, v in enumerate(y) if v]
    per_class = {}
    for failure in sorted({r.failure for r in labels if r.failure}):
        idx = [i for i, r in enumerate(labels) if not r.usable and r.failure == failure]
        caught = float(np.mean([1 - pred[i] for i in idx]))
        specificity = float(np.mean([pred[i] for i in usable_idx])) if usable_idx else float("nan")
        per_class[failure] = {
            "n": len(idx),
            "judged_unusable": round(caught, 4),
            "judged_usable": round(1 - caught, 4),
            "balanced_accuracy": round((caught + specificity) / 2, 4),
        }
    out["per_failure"] = per_class
    system = lambda r: r.meta["system"].split(":")[0].split("#")[0]  # noqa: E731
    for key, field in (
        ("per_domain", lambda r: r.domain),
        ("per_system", system),
        ("per_source", lambda r: r.meta.get("pool_source", "?")),
        ("per_source_system", lambda r: f"{r.meta.get('pool_source', '?')}/{system(r)}"),
    ):
        groups = defaultdict(list)
        for i, r in enumerate(labels):
            groups[field(r)].append(i)
        out[key] = {
            g: {
                "n": len(idx),
                "usable_share": round(float(np.mean([y[i] for i in idx])), 4),
                "judged_usable": round(float(np.mean([pred[i] for i in idx])), 4),
                "accuracy": round(float(np.mean([y[i] == pred[i] for i in idx])), 4),
                "balanced_accuracy": _balanced([y[i] for i in idx], [pred[i] for i in idx]),
            }
            for g, idx in sorted(groups.items())
        }
    return out


def pairwise(prefs, judges: dict) -> dict:
    """Agreement with decisive reader preferences, both orders, a tie (or a flip) counting as wrong."""
    from voicetune.records import Pair

    decisive = [p for p in prefs if p.winner in ("a", "b")]
    swapped = [
        Pair.model_validate({**p.model_dump(), "response_a": p.response_b, "response_b": p.response_a, "winner": None})
        for p in decisive
    ]
    out = {}
    for name, judge in judges.items():
        first = judge(decisive)
        second = judge(swapped)
        flip = {"a": "b", "b": "a", "tie": "tie", None: None}
        correct = defaultdict(list)
        for p, v1, v2 in zip(decisive, first, second, strict=False):
            verdict = v1 if v1 == flip[v2] else "tie"
            ok = verdict == p.winner
            correct["all"].append(ok)
            correct[p.kind].append(ok)
            correct["real" if not p.meta.get("synthetic") else "synthetic"].append(ok)
        out[name] = {k: {"n": len(v), "agreement": round(float(np.mean(v)), 4)} for k, v in correct.items()}
    return out


def rejudge(
    labels, judge, comparisons=(("tuned", "base"), ("tuned", "prompted"), ("tuned", "draft+pipecat")), source="builtin"
) -> dict:
    """The default run's comparisons on the built-in test turns, re-judged: the learned judge's win rate (both
    orders, a flip is a tie, ties count half) beside the readers' (usable beats unusable; two usable by the
    reader's ranking; two unusable tie), on the same responses. The test half's readers labelled no training data."""
    from voicetune.data.listener import labelled_preferences
    from voicetune.records import Pair

    first_reader = {}
    for r in labels:
        first_reader.setdefault(r.id, r)
    by_context = defaultdict(dict)
    for r in first_reader.values():
        if r.meta.get("pool_source") == source and r.split == "test":
            by_context[r.meta["context_id"]][r.meta["system"]] = r
    style = {}
    for p in labelled_preferences():
        if p.kind == "style" and p.split == "test":
            style[(p.reader, p.meta["context_id"], p.system_a, p.system_b)] = p.winner
    out = {}
    for a, b in comparisons:
        pairs, human = [], []
        for context, systems in sorted(by_context.items()):
            if a not in systems or b not in systems:
                continue
            ra, rb = systems[a], systems[b]
            if ra.usable != rb.usable:
                verdict = "a" if ra.usable else "b"
            elif not ra.usable:
                verdict = "tie"
            else:
                w = style.get((ra.reader, context, a, b))
                if w is None:
                    w = {"a": "b", "b": "a", "tie": "tie"}.get(style.get((ra.reader, context, b, a)), "tie")
                verdict = w
            human.append(verdict)
            pairs.append(
                Pair.model_validate(
                    {
                        **ra.model_dump(exclude={"response", "usable", "failure", "reason", "reader", "split"}),
                        "response_a": ra.response,
                        "response_b": rb.response,
                        "system_a": a,
                        "system_b": b,
                    }
                )
            )
        if not pairs:
            continue
        first = [j.winner for j in judge.judge_many(pairs)]
        swapped = [
            Pair.model_validate({**p.model_dump(), "response_a": p.response_b, "response_b": p.response_a})
            for p in pairs
        ]
        second = [j.winner for j in judge.judge_many(swapped)]
        flip = {"a": "b", "b": "a", "tie": "tie"}
        judged = [v1 if v1 == flip[v2] else "tie" for v1, v2 in zip(first, second, strict=False)]
        rate = lambda vs: round(sum(1.0 if v == "a" else 0.5 if v == "tie" else 0.0 for v in vs) / len(vs), 4)  # noqa: E731
        out[f"{a} vs {b}"] = {
            "n": len(pairs),
            "judge_win_rate": rate(judged),
            "readers_win_rate": rate(human),
            "verdict_agreement": round(float(np.mean([x == y for x, y in zip(judged, human, strict=False)])), 4),
        }
    return out


def reliability(p: np.ndarray, y: np.ndarray, path: Path, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, bins + 1)
    xs, ys, ns = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            xs.append(p[inside].mean())
            ys.append(y[inside].mean())
            ns.append(int(inside.sum()))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.plot(xs, ys, "o-", color="#1f77b4")
    for x, yy, n in zip(xs, ys, ns, strict=False):
        ax.annotate(str(n), (x, yy), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("predicted usable_p")
    ax.set_ylabel("share the readers found usable")
    ax.set_title("learned judge, test half")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reader_kappa(labels) -> dict:
    from sklearn.metrics import cohen_kappa_score

    by_item = defaultdict(list)
    for r in labels:
        by_item[r.id].append(r)
    doubles = [v[:2] for v in by_item.values() if len(v) >= 2]
    if len(doubles) < 5:
        return {"items": len(doubles)}
    a = [int(x[0].usable) for x in doubles]
    b = [int(x[1].usable) for x in doubles]
    return {
        "items": len(doubles),
        "agreement": round(float(np.mean(np.equal(a, b))), 4),
        "kappa": round(float(cohen_kappa_score(a, b)), 4),
    }


def main() -> None:
    from voicetune.data.listener import labelled_preferences, labelled_responses
    from voicetune.judge.learned import default_judge, expected_calibration_error, load_judge
    from voicetune.judge.registry import RubricJudge
    from voicetune.quality.text import words

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("runs/judge_listener"))
    parser.add_argument("--judge-dir", type=Path, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    judge = load_judge(args.judge_dir) if args.judge_dir else default_judge()
    train_or_load = time.perf_counter() - started
    all_labels = labelled_responses()
    labels = [r for r in all_labels if r.split == "test"]
    prefs = [p for p in labelled_preferences() if p.split == "test"]
    started = time.perf_counter()
    assessed = judge.assess(labels, [r.response or "" for r in labels])
    seconds = time.perf_counter() - started
    result = {
        "judge": judge.meta,
        "judge_ready_seconds": round(train_or_load, 1),
        "throughput_per_s": round(len(labels) / seconds, 1),
        "pointwise": pointwise(labels, assessed),
    }
    p = np.array([a.usable_p for a in assessed])
    y = np.array([int(r.usable) for r in labels])
    result["calibration"] = {"ece": expected_calibration_error(p, y), "brier": round(float(np.mean((p - y) ** 2)), 4)}
    reliability(p, y, args.out / "reliability.png")
    rubric = RubricJudge(judge.scorer)

    def by_length(pairs, shorter: bool):
        out = []
        for pair in pairs:
            a, b = len(words(pair.response_a)), len(words(pair.response_b))
            out.append("tie" if a == b else ("a" if (a < b) == shorter else "b"))
        return out

    result["pairwise"] = pairwise(
        prefs,
        {
            "learned": lambda pairs: [j.winner for j in judge.judge_many(pairs)],
            "rubric": lambda pairs: [j.winner for j in rubric.judge_many(pairs)],
            "shorter-wins": lambda pairs: by_length(pairs, True),
            "longer-wins": lambda pairs: by_length(pairs, False),
        },
    )
    result["rejudged_default_run"] = rejudge(labels, judge)
    result["rejudged_tau_heldout"] = rejudge(labels, judge, source="tau-bench")
    result["readers"] = {"test": reader_kappa(labels), "dev": reader_kappa([r for r in all_labels if r.split == "dev"])}
    (args.out / "judge_listener.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    pw = result["pointwise"]
    print(
        f"test half: {pw['n']} labelled responses ({pw['usable_share']:.0%} usable), "
        f"{len([x for x in prefs if x.winner in ('a', 'b')])} decisive preferences"
    )
    print(
        f"usable accuracy {pw['accuracy']:.1%}, balanced {pw['balanced_accuracy']:.1%}; unusable judged usable "
        f"{pw['unusable_judged_usable']:.1%}"
    )
    for name in ("real", "synthetic"):
        if name in pw:
            print(
                f"  {name}: n {pw[name]['n']}, accuracy {pw[name]['accuracy']:.1%}, balanced "
                f"{pw[name]['balanced_accuracy']}, "
                f"unusable judged usable {pw[name]['unusable_judged_usable']}"
            )
    print("per failure class (judged usable = missed):")
    for failure, f in pw["per_failure"].items():
        print(f"  {failure:14s} n {f['n']:4d}  missed {f['judged_usable']:.1%}  balanced {f['balanced_accuracy']:.1%}")
    for key in ("per_system", "per_domain", "per_source"):
        print(key.replace("_", " ") + ":")
        for g, f in pw[key].items():
            print(
                f"  {g:16s} n {f['n']:4d}  readers usable {f['usable_share']:.0%}  judge usable "
                f"{f['judged_usable']:.0%}  "
                f"accuracy {f['accuracy']:.1%}  balanced {f['balanced_accuracy']}"
            )
    print("pairwise agreement (both orders, tie = wrong):")
    for name, f in result["pairwise"].items():
        print(f"  {name:13s} " + "  ".join(f"{k} {v['agreement']:.1%} (n {v['n']})" for k, v in f.items()))
    print(
        f"calibration: ECE {result['calibration']['ece']:.3f}, Brier {result['calibration']['brier']:.3f} (plot "
        f"{args.out / 'reliability.png'})"
    )
    for key in ("rejudged_default_run", "rejudged_tau_heldout"):
        print(
            key.replace("_", " ")
            + " (learned judge vs blind test-half readers, win rate of the first system, ties half):"
        )
        for name, f in result[key].items():
            print(
                f"  {name:24s} n {f['n']:3d}  judge {f['judge_win_rate']:.0%}  readers {f['readers_win_rate']:.0%}  "
                f"same verdict {f['verdict_agreement']:.0%}"
            )
    print(f"readers: {result['readers']}")
    print(
        f"throughput {result['throughput_per_s']} responses/s; judge ready in {result['judge_ready_seconds']} s "
        f"(trained in {judge.meta.get('train_seconds')} s when not cached)"
    )


if __name__ == "__main__":
    main()
