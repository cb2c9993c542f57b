"""Data-parallel epochs for linear SGD models: one learner per worker, parameters averaged.

Each epoch, the partitions (in the epoch's seeded order) are dealt round-robin to ``workers``
tasks. Every task starts from the same model, learns its partitions in order with ``partial_fit``
(the same batches and in-partition shuffles as the sequential loop), and returns its model and
its progressive metrics. The client averages the parameters weighted by the rows each task
learned (a one-shot "parameter mixing" per epoch, Mann et al. 2009 / Zinkevich et al. 2010) and
sets SGD's update counter to what the sequential loop would have reached, so the learning-rate
schedule continues across epochs as it does sequentially.

Only small things travel: the source and partition descriptions, the fitted encoder and the
model's parameter vectors; every worker reads its own partitions.

Checkpoints are taken at epoch boundaries (the averaged model); ``resume`` continues from the
last completed epoch.

>>> import numpy as np
>>> from sklearn.linear_model import SGDRegressor
>>> a = SGDRegressor().partial_fit(np.eye(2), [1.0, 0.0])
>>> b = SGDRegressor().partial_fit(np.eye(2), [0.0, 1.0])
>>> mixed = average_models([a, b], [1, 3], t_base=1.0)
>>> bool(np.allclose(mixed.coef_, 0.25 * a.coef_ + 0.75 * b.coef_)), mixed.t_
(True, 5.0)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skfleet.engine.session import EngineSession
from skfleet.train.stream.data import PartitionReader, epoch_order
from skfleet.train.stream.loop import EpochLoop, LoopState, learn_partition

#: Parameter arrays of scikit-learn's SGD models that are averaged across workers.
AVERAGED = (
    "coef_",
    "intercept_",
    "_standard_coef",
    "_standard_intercept",
    "_average_coef",
    "_average_intercept",
)


@dataclass(frozen=True)
class EpochTask:
    """One worker's share of an epoch (small: descriptions, the encoder, a parameter vector)."""

    reader: PartitionReader
    indices: tuple[int, ...]
    epoch: int
    estimator: Any
    fit_kwargs: dict
    batch_rows: int
    progressive: bool
    scorer: Any


@dataclass
class EpochShare:
    estimator: Any
    rows: int
    progressive: Any


def learn_share(task: EpochTask) -> EpochShare:
    """Worker side: learn this task's partitions in order (a top-level function for any engine)."""
    # A copy: on the in-process engine every task would otherwise share the client's model.
    est = copy.deepcopy(task.estimator)
    acc = None
    rows = 0
    for index in task.indices:
        part = task.reader.prepare(index, task.epoch, with_holdout=False)
        learned, acc = learn_partition(
            est,
            part,
            batch_rows=task.batch_rows,
            fit_kwargs=task.fit_kwargs,
            scorer=task.scorer if task.progressive else None,
            acc=acc,
        )
        rows += learned
    return EpochShare(est, rows, acc)


def average_models(models: Sequence[Any], rows: Sequence[int], t_base: float) -> Any:
    """The row-weighted average of ``models``' parameters; ``t_`` = ``t_base`` + all rows."""
    weights = np.asarray(rows, dtype=np.float64)
    live = [(m, w) for m, w in zip(models, weights, strict=True) if w > 0]
    if not live:
        return models[0]
    total = sum(w for _, w in live)
    out = copy.deepcopy(live[0][0])
    for name in AVERAGED:
        arrays = [getattr(m, name, None) for m, _ in live]
        if any(a is None for a in arrays):
            continue
        mixed = sum(
            w * np.asarray(a, dtype=np.float64) for a, (_, w) in zip(arrays, live, strict=True)
        )
        setattr(out, name, (mixed / total).astype(np.asarray(arrays[0]).dtype))
    if hasattr(out, "t_"):
        out.t_ = float(t_base + sum(rows))
    return out


class ParallelEpochLoop(EpochLoop):
    """:class:`EpochLoop` with each epoch split over ``workers`` engine tasks.

    It overrides one hook, :meth:`EpochLoop._learn_epoch`; every task learns with the loop's own
    step (:func:`~skfleet.train.stream.loop.learn_partition`), so bad data fails with the same
    one-line error whatever ``--workers`` is, and is not retried.
    """

    def configure(self, engine: EngineSession, workers: int) -> None:
        """The run's engine session (the caller's to close) and the number of tasks per epoch."""
        self.engine = engine
        self.workers = workers

    def _learn_epoch(self, state: LoopState, started: float) -> None:
        # Checkpoints are taken at epoch boundaries only: a resumed epoch starts over.
        if state.step < self.n_partitions:
            self._learn_shares(state)
        state.seconds = time.perf_counter() - started
        self._notify(state, None)

    def _learn_shares(self, state: LoopState) -> None:
        s = self.settings
        order = epoch_order(s.seed, state.epoch, self.n_partitions)
        shares = [tuple(order[w :: self.workers]) for w in range(self.workers)]
        tasks = [
            EpochTask(
                reader=self.reader,
                indices=share,
                epoch=state.epoch,
                estimator=self.estimator,
                fit_kwargs=self.fit_kwargs,
                batch_rows=s.batch_rows,
                progressive=s.progressive,
                scorer=self.scorer,
            )
            for share in shares
            if share
        ]

        def advance(i: int, share: EpochShare) -> None:
            self.progress.advance(rows=share.rows, tasks=len(tasks[i].indices))

        # description=None: the tasks count in the loop's own progress phase.
        results = self.engine.run(
            learn_share, tasks, description=None, retries=2, on_result=advance
        )
        t_base = float(getattr(self.estimator, "t_", 1.0))
        self.estimator = average_models(
            [r.estimator for r in results], [r.rows for r in results], t_base
        )
        for r in results:
            state.rows_learned += r.rows
            if r.progressive is not None:
                state.progressive = (
                    r.progressive
                    if state.progressive is None
                    else state.progressive.merge(r.progressive)
                )
        state.partitions_learned += self.n_partitions
        state.step = self.n_partitions
