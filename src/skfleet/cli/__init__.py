"""The ``skfleet`` command line: thin wrappers that parse flags, call the API and print.

Every command lives in its own module of this package and is added to :data:`main` below. A
:class:`~skfleet.errors.SkfleetError` raised anywhere, or a flag click refuses, becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from skfleet.errors import SkfleetError
from skfleet.util.redact import redact_text

#: (module, command name) of every subcommand, imported lazily so ``skfleet --help`` stays fast.
COMMANDS: dict[str, str] = {
    "copy": "skfleet.cli.copy:copy",
    "train": "skfleet.cli.train:train",
    "train-stream": "skfleet.cli.train_stream:train_stream",
    "predict": "skfleet.cli.predict:predict",
    "models": "skfleet.cli.models:models",
    "register": "skfleet.cli.models:register",
}


class SkfleetGroup(click.Group):
    """A click group with lazily imported subcommands and one-line errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that command is not built yet
                return None
            raise
        return getattr(module, attr)

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


@click.group(cls=SkfleetGroup)
@click.version_option(package_name="skfleet")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """skfleet: scikit-learn models on tables that outgrow a laptop."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Dask sets its own loggers to INFO when it is imported (later, lazily): about 45 lines per
    # run of cluster start-up chatter that buries the progress and the result. Its config is read
    # from the environment at import, so this reaches the scheduler and workers we start too.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", logging.getLevelName(level).lower())


__all__ = ["main"]
