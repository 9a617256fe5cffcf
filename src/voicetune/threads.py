"""How many threads to compute with: the cores actually free, not the cores the machine has.

PyTorch and llama.cpp start one worker thread per core and make them wait for each other at every
operation. When another process holds one of the cores, every operation waits for the slowest thread, and
a 2-thread job on a 2-core machine runs several times slower than a 1-thread job would (measured in
``benchmarks/bench_threads.py``). So voicetune asks the kernel which cores are busy right now and uses the
rest; ``--threads N`` (or ``$VOICETUNE_THREADS``, or ``threads:`` in a config) overrides the choice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "VOICETUNE_THREADS"
#: The most threads a setting may ask for (torch refuses a count past a C int; no CPU has this many cores).
MAX_THREADS = 1024


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; cgroup quotas are not read)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies summed over all CPUs, from ``/proc/stat``; None where it cannot be read."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        values = [float(v) for v in fields]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def busy_cores(interval: float = 0.25) -> float:
    """How many cores other processes keep busy, measured over ``interval`` seconds (0.0 where unknown).

    Reads the kernel's CPU counters twice and subtracts this process's own CPU time, so calling it from a
    busy process does not count that process as competition.
    """
    first = _cpu_times()
    own = _own_cpu_seconds()
    if first is None:
        return 0.0
    time.sleep(interval)
    second = _cpu_times()
    own = _own_cpu_seconds() - own
    if second is None or second[1] <= first[1]:
        return 0.0
    cpus = os.cpu_count() or 1
    busy_share = (second[0] - first[0]) / (second[1] - first[1])  # of all CPUs, over the interval
    return max(0.0, busy_share * cpus - own / interval)


def choose_threads(requested: int | None = None, busy: float | None = None) -> int:
    """The thread count to use: ``requested`` when positive, else ``$VOICETUNE_THREADS`` when set, else the
    usable cores minus the cores other processes keep busy (a core counts as busy from 60% use), at least 1.

    ``busy`` (cores in use by others) is measured when not given.
    """
    if requested and requested > 0:
        return int(requested)
    from_env = os.environ.get(ENV, "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    cores = usable_cores()
    if busy is None:
        busy = busy_cores()
    return max(1, cores - int(busy + 0.4))


def apply_threads(requested: int | None = None, log=None) -> int:
    """Choose the thread count (see :func:`choose_threads`) and set PyTorch's intra-op threads to it; the
    count is returned for llama.cpp and ONNX Runtime sessions. ``log`` gets one line when the automatic choice
    uses fewer threads than cores (not when ``requested`` or ``$VOICETUNE_THREADS`` set the count)."""
    threads = choose_threads(requested)
    try:
        import torch  # noqa: PLC0415 (heavy: torch)

        torch.set_num_threads(threads)
    except ImportError:
        pass
    explicit = (requested and requested > 0) or os.environ.get(ENV, "").strip().isdigit() and int(os.environ[ENV]) > 0
    if log is not None and threads < usable_cores() and not explicit:
        log(f"using {threads} of {usable_cores()} cores (the others are busy; --threads N overrides)")
    return threads
