"""``skfleet models list|show|diff|report|delete`` and ``skfleet register``: thin wrappers over
:mod:`skfleet.store`."""

from __future__ import annotations

import json
import os

import click

from skfleet.cli.model_summary import diff_rows, diff_text, summary_lines
from skfleet.errors import SkfleetError, UsageError
from skfleet.store import DEFAULT_STORE, ModelStore, parse_model_ref
from skfleet.store.register import register_model
from skfleet.util.atomic import atomic_write
from skfleet.util.choices import DRIFT_RUNS, DRIFT_THRESHOLD
from skfleet.util.redact import redact_text

REPORT_FILE = "report.html"
#: The report with its drift page, written next to it (the stored report stays as trained).
DRIFT_REPORT_FILE = "report-drift.html"
#: Runs a report's drift page shows at most (the latest).
REPORT_RUNS = 100

store_option = click.option(
    "--store",
    envvar="SKFLEET_STORE",
    default=DEFAULT_STORE,
    show_default=True,
    help="Model store: a folder, file://... or s3://bucket/prefix (env: SKFLEET_STORE).",
)


def _console():
    from rich.console import Console

    # Created per call so it writes to the stdout click has now (CliRunner swaps it).
    return Console(soft_wrap=True)


def _format_metric(metric: dict | None) -> str:
    if not metric:
        return ""
    value = metric.get("value")
    shown = f"{value:.4g}" if isinstance(value, int | float) else str(value)
    return f"{metric.get('name')}={shown}"


@click.group()
def models() -> None:
    """List, inspect and delete stored models."""


@models.command("list")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_models(store: str, as_json: bool) -> None:
    """Every model in the store with its latest version."""
    entries = ModelStore(store).list()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo(f"no models in {ModelStore(store).display}")
        return
    from rich.table import Table

    # The aliases column only when there are aliases: the table stays narrow without them.
    aliased = any(entry.get("aliases") for entry in entries)
    table = Table("name", "latest", "versions", *(["aliases"] if aliased else []))
    for column in ("created (UTC)", "estimator", "metric"):
        table.add_column(column)
    for entry in entries:
        aliases = " ".join(f"{alias}@{v}" for alias, v in entry.get("aliases", {}).items())
        table.add_row(
            entry["name"],
            str(entry["latest_version"]),
            str(len(entry["versions"])),
            *([aliases] if aliased else []),
            (entry["created_at"] or "")[:16].replace("T", " "),
            (entry["estimator"] or "").rsplit(".", 1)[-1],
            _format_metric(entry["main_metric"]),
        )
    _console().print(table)


@models.command()
@click.argument("ref", metavar="NAME[@V]")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print all of model.json as it is stored.")
def show(ref: str, store: str, as_json: bool) -> None:
    """A model in a dozen lines (the latest version unless @V is given); --json for all of it."""
    model_store = ModelStore(store)
    mref = model_store.resolve(ref)  # NAME@champion: the version it points at now
    meta = model_store.metadata(mref)
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    aliases = [a for a, v in model_store.aliases(mref.name).items() if v == mref.version]
    click.echo("\n".join(summary_lines(meta, aliases)))


@models.command("alias")
@click.argument("ref", metavar="NAME@V")
@click.argument("alias")
@click.option("--delete", "remove", is_flag=True, help="Delete ALIAS of NAME (give NAME alone).")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the alias and its versions as JSON.")
def alias_command(ref: str, alias: str, remove: bool, store: str, as_json: bool) -> None:
    """Point ALIAS (champion, ...) at NAME@V in one write, so NAME@ALIAS means that version
    everywhere; --delete removes it."""
    model_store = ModelStore(store)
    name = parse_model_ref(ref).name
    if remove and ref != name:
        raise UsageError(
            f"alias --delete takes NAME and ALIAS: skfleet models alias --delete {name} {alias}"
        )
    previous = (
        model_store.delete_alias(name, alias) if remove else model_store.aliases(name).get(alias)
    )
    version = None if remove else model_store.set_alias(ref, alias).version
    if as_json:
        emitted = {"name": name, "alias": alias, "version": version, "previous": previous}
        click.echo(json.dumps(emitted, indent=2))
        return
    was = f" (was {name}@{previous})" if previous not in (None, version) else ""
    click.echo(
        f"deleted {name}@{alias}{was}" if remove else f"{name}@{alias} -> {name}@{version}{was}"
    )


@models.command()
@click.argument("first", metavar="NAME@V")
@click.argument("second", metavar="NAME@W")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff(first: str, second: str, store: str, as_json: bool) -> None:
    """What differs between two stored models (settings, input columns), and their metrics."""
    model_store = ModelStore(store)
    a_ref, b_ref = model_store.resolve(first), model_store.resolve(second)
    rows = diff_rows(model_store.metadata(a_ref), model_store.metadata(b_ref))
    if as_json:
        keys = ("field", str(a_ref), str(b_ref), "change")
        click.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return
    click.echo(diff_text(rows, str(a_ref), str(b_ref)))


