"""Progress reporting, kept out of the orchestration code.

Jobs call a :class:`Progress` (``start`` / ``advance`` / ``stop``); the CLI passes
:func:`for_terminal`'s choice: a :class:`RichProgress` bar (rows/s and ETA) when stderr is a
terminal, else :class:`PlainProgress` lines every few seconds (a log file or a scheduler's capture
gets readable lines, not a bar redrawn 10 times a second and cut at the end). The API default is
:class:`NullProgress`.

>>> p = NullProgress()
>>> p.start(total=3, description="copy"); p.advance(rows=10); p.stop()
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Interface: a job reports how many tasks are planned and each one that finishes."""

    def start(self, total: int, description: str = "") -> None:
        """``total`` tasks are about to run."""

    def advance(self, rows: int = 0, tasks: int = 1) -> None:
        """``tasks`` more finished, carrying ``rows`` rows."""

    def note(self, message: str) -> None:
        """A line for the user (a dashboard link, a resumed run)."""

    def stop(self) -> None:
        """The job is over (also on failure)."""


class NullProgress(Progress):
    """Reports nothing."""


class RichProgress(Progress):
    """A rich progress bar on stderr: tasks done, rows, rows/s, elapsed and ETA."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._rows = 0

    def start(self, total: int, description: str = "") -> None:
        self._rows = 0  # each phase (profile, train) counts its own rows
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self._progress = Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, rows=0, rate="")

    def advance(self, rows: int = 0, tasks: int = 1) -> None:
        if self._progress is None:
            return
        self._rows += rows
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = f"{self._rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
        self._progress.update(self._task, advance=tasks, rows=self._rows, rate=rate)

    def note(self, message: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            print(message, file=sys.stderr)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class PlainProgress(Progress):
    """One line per ``interval`` seconds while a phase runs, and one when it ends.

    >>> import io
    >>> out = io.StringIO()
    >>> p = PlainProgress(out, interval=3600)
    >>> p.start(total=4, description="predict"); p.advance(rows=1000, tasks=2); p.stop()
    >>> print(out.getvalue().splitlines()[-1])  # doctest: +ELLIPSIS
    predict: 2/4 tasks, 1,000 rows, ... rows/s, done in ...s
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = enabled
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._description = ""
        self._total = self._tasks = self._rows = 0
        self._started = 0.0

    def start(self, total: int, description: str = "") -> None:
        self.stop()
        with self._lock:
            self._description, self._total = description or "progress", total
            self._tasks = self._rows = 0
            self._started = time.monotonic()
        if not self.enabled:
            return
        self._stopped.clear()
        # A timer, not advance(): a phase whose first task takes minutes still says it is alive.
        self._thread = threading.Thread(target=self._tick, name="skfleet-progress", daemon=True)
        self._thread.start()

    def advance(self, rows: int = 0, tasks: int = 1) -> None:
        with self._lock:
            self._rows += rows
            self._tasks += tasks

    def note(self, message: str) -> None:
        if self.enabled:
            print(message, file=self.stream, flush=True)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopped.set()
        thread.join()
        self._print(final=True)

    def _tick(self) -> None:
        while not self._stopped.wait(self.interval):
            self._print(final=False)

    def _print(self, final: bool) -> None:
        with self._lock:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            rate = self._rows / elapsed
            line = f"{self._description}: {self._tasks}/{self._total} tasks, {self._rows:,} rows"
            line += f", {rate:,.0f} rows/s"
            if final:
                line += f", done in {elapsed:.1f}s"
            elif 0 < self._tasks < self._total:
                left = elapsed / self._tasks * (self._total - self._tasks)
                line += f", {elapsed:.0f}s elapsed, about {left:.0f}s left"
            else:
                line += f", {elapsed:.0f}s elapsed"
        print(line, file=self.stream, flush=True)


def for_terminal(enabled: bool = True, stream: TextIO | None = None) -> Progress:
    """The CLI's progress: a bar on a terminal, plain lines every few seconds otherwise."""
    stream = stream or sys.stderr
    if not enabled:
        return NullProgress()
    if stream.isatty():
        return RichProgress()
    return PlainProgress(stream)
