"""``skfleet copy SRC --out DST``."""

from __future__ import annotations

import click

from skfleet.cli.options import (
    count_of,
    emit_json,
    engine_option,
    file_format,
    format_option,
    if_exists_option,
    json_option,
    out_format_option,
    partition_rows_option,
)
from skfleet.util.choices import COPY_PARTITION_ROWS
from skfleet.util.progress import for_terminal
from skfleet.util.redact import redact_url


@click.command()
@click.argument("src")
@click.option("--out", "dst", required=True, help="Destination data URL.")
@if_exists_option
@partition_rows_option
@format_option
@out_format_option
@engine_option("processes")
@click.option(
    "--resume",
    "resume",
    default=None,
    metavar="RUN_ID",
    help="Finish the interrupted copy RUN_ID (same SRC, --out and --if-exists).",
)
@json_option
def copy(src, dst, if_exists, partition_rows, in_format, out_format, engine, resume, as_json):
    """Copy the table SRC to --out in parallel partitions (files, s3://, postgresql://).

    Each partition is committed once; a copy cut short is finished with --resume RUN_ID (the
    unfinished run's id, which reading or writing --out names)."""
    from skfleet.copy import copy as copy_table  # here: --help never loads the data stack

    result = copy_table(
        src,
        dst,
        if_exists=if_exists,
        partition_rows=partition_rows or COPY_PARTITION_ROWS,
        engine=engine,
        run_id=resume,
        source_options=file_format(src, in_format, other="--out-format"),
        sink_options=file_format(dst, out_format, "--out-format", other="--format"),
        progress=for_terminal(enabled=not as_json),
    )
    if as_json:
        emit_json(
            {
                "rows": result.rows,
                "partitions": result.partitions,
                "seconds": result.seconds,
                "engine": result.engine,
            }
        )
    else:
        click.echo(
            f"copied {result.rows:,} rows in {count_of(result.partitions, 'partition')} "
            f"to {redact_url(dst)} in {result.seconds:.2f}s"
        )
