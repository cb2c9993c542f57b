"""One job's use of an engine: who starts it, which tasks run where, progress, and who closes it.

Every command (copy, predict, train, train-stream) takes the user's ``engine`` argument — a spec
string, an :class:`~skfleet.engine.Engine`, or None for the command's default — and hands it to an
:class:`EngineSession`, which

- checks a spec at once (a typo in ``--engine`` fails before any data is touched),
- starts the engine on first need only (a run with nothing to do starts nothing),
- runs a single task in this process when a pool would have to be started for it (a pool on this
  machine cannot do one task faster than this process, and starting one costs seconds: every
  worker imports scikit-learn), but always uses a running cluster (``tcp://``: its workers may
  reach data this machine cannot),
- with ``choose=True``, weighs a phase's work (:mod:`skfleet.engine.choice`): its first tasks run
  here, and the rest go to the pool only if it would finish them sooner (:attr:`choice` says
  which, and why),
- runs partition tasks with progress and retries, a user error raised by a task coming back as a
  value (the same input fails the same way on every attempt, so it is not retried),
- and closes the engine at the end only if it started it (an ``Engine`` passed in stays open).

>>> from skfleet.util.progress import NullProgress
>>> with EngineSession("local", progress=NullProgress()) as session:
...     session.run(abs, [-1, -2, -3], description="abs")
[1, 2, 3]
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from skfleet.engine import Engine, get_engine, parse_engine_spec
from skfleet.engine.base import call_with_retries
from skfleet.engine.choice import POOL_START_SECONDS, WorkEstimate, explain, pool_pays
from skfleet.errors import (
    DataError,
    MissingColumnError,
    ModelNotFoundError,
    SkfleetError,
    SourceNotFoundError,
    TargetExistsError,
    UntrustedModelError,
    UsageError,
)
from skfleet.util.progress import NullProgress, Progress

#: User errors: the same input fails the same way on every attempt, so a task that raises one is
#: not retried. Anything else (a dropped connection, a driver error, a worker bug) is retried.
USER_ERRORS: tuple[type[SkfleetError], ...] = (
    DataError,
    MissingColumnError,
    UsageError,
    UntrustedModelError,
    ModelNotFoundError,
    SourceNotFoundError,
    TargetExistsError,
)


def engine_for(engine: str | Engine | None, tasks: int, default: str = "local") -> str | Engine:
    """The engine that runs ``tasks`` tasks: ``local`` for a single task on a pool this run would
    start on this machine (``dask:local``, ``processes``), else ``engine`` (or ``default``).

    >>> engine_for("dask:local", 1), engine_for("dask:local:4", 3), engine_for("tcp://h:8786", 1)
    ('local', 'dask:local:4', 'tcp://h:8786')
    >>> engine_for(None, 1, default="processes")
    'local'
    """
    spec = default if engine is None else engine
    if tasks > 1 or isinstance(spec, Engine):
        return spec
    _, address, _ = parse_engine_spec(spec)
    return "local" if address is None else spec


#: Local clusters being started in the background, by (spec, workers), for a session to take.
_warming: dict[tuple[str, int | None], Any] = {}


def warm_up(engine: str | Engine | None, workers: int | None = None) -> Callable[[], None]:
    """Start the ``dask:local`` cluster ``engine`` names, or connect to the running cluster it
    names (``tcp://...``), in a background thread, now.

    A job calls this as soon as it knows it will run several tasks, then goes on planning; its
    :class:`EngineSession` with the same spec and ``workers`` takes the cluster over when it first
    needs it (waiting for the start-up to finish, or raising its error). Workers import the
    scoring stack as they start (:mod:`skfleet.engine.preload`), so that cost overlaps the
    client's planning too. Returns a function that closes the cluster if no session took it
    (call it when the job ends, however it ends). Any other engine: nothing is started.
    """
    if not isinstance(engine, str) or parse_engine_spec(engine)[0] != "dask":
        return lambda: None
    import threading

    key = (engine, workers)
    if key in _warming:
        return lambda: None
    _warming[key] = future = Future()

    def start() -> None:
        try:
            future.set_result(get_engine(engine, workers))
        except BaseException as exc:  # raised in the session that claims it
            future.set_exception(exc)

    threading.Thread(target=start, name="skfleet-engine-start", daemon=True).start()

    def release() -> None:
        if _warming.get(key) is future:
            del _warming[key]
            with contextlib.suppress(Exception):
                future.result().close()

    return release


def warm_workers(engine: str | Engine | None, workers: int | None = None) -> int | None:
    """How many tasks at once the cluster :func:`warm_up` started (or connected to) for
    ``engine`` runs, waiting for it to be up; None when there is none, or it failed (the session
    that claims it raises that error)."""
    future = _warming.get((engine, workers)) if isinstance(engine, str) else None
    if future is None:
        return None
    try:
        return future.result().workers
    except Exception:
        return None


def _warm_state(spec: str | Engine, workers: int | None) -> str | None:
    """``ready`` or ``starting`` for a cluster :func:`warm_up` started for ``spec``; else None."""
    future = _warming.get((spec, workers)) if isinstance(spec, str) else None
    if future is None:
        return None
    return "ready" if future.done() else "starting"


def _claim(spec: str | Engine, workers: int | None) -> Engine | None:
    """The cluster :func:`warm_up` is starting for ``spec``, once started; None if there is none."""
    future = _warming.pop((spec, workers), None) if isinstance(spec, str) else None
    return None if future is None else future.result()


class TaskUserError:
    """What a task sends back instead of raising a user error (so the engine does not retry it)."""

    def __init__(self, error: SkfleetError):
        self.error = error


class UserErrorsAsValues:
    """``fn`` wrapped for an engine: a :data:`USER_ERRORS` exception becomes a :class:`TaskUserError`.

    A module-level class holding a module-level function, so it pickles to any worker.

    >>> def bad(x):
    ...     raise DataError(f"bad row {x}")
    >>> UserErrorsAsValues(bad)(3).error
    DataError('bad row 3')
    """

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        # Dask names a task after its function's __name__ (the dashboard shows it).
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, item: Any) -> Any:
        try:
            return self.fn(item)
        except USER_ERRORS as exc:
            return TaskUserError(exc)


class EngineSession:
    """The engine of one job: started on first need, closed at the end if this session started it.

    ``engine`` is a spec (checked now), an :class:`Engine` (used, never closed) or None (then
    ``default``); ``workers`` sizes a pool the session starts.
    """

    def __init__(
        self,
        engine: str | Engine | None = None,
        *,
        default: str = "local",
        workers: int | None = None,
        progress: Progress | None = None,
        choose: bool = False,
    ):
        self.requested: str | Engine = default if engine is None else engine
        #: Whether tasks may run here instead of on a pool this session would start on this
        #: machine: the pool's kind and size, or None (a running cluster, ``local``, an Engine).
        self._pool: tuple[str, int] | None = None
        if not isinstance(self.requested, Engine):
            kind, address, count = parse_engine_spec(self.requested)
            if address is None and kind != "local":
                self._pool = (kind, workers or count or os.cpu_count() or 1)
        self.choose = choose and self._pool is not None
        #: What the last phase ran on and why (see :func:`~skfleet.engine.choice.explain`).
        self.choice: str | None = None
        self.workers = workers
        self.progress = progress or NullProgress()
        self._owned = not isinstance(self.requested, Engine)
        self._engine: Engine | None = None if self._owned else self.requested
        self._local: Engine | None = None
        self._announced = False
        self._used: Engine | None = None

    @property
    def spec(self) -> str:
        """The engine as the user named it (``dask:local``, ``tcp://...``), without starting it."""
        if isinstance(self.requested, Engine):
            return self.requested.spec
        return self.requested

    @property
    def started(self) -> bool:
        """Whether the session's engine is running (started here, or passed in)."""
        return self._engine is not None

    @property
    def used_spec(self) -> str:
        """The spec of the engine tasks last ran on (``dask:local:2``, ``local`` for a single
        task run here), or :attr:`spec` before any did."""
        return self._used.spec if self._used is not None else self.spec

    @property
    def engine(self) -> Engine:
        """The engine, started now if it is not yet."""
        if self._engine is None:
            claimed = _claim(self.requested, self.workers) if self._owned else None
            self._engine = claimed or get_engine(self.requested, self.workers)
        if not self._announced:
            self._announced = True
            if self._engine.dashboard_link:
                self.progress.note(f"Dask dashboard: {self._engine.dashboard_link}")
        return self._engine

    def engine_for(self, tasks: int, description: str = "") -> Engine:
        """The engine for ``tasks`` tasks: this process for a single task, unless the session's
        engine is a running cluster or already started (see :func:`engine_for`); with ``choose``,
        this process until a phase's work starts the pool."""
        local = engine_for(self.requested, tasks) == "local" or self.choose
        if self._engine is not None or not local or self.requested == "local":
            return self.engine
        if self._local is None:
            self._local = get_engine("local")
            if tasks == 1:  # (none at all: nothing to say)
                what = f"one partition to {description}" if description else "one task"
                self.progress.note(f"{what}: in this process, no cluster to start")
        return self._local

    def run(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        description: str | None,
        retries: int = 0,
        on_result: Callable[[int, Any], None] | None = None,
        rows: Callable[[Any], int] | None = None,
        done: int = 0,
        done_rows: int = 0,
        threads: int = 1,
        work: WorkEstimate | None = None,
    ) -> list[Any]:
        """Run ``fn`` on every item; return the results in the items' order.

        One progress phase of ``len(items) + done`` tasks (``done`` finished before, carrying
        ``done_rows`` rows); each result is counted (``rows(result)`` rows) once ``on_result``
        has taken it, in the order tasks finish. ``description=None`` runs the tasks inside the
        caller's own progress phase: ``on_result`` counts them, the session does not. A user error raised by a task is raised here,
        unretried; another exception is retried ``retries`` times, then raised. ``threads > 1``
        lets tasks that release the GIL (reading, Arrow, numpy) share this process's cores when
        they run in-process. ``work`` (with ``choose``) weighs the tasks to choose where they run.
        """
        items = list(items)
        results: list[Any] = [None] * len(items)
        progress = self.progress if description is not None else NullProgress()
        progress.start(total=len(items) + done, description=description or "")
        progress.advance(rows=done_rows, tasks=done)
        try:
            if not items:
                return results
            pool = self._used = self.engine_for(len(items), description or "")
            wrapped = UserErrorsAsValues(fn)
            if work is not None and self.choose and self._engine is None:
                finished = self._choosing(wrapped, items, retries, work)
            elif pool.distributed or threads <= 1:
                finished = pool.map_unordered(wrapped, items, retries=retries)
            else:
                finished = _threaded(wrapped, items, retries, threads)
            # closing(): a failure here cancels the tasks still queued before the engine closes.
            with contextlib.closing(finished):
                for index, result in finished:
                    if isinstance(result, TaskUserError):
                        raise result.error
                    results[index] = result
                    if on_result is not None:
                        on_result(index, result)
                    progress.advance(rows=rows(result) if rows is not None else 0)
            return results
        finally:
            progress.stop()

    def _choosing(
        self, fn: Callable, items: list, retries: int, work: WorkEstimate
    ) -> Iterator[tuple[int, Any]]:
        """``(index, result)``: tasks here, ``work.streams`` at a time, until the pool pays for
        the rest. ``work.prepare`` runs in a thread beside the first tasks (loading the model
        while the first partitions are read); its seconds are not counted as the work's."""
        workers = self._pool[1] if self._pool else 1
        threads = max(1, min(work.streams, os.cpu_count() or 1))
        rows_left = sum(work.rows(item) for item in items)
        rows_here, tasks_here = 0, 0
        started = time.perf_counter()
        here = ThreadPoolExecutor(threads + 1, thread_name_prefix="skfleet-task")
        finished = False
        with contextlib.ExitStack() as stack:
            if threads > 1:
                stack.enter_context(_one_thread_each())
            # Interrupted or failed: queued tasks are dropped, running ones are not waited for
            # (a partition commits whole or not at all, so one finishing later is harmless).
            stack.callback(lambda: here.shutdown(wait=finished, cancel_futures=True))
            prepared = here.submit(_timed, work.prepare) if work.prepare is not None else None
            pending: collections.deque = collections.deque()
            submitted = 0
            while pending or submitted < len(items):
                while submitted < len(items) and len(pending) < threads:
                    item = _own_copy(items[submitted]) if threads > 1 else items[submitted]
                    pending.append((submitted, here.submit(call_with_retries, fn, item, retries)))
                    rows_left -= work.rows(items[submitted])
                    submitted += 1
                index, future = pending.popleft()
                result = future.result()
                tasks_here += 1
                if not isinstance(result, TaskUserError):
                    rows_here += work.measured(result)[0]
                yield index, result
                state = _warm_state(self.requested, self.workers)
                if submitted == len(items) or not rows_here or state == "starting":
                    continue
                start_left = 0.0 if state == "ready" else POOL_START_SECONDS
                elapsed = time.perf_counter() - started - _seconds_of(prepared)
                per_row = max(elapsed, 0.0) / rows_here
                if pool_pays(rows_left, per_row, workers / work.streams, start_left):
                    break
            else:
                self.choice = explain(
                    "local",
                    rows_here=rows_here,
                    tasks_here=tasks_here,
                    tasks=len(items),
                    workers=workers,
                )
                finished = True
                return
            for index, future in pending:  # started here: they finish here
                tasks_here += 1
                yield index, future.result()
            finished = True
        pool = self._used = self.engine
        self.choice = explain(
            pool.spec, rows_here=0, tasks_here=tasks_here, tasks=len(items), workers=workers
        )
        rest = pool.map_unordered(fn, items[submitted:], retries=retries)
        with contextlib.closing(rest):
            for offset, result in rest:
                yield submitted + offset, result

    def close(self) -> None:
        """Close what this session started (an engine passed in is the caller's to close)."""
        if self._owned and self._engine is not None:
            self._engine.close()
        self._engine = None if self._owned else self._engine
        self._local = None

    def __enter__(self) -> EngineSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _threaded(fn: Callable, items: list, retries: int, threads: int) -> Iterator[tuple[int, Any]]:
    """``(index, fn(item))`` from a few threads of this process, in order; at most ``threads + 1``
    items are in flight (and held) at once."""
    threads = max(1, min(threads, os.cpu_count() or 1))
    limits = _one_thread_each() if threads > 1 else contextlib.nullcontext()
    with limits, ThreadPoolExecutor(threads, thread_name_prefix="skfleet-task") as pool:
        pending = []
        for index, item in enumerate(items):
            item = _own_copy(item) if threads > 1 else item
            pending.append((index, pool.submit(call_with_retries, fn, item, retries)))
            if len(pending) > threads:
                index_done, future = pending.pop(0)
                yield index_done, future.result()
        for index_done, future in pending:
            yield index_done, future.result()


def _one_thread_each() -> contextlib.AbstractContextManager:
    """BLAS and OpenMP held to one thread while tasks run side by side here, as Dask holds its
    workers' (``OMP_NUM_THREADS=1`` and the like): the tasks already use the cores, and a BLAS
    call's idle threads spin-wait on them (a third of the CPU scoring took, measured on 2
    cores). Only libraries loaded now are limited."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _own_copy(item: Any) -> Any:
    """``item`` as a pool worker would receive it (pickled and back): tasks run side by side in
    this process's threads then share no source, sink or plan object, just as on a pool."""
    return pickle.loads(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))


def _timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` took; its error is left to the tasks, which meet it again and report it
    as theirs (a model that does not load fails its first task)."""
    started = time.perf_counter()
    with contextlib.suppress(Exception):
        fn()
    return time.perf_counter() - started


def _seconds_of(prepared: Future | None) -> float:
    """What the preparation took (0 before it ran, or without one)."""
    return prepared.result() if prepared is not None and prepared.done() else 0.0
