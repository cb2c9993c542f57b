"""Pull an iterator in a thread of its own, a few items ahead of its consumer.

A partition is read from its source while the batches before it are scored and written: the
reading thread spends its time in the driver and Arrow (which release the GIL), so it runs beside
the consumer on another core. The iterator is advanced, and closed, only in the reading thread (a
generator cannot be closed from another thread while it runs), so a source's cleanup (ending its
transaction, closing its cursor) runs there as it would in a plain loop.

>>> with read_ahead(iter(range(5))) as items:
...     list(items)
[0, 1, 2, 3, 4]
>>> with read_ahead(iter(range(100))) as items:  # stopped early: the reader ends, nothing leaks
...     next(items)
0
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Items held ahead of the consumer: one being used, one ready, one being read.
DEPTH = 2

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


@contextlib.contextmanager
def read_ahead(items: Iterator[T], depth: int = DEPTH) -> Iterator[Iterator[T]]:
    """``items``, read ``depth`` ahead in a thread; leaving the block stops the thread (the
    iterator is closed there) and waits for it. An error raised by ``items`` is raised in the
    consumer, at the position it happened."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def pull() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    thread = threading.Thread(target=pull, name="skfleet-read-ahead", daemon=True)
    thread.start()

    def consume() -> Iterator[T]:
        while True:
            value = ready.get()
            if value is _DONE:
                return
            if isinstance(value, _Failed):
                raise value.error
            yield value

    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
