"""From a source to what a fit needs: the feature table, the target array, the keys.

Everything a user can get wrong about the table is checked here, before any model is fitted: a
missing target, key, segment or excluded column; a target that is empty, constant, has a single
class or the wrong kind of values for the estimator. Rows whose target is null or NaN are dropped
and counted (or refused with ``missing_target="error"``).

>>> import pyarrow as pa
>>> table = pa.table({"id": [1, 2, 3, 4], "x": [0.5, 1.5, 2.5, 3.5], "y": ["a", "b", None, "a"]})
>>> data = load_training_data(table, TrainConfig(target="y", keys=("id",)), "classification")
>>> data.features.column_names, data.y.tolist(), data.dropped_missing_target
(['x'], ['a', 'b', 'a'], 1)
>>> str(data.label_type), data.keys.column_names
('string', ['id'])
>>> load_training_data(table, TrainConfig(target="z"), "classification")
Traceback (most recent call last):
...
skfleet.errors.MissingColumnError: target column 'z' is missing from the in-memory table (columns: id, x, y)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.data.base import Source
from skfleet.errors import DataError, MissingColumnError, UsageError
from skfleet.train.config import TrainConfig
from skfleet.util.redact import redact_url

IN_MEMORY = "the in-memory table"


@dataclass
class TrainingData:
    """The rows to train on, split by role."""

    #: Feature columns (and the segment column, if any), in the source's order.
    features: pa.Table
    #: Target values as numpy (object dtype for strings).
    y: np.ndarray
    #: The target column as Arrow (same rows as ``y``), for outputs that keep its type.
    target: pa.ChunkedArray
    #: Key columns (same rows), possibly with no columns.
    keys: pa.Table
    label_type: pa.DataType
    dropped_missing_target: int
    source_name: str
    #: Sample weights (float64, same rows) from ``config.weight``, or None.
    weight: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.features.num_rows


def as_table(source: Any) -> tuple[Any, str]:
    """(a pyarrow Table or an open Source, its display name) for what ``train`` was given."""
    if isinstance(source, pa.Table):
        return source, IN_MEMORY
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source]), IN_MEMORY
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False), IN_MEMORY
    if isinstance(source, Source):
        return source, source.display_name
    if isinstance(source, str):
        from skfleet.data import open_source

        opened = open_source(source)
        return opened, opened.display_name
    raise UsageError(
        f"cannot train on a {type(source).__name__}: pass a data URL, a Source, "
        "a pyarrow Table or a pandas DataFrame"
    )


def load_training_data(
    source: Any, config: TrainConfig, task: str, source_name: str | None = None
) -> TrainingData:
    """Read the needed columns of ``source`` and check them for a ``task`` estimator.

    A source opened here from a URL is closed here (a PostgreSQL source holds a snapshot).
    ``source_name`` says where an in-memory table came from, for ``model.json`` (redacted like
    any URL; messages about the data name the table as it was given).
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    table_or_source, name = as_table(source)
    opened_here = isinstance(source, str)
    try:
        data = _load(table_or_source, name, config, task)
    finally:
        if opened_here:
            table_or_source.close()
    if source_name is not None:
        data.source_name = redact_url(str(source_name))
    return data


def _load(table_or_source: Any, name: str, config: TrainConfig, task: str) -> TrainingData:
    schema = (
        table_or_source.schema
        if isinstance(table_or_source, pa.Table)
        else (table_or_source.schema())
    )
    columns = list(schema.names)
    _check_columns(config, columns, name)
    feature_names = [c for c in columns if c not in config.roles or c == config.group_by]
    if not [c for c in feature_names if c != config.group_by]:
        raise UsageError(
            f"no feature columns left in {name} once target, keys and excluded are set aside"
        )
    kept = set(feature_names) | {config.target, *config.keys}  # once, not once per column
    if config.weight:
        kept.add(config.weight)
    wanted = [c for c in columns if c in kept]
    if isinstance(table_or_source, pa.Table):
        table = table_or_source.select(wanted)
    else:
        table = table_or_source.read_all(wanted)
    target = table.column(config.target)
    if pa.types.is_dictionary(target.type):
        target = target.cast(target.type.value_type)
    missing = _missing_mask(target)
    dropped = int(missing.sum())
    if dropped == table.num_rows:
        raise DataError(
            f"target column {config.target!r} has no values in {name} "
            f"({table.num_rows} rows, all null or NaN)"
        )
    if dropped and config.missing_target == "error":
        raise DataError(
            f"target column {config.target!r} is missing in {dropped} of {table.num_rows} rows "
            f"of {name}"
        )
    if dropped:
        keep = pa.array(~missing)
        table = table.filter(keep)
        target = target.filter(keep)
    if task == "regression" and pa.types.is_decimal(target.type):
        target = target.cast(pa.float64())
    y = _to_numpy(target)
    _check_target(y, target.type, config.target, task)
    weight = None
    if config.weight:
        from skfleet.train.weights import check_weight

        # Checked on the rows that are trained on: a row dropped for its target has no say.
        weight = check_weight(table.column(config.weight), config.weight, name)
    return TrainingData(
        features=table.select(feature_names),
        y=y,
        target=target,
        keys=table.select(list(config.keys)),
        label_type=target.type,
        dropped_missing_target=dropped,
        source_name=name,
        weight=weight,
    )


