"""Flags shared by several commands, defined once."""

from __future__ import annotations

import json

import click

from skfleet.data.base import IF_EXISTS_CHOICES
from skfleet.engine import ENGINE_HELP

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
partition_rows_option = click.option(
    "--partition-rows", type=click.IntRange(min=1), default=None, help="Rows per partition (task)."
)
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


def engine_option(default: str):
    return click.option("--engine", default=default, show_default=True, help=ENGINE_HELP)


def emit_json(payload: dict) -> None:
    """Print one JSON object on stdout (the machine-readable result)."""
    click.echo(json.dumps(payload, default=str))
