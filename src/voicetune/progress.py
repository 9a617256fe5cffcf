"""Progress on long work, one display per process.

Every long loop in voicetune (generation, the NLI check, synthesis, training steps, the speech channel)
reports through :func:`bar` (or :func:`track`). On its own a command shows a transient rich bar with a
count and an estimate of the time left. Inside ``voicetune run`` a :class:`RunDisplay` is active and the
same bars become rows under the run's header, so the whole run has one display:

    voicetune run · stage 3/6 eval · elapsed 9:41 · about 6 min left
      judging (rubric)   ━━━━━━━━━━━━━━━━━━━━━━━━━╺━━━━━━━━━━━━  212/300  0:00:41  0:00:17

Messages (:func:`say`) print above the display. Where the output is not a terminal (a log file, CI) the
display is silent and the messages are the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

T = TypeVar("T")
Advance = Callable[..., None]

_active: RunDisplay | None = None
_stderr = Console(stderr=True)


def _columns() -> tuple:
    return (
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@contextmanager
def bar(total: int, label: str, enabled: bool = True) -> Iterator[Advance]:
    """A progress bar of ``total`` steps; the context gives ``advance(n=1)``. Nothing is shown when
    ``enabled`` is false or there is nothing to do; inside a run, the bar is a row of the run's display."""
    if not enabled or total <= 0:
        yield lambda n=1: None
        return
    if _active is not None:
        with _active.bar(total, label) as advance:
            yield advance
        return
    progress = Progress(*_columns(), console=_stderr, transient=True)
    with progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)


def track(items: Iterable[T], label: str, enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` with a :func:`bar`."""
    items = list(items)
    with bar(len(items), label, enabled) as advance:
        for item in items:
            yield item
            advance()


def say(message: str) -> None:
    """Print one message line on stderr (above the run's display when there is one), never wrapped."""
    console = _active.console if _active is not None else _stderr
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``; ``3725`` -> ``1 h 2 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class RunDisplay:
    """The one display of a multi-stage run: a header (stage, step, elapsed, estimate of what is left) and
    the current bars.

    The estimate is the stages' planned seconds (:meth:`start` is told each stage's), corrected by how fast
    the stages that ran so far went against their plan; a stage skipped because its outputs are up to date
    counts as no time. It is an estimate, and the header says so.

    Use as a context manager; :func:`bar` and :func:`say` anywhere in the process go to it meanwhile.
    """

    def __init__(self, title: str, stages: Sequence[tuple[str, float]], console: Console | None = None):
        self.title = title
        self.plan = dict(stages)
        self.names = [name for name, _ in stages]
        self.console = console or _stderr
        self.started = time.monotonic()
        self.current: str | None = None
        self.current_started = self.started
        self.finished: dict[str, tuple[float, bool]] = {}  # stage -> (seconds, ran)
        display = self

        class _Progress(Progress):
            def get_renderables(self):
                yield display.header()
                yield self.make_tasks_table(self.tasks)

        self.progress = _Progress(*_columns(), console=self.console, refresh_per_second=4, transient=True)

    def __enter__(self) -> RunDisplay:
        global _active
        self.previous, _active = _active, self
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        self.progress.stop()
        _active = self.previous

    def start(self, stage: str) -> None:
        """The stage now running."""
        self.current, self.current_started = stage, time.monotonic()

    def finish(self, stage: str, seconds: float, ran: bool) -> None:
        """A stage ended after ``seconds`` (``ran`` false: skipped, up to date)."""
        self.finished[stage] = (seconds, ran)
        self.current = None

    def speed(self) -> float:
        """Actual over planned seconds of the stages that ran (1 before any ran)."""
        ran = [
            (seconds, self.plan.get(name, 0.0))
            for name, (seconds, did) in self.finished.items()
            if did and self.plan.get(name)
        ]
        planned = sum(p for _, p in ran)
        return sum(s for s, _ in ran) / planned if planned > 0 else 1.0

    def remaining(self) -> float:
        """Estimated seconds left: later stages' plans, and what is left of the current one, times the speed."""
        speed = self.speed()
        left = (
            sum(self.plan.get(name, 0.0) for name in self.names if name not in self.finished and name != self.current)
            * speed
        )
        if self.current is not None:
            left += max(self.plan.get(self.current, 0.0) * speed - (time.monotonic() - self.current_started), 0.0)
        return left

    def header(self) -> Text:
        elapsed = time.monotonic() - self.started
        parts = [self.title]
        if self.current is not None:
            parts.append(f"stage {self.names.index(self.current) + 1}/{len(self.names)} {self.current}")
        parts.append(f"elapsed {duration(elapsed)}")
        parts.append(f"about {duration(self.remaining())} left (estimate)")
        return Text(" · ".join(parts), style="bold")

    @contextmanager
    def bar(self, total: int, label: str) -> Iterator[Advance]:
        task = self.progress.add_task(label, total=total)
        try:
            yield lambda n=1: self.progress.advance(task, n)
        finally:
            self.progress.remove_task(task)
