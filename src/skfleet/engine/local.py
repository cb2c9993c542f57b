"""Engines on this machine without Dask: this process (for debugging) and a process pool."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from skfleet.engine.base import Engine, call_with_retries


class InProcessEngine(Engine):
    """Runs every task here, one after another: the debugger-friendly engine.

    >>> with InProcessEngine() as engine:
    ...     sorted(engine.map_unordered(abs, [-1, -2]))
    [(0, 1), (1, 2)]
    """

    spec = "local"

    @property
    def workers(self) -> int:
        return 1

    def map_unordered(self, fn, items, *, retries=0):
        for index, item in enumerate(items):
            yield index, call_with_retries(fn, item, retries)

    def joblib_context(self):
        # scikit-learn's own n_jobs then uses loky processes on this machine.
        import joblib

        return joblib.parallel_config(backend="loky")


class ProcessPoolEngine(Engine):
    """A pool of worker processes on this machine (``processes`` or ``processes:N``)."""

    distributed = True

    def __init__(self, n_workers: int | None = None):
        self._n = n_workers or os.cpu_count() or 1
        self.spec = f"processes:{self._n}"
        # forkserver: workers start clean, without inheriting the client's threads or connections.
        self._pool = ProcessPoolExecutor(
            self._n, mp_context=multiprocessing.get_context("forkserver")
        )

    @property
    def workers(self) -> int:
        return self._n

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, retries: int = 0
    ) -> Iterator[tuple[int, Any]]:
        pending: dict[Future, tuple[int, Any, int]] = {}
        for index, item in enumerate(items):
            pending[self._pool.submit(fn, item)] = (index, item, 0)
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index, item, attempt = pending.pop(future)
                    error = future.exception()
                    if error is None:
                        yield index, future.result()
                    elif attempt < retries:
                        pending[self._pool.submit(fn, item)] = (index, item, attempt + 1)
                    else:
                        raise error
        finally:
            for future in pending:
                future.cancel()

    def joblib_context(self):
        import joblib

        return joblib.parallel_config(backend="loky", n_jobs=self._n)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.shutdown(wait=True, cancel_futures=True)
