"""Flags (and the printing of results) shared by several commands, defined once.

A single shared flag is a decorator (``@json_option``); a run of flags that several commands list
in the same order is one decorator too (``@run_options(...)``), so each command's ``--help`` keeps
its order while the flag names, defaults and help texts live here only.

>>> @click.command()
... @options(click.option("--a"), click.option("--b"))
... def cmd(a, b):
...     pass
>>> [p.name for p in cmd.params]
['a', 'b']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import click

from skfleet.engine import ENGINE_HELP
from skfleet.util.choices import IF_EXISTS_CHOICES

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*decorators: Decorator) -> Decorator:
    """One decorator applying ``decorators`` as if stacked in this order above a function.

    Click lists the options of a command in the order their decorators are written, which is the
    reverse of the order they are applied in; hence ``reversed``.
    """

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def int_option(
    flag: str, *, default: int | None = None, minimum: int = 1, **attrs: Any
) -> Decorator:
    """``flag`` taking a whole number ``>= minimum`` (1 unless told); a default is shown."""
    if default is not None:
        attrs.setdefault("show_default", True)
    return click.option(flag, type=click.IntRange(min=minimum), default=default, **attrs)


if_exists_option = click.option(
    "--if-exists",
    type=click.Choice(IF_EXISTS_CHOICES),
    default="fail",
    show_default=True,
    help="What to do when the output already exists.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary on stdout."
)
partition_rows_option = int_option("--partition-rows", help="Rows per partition (task).")
format_option = click.option(
    "--format",
    "in_format",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="Input file format when the extension does not tell.",
)
out_format_option = click.option(
    "--out-format",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="Output file format when the --out name does not tell.",
)

# The estimator flags of ``train`` and ``train-stream``.
param_option = click.option(
    "--param", "params", multiple=True, metavar="K=V", help="Estimator parameter."
)
exclude_option = click.option(
    "--exclude", multiple=True, metavar="COL", help="Column to leave out."
)
key_option = click.option(
    "--key", "keys", multiple=True, metavar="COL", help="Key column (not a feature)."
)


def engine_option(default: str):
    return click.option("--engine", default=default, show_default=True, help=ENGINE_HELP)


def model_option(help: str, multiple: bool = False) -> Decorator:
    """The required ``--model`` of the training commands (each says which models it takes;
    ``multiple``: whether it may be repeated)."""
    return click.option("--model", "model", required=True, multiple=multiple, help=help)


def run_options(no_report_help: str) -> Decorator:
    """The flags that close ``train`` and ``train-stream``: where the model is stored, the report,
    the input format, the engine and ``--json``."""
    return options(
        click.option(
            "--name", default=None, help="Model name in the store [default: TARGET-MODEL]."
        ),
        click.option(
            "--store",
            default=None,
            help="Model store folder or URL [default: $SKFLEET_STORE or ./skfleet-models].",
        ),
        click.option("--no-report", is_flag=True, help=no_report_help),
        format_option,
        engine_option("local"),
        json_option,
    )


def file_format(
    url: str, fmt: str | None, flag: str = "--format", other: str | None = None
) -> dict[str, Any] | None:
    """The source or sink options that ``flag`` (a file format) gives for ``url``.

    Only files have a format: for any other URL the flag is refused by name, pointing to ``other``
    (``--out-format`` when ``--format`` was given to a PostgreSQL input, say).

    >>> file_format("flights/", "parquet"), file_format("flights/", None)
    ({'format': 'parquet'}, None)
    >>> file_format("postgresql://u:pw@db/x?table=t", "parquet", other="--out-format")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: --format parquet sets the format of input files, and postgresql://u:***@db/x?table=t is not one (did you mean --out-format parquet?)
    """
    if fmt is None:
        return None
    from skfleet.data.files import FileBackend
    from skfleet.data.registry import backend_for
    from skfleet.errors import UsageError
    from skfleet.util.redact import redact_url

    if not issubclass(backend_for(url), FileBackend):
        side = "output" if flag == "--out-format" else "input"
        hint = f" (did you mean {other} {fmt}?)" if other else ""
        raise UsageError(
            f"{flag} {fmt} sets the format of {side} files, and {redact_url(url)} is not one{hint}"
        )
    return {"format": fmt}


def metric_line(metrics: dict | None, keys: Iterable[str], missing: str) -> str:
    """``key value`` for each of ``keys`` that ``metrics`` holds as a float; ``missing`` when
    there are no metrics at all.

    >>> metric_line({"r2": 0.51234, "rmse": None, "mae": 2.0}, ("r2", "rmse"), "no holdout")
    'r2 0.5123'
    >>> metric_line({"rmse": None}, ("rmse",), "no holdout")
    'no metric defined'
    >>> metric_line(None, ("r2",), "no holdout")
    'no holdout'
    """
    if not metrics:
        return missing
    shown = []
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, float):
            shown.append(f"{key} {value:.4f}")
    return ", ".join(shown) or "no metric defined"


def count_of(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless there is one.

    >>> count_of(1, "partition"), count_of(12, "partition")
    ('1 partition', '12 partitions')
    """
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def emit_json(payload: dict) -> None:
    """Print one JSON object on stdout (the machine-readable result)."""
    click.echo(json.dumps(payload, default=str))
