"""``skfleet train DATA --target COL --model MODEL ...``."""

from __future__ import annotations

import click

from skfleet.cli.options import (
    emit_json,
    exclude_option,
    file_format,
    key_option,
    metric_line,
    model_option,
    param_option,
    run_options,
)
from skfleet.util.choices import CALIBRATION_CHOICES
from skfleet.util.progress import for_terminal

#: The metrics of the summary line, in this order.
_SHOWN_METRICS = ("roc_auc", "accuracy", "log_loss", "brier", "r2", "rmse", "mae")


@click.command()
@click.argument("data")
@click.option("--target", required=True, help="Column to predict.")
@model_option(
    "A preset (logistic, ridge, hgb-classifier, hgb-regressor, random-forest-classifier, ...) "
    "or an estimator import path (sklearn.ensemble.HistGradientBoostingClassifier). Repeat it "
    "to compare candidates on the same folds (a leaderboard; each stored as a version of "
    "--name, the best last); 'stacking' stacks the others. --param/--grid then take MODEL:K=V.",
    multiple=True,
)
@param_option
@exclude_option
@key_option
@click.option(
    "--cv", "folds", type=int, default=5, show_default=True, help="Folds (0: no cross-validation)."
)
@click.option(
    "--search",
    type=click.Choice(["grid", "random", "halving"]),
    default=None,
    help="Hyperparameter search over the --grid values.",
)
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="K=V1,V2,...",
    help="Search candidates (without --search: a grid search); MODEL:K=V1,V2,... with several "
    "--model.",
)
@click.option("--n-iter", type=int, default=10, show_default=True, help="Candidates (random).")
@click.option("--scoring", default=None, help="scikit-learn scorer name for the search.")
@click.option("--group-by", default=None, metavar="COL", help="One model per value of COL.")
@click.option(
    "--min-segment-rows",
    type=int,
    default=30,
    show_default=True,
    help="Smaller segments use the global model.",
)
@click.option(
    "--no-encode",
    is_flag=True,
    help="Hand the model the table as a DataFrame (checked, not encoded): for an estimator that "
    "encodes its columns itself.",
)
@click.option(
    "--weight",
    default=None,
    metavar="COL",
    help="Sample weights (numbers >= 0) from COL: used in fitting and in the CV metrics; not a "
    "feature, not needed to predict.",
)
@click.option(
    "--calibrate",
    type=click.Choice(CALIBRATION_CHOICES),
    default=None,
    help="Calibrate the classifier's probabilities on the run's folds (CalibratedClassifierCV).",
)
@click.option(
    "--promote-if",
    "promote_if",
    default=None,
    metavar="RULE",
    help="Move an alias to the new version only if it beats the alias's version refitted on this "
    "run's folds: 'METRIC OP ALIAS [+|- DELTA]', OP one of >=, >, <=, <, e.g. "
    "'roc_auc >= champion + 0.005' or 'log_loss <= champion'. The version is stored either way.",
)
@run_options(no_report_help="Skip the HTML report (and feature importance).")
def train(
    data,
    target,
    model,
    params,
    exclude,
    keys,
    folds,
    search,
    grid,
    n_iter,
    scoring,
    group_by,
    min_segment_rows,
    no_encode,
    weight,
    calibrate,
    promote_if,
    name,
    store,
    no_report,
    in_format,
    engine,
    as_json,
):
    """Train MODEL on the table DATA to predict --target, with K-fold CV, and store it."""
    from skfleet.data import open_source
    from skfleet.train import train as run_train
    from skfleet.train.api import default_name
    from skfleet.train.candidates import candidate_options
    from skfleet.train.promotion import promotion_text

    model, params, search_config = candidate_options(model, params, grid, search, n_iter, scoring)
    several = isinstance(model, list)
    # An empty --name is a bad name, not "no name": the store refuses it by name.
    name = name if name is not None else default_name(target, "comparison" if several else model)
    source = open_source(data, **(file_format(data, in_format) or {}))
    with source:
        result = run_train(
            model,
            source,
            target,
            name=name,
            store=store,
            engine=engine,
            progress=for_terminal(enabled=not as_json),
            params=params,
            exclude=exclude,
            keys=keys,
            cv=folds,
            search=search_config,
            group_by=group_by,
            min_segment_rows=min_segment_rows,
            encode=False if no_encode else None,
            weight=weight,
            calibrate=calibrate,
            promote_if=promote_if,
            report=not no_report,
        )
    if as_json:
        emit_json(result.to_dict())
        return
    if several:
        _echo_comparison(result)
        return
    rows = result.metadata["rows"]
    dropped = rows["dropped_missing_target"]
    metrics = metric_line(result.metrics.get("overall"), _SHOWN_METRICS, "no cross-validation")
    click.echo(
        f"stored {result.name}@{result.version}: {metrics} "
        f"({rows['train']:,} rows"
        + (f", {dropped:,} dropped for a missing target" if dropped else "")
        + f") in {result.seconds:.1f}s"
        + (f"; {promotion_text(result.metadata['promotion'], result.ref)}" if promote_if else "")
    )
    if "search" in result.metadata:
        click.echo(f"best parameters: {result.metadata['search']['best_params']}")
    if "segments" in result.metadata:
        segments = result.metadata["segments"]
        click.echo(
            f"{segments['count']} segment models by {segments['by']}, "
            f"{len(segments['fallback_segments'])} segments on the global model"
        )
    if result.report_path:
        click.echo(f"report: {result.report_path}")


def _echo_comparison(result) -> None:
    """The leaderboard as a table, the paired test of the top two, where the report is."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "rank", "candidate", "stored", f"{result.metric} mean", "std", "fit s/1k rows",
        "predict s/1k rows", "bytes", title=f"{len(result.rows)} candidates, same folds",
    )  # fmt: skip
    for row in result.rows:
        stored = f"{result.results[row['candidate']].name}@{row['version']}"
        table.add_row(
            str(row["rank"]), row["candidate"], stored, f"{row['mean']:.4f}",
            "—" if row["std"] is None else f"{row['std']:.4f}",
            f"{row['fit_s_per_1k_rows']:.3g}", f"{row['predict_s_per_1k_rows']:.3g}",
            f"{row['artifact_bytes']:,}",
        )  # fmt: skip
    Console(width=max(100, Console().width)).print(table)
    paired = result.paired
    if paired and paired["p_value"] is not None:
        click.echo(
            f"{paired['a']} - {paired['b']}: {paired['mean_difference']:+.4f} {paired['metric']} "
            f"over folds, p = {paired['p_value']:.3g} ({paired['test']})"
        )
    click.echo(f"best: {result.best.name}@{result.best.version} in {result.seconds:.1f}s")
    if result.report_path:
        click.echo(f"comparison report: {result.report_path}")
