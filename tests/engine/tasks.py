"""Top-level task functions for engine tests (they must be importable by worker processes).

The per-engine tasks are in :mod:`skfleet.engine.testing` (the engine kit).
"""

from __future__ import annotations


def slow_sum(values) -> float:
    """Sum after a short pause, so that a batch of these spreads over every worker."""
    import time

    time.sleep(0.2)
    return float(values.sum())


def timed_rows(rows: int) -> tuple[int, float, int]:
    """Pretend to process ``rows`` rows at 20 µs a row: (rows, seconds taken, process id)."""
    import os
    import time

    started = time.perf_counter()
    time.sleep(rows * 20e-6)
    return rows, time.perf_counter() - started, os.getpid()


def nested_pids(n: int) -> tuple[int, list[int]]:
    """The process this task runs in, and those its own ``n_jobs=-1`` joblib calls ran in (a
    random forest's trees inside a CV fit are such calls)."""
    import os

    import joblib

    pids = joblib.Parallel(n_jobs=-1)(joblib.delayed(os.getpid)() for _ in range(n))
    return os.getpid(), pids


def interval(item: dict) -> tuple[float, float, int, int]:
    """Sleep 0.3 s and mark the item as taken: (start, end, thread id, the item's id here).

    An item marked taken before (``item["taken"]``) means two tasks shared one object."""
    import threading
    import time

    if item.get("taken"):
        raise AssertionError("this item object was given to a task before")
    item["taken"] = True
    started = time.perf_counter()
    time.sleep(0.3)
    return started, time.perf_counter(), threading.get_ident(), id(item)
