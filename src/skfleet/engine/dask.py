"""The Dask engine: a LocalCluster sized to this machine (``dask:local``) or a running scheduler
(``tcp://host:port``) — Dask already deploys on Kubernetes, YARN and clouds, so skfleet does not.

A task that raises is retried by the scheduler (``retries=``); a task whose worker dies is
rescheduled on another worker by Dask itself, which is what makes a killed worker lose nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from skfleet.engine.base import Engine
from skfleet.engine.shared import SharedRef
from skfleet.errors import ConnectionFailedError, SkfleetError
from skfleet.util.net import address_host, is_loopback

#: Libraries (import name: distribution) whose versions must agree between client and workers for
#: a model to load and score identically on both.
CHECKED_LIBRARIES = {
    "skfleet": "skfleet",
    "sklearn": "scikit-learn",
    "numpy": "numpy",
    "pyarrow": "pyarrow",
    "skops": "skops",
}

#: The Active Memory Manager policies of a scheduler (set to none for clusters skfleet starts).
AMM_POLICIES = "distributed.scheduler.active-memory-manager.policies"


def library_versions() -> dict[str, str]:
    """Versions of :data:`CHECKED_LIBRARIES` installed for this process (runs on workers too).

    Read from the installed distributions, not by importing them: a client that only plans and
    hands out tasks does not import scikit-learn to learn its version.
    """
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name, dist in CHECKED_LIBRARIES.items():
        try:
            found[name] = version(dist)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def check_worker_versions(
    client_versions: dict[str, str], worker_versions: dict[str, dict]
) -> None:
    """Raise a one-line error naming the first worker and library whose version differs.

    >>> check_worker_versions({"numpy": "2.0"}, {"tcp://w1": {"numpy": "2.0"}})
    >>> check_worker_versions({"numpy": "2.0"}, {"tcp://w1": {"numpy": "1.26"}})
    Traceback (most recent call last):
    ...
    skfleet.errors.SkfleetError: worker tcp://w1 has numpy 1.26 but this client has 2.0; install the same versions on both
    """
    for worker, versions in sorted(worker_versions.items()):
        for lib, mine in client_versions.items():
            theirs = versions.get(lib, "missing")
            if theirs != mine:
                raise SkfleetError(
                    f"worker {worker} has {lib} {theirs} but this client has {mine}; "
                    "install the same versions on both"
                )


def _with_shared(fn: Callable[[Any], Any], item: Any, shared: list[bytes]) -> Any:
    """Run ``fn(item)`` once ``shared`` (this engine's shared bytes) is on this worker."""
    return fn(item)


class _RunNestedHere:
    """A batch of joblib tasks whose own joblib calls run sequentially in the worker (joblib's
    Dask batch would set the Dask backend again around them)."""

    def __init__(self, batch: Any):
        self.batch = batch

    def __repr__(self) -> str:  # the task's name on the dashboard
        return repr(self.batch)

    def __call__(self, tasks=None):
        import joblib

        with joblib.parallel_config(backend="sequential"):
            return [func(*args, **kwargs) for func, args, kwargs in tasks]


def worker_local_backend() -> type:
    """joblib's Dask backend, except that a task's own joblib calls run in its worker.

    On a worker joblib's Dask backend runs each task under the Dask backend again, with all
    workers: a random forest fitted in a CV fold on a worker sent each of its trees back out as a
    task of its own (about 1,500 tasks and 150 MB between workers for one 20k-row comparison) and
    summed its trees' probabilities in the order they came back, so results differed in the last
    bit from run to run. A fit task is already one unit of work on one worker's core: its nested
    calls run sequentially there (``tests/engine/test_engines.py`` holds joblib to this).
    """
    global _WORKER_LOCAL
    if _WORKER_LOCAL is None:
        from joblib._dask import DaskDistributedBackend

        class WorkerLocalDaskBackend(DaskDistributedBackend):
            async def _to_func_args(self, func):
                batch, tasks = await super()._to_func_args(func)
                return _RunNestedHere(batch), tasks

        _WORKER_LOCAL = WorkerLocalDaskBackend
    return _WORKER_LOCAL


_WORKER_LOCAL: type | None = None


class DaskEngine(Engine):
    """Tasks on a Dask cluster.

    ``address=None`` starts a LocalCluster with one single-threaded worker process per core (or
    ``n_workers``); otherwise connects to the scheduler at ``address`` and checks worker versions.
    """

    distributed = True

    def __init__(self, address: str | None = None, n_workers: int | None = None):
        from distributed import Client, LocalCluster

        self._cluster = None
        self._shared: list[Any] = []
        if address is None:
            import dask

            n = n_workers or os.cpu_count() or 1
            self.spec = f"dask:local:{n}"
            # The scheduler runs in this process, so its config is ours to set: no
            # ReduceReplicas. A training table is shared by every fit of a run; that policy drops
            # a worker's copy whenever no queued task there needs it for a moment (between
            # joblib batches, between a search and its refit), and the next fit fetches it
            # again, doubling what the workers receive (see BENCHMARKS.md, search).
            with dask.config.set({AMM_POLICIES: []}):
                self._cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                    # Each worker imports the scoring stack as it starts, not in its first task.
                    preload=["skfleet.engine.preload"],
                )
            self.client = Client(self._cluster)
        else:
            self.spec = address
            # Workers of a scheduler on another host may be anywhere; one on loopback has its
            # workers here (a scheduler only reachable on loopback cannot have remote workers).
            self.on_this_machine = is_loopback(address_host(address))
            try:
                self.client = Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise ConnectionFailedError(
                    f"cannot reach Dask scheduler {address}: {exc}"
                ) from None
            if n_workers:
                try:
                    self.client.wait_for_workers(n_workers, timeout=60)
                except TimeoutError:
                    self.close()
                    raise ConnectionFailedError(
                        f"Dask scheduler {address}: fewer than {n_workers} workers joined in 60 s"
                    ) from None
            self._check_versions()

    def _check_versions(self) -> None:
        """Compare the library versions of every worker with this client's.

        Workers come and go while this runs (a worker killed, a new one joining): one that is
        gone by the time it is asked is simply not compared, as the scheduler will not give it
        tasks; its answer, an exception, must not fail the connection.
        """
        answers = self.client.run(library_versions, on_error="return")
        versions = {worker: v for worker, v in answers.items() if isinstance(v, dict)}
        check_worker_versions(library_versions(), versions)

    @property
    def workers(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    @property
    def dashboard_link(self) -> str | None:
        return self.client.dashboard_link

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, retries: int = 0
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        items = list(items)
        if self._shared:
            # A dependency on the shared bytes: the scheduler copies them to a worker that lacks
            # them (one that joined after share()) before the task runs there.
            futures = self.client.map(
                _with_shared,
                [fn] * len(items),
                items,
                shared=self._shared,
                pure=False,
                retries=retries,
            )
        else:
            futures = self.client.map(fn, items, pure=False, retries=retries)
        index_of = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                result = future.result()
                yield index_of[future.key], result
                future.release()
        finally:
            for future in futures:
                with contextlib.suppress(Exception):
                    future.cancel()

    def share(self, data: bytes) -> SharedRef:
        """Scatter ``data`` to every worker, straight from this client (not via the scheduler).

        The future is kept for the life of the engine so the workers keep the bytes.
        """
        try:
            future = self.client.scatter(data, broadcast=True, direct=True, hash=True)
        except (OSError, TimeoutError):
            # This client cannot open connections to the workers (e.g. behind a NAT): let the
            # scheduler relay the bytes once instead.
            future = self.client.scatter(data, broadcast=True, direct=False, hash=True)
        self._shared.append(future)
        return SharedRef(key=str(future.key), size=len(data))

    def joblib_context(self):
        import joblib

        # The Dask joblib backend ships each large argument (the training arrays) to the workers
        # once and refers to it by key in every fit.
        # Pin this engine's client: joblib would otherwise take the process's newest client.
        return joblib.parallel_config(
            backend=worker_local_backend()(client=self.client, wait_for_workers_timeout=60)
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
