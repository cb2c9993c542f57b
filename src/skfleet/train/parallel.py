"""Counting fits as they finish, wherever joblib runs them (loky, the Dask backend, in-process).

A progress bar over fits needs to hear about each finished fit on the client. joblib's ``Parallel``
calls its own ``print_progress`` on the client after every finished batch, on every backend, so a
subclass that forwards the count of newly finished tasks to a listener is all we need.

The listener lives in a context variable set by :func:`counting_fits`; a :class:`CountingParallel`
picks it up when it is created and clears it while it runs, so a nested ``Parallel`` (a segment
router fitting its segments inside one fold, in this same process) does not count its inner fits
twice. On other processes (Dask workers, loky workers) the variable is simply unset.

>>> from sklearn.utils.parallel import delayed
>>> seen = []
>>> with counting_fits(seen.append):
...     squares = CountingParallel(n_jobs=1)(delayed(pow)(i, 2) for i in range(3))
>>> squares, sum(seen)
([0, 1, 4], 3)
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from sklearn.utils.parallel import Parallel

FitListener = Callable[[int], None]

_listener: ContextVar[FitListener | None] = ContextVar("skfleet_fit_listener", default=None)


class CountingParallel(Parallel):
    """scikit-learn's ``Parallel`` that reports each finished task to the current listener."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._skfleet_listener = _listener.get()
        self._skfleet_reported = 0

    def __call__(self, iterable):
        token = _listener.set(None)  # inner Parallel objects created while we run do not count
        try:
            return super().__call__(iterable)
        finally:
            _listener.reset(token)

    def print_progress(self):
        listener = self._skfleet_listener
        if listener is not None:
            # Runs on joblib's callback thread (or inline for the sequential backend), with
            # n_completed_tasks already counting the batch that just finished.
            done = self.n_completed_tasks
            if done > self._skfleet_reported:
                step, self._skfleet_reported = done - self._skfleet_reported, done
                listener(step)
        super().print_progress()


@contextlib.contextmanager
def counting_fits(listener: FitListener | None) -> Iterator[None]:
    """Within this block, every :class:`CountingParallel` created here reports to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


# The searches (GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV) build their Parallel from the
# module global ``Parallel`` of sklearn.model_selection._search; we swap in CountingParallel for the
# duration of one search. The lock serialises concurrent searches in one process, so the global is
# always put back to what it was.
_SEARCH_MODULE = "sklearn.model_selection._search"
_swap_lock = threading.RLock()


@contextlib.contextmanager
def counting_search_fits(listener: FitListener | None) -> Iterator[bool]:
    """Count the fits of a scikit-learn search run inside this block; yields whether it can.

    If a future scikit-learn builds its Parallel differently, nothing is swapped and the block
    yields False (the caller then advances its progress bar once the search is over).
    """
    module = importlib.import_module(_SEARCH_MODULE)
    original = getattr(module, "Parallel", None)
    if listener is None or original is None or not issubclass(CountingParallel, original):
        yield False
        return
    with _swap_lock, counting_fits(listener):
        module.Parallel = CountingParallel
        try:
            yield True
        finally:
            module.Parallel = original


@contextlib.contextmanager
def shared_data(*objects: object) -> Iterator[bool]:
    """While joblib runs on Dask, upload ``objects`` once for the whole block.

    joblib's Dask backend already scatters a large argument once per ``Parallel`` call, but a
    training run makes several calls (the search, its halving rounds, the CV): without this the
    table would travel again for each. Here the active Dask backend is replaced, for the block, by
    one that already holds futures for the objects; tasks refer to them by key. Each object is
    sent once by the client (not broadcast: with many workers the client's upload would multiply)
    and workers fetch it from each other as their tasks need it. Yields whether it did (on other
    backends there is nothing to share).
    """
    from joblib import parallel_config
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    client = getattr(backend, "client", None)
    if client is None or not isinstance(getattr(backend, "data_futures", None), dict):
        yield False
        return
    shared = type(backend)(
        client=client, wait_for_workers_timeout=getattr(backend, "wait_for_workers_timeout", 60)
    )
    futures = client.scatter(list(objects), hash=False)
    # The backend looks arguments up by id(); _scatter keeps the objects alive so ids stay valid.
    shared._scatter = list(objects)
    shared.data_futures = {id(obj): future for obj, future in zip(objects, futures, strict=True)}
    try:
        with parallel_config(backend=shared):
            yield True
    finally:
        for future in futures:
            future.release()
