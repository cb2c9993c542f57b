"""Where tasks run. An :class:`Engine` maps a plain top-level function over small task arguments.

Tasks are ``fn(item)`` with ``fn`` a module-level function and ``item`` something small and
picklable (a partition description plus URIs) — never rows or a fitted model. Results come back as
they finish, so callers can drive a progress bar and commit bookkeeping as they go.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from skfleet.engine.shared import SharedRef
from skfleet.util.closing import Closing


class Engine(Closing, ABC):
    """A pool of workers (possibly just this process)."""

    #: A string such as ``local`` or ``dask:local`` that :func:`skfleet.engine.get_engine` accepts.
    spec: str
    #: Whether tasks run in other processes (so a task must not rely on this process's state).
    distributed: ClassVar[bool] = False
    #: Whether every worker runs on this machine, seeing its files, sockets and ``localhost``.
    #: A cluster elsewhere does not: models are shipped to it and local URLs refused.
    on_this_machine: bool = True

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many tasks can run at once."""

    @abstractmethod
    def map_unordered(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, retries: int = 0
    ) -> Iterator[tuple[int, Any]]:
        """Run ``fn`` on every item; yield ``(index, result)`` as tasks finish.

        A task that raises is retried up to ``retries`` times; after that its exception propagates
        out of the iterator (already-finished results have been yielded).
        """

    def share(self, data: bytes) -> SharedRef:
        """Put ``data`` on every worker once; tasks carry the returned handle, not the bytes.

        The default suits engines whose tasks run in this process.
        """
        return SharedRef.inline(data)

    def joblib_context(self) -> contextlib.AbstractContextManager:
        """A context in which joblib (scikit-learn's ``n_jobs``) runs on this engine."""
        return contextlib.nullcontext()

    @property
    def dashboard_link(self) -> str | None:
        return None

    def close(self) -> None:
        """Release workers started by this engine (not those of an external cluster)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, workers={self.workers})"


def call_with_retries(fn: Callable[[Any], Any], item: Any, retries: int) -> Any:
    """Call ``fn(item)``, retrying up to ``retries`` times on any exception."""
    for attempt in range(retries + 1):
        try:
            return fn(item)
        except Exception:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")
