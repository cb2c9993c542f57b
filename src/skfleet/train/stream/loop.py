"""The epoch loop: learn the partitions in a seeded order, overlap reading with learning, score.

Per epoch ``e`` the partitions are visited in ``epoch_order(seed, e)``; each partition's rows are
shuffled with ``default_rng([seed, e, p])``. While partition *k* is learned, a background thread
reads and encodes partition *k + 1* (Arrow and numpy release the GIL, so I/O overlaps compute).
Each batch is scored before it is learned (progressive validation). After the last partition of an
epoch the holdout is scored, one learning-curve row is added, and early stopping is checked.

The learning-rate schedule continues across epochs because the loop only ever calls
``partial_fit`` on one estimator: SGD keeps its update counter ``t_`` (``eta = 1 / (alpha * (t_ +
t0))`` for ``optimal``, ``eta0 / t_ ** power_t`` for ``invscaling``) and MLP its optimizer state
between calls, and ``fit`` (which would reset them) is never called.

Everything the loop needs to continue is in :class:`LoopState`, and a checkpoint is that state plus
the estimator; positions and shuffles derive from ``(seed, epoch, partition)`` alone, so a
resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import scipy.sparse as sp

from skfleet.errors import DataError, SkfleetError
from skfleet.train.stream.data import HoldoutCache, PartitionReader, PreparedPartition, epoch_order
from skfleet.train.stream.scoring import Scorer, curve_values
from skfleet.util.progress import NullProgress, Progress

#: Holdout predictions kept for the report's diagnostic plots (a sample: memory stays bounded).
REPORT_SAMPLE_ROWS = 50_000


_blas = None


def single_threaded_blas(X: Any) -> contextlib.AbstractContextManager:
    """One BLAS thread while learning from sparse features.

    On sparse rows a linear model's BLAS work is vector updates over all its weights (scikit-learn's
    SGD rescales and averages its 2**18 hashed weights through ``dscal``/``daxpy``). Threaded
    BLAS splits those into pieces too small to pay for the threads, which then spin: on a 2-core
    machine that took half the CPU time of ``partial_fit`` away from the thread reading the next
    partition. Dense features (MLPs: matrix products) keep every BLAS thread.
    """
    global _blas
    if not sp.issparse(X):
        return contextlib.nullcontext()
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def learn_partition(
    estimator: Any,
    part: PreparedPartition,
    *,
    batch_rows: int,
    fit_kwargs: dict[str, Any],
    scorer: Scorer | None = None,
    acc: Any = None,
) -> tuple[int, Any]:
    """Learn one prepared partition, ``batch_rows`` rows per ``partial_fit``; returns the rows
    learned and the progressive-validation accumulator.

    With a ``scorer``, each batch is first scored by the model as it is (once fitted) into
    ``acc`` (created on first use). The one learning step of the sequential loop and of every
    worker of data-parallel epochs: the same batches, and the same one-line error for bad data.
    """
    X, y = part.X, part.y
    n = X.shape[0]
    with single_threaded_blas(X):
        for start in range(0, n, batch_rows):
            stop = min(start + batch_rows, n)
            Xb = X[start:stop]
            yb = None if y is None else y[start:stop]
            if scorer is not None and hasattr(estimator, "n_features_in_"):
                if acc is None:
                    acc = scorer.new()
                scorer.update(acc, estimator, Xb, yb)
            partial_fit(estimator, Xb, yb, fit_kwargs)
    return n, acc


def partial_fit(estimator: Any, X: Any, y: np.ndarray | None, fit_kwargs: dict[str, Any]) -> None:
    """``estimator.partial_fit`` on one batch; a ValueError about the data becomes a DataError."""
    try:
        if y is None:
            estimator.partial_fit(X)
        else:
            estimator.partial_fit(X, y, **fit_kwargs)
    except SkfleetError:
        raise
    except ValueError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{type(estimator).__name__}.partial_fit failed: {message}") from exc


@dataclass
class LoopState:
    """Where the loop is and what it has measured: the resumable part of a run."""

    epoch: int = 0
    step: int = 0
    partitions_learned: int = 0
    rows_learned: int = 0
    progressive: Any = None
    curve: list[dict[str, Any]] = field(default_factory=list)
    holdout_metrics: dict[str, Any] | None = None
    progressive_metrics: dict[str, Any] | None = None
    best_score: float | None = None
    best_epoch: int | None = None
    best_estimator: Any = None
    stale_epochs: int = 0
    stopped_early: bool = False
    finished: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class LoopSettings:
    epochs: int
    batch_rows: int
    seed: int
    progressive: bool
    early_stopping: bool
    patience: int
    tol: float
    checkpoint_every: int | None


class EpochLoop:
    """Runs the epochs of one streamed training run on one estimator."""

    def __init__(
        self,
        estimator: Any,
        reader: PartitionReader,
        scorer: Scorer,
        settings: LoopSettings,
        *,
        fit_kwargs: dict[str, Any] | None = None,
        save_checkpoint: Callable[[Any, LoopState], None] | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
        progress: Progress | None = None,
        holdout_rows: int = 0,
    ):
        self.estimator = estimator
        self.holdout_rows = holdout_rows
        self.reader = reader
        self.scorer = scorer
        self.settings = settings
        self.fit_kwargs = fit_kwargs or {}
        self.save_checkpoint = save_checkpoint
        self.callback = callback
        self.progress = progress or NullProgress()
        self.n_partitions = len(reader.partitions)
        self.cache = HoldoutCache(scorer.classes if scorer.task == "classification" else None)
        self.report_sample: dict[str, Any] | None = None

    # -- learning ----------------------------------------------------------------------------

    def _learn(self, part: PreparedPartition, state: LoopState) -> None:
        s = self.settings
        rows, state.progressive = learn_partition(
            self.estimator,
            part,
            batch_rows=s.batch_rows,
            fit_kwargs=self.fit_kwargs,
            scorer=self.scorer if s.progressive else None,
            acc=state.progressive,
        )
        state.rows_learned += rows

    def _prefetched(self, order: list[int], epoch: int) -> Iterator[PreparedPartition]:
        """Prepared partitions in ``order``; the next one is read while the caller learns."""
        if not order:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="skfleet-prefetch") as pool:

            def submit(index: int) -> Future:
                return pool.submit(
                    self.reader.prepare, index, epoch, with_holdout=not self.cache.has(index)
                )

            future = submit(order[0])
            try:
                for position in range(len(order)):
                    part = future.result()
                    if position + 1 < len(order):
                        future = submit(order[position + 1])
                    yield part
            finally:
                future.cancel()

    # -- scoring -----------------------------------------------------------------------------

    def _score_holdout(self, estimator: Any, final: bool = False) -> dict[str, Any] | None:
        """Metrics of ``estimator`` on every holdout row (cached, or read where missing)."""
        if self.reader.holdout <= 0:
            return None
        acc = self.scorer.new()
        sample = _Sample(self.scorer, self.holdout_rows) if final else None
        for index in range(self.n_partitions):
            cached = self.cache.get(index)
            if cached is None:
                X, y = self.reader.holdout_rows(index)
                self.cache.put(index, X, y)
            else:
                X, y = cached
            if X.shape[0]:
                self.scorer.update(acc, estimator, X, y)
                if sample is not None:
                    sample.add(estimator, X, y, self.reader.seed, index)
        if sample is not None:
            self.report_sample = sample.result()
        return self.scorer.result(acc)

    def _end_epoch(self, state: LoopState) -> None:
        row: dict[str, Any] = {"epoch": state.epoch + 1}
        if state.progressive is not None:
            state.progressive_metrics = self.scorer.result(state.progressive)
            row.update(curve_values("progressive", state.progressive_metrics))
        holdout = self._score_holdout(self.estimator)
        if holdout is not None:
            state.holdout_metrics = holdout
            row.update(curve_values("holdout", holdout))
        state.curve.append(row)
        state.progressive = None
        if self.settings.early_stopping and holdout is not None:
            score = self.scorer.headline(holdout)
            if score is not None and (
                state.best_score is None or score > state.best_score + self.settings.tol
            ):
                state.best_score, state.best_epoch = score, state.epoch + 1
                state.best_estimator = copy.deepcopy(self.estimator)
                state.stale_epochs = 0
            else:
                state.stale_epochs += 1
                if state.stale_epochs >= self.settings.patience:
                    state.stopped_early = True
        state.epoch += 1
        state.step = 0

    # -- the loop ----------------------------------------------------------------------------

    def run(self, state: LoopState) -> LoopState:
        """Continue from ``state`` to the last epoch (or an early stop); returns the final state."""
        started = time.perf_counter() - state.seconds
        s = self.settings
        self.progress.start(total=s.epochs * self.n_partitions, description="train-stream")
        self.progress.advance(rows=state.rows_learned, tasks=state.partitions_learned)
        try:
            while state.epoch < s.epochs and not state.stopped_early:
                self._learn_epoch(state, started)
                self._end_epoch(state)
                if s.checkpoint_every:
                    self._checkpoint(state)
            self._finish(state)
            state.seconds = time.perf_counter() - started
            return state
        finally:
            self.progress.stop()

    def _learn_epoch(self, state: LoopState, started: float) -> None:
        """Learn the rest of epoch ``state.epoch`` (from partition ``state.step``): the hook that
        :class:`~skfleet.train.stream.parallel.ParallelEpochLoop` overrides."""
        s = self.settings
        order = epoch_order(s.seed, state.epoch, self.n_partitions)
        parts = self._prefetched(order[state.step :], state.epoch)
        # closing(): an interrupted epoch stops its prefetch thread at once, not whenever the
        # generator happens to be collected.
        with contextlib.closing(parts):
            for part in parts:
                if part.holdout_X is not None and not self.cache.has(part.index):
                    self.cache.put(part.index, part.holdout_X, part.holdout_y)
                before = state.rows_learned
                self._learn(part, state)
                state.step += 1
                state.partitions_learned += 1
                state.seconds = time.perf_counter() - started
                self.progress.advance(rows=state.rows_learned - before)
                if s.checkpoint_every and state.partitions_learned % s.checkpoint_every == 0:
                    self._checkpoint(state)
                self._notify(state, part.partition_id)

    def _notify(self, state: LoopState, partition: str | None) -> None:
        if self.callback is not None:
            self.callback(
                {
                    "epoch": state.epoch,
                    "step": state.step,
                    "partition": partition,
                    "rows_learned": state.rows_learned,
                }
            )

    def _finish(self, state: LoopState) -> None:
        """Keep the best epoch's model (early stopping) and sample holdout predictions."""
        if state.best_estimator is not None:
            self.estimator = state.best_estimator
            state.holdout_metrics = self._score_holdout(self.estimator, final=True)
        elif self.reader.holdout > 0:
            self._score_holdout(self.estimator, final=True)
        state.finished = True

    def _checkpoint(self, state: LoopState) -> None:
        if self.save_checkpoint is not None:
            self.save_checkpoint(self.estimator, state)

    def close(self) -> None:
        self.cache.close()


