"""Top-level task functions for engine tests (they must be importable by worker processes)."""

from __future__ import annotations

import os
from pathlib import Path


def square(x: int) -> int:
    return x * x


def fail_once(item: tuple[str, int]) -> int:
    """Raise the first time it sees an item (remembered in a file, across processes)."""
    marker_dir, x = item
    marker = Path(marker_dir) / f"seen-{x}"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        raise RuntimeError(f"first attempt at {x}")
    return x


def always_fail(x: int) -> int:
    raise ValueError(f"bad item {x}")


def slow_sum(values) -> float:
    """Sum after a short pause, so that a batch of these spreads over every worker."""
    import time

    time.sleep(0.2)
    return float(values.sum())
