"""The ``skfleet`` command line: thin wrappers that parse flags, call the API and print.

Every command lives in its own module of this package and is added to :data:`main` below. A
:class:`~skfleet.errors.SkfleetError` raised anywhere, or a flag click refuses, becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
import sys

import click

from skfleet.errors import SkfleetError
from skfleet.util.redact import redact_text

#: Every subcommand: ``module:attribute`` and its one-line help. The module is imported only when
#: the command is run (or asked for its own ``--help``), so ``skfleet --help`` imports no command;
#: the help text is written here for that reason, and a test checks it matches the command's.
COMMANDS: dict[str, tuple[str, str]] = {
    "copy": (
        "skfleet.cli.copy:copy",
        "Copy the table SRC to --out in parallel partitions (files, s3://, postgresql://).",
    ),
    "train": (
        "skfleet.cli.train:train",
        "Train MODEL on the table DATA to predict --target, with K-fold CV, and store it.",
    ),
    "train-stream": (
        "skfleet.cli.train_stream:train_stream",
        "Train MODEL out of core on DATA with partial_fit, in shuffled passes, and store it.",
    ),
    "predict": (
        "skfleet.cli.predict:predict",
        "Score DATA with MODEL[@VERSION] from the store and write the scores to --out.",
    ),
    "models": ("skfleet.cli.models:models", "List, inspect and delete stored models."),
    "register": (
        "skfleet.cli.models:register",
        "Bring a fitted scikit-learn model (MODEL_FILE: .skops, or .pkl/.joblib with --trust) "
        "into the store with its feature list.",
    ),
}


class SkfleetGroup(click.Group):
    """A click group with lazily imported subcommands and one-line errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, _, attr = COMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version asks every command for its help, which imports all of them.
        width = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=text).get_short_help_str(width))
            for name, (_, text) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SkfleetError as exc:
            click.echo(f"error: {redact_text(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            # A bad flag value is bad input like any other: one line naming it, status 2 (click
            # would print the command's usage and a hint first).
            click.echo(f"error: {redact_text(exc.format_message())}", err=True)
            sys.exit(2)


#: The young-generation threshold of a command's process (Python's default: 700 allocations).
GC_THRESHOLD = 10_000


def _quiet_dask(record: logging.LogRecord) -> bool:
    """Keep Dask's own log lines out of a run's output unless they are critical."""
    if record.name.split(".", 1)[0] in ("distributed", "tornado", "bokeh"):
        return record.levelno >= logging.CRITICAL
    return True


@click.group(cls=SkfleetGroup)
@click.version_option(package_name="skfleet")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """skfleet: scikit-learn models on tables that outgrow a laptop."""
    level = logging.WARNING - 10 * min(verbose, 2)
    # A command imports scikit-learn, scipy and pandas as it runs: some 150k objects that live
    # until exit. With Python's default thresholds the collector walks them in three full and
    # ~30 middle collections (a quarter of a second of a 1,000-row predict); collecting the
    # young generation every 10,000 allocations instead of 700 still collects every
    # generation, an order of magnitude less often.
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    # At exit Python's final collections walk (and free) all of those objects again, about a
    # third of a second; a process that is ending need not. Frozen, they are left to the OS
    # like any object still alive at exit. Runs after every exit handler registered later
    # (LIFO: a cluster's shutdown, weakref finalizers), before logging's flush.
    atexit.register(gc.freeze)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Dask sets its own loggers to INFO when it is imported (later, lazily): about 45 lines per
    # run of cluster start-up chatter that buries the progress and the result, and when a
    # scheduler or worker goes away it logs tracebacks of every failed reconnect before skfleet
    # says in one line what happened and how to finish. Without -v only its critical messages
    # show. Its config is read from the environment at import, so this reaches the scheduler and
    # workers we start too.
    # Reports (train, train-stream, models report) draw with Agg; naming it spares matplotlib's
    # search for a display backend, which imports pyplot (and any GUI toolkit found) for a
    # window a command never opens.
    os.environ.setdefault("MPLBACKEND", "agg")
    dask_level = "critical" if verbose == 0 else logging.getLevelName(level).lower()
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", dask_level)
    if verbose == 0:
        # Dask's config also gives some of its loggers levels of their own (distributed.client:
        # warning), which the variable above does not reach: filter at our one handler instead.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_dask)


__all__ = ["main"]
