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

from skfleet.engine import Engine
from skfleet.train.stream.data import PartitionReader, epoch_order
from skfleet.train.stream.loop import EpochLoop, LoopState, single_threaded_blas

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
    fitted = hasattr(est, "coef_")
    acc = task.scorer.new() if task.progressive else None
    rows = 0
    for index in task.indices:
        part = task.reader.prepare(index, task.epoch, with_holdout=False)
        n = part.rows
        with single_threaded_blas(part.X):
            for start in range(0, n, task.batch_rows):
                stop = min(start + task.batch_rows, n)
                X, y = part.X[start:stop], part.y[start:stop]
                if acc is not None and fitted:
                    task.scorer.update(acc, est, X, y)
                est.partial_fit(X, y, **task.fit_kwargs)
                fitted = True
                rows += stop - start
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
    """:class:`EpochLoop` with each epoch split over ``workers`` engine tasks."""

    def configure(self, engine: Engine, workers: int) -> None:
        """The engine the epochs' tasks run on (owned by the caller) and the number of tasks."""
        self.engine = engine
        self.workers = workers

    def _run_epoch(self, pool: Engine, state: LoopState) -> None:
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
        results: list[EpochShare | None] = [None] * len(tasks)
        for i, share in pool.map_unordered(learn_share, tasks, retries=2):
            results[i] = share
            self.progress.advance(rows=share.rows, tasks=len(tasks[i].indices))
        t_base = float(getattr(self.estimator, "t_", 1.0))
        self.estimator = average_models(
            [r.estimator for r in results], [r.rows for r in results], t_base
        )
        self._fitted = True
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

    def run(self, state: LoopState) -> LoopState:
        started = time.perf_counter() - state.seconds
        s = self.settings
        pool = self.engine
        self.progress.start(total=s.epochs * self.n_partitions, description="train-stream")
        self.progress.advance(rows=state.rows_learned, tasks=state.partitions_learned)
        try:
            while state.epoch < s.epochs and not state.stopped_early:
                if state.step < self.n_partitions:
                    self._run_epoch(pool, state)
                state.seconds = time.perf_counter() - started
                if self.callback is not None:
                    self.callback(
                        {
                            "epoch": state.epoch,
                            "step": state.step,
                            "partition": None,
                            "rows_learned": state.rows_learned,
                        }
                    )
                self._end_epoch(state)
                if s.checkpoint_every:
                    self._checkpoint(state)
            self._finish(state)
            state.seconds = time.perf_counter() - started
            return state
        finally:
            self.progress.stop()