def _check_columns(config: TrainConfig, columns: list[str], name: str) -> None:
    named = [("target column", config.target)]
    named += [("--key column", c) for c in config.keys]
    named += [("--exclude column", c) for c in config.exclude]
    if config.group_by:
        named.append(("--group-by column", config.group_by))
    if config.weight:
        named.append(("--weight column", config.weight))
    check_named_columns(named, columns, name)


def check_named_columns(named: list[tuple[str, str]], columns: list[str], name: str) -> None:
    """Every ``(what, column)`` a run names (``("--key column", "id")``) is among the
    ``columns`` of the table ``name``; the first that is not is refused, with the columns there
    are. Streaming training checks its columns with this too.

    >>> check_named_columns([("target column", "y")], ["x"], "t.csv")
    Traceback (most recent call last):
    ...
    skfleet.errors.MissingColumnError: target column 'y' is missing from t.csv (columns: x)
    """
    available = set(columns)
    listing = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    for what, column in named:
        if column not in available:
            raise MissingColumnError(
                f"{what} {column!r} is missing from {name} (columns: {listing})"
            )


def check_numeric_target(column: str, arrow_type: pa.DataType) -> None:
    """A regressor's target is numbers (booleans and decimals count); else one line saying so.

    >>> check_numeric_target("y", pa.decimal128(10, 2))
    >>> check_numeric_target("y", pa.string())
    Traceback (most recent call last):
    ...
    skfleet.errors.DataError: target column 'y' is string, not numeric: a regressor needs numbers (use a classifier for labels)
    """
    if not (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
        or pa.types.is_boolean(arrow_type)
    ):
        raise DataError(
            f"target column {column!r} is {arrow_type}, not numeric: a regressor needs numbers "
            "(use a classifier for labels)"
        )


def _missing_mask(target: pa.ChunkedArray) -> np.ndarray:
    missing = (
        pc.is_null(target, nan_is_null=True)
        if pa.types.is_floating(target.type)
        else (pc.is_null(target))
    )
    return np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)


def _to_numpy(target: pa.ChunkedArray) -> np.ndarray:
    values = target.to_numpy(zero_copy_only=False)
    if values.dtype.kind in "OUS":
        values = np.asarray(values, dtype=object)
    return values


def _check_target(y: np.ndarray, arrow_type: pa.DataType, column: str, task: str) -> None:
    from sklearn.utils.multiclass import type_of_target

    distinct = np.unique(y)
    if task == "classification":
        if len(distinct) < 2:
            raise DataError(
                f"target column {column!r} has a single class ({_show(distinct[0])}); "
                "a classifier needs at least two"
            )
        if type_of_target(y) == "continuous":
            raise DataError(
                f"target column {column!r} holds continuous values ({arrow_type}); a classifier "
                "needs classes: use a regressor (e.g. --model hgb-regressor) or a column of labels"
            )
    else:
        check_numeric_target(column, arrow_type)
        # Checked here: scikit-learn would blame "Input y" after the folds were already planned.
        infinite = int(np.isinf(y).sum()) if y.dtype.kind == "f" else 0
        if infinite:
            raise DataError(
                f"target column {column!r} holds {infinite} infinite value(s): a regressor needs "
                "finite numbers (drop or clip them)"
            )
        if len(distinct) < 2:
            raise DataError(
                f"target column {column!r} is constant ({_show(distinct[0])} in every row): "
                "there is nothing to learn"
            )


def _show(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)
