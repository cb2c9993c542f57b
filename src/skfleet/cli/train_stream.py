"""``skfleet train-stream DATA --target COL --model MODEL ...``: out-of-core training."""

from __future__ import annotations

import click

from skfleet.cli.options import emit_json, engine_option, format_option, json_option
from skfleet.progress import RichProgress
from skfleet.train.stream_config import DEFAULT_BATCH_ROWS, DEFAULT_PARTITION_ROWS


def _metric_line(metrics: dict | None) -> str:
    if not metrics:
        return "no holdout"
    shown = []
    for key in ("roc_auc", "accuracy", "log_loss", "r2", "rmse", "inertia", "reconstruction_mse"):
        value = metrics.get(key)
        if isinstance(value, float):
            shown.append(f"{key} {value:.4f}")
    return ", ".join(shown) or "no metric defined"


@click.command(name="train-stream")
@click.argument("data")
@click.option("--target", default=None, help="Column to predict (not for clustering/PCA).")
@click.option(
    "--model",
    "model",
    required=True,
    help="An estimator with partial_fit: a preset (sgd-logistic, sgd-linear, perceptron, "
    "multinomial-nb, bernoulli-nb, minibatch-kmeans, incremental-pca, mlp-classifier, "
    "mlp-regressor), a class name (SGDClassifier) or an import path.",
)
@click.option("--param", "params", multiple=True, metavar="K=V", help="Estimator parameter.")
@click.option("--key", "keys", multiple=True, metavar="COL", help="Key column (not a feature).")
@click.option("--exclude", multiple=True, metavar="COL", help="Column to leave out.")
@click.option("--hash", "hash_columns", multiple=True, metavar="COL", help="Hash this column.")
@click.option(
    "--hash-features", type=click.IntRange(min=1), default=None, help="Buckets per hashed column."
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Passes over the data.",
)
@click.option(
    "--partition-rows",
    type=click.IntRange(min=1),
    default=DEFAULT_PARTITION_ROWS,
    show_default=True,
    help="Rows per partition (one read, one shuffle).",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_ROWS,
    show_default=True,
    help="Rows per partial_fit call.",
)
@click.option(
    "--holdout",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.1,
    show_default=True,
    help="Fraction of rows held out (by a hash of --holdout-key or of the row position).",
)
@click.option(
    "--holdout-key", default=None, metavar="COL", help="Column whose hash picks the holdout."
)
@click.option("--early-stopping", is_flag=True, help="Stop when the holdout score stops improving.")
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Epochs without improvement before --early-stopping stops.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Save a checkpoint in the store every N partitions.",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of --name.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the partition order, the row shuffles and the estimator.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel SGD over this many engine workers (parameters averaged per epoch).",
)
@click.option("--name", default=None, help="Model name in the store [default: TARGET-MODEL].")
@click.option(
    "--store",
    default=None,
    help="Model store folder or URL [default: $SKFLEET_STORE or ./skfleet-models].",
)
@click.option("--no-report", is_flag=True, help="Skip the HTML report.")
@format_option
@engine_option("local")
@json_option
def train_stream(
    data,
    target,
    model,
    params,
    keys,
    exclude,
    hash_columns,
    hash_features,
    epochs,
    partition_rows,
    batch_rows,
    holdout,
    holdout_key,
    early_stopping,
    patience,
    checkpoint_every,
    resume,
    seed,
    workers,
    name,
    store,
    no_report,
    in_format,
    engine,
    as_json,
):
    """Train MODEL out of core on DATA with partial_fit, in shuffled passes, and store it."""
    from skfleet.presets import parse_params
    from skfleet.train.core import default_name
    from skfleet.train.stream import train_stream as run

    encoder = {}
    if hash_columns:
        encoder["hash"] = tuple(hash_columns)
    if hash_features is not None:
        encoder["hash_features"] = hash_features
    name = name or default_name(target or "stream", model)
    result = run(
        model,
        data,
        target,
        name=name,
        store=store,
        engine=engine,
        progress=RichProgress(enabled=not as_json),
        report=not no_report,
        source_options={"format": in_format} if in_format else None,
        params=parse_params(params),
        keys=keys,
        exclude=exclude,
        encoder=encoder,
        epochs=epochs,
        partition_rows=partition_rows,
        batch_rows=batch_rows,
        holdout=holdout,
        holdout_key=holdout_key,
        early_stopping=early_stopping,
        patience=patience,
        checkpoint_every=checkpoint_every,
        resume=resume,
        seed=seed,
        workers=workers,
    )
    if as_json:
        emit_json(result.to_dict())
        return
    summary = result.to_dict()
    epochs_line = f"{summary['epochs']} epoch" + ("s" if summary["epochs"] != 1 else "")
    if summary["stopped_early"]:
        epochs_line += " (stopped early)"
    click.echo(
        f"stored {result.name}@{result.version}: {_metric_line(summary['metrics'])} on "
        f"{summary['holdout_rows']:,} holdout rows; {summary['rows']:,} training rows, "
        f"{epochs_line} in {result.seconds:.1f}s" + (" (resumed)" if summary["resumed"] else "")
    )
    if result.report_path:
        click.echo(f"report: {result.report_path}")
