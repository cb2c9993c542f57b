"""Progress reporting, kept out of the orchestration code.

Jobs call a :class:`Progress` (``start`` / ``advance`` / ``stop``); the CLI passes a
:class:`RichProgress` (bar with rows/s and ETA on stderr), the API default is :class:`NullProgress`.

>>> p = NullProgress()
>>> p.start(total=3, description="copy"); p.advance(rows=10); p.stop()
"""

from __future__ import annotations

import sys


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
