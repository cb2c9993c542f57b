"""Top-level task functions for engine tests (they must be importable by worker processes).

The per-engine tasks are in :mod:`skfleet.engine.testing` (the engine kit).
"""

from __future__ import annotations


def slow_sum(values) -> float:
    """Sum after a short pause, so that a batch of these spreads over every worker."""
    import time

    time.sleep(0.2)
    return float(values.sum())
