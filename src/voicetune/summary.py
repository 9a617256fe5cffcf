"""Terminal summaries (rich tables) of scored records and judged pairs."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from statistics import mean

from rich.console import Console
from rich.table import Table

from voicetune.records import QUALITIES, Turn

COLUMNS = (*QUALITIES, "voice_score")


def mean_scores(records: Sequence[Turn]) -> dict[str, float]:
    """The mean of each quality and of ``voice_score`` over scored records."""
    scored = [r.scores for r in records if r.scores]
    return {name: round(mean(s[name] for s in scored), 4) for name in COLUMNS} if scored else {}


def scores_table(rows: dict[str, dict[str, float]], title: str) -> Table:
    """One row per label (a field, a system), one column per quality."""
    table = Table(title=title)
    table.add_column("")
    for name in COLUMNS:
        table.add_column(name.replace("_", " "), justify="right")
    for label, means in rows.items():
        table.add_row(label, *(f"{means[name]:.3f}" for name in COLUMNS))
    return table


def top_reasons(records: Sequence[Turn], most: int = 8) -> list[tuple[str, int]]:
    """The most frequent findings, with numbers and quoted text folded so that alike findings count together."""
    counter: Counter[str] = Counter()
    for record in records:
        for reason in record.reasons or []:
            counter[re.sub(r"\(.*?\)|\"[^\"]*\"|\$?\d[\d.,:]*\S*", "…", reason)] += 1
    return counter.most_common(most)


def print_scores(records: Sequence[Turn], field: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(scores_table({f"{field} (n={len(records)})": mean_scores(records)}, "voice quality"))
    reasons = top_reasons(records)
    if reasons:
        table = Table(title="most frequent findings")
        table.add_column("finding")
        table.add_column("records", justify="right")
        for reason, count in reasons:
            table.add_row(reason, str(count))
        console.print(table)
