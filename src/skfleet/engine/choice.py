"""In this process or on a pool: chosen from the work itself, so the default is never slower than
one process.

A pool on this machine (``dask:local``, ``processes``) costs seconds to start (every worker imports
scikit-learn) and then divides the work by its workers. A job whose work is smaller than that
start-up finishes sooner in this process. :class:`~skfleet.engine.session.EngineSession` runs the
first tasks of a phase here, measures their seconds per row, and hands the rest to the pool only
when the pool would finish them sooner (:func:`pool_pays`), counting what is left of its start-up:
nothing once a cluster started in the background (:func:`~skfleet.engine.session.warm_up`) is up,
all of :data:`POOL_START_SECONDS` when none was started. While a background start is under way
the tasks keep running here, so that time is not lost either.

>>> pool_pays(rows_left=9_000, seconds_per_row=1e-5, workers=2, start_left=POOL_START_SECONDS)
False
>>> pool_pays(rows_left=1_800_000, seconds_per_row=4e-6, workers=2, start_left=0.0)
True

Here, tasks run :data:`STREAMS` at a time in threads (``WorkEstimate.streams``): reading,
Arrow, numpy and the drivers' encoding release the GIL, so two partitions read, score and write
side by side on two cores. Two workers then count as one, and a pool started for them never pays
(:func:`pool_can_pay`); on a machine with more cores, a pool of N counts as N / 2.

>>> pool_pays(rows_left=18_000_000, seconds_per_row=4e-6, workers=2 / 2, start_left=0.0)
False
>>> pool_can_pay(workers=2), pool_can_pay(workers=8)
(False, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Seconds a ``dask:local`` cluster of 2 workers takes to start, its workers importing the scoring
#: stack, on an idle 2-core machine (``benchmarks/startup.py`` measures it). Under load both this
#: and the measured cost per row grow, so their ratio, which decides, moves less than either.
POOL_START_SECONDS = 5.0

#: Tasks this process runs side by side (in threads) when the work chooses where it runs.
STREAMS = 2

#: What a worker's first task pays before it scores: loading and checking the model, the first
#: connection to the source and the output.
HANDOVER_SECONDS = 0.5


@dataclass(frozen=True)
class WorkEstimate:
    """How a phase's tasks are weighed: the rows an item will process (its plan's estimate), and
    from a task's result the rows it did and the seconds it took. ``prepare`` runs once in this
    process before the first timed task (loading the model: a one-off, not a cost per row).
    ``streams``: how many tasks this process runs at once (in threads, each on its own copy of
    its item, as a pool worker would get it), so a pool of N workers finishes N / ``streams``
    times as fast."""

    rows: Callable[[Any], int]
    measured: Callable[[Any], tuple[int, float]]
    prepare: Callable[[], Any] | None = None
    streams: int = 1


def pool_pays(rows_left: int, seconds_per_row: float, workers: float, start_left: float) -> bool:
    """Whether ``workers`` workers, ready in ``start_left`` seconds, finish ``rows_left`` rows
    sooner than this process at the measured ``seconds_per_row``."""
    here = rows_left * seconds_per_row
    there = start_left + HANDOVER_SECONDS + here / max(1, workers)
    return there < here


def pool_can_pay(workers: int, streams: int = STREAMS) -> bool:
    """Whether a pool of ``workers`` could ever finish sooner than this process running
    ``streams`` tasks at once: not when it has no more workers than this process has streams
    (it starts, then works no faster), so no pool is started for it in the background."""
    return workers / max(1, streams) > 1


def explain(spec: str, *, rows_here: int, tasks_here: int, tasks: int, workers: int) -> str:
    """What the run summary says about the engine a phase ran on.

    >>> explain("local", rows_here=1_000, tasks_here=1, tasks=1, workers=2)
    'local (1,000 rows in one partition: no cluster to start)'
    >>> explain("local", rows_here=50_000, tasks_here=5, tasks=5, workers=2)
    'local (50,000 rows: faster here than starting 2 workers)'
    >>> explain("dask:local:2", rows_here=200_000, tasks_here=1, tasks=10, workers=2)
    'dask:local:2 (1 of 10 partitions in this process while it started)'
    """
    if tasks_here == tasks and tasks == 1:
        return f"{spec} ({rows_here:,} rows in one partition: no cluster to start)"
    if tasks_here == tasks:
        return f"{spec} ({rows_here:,} rows: faster here than starting {workers} workers)"
    if tasks_here:
        return f"{spec} ({tasks_here} of {tasks} partitions in this process while it started)"
    return spec
