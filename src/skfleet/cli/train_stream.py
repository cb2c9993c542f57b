"""``skfleet train-stream DATA --target COL --model MODEL ...``: out-of-core training."""

from __future__ import annotations

import click

from skfleet.cli.options import (
    emit_json,
    exclude_option,
    file_format,
    int_option,
    key_option,
    metric_line,
    model_option,
    param_option,
    run_options,
)
from skfleet.train.stream.config import DEFAULT_BATCH_ROWS, DEFAULT_PARTITION_ROWS
from skfleet.util.progress import for_terminal

#: The metrics of the summary line, in this order.
_SHOWN_METRICS = ("roc_auc", "accuracy", "log_loss", "r2", "rmse", "inertia", "reconstruction_mse")


@click.command(name="train-stream")
@click.argument("data")
@click.option("--target", default=None, help="Column to predict (not for clustering/PCA).")
@model_option(
    "An estimator with partial_fit: a preset (sgd-logistic, sgd-linear, perceptron, "
    "multinomial-nb, bernoulli-nb, minibatch-kmeans, incremental-pca, mlp-classifier, "
    "mlp-regressor), a class name (SGDClassifier) or an import path."
)
@param_option
@key_option
@exclude_option
@click.option("--hash", "hash_columns", multiple=True, metavar="COL", help="Hash this column.")
@int_option("--hash-features", help="Buckets per hashed column.")
@int_option("--epochs", default=1, help="Passes over the data.")
@int_option(
    "--partition-rows",
    default=DEFAULT_PARTITION_ROWS,
    help="Rows per partition (one read, one shuffle).",
)
@int_option("--batch-rows", default=DEFAULT_BATCH_ROWS, help="Rows per partial_fit call.")
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
@int_option(
    "--patience", default=2, help="Epochs without improvement before --early-stopping stops."
)
@int_option(
    "--checkpoint-every", metavar="N", help="Save a checkpoint in the store every N partitions."
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of --name.")
@int_option(
    "--seed",
    minimum=0,
    default=0,
    help="Seeds the partition order, the row shuffles and the estimator.",
)
@int_option(
    "--workers",
    default=1,
    help="Data-parallel SGD over this many engine workers (parameters averaged per epoch).",
)
@run_options(no_report_help="Skip the HTML report.")
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
    from skfleet.train.api import default_name
    from skfleet.train.presets import parse_params
    from skfleet.train.stream.api import train_stream as run

    encoder = {}
    if hash_columns:
        encoder["hash"] = tuple(hash_columns)
    if hash_features is not None:
        encoder["hash_features"] = hash_features
    # An empty --name is a bad name, not "no name": the store refuses it by name.
    name = name if name is not None else default_name(target or "stream", model)
    result = run(
        model,
        data,
        target,
        name=name,
        store=store,
        engine=engine,
        progress=for_terminal(enabled=not as_json),
        report=not no_report,
        source_options=file_format(data, in_format),
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
    metrics = metric_line(summary["metrics"], _SHOWN_METRICS, "no holdout")
    click.echo(
        f"stored {result.name}@{result.version}: {metrics} on "
        f"{summary['holdout_rows']:,} holdout rows; {summary['rows']:,} training rows, "
        f"{epochs_line} in {result.seconds:.1f}s" + (" (resumed)" if summary["resumed"] else "")
    )
    if result.report_path:
        click.echo(f"report: {result.report_path}")
