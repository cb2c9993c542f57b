"""The checks of a streamed training run, each failing with one line naming the culprit: the
estimator against the task and ``--workers``, the columns against the source's schema, the
profiling pass's findings (no rows, one class, a constant target), and a checkpoint's settings
against the resumed run's.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from skfleet.data.base import Source
from skfleet.errors import DataError, UsageError
from skfleet.train.dataset import check_named_columns
from skfleet.train.stream.config import StreamConfig
from skfleet.train.stream.estimators import needs_target
from skfleet.train.stream.profile import StreamProfile


def check_task(config: StreamConfig, estimator: Any, task: str) -> None:
    label = type(estimator).__name__
    if needs_target(task) and config.target is None:
        raise UsageError(f"--target is required: {label} learns to predict a column")
    if not needs_target(task) and config.target is not None:
        raise UsageError(
            f"--target {config.target!r}: {label} learns without a target ({task}); "
            "drop --target (or --exclude the column)"
        )
    if config.workers > 1 and not hasattr(estimator, "coef_") and not averageable(estimator):
        raise UsageError(
            f"--workers {config.workers}: data-parallel training averages linear models "
            f"(SGDClassifier, SGDRegressor, Perceptron), not {label}"
        )


def averageable(estimator: Any) -> bool:
    from sklearn.linear_model._stochastic_gradient import BaseSGD

    return isinstance(estimator, BaseSGD)


def read_columns(src: Source, config: StreamConfig) -> tuple[list[str], pa.DataType | None]:
    """The columns to read (features, target, holdout key) and the target's Arrow type."""
    schema = src.schema()
    names = schema.names
    named = [("target column", config.target)] if config.target else []
    named += [("--key column", c) for c in config.keys]
    named += [("--exclude column", c) for c in config.exclude]
    if config.holdout_key:
        named.append(("--holdout-key column", config.holdout_key))
    check_named_columns(named, names, src.display_name)
    dropped = set(config.keys) | set(config.exclude)
    wanted = [c for c in names if c not in dropped or c == config.holdout_key]
    label_type = None
    if config.target:
        label_type = schema.field(config.target).type
        if pa.types.is_dictionary(label_type):
            label_type = label_type.value_type
    if len([c for c in wanted if c not in (config.target, config.holdout_key)]) == 0:
        raise UsageError(f"no feature columns are left in {src.display_name} after --key/--exclude")
    return wanted, label_type


def check_profile(profile: StreamProfile, config: StreamConfig, task: str, src: Source) -> None:
    where = src.display_name
    total = profile.total_rows
    if total == 0:
        if config.target and profile.target.dropped:
            raise DataError(
                f"target column {config.target!r} has no values in {where} "
                f"({profile.target.dropped} rows, all null or NaN)"
            )
        raise DataError(f"{where} has no rows to train on")
    dropped = profile.target.dropped
    if dropped and config.missing_target == "error":
        raise DataError(
            f"target column {config.target!r} is missing in {dropped} of {total + dropped} rows "
            f"of {where}"
        )
    if profile.holdout_rows >= total:
        raise DataError(
            f"every row of {where} fell into the holdout (--holdout {config.holdout}); "
            "lower --holdout"
        )
    if task == "classification":
        if profile.target.too_many_labels:
            raise DataError(
                f"target column {config.target!r} has more than 10000 distinct values in one "
                "partition: a classifier needs classes (use a regressor such as sgd-linear)"
            )
        classes = profile.classes()
        if len(classes) < 2:
            raise DataError(
                f"target column {config.target!r} has a single class ({classes[0]!r}); "
                "a classifier needs at least two"
            )
        if any(isinstance(c, float) and not float(c).is_integer() for c in classes):
            raise DataError(
                f"target column {config.target!r} holds continuous values; a classifier needs "
                "classes (use a regressor such as sgd-linear)"
            )
    elif task == "regression" and profile.target.moments.m2 == 0:
        raise DataError(
            f"target column {config.target!r} is constant ({profile.target.moments.mean!r} in "
            "every row): there is nothing to learn"
        )


def run_fingerprint(src, partitions, config: StreamConfig, estimator) -> dict[str, Any]:
    """What must not change between a checkpoint and a resumed run."""
    from skfleet.store.metadata import describe_estimator, to_json_safe

    return to_json_safe(
        {
            "source": src.display_name,
            "partitions": [p.id for p in partitions],
            "target": config.target,
            "keys": list(config.keys),
            "exclude": list(config.exclude),
            "encoder": dict(config.encoder),
            "estimator": describe_estimator(estimator),
            "holdout": config.holdout,
            "holdout_key": config.holdout_key,
            "seed": config.seed,
            "batch_rows": config.batch_rows,
            "progressive": config.progressive,
            "workers": config.workers,
        }
    )


_FINGERPRINT_FLAGS = {
    "source": "source table",
    "partitions": "partition plan (--partition-rows, or the table's files)",
    "estimator": "--model or --param",
}


def check_fingerprint(saved: dict, current: dict, name: str) -> None:
    for key, value in current.items():
        if saved.get(key) != value:
            what = _FINGERPRINT_FLAGS.get(key, key.replace("_", "-"))
            raise UsageError(
                f"--resume: the checkpoint of {name!r} was made with another {what}; "
                "run with the same settings, or without --resume to start over"
            )
