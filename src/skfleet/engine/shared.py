"""Bytes put on every worker once, for tasks to refer to by a small handle.

A prediction task must stay small: it carries where the model is, never the model. When the
workers cannot read the model store (a folder on the client, workers on other machines), the
client puts the artifact bytes on the workers once with :meth:`Engine.share
<skfleet.engine.base.Engine.share>` and tasks carry the :class:`SharedRef` it returns.

On Dask the bytes are scattered straight from the client to every worker (``direct=True``: they
do not pass through the scheduler) under a key derived from their content, and every task of the
engine depends on that key, so a worker that joined later gets them from a peer before its first
task runs. Engines whose workers are this
process keep the bytes in the handle itself.

>>> ref = SharedRef.inline(b"abc")
>>> ref.fetch(), ref.size
(b'abc', 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SharedRef:
    """A handle to bytes shared with the workers; :meth:`fetch` returns them on any worker."""

    key: str
    size: int
    #: Only for engines whose tasks run in this process (nothing is pickled).
    data: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def inline(cls, data: bytes) -> SharedRef:
        return cls(key="inline", size=len(data), data=data)

    def fetch(self) -> bytes:
        if self.data is not None:
            return self.data
        return _fetch_from_dask(self.key)


def _fetch_from_dask(key: str) -> bytes:
    """On a Dask worker: the shared bytes, which the scheduler put here before the task ran."""
    from distributed import get_worker

    data = get_worker().data.get(key)
    if data is None:
        raise RuntimeError(f"shared bytes {key} are not on this worker")
    return data