@models.command()
@click.argument("ref", metavar="NAME[@V]")
@store_option
@click.option("--out", "out", default=None, help="Write report.html to this file.")
def report(ref: str, store: str, out: str | None) -> None:
    """Print the path of a model's report.html, or write it to --out. When runs of the version
    recorded profiles, the report gains a drift page (report-drift.html next to report.html)."""
    model_store = ModelStore(store)
    mref = model_store.resolve(ref)
    if out is None:
        path = model_store.local_path(mref, REPORT_FILE)
        if path is None:
            model_store.read_file(mref, REPORT_FILE)  # a missing report is the better error
            raise UsageError(
                f"model {mref} is in a remote store; pass --out FILE to save its report"
            )
        with open(path, "rb") as f:
            page = _with_drift(store, mref, f.read())
        if page is not None:
            path = os.path.join(os.path.dirname(path), DRIFT_REPORT_FILE)
            _write_atomically(path, page)
        click.echo(path)
        return
    data = model_store.read_file(mref, REPORT_FILE)
    _write_atomically(out, _with_drift(store, mref, data) or data)
    click.echo(out)


def _with_drift(store: str, mref, page: bytes) -> bytes | None:
    """The report with its drift page over the version's runs, or None when none of its runs
    recorded a profile (rebuilt from the run records each time)."""
    from skfleet.predict.drift_runs import drift
    from skfleet.report.drift import drift_section
    from skfleet.report.html import with_section

    try:
        result = drift(str(mref), store=store, runs=REPORT_RUNS)
    except UsageError:
        return None
    return with_section(page.decode("utf-8"), drift_section(result)).encode("utf-8")


@models.command("drift")
@click.argument("ref", metavar="NAME[@V]")
@store_option
@click.option(
    "--runs",
    "last",
    type=int,
    default=DRIFT_RUNS,
    show_default=True,
    help="How many of the latest committed runs to show (NAME: of every version; NAME@V: of one).",
)
@click.option(
    "--threshold",
    type=float,
    default=DRIFT_THRESHOLD,
    show_default=True,
    help="Flag a column whose population stability index against training is above this "
    "(rule of thumb: below 0.1 stable, 0.1-0.25 some shift, above 0.25 a major shift).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs and columns as JSON.")
@click.pass_context
def drift_command(
    ctx: click.Context, ref: str, store: str, last: int, threshold: float, as_json: bool
) -> None:
    """Per input column, the PSI and missing-rate change of each recent run against training;
    exits 1 when a column is flagged (for schedulers), 0 otherwise."""
    from skfleet.predict.drift_runs import drift

    result = drift(ref, store=store, runs=last, threshold=threshold)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_drift(result)
    ctx.exit(1 if result.flagged else 0)


def _print_drift(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("column", title=f"{result.model}: PSI against training (missing-rate change)")
    for run in result.runs:
        stamp, _, suffix = run.run_id.partition("-")
        table.add_column(f"{stamp}\n-{suffix} @{run.version}\n{run.rows:,} rows", justify="right")
    for name in result.features:
        cells = []
        for run in result.runs:
            f = run.features.get(name)
            if f is None:
                cells.append("")
                continue
            shown = "n/a" if f.psi is None else f"{f.psi:.3f}"
            if f.flagged:
                shown = f"[bold red]{shown} ![/]"
            change = f.missing_change
            if change is not None and abs(change) >= 0.0005:
                shown += f"\n{change:+.1%} missing"
            cells.append(shown)
        table.add_row(escape(name), *cells)
    console = _console()
    console.print(table)
    flagged = result.flagged
    if flagged:
        console.print(
            f"flagged (PSI > {result.threshold:g} in at least one run): {', '.join(flagged)}",
            markup=False,
        )
    else:
        console.print(f"no column above PSI {result.threshold:g}", markup=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``path`` whole or not at all (a failed write leaves nothing half done)."""
    try:
        atomic_write(None, path, data)
    except OSError as exc:
        raise SkfleetError(f"--out {path} cannot be written: {exc.strerror or exc}") from exc


@models.command()
@click.argument("ref", metavar="NAME@V")
@store_option
def delete(ref: str, store: str) -> None:
    """Delete one version of a model (the version must be given explicitly)."""
    if parse_model_ref(ref).version is None:
        raise UsageError(f"delete needs an explicit version, like {ref.partition('@')[0]}@3")
    removed = ModelStore(store).delete(ref)
    click.echo(f"deleted {removed}")


@click.command()
@click.argument("model_file")
@click.option("--name", required=True, help="Model name in the store.")
@click.option(
    "--features",
    default=None,
    help="Comma-separated input columns, in the model's order (default: the columns a model "
    "fitted on a DataFrame records).",
)
@click.option("--target", default=None, help="Target column the model predicts (recorded only).")
@click.option(
    "--key", "keys", default=None, help="Comma-separated key columns predict copies to its output."
)
@store_option
@click.option(
    "--trust",
    is_flag=True,
    help="Load files naming things outside the allowed lists, and pickle/joblib files. Reading a pickle runs any "
    "code it holds, so only pass this for files whose origin you trust.",
)
def register(
    model_file: str,
    name: str,
    features: str | None,
    target: str | None,
    keys: str | None,
    store: str,
    trust: bool,
) -> None:
    """Bring a fitted scikit-learn model (MODEL_FILE: .skops, or .pkl/.joblib with --trust) into
    the store with its feature list."""
    ref = register_model(
        model_file, name, features, target=target, store=store, trust=trust, keys=keys
    )
    click.echo(f"registered {ref} in {redact_text(ModelStore(store).display)}")
