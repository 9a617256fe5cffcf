"""The evaluation summary as Markdown tables (printed by ``voicetune eval`` and saved as summary.md)."""

from __future__ import annotations

from voicetune.records import QUALITIES

_SHORT = {
    "non_repetition": "non-rep.",
    "conciseness": "concise",
    "clarity": "clarity",
    "humanness": "human",
    "faithfulness": "faithful",
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def markdown_summary(summary: dict) -> str:
    """Comparisons (win rate of A over B, ties half, with the Wilson and bootstrap CIs, the sign test and
    per-criterion win rates), then each system's mean scores and speaking time, then the judge's bias."""
    seeds = summary["seeds"]
    lines = [
        f"# Evaluation: {summary.get('data') or 'data'} ({summary['turns']} turns, seed{'s' * (len(seeds) > 1)} "
        f"{', '.join(map(str, seeds))})",
        "",
    ]
    lines.append(
        "| A vs B | judge | n | W / L / T | win rate [95% CI] | bootstrap CI | no ties | LC win rate | p | "
        + " | ".join(_SHORT[q] for q in QUALITIES)
        + " |"
    )
    lines.append("|" + "---|" * (9 + len(QUALITIES)))
    for c in summary["comparisons"]:
        boot = c["bootstrap_ci"]
        criteria = " | ".join(_pct(c["per_criterion"].get(q, {}).get("win_rate")) for q in QUALITIES)
        errors = f" ({c['errors']} errors)" if c["errors"] else ""
        lines.append(
            f"| {c['system_a']} vs {c['system_b']} | {c['judge']} | {c['n']}{errors} | {c['wins']} / {c['losses']} / "
            f"{c['ties']} | "
            f"{_pct(c['win_rate'])} [{_pct(c['ci_low'])}, {_pct(c['ci_high'])}] | [{_pct(boot[0])}, {_pct(boot[1])}] | "
            f"{_pct(c['win_rate_no_ties'])} | {_pct(c['length_controlled_win_rate'])} | {c['p_value']:.3g} | "
            f"{criteria} |"
        )
    lines += [
        "",
        "| system | spec | responses | voice_score | faithfulness | contradictions | invented | dropped a fact | "
        "fallbacks | speaking time (s) | words |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary["systems"].items():
        if s.get("responses"):
            lines.append(
                f"| {name} | `{s['spec']}` | {s['responses']} | {s['voice_score']:.3f} | {s['faithfulness']:.3f} | "
                f"{_pct(s.get('contradiction_rate'))} | "
                f"{_pct(s.get('invented_fact_rate'))} | {_pct(s.get('dropped_fact_rate'))} | "
                f"{_pct(s['fallback_rate']) if 'fallback_rate' in s else ''} | "
                f"{s['speaking_seconds']:.1f} | {s['words']:.0f} |"
            )
        else:
            lines.append(f"| {name} | `{s['spec']}` | 0 | | | | | | | | |")
    judge = summary["judge"]
    errors = f", {judge['errors']} pairs without a verdict (unparseable answers)" if judge["errors"] else ""
    lines += [
        "",
        f"Judge {judge['name']}: position consistency {_pct(judge['position_consistency'])} over {judge['pairs']} "
        "pairs, "
        f"first-slot preference {_pct(judge['first_slot_preference'])} of {judge['decisive_verdicts']} decisive "
        f"verdicts{errors}.",
        "",
    ]
    return "\n".join(lines)
