"""``skfleet predict MODEL[@V] DATA --out DST``."""

from __future__ import annotations

import sys
import warnings

import click

from skfleet.cli.options import (
    count_of,
    emit_json,
    engine_option,
    file_format,
    format_option,
    int_option,
    json_option,
    out_format_option,
)
from skfleet.errors import SkfleetWarning
from skfleet.util.choices import (
    BAD_ROW_REASONS,
    DEFAULT_ENGINE,
    DUPLICATE_KEY_CHOICES,
    IF_EXISTS_CHOICES,
    split_bad_rows,
)
from skfleet.util.progress import for_terminal
from skfleet.util.redact import redact_text, redact_url

#: Exit status of a run stopped with Ctrl-C (the shell's convention for SIGINT).
INTERRUPTED = 130


def _check_bad_rows(ctx, param, value):
    """``--bad-rows``, checked as the API checks it (one line, exit status 2)."""
    if value is not None:
        try:
            split_bad_rows(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("--bad-rows "), ctx, param) from None
    return value


def _bad_rows_note(result) -> str:
    """``; 3 bad values skipped (...)`` for the result line, or nothing."""
    if not result.bad_rows:
        return ""
    from skfleet.predict.quarantine import describe

    where = (
        f"quarantined in {result.quarantine}" if result.quarantine else "skipped (--bad-rows skip)"
    )
    return f"; {describe(result.bad_rows)} {where}"


def _split(values: tuple[str, ...]) -> list[str] | None:
    """``--columns a,b --columns c`` -> ``[a, b, c]``."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


@click.command()
@click.argument("model")
@click.argument("data")
@click.option("--out", "dst", required=True, help="Where the scores go (a data URL).")
@click.option(
    "--key",
    "keys",
    multiple=True,
    help="Key column copied to the output (repeat for several; default: the model's keys).",
)
@click.option(
    "--columns",
    "columns",
    multiple=True,
    help="Output columns to write among prediction and proba_<class> (comma-separated).",
)
@click.option(
    "--if-exists",
    type=click.Choice(IF_EXISTS_CHOICES),
    default=None,
    help="What to do when the output already exists.  [default: fail]",
)
@engine_option(DEFAULT_ENGINE)
@int_option("--workers", help="Number of workers.")
@int_option(
    "--partition-rows", help="Rows per partition (default: sized for tasks of a few seconds)."
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[RUN_ID]",
    help="Finish an interrupted run (alone: the latest unfinished run writing to --out).",
)
@click.option(
    "--store", default=None, help="Model store (default: $SKFLEET_STORE or ./skfleet-models)."
)
@click.option(
    "--duplicate-keys",
    type=click.Choice(DUPLICATE_KEY_CHOICES),
    default="warn",
    show_default=True,
    help="What a key that is not unique in the input does.",
)
@int_option(
    "--retries", minimum=0, default=2, help="Retries of a failing partition before the run fails."
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load a model whose file names things outside the allowed lists (only files you wrote).",
)
@click.option(
    "--incremental",
    metavar="COLUMN",
    default=None,
    help="Score only rows whose COLUMN (a key or timestamp that only grows) is above the "
    "watermark the last run of this model and source stored in --out; appends.",
)
@click.option(
    "--rescore-all",
    is_flag=True,
    help="With --incremental: score every row again (a new model version) into a replaced "
    "--out, resetting the watermark.",
)
@click.option(
    "--bad-rows",
    metavar="error|skip|quarantine[=URL]",
    default=None,
    callback=_check_bad_rows,
    help="What a row the model's feature contract cannot encode does: fail the run (error, the "
    "default), leave it out (skip), or leave it out and write its refused values to URL "
    "(quarantine; default: the table <out>_quarantine or the folder <out>.quarantine/), "
    f"counted per reason: {', '.join(BAD_ROW_REASONS)}.",
)
@format_option
@out_format_option
@json_option
def predict(
    model,
    data,
    dst,
    keys,
    columns,
    if_exists,
    engine,
    workers,
    partition_rows,
    resume,
    store,
    duplicate_keys,
    retries,
    trust,
    incremental,
    rescore_all,
    bad_rows,
    in_format,
    out_format,
    as_json,
):
    """Score DATA with MODEL[@VERSION] from the store and write the scores to --out.

    The output holds the key columns, `prediction`, and `proba_<class>` for classifiers. Each
    partition is committed exactly once; an interrupted run is finished with --resume.
    """
    # The API is imported here, not at the top: ``--help`` and a bad flag never load it.
    from skfleet.predict.api import predict as run_predict
    from skfleet.predict.execution import PredictInterrupted

    progress = for_terminal(enabled=not as_json)
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Our warnings become one "warning:" line each, not Python's file:line form.
            warnings.simplefilter("always", SkfleetWarning)
            result = run_predict(
                model,
                data,
                dst,
                store=store,
                key=list(keys) or None,
                columns=_split(columns),
                if_exists=if_exists,
                engine=engine,
                workers=workers,
                partition_rows=partition_rows,
                resume=resume,
                retries=retries,
                duplicate_keys=duplicate_keys,
                trust=trust,
                source_options=file_format(data, in_format, other="--out-format"),
                sink_options=file_format(dst, out_format, "--out-format", other="--format"),
                progress=progress,
                incremental=incremental,
                rescore_all=rescore_all,
                bad_rows=bad_rows,
            )
    except PredictInterrupted as exc:
        click.echo(
            f"interrupted: committed partitions are kept; finish with "
            f"skfleet predict ... --resume {exc.run_id}",
            err=True,
        )
        sys.exit(INTERRUPTED)
    for warning in caught:
        if issubclass(warning.category, SkfleetWarning):
            click.echo(f"warning: {redact_text(str(warning.message))}", err=True)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if as_json:
        emit_json(result.to_dict())
        return
    inc = result.incremental
    if inc is not None and not inc["new_rows"]:
        click.echo(
            f"nothing new in {redact_url(data)}: {inc['column']} is at most {inc['watermark']}, "
            f"the watermark of {redact_url(dst)}; nothing was written"
        )
        return
    click.echo(
        f"scored {result.rows_in:,} rows with {result.model} into {redact_url(dst)}: "
        f"{result.rows_out:,} rows in {count_of(result.partitions, 'partition')}"
        + (f" ({result.skipped_partitions} already committed)" if result.skipped_partitions else "")
        + f", {result.seconds:.2f}s ({result.rows_per_second:,.0f} rows/s)"
        + (f" on {result.engine}" if result.engine else "")
        + f", run {result.run_id}"
        + _bad_rows_note(result)
    )
    if inc is not None:
        click.echo(
            f"incremental: {inc['column']} "
            + ("up to" if inc["lower"] is None else f"above {inc['lower']} up to")
            + f" {inc['upper']}; watermark now {inc['watermark']}"
        )
    if result.drift_report is not None:
        summary = result.drift_report.summary()
        if summary:
            click.echo(f"drift: {summary}")