class _Sample:
    """A deterministic sample of holdout predictions: the same fraction of every partition, about
    REPORT_SAMPLE_ROWS rows in all."""

    def __init__(self, scorer: Scorer, total_rows: int):
        self.scorer = scorer
        self.fraction = min(1.0, REPORT_SAMPLE_ROWS / max(total_rows, 1))
        self.y_true: list[np.ndarray] = []
        self.y_pred: list[np.ndarray] = []
        self.proba: list[np.ndarray] = []
        self.kept = 0

    def add(self, est: Any, X: Any, y: np.ndarray | None, seed: int, index: int) -> None:
        take = min(X.shape[0], int(np.ceil(X.shape[0] * self.fraction)))
        if y is None or take == 0:
            return
        rows = np.sort(np.random.default_rng([seed, index]).permutation(X.shape[0])[:take])
        pred, proba = self.scorer.predict(est, X[rows])
        self.y_true.append(np.asarray(y)[rows])
        self.y_pred.append(pred)
        if proba is not None:
            self.proba.append(proba)
        self.kept += take

    def result(self) -> dict[str, Any] | None:
        if not self.y_true:
            return None
        return {
            "y_true": np.concatenate(self.y_true),
            "y_pred": np.concatenate(self.y_pred),
            "proba": np.concatenate(self.proba) if self.proba else None,
        }
