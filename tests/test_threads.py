"""Thread counts from the cores other processes leave free."""

from __future__ import annotations

import subprocess
import sys

from voicetune.threads import busy_cores, choose_threads, usable_cores


def test_an_explicit_count_wins_then_the_environment(monkeypatch):
    monkeypatch.setenv("VOICETUNE_THREADS", "3")
    assert choose_threads(5, busy=0.0) == 5
    assert choose_threads(None, busy=0.0) == 3
    monkeypatch.setenv("VOICETUNE_THREADS", "")
    assert choose_threads(0, busy=0.0) == usable_cores()


def test_busy_cores_are_left_to_their_process(monkeypatch):
    monkeypatch.delenv("VOICETUNE_THREADS", raising=False)
    cores = usable_cores()
    assert choose_threads(busy=0.3) == cores  # a little background work costs no thread
    assert choose_threads(busy=0.7) == max(1, cores - 1)  # a core mostly in use is left alone
    assert choose_threads(busy=cores + 3.0) == 1  # never fewer than one


def test_a_spinning_process_is_measured_and_our_own_work_is_not():
    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    )
    try:
        import time

        time.sleep(0.3)
        assert busy_cores(0.5) >= 0.5
    finally:
        spinner.kill()
        spinner.wait()
    # our own busy loop during the measurement is not competition (compared with what other processes use
    # just before, so that a machine busy with something else does not fail the test)
    import threading

    others = busy_cores(0.5)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [None for _ in iter(lambda: stop.is_set(), True)])
    worker.start()
    try:
        measured = busy_cores(0.5)
    finally:
        stop.set()
        worker.join()
    assert measured < others + 0.8
