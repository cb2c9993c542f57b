"""``skfleet train DATA --target COL --model MODEL ...``."""

from __future__ import annotations

import click

from skfleet.cli.options import emit_json, engine_option, format_option, json_option
from skfleet.progress import RichProgress


def _metric_line(metrics: dict | None) -> str:
    if not metrics:
        return "no cross-validation"
    shown = []
    for key in ("roc_auc", "accuracy", "log_loss", "brier", "r2", "rmse", "mae"):
        value = metrics.get(key)
        if isinstance(value, float):
            shown.append(f"{key} {value:.4f}")
    return ", ".join(shown) or "no metric defined"


@click.command()
@click.argument("data")
@click.option("--target", required=True, help="Column to predict.")
@click.option(
    "--model",
    "model",
    required=True,
    help="A preset (logistic, ridge, hgb-classifier, hgb-regressor, random-forest-classifier, ...) "
    "or an estimator import path (sklearn.ensemble.HistGradientBoostingClassifier).",
)
@click.option("--param", "params", multiple=True, metavar="K=V", help="Estimator parameter.")
@click.option("--exclude", multiple=True, metavar="COL", help="Column to leave out.")
@click.option("--key", "keys", multiple=True, metavar="COL", help="Key column (not a feature).")
@click.option(
    "--cv", "folds", type=int, default=5, show_default=True, help="Folds (0: no cross-validation)."
)
@click.option(
    "--search",
    type=click.Choice(["grid", "random", "halving"]),
    default=None,
    help="Hyperparameter search over the --grid values.",
)
@click.option("--grid", "grid", multiple=True, metavar="K=V1,V2,...", help="Search candidates.")
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
@click.option("--name", default=None, help="Model name in the store [default: TARGET-MODEL].")
@click.option(
    "--store",
    default=None,
    help="Model store folder or URL [default: $SKFLEET_STORE or ./skfleet-models].",
)
@click.option("--no-report", is_flag=True, help="Skip the HTML report (and feature importance).")
@format_option
@engine_option("local")
@json_option
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
    name,
    store,
    no_report,
    in_format,
    engine,
    as_json,
):
    """Train MODEL on the table DATA to predict --target, with K-fold CV, and store it."""
    from skfleet.data import open_source
    from skfleet.errors import UsageError
    from skfleet.presets import parse_grids, parse_params
    from skfleet.train import SearchConfig
    from skfleet.train import train as run_train
    from skfleet.train.core import default_name

    if grid and search is None:
        raise UsageError("--grid needs --search grid|random|halving")
    search_config = None
    if search is not None:
        search_config = SearchConfig(
            method=search, grid=parse_grids(grid), n_iter=n_iter, scoring=scoring
        )
    name = name or default_name(target, model)
    source = open_source(data, **({"format": in_format} if in_format else {}))
    with source:
        result = run_train(
            model,
            source,
            target,
            name=name,
            store=store,
            engine=engine,
            progress=RichProgress(enabled=not as_json),
            params=parse_params(params),
            exclude=exclude,
            keys=keys,
            cv=folds,
            search=search_config,
            group_by=group_by,
            min_segment_rows=min_segment_rows,
            report=not no_report,
        )
    if as_json:
        emit_json(result.to_dict())
        return
    rows = result.metadata["rows"]
    dropped = rows["dropped_missing_target"]
    click.echo(
        f"stored {result.name}@{result.version}: {_metric_line(result.metrics.get('overall'))} "
        f"({rows['train']:,} rows"
        + (f", {dropped:,} dropped for a missing target" if dropped else "")
        + f") in {result.seconds:.1f}s"
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
