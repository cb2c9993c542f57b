"""What a training run leaves behind: ``model.json`` fields, ``oof.parquet`` and the report.

Kept apart from the orchestration so that :mod:`skfleet.train.api` reads as the steps of a run.

>>> import numpy as np, pyarrow as pa
>>> oof = oof_table(pa.table({"id": [7, 8]}), pa.chunked_array([["a", "b"]]), np.array([0, 1]),
...                 np.array(["a", "a"], dtype=object), np.array([[0.9, 0.1], [0.6, 0.4]]),
...                 np.array(["a", "b"], dtype=object), pa.string())
>>> oof.column_names
['id', 'fold', 'y_true', 'prediction', 'proba_a', 'proba_b']
>>> oof.column("prediction").to_pylist(), str(oof.schema.field("prediction").type)
(['a', 'a'], 'string')
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skfleet.errors import UsageError
from skfleet.predict.scoring import proba_column

#: Columns the out-of-fold table adds after the key columns.
OOF_COLUMNS = ("fold", "y_true", "prediction")
PROBA_PREFIX = "proba_"


def plain_list(values: Any) -> list:
    """Labels as plain Python values (numpy scalars unwrapped)."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


def oof_table(
    keys: pa.Table,
    target: pa.ChunkedArray,
    fold: np.ndarray,
    prediction: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray | None,
    label_type: pa.DataType,
) -> pa.Table:
    """Key columns, ``fold``, ``y_true``, ``prediction`` and ``proba_<class>`` per class.

    Classifier predictions keep the target's Arrow type; regressor predictions are float64.
    """
    columns = {name: keys.column(name) for name in keys.column_names}
    columns["fold"] = pa.array(fold, type=pa.int32())
    columns["y_true"] = target
    if classes is not None:
        predicted = pa.array(prediction.tolist() if prediction.dtype == object else prediction)
        columns["prediction"] = predicted.cast(label_type)
    else:
        columns["prediction"] = pa.array(prediction, type=pa.float64())
    if proba is not None and classes is not None:
        for j, label in enumerate(plain_list(classes)):
            # Named as predict names its columns, so out-of-fold and scored tables line up.
            columns[proba_column(label)] = pa.array(proba[:, j], type=pa.float64())
    return pa.table(columns)


def cv_oof_table(data: Any, cv_result: Any, classes: np.ndarray | None) -> pa.Table:
    """:func:`oof_table` of a run's :class:`~skfleet.train.dataset.TrainingData` and
    :class:`~skfleet.train.cv.CVResult`."""
    return oof_table(
        data.keys,
        data.target,
        cv_result.fold,
        cv_result.prediction,
        cv_result.proba,
        classes,
        data.label_type,
    )


def check_keys(config: Any) -> None:
    """Refuse a ``--key`` column named like a column the out-of-fold table adds.

    >>> from skfleet.train.config import TrainConfig
    >>> check_keys(TrainConfig(target="y", keys=("fold",)))
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: --key 'fold' clashes with an output column name (fold, y_true, prediction, proba_<class>); rename it
    """
    for key in config.keys:
        if key in OOF_COLUMNS or key.startswith(PROBA_PREFIX):
            raise UsageError(
                f"--key {key!r} clashes with an output column name ({', '.join(OOF_COLUMNS)}, "
                f"{PROBA_PREFIX}<class>); rename it"
            )


def stored_file_path(model_store: Any, ref: Any, file_name: str) -> str:
    """Where a stored version's file is: its local path, or its URL in a remote store."""
    return model_store.local_path(ref, file_name) or f"{ref.uri}/{file_name}"


def stored_label_type(task: str, label_type: pa.DataType | None) -> str | None:
    """The ``label_type`` of ``model.json``: the type ``predict`` writes predictions in.

    Class labels keep the target's type; a regressor predicts real numbers whatever the target's
    type was (an int64 price gives float64 predictions, never truncated ones).

    >>> stored_label_type("classification", pa.int64()), stored_label_type("regression", pa.int64())
    ('int64', 'double')
    """
    if task == "regression":
        return str(pa.float64())
    return str(label_type) if label_type is not None else None


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def main_metric(task: str, overall: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The headline metric: ROC AUC (else accuracy) for classifiers, R2 for regressors.

    >>> main_metric("classification", {"roc_auc": None, "accuracy": 0.9})
    {'name': 'accuracy', 'value': 0.9}
    """
    if not overall:
        return None
    names = ("roc_auc", "accuracy") if task == "classification" else ("r2", "rmse")
    for name in names:
        if overall.get(name) is not None:
            return {"name": name, "value": overall[name]}
    return None


def feature_to_input(contract: Any) -> dict[str, str]:
    """Encoded feature name -> the input column it came from, per the feature contract."""
    return {
        feature: spec.name
        for spec in contract.columns
        if spec.kind != "excluded"
        for feature in spec.output_names()
    }


def report_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance lines the report shows (a subset of ``model.json``)."""
    keys = ("kind", "target", "key_columns", "input_columns", "source", "rows", "cv", "engine")
    shown = {k: metadata[k] for k in keys if metadata.get(k) not in (None, [], {})}
    estimator = metadata.get("estimator") or {}
    if estimator:
        shown["estimator"] = estimator.get("class")
        shown["params"] = estimator.get("params")
    segments = metadata.get("segments")
    if segments:
        # Rows and metrics per segment are the report's segment table.
        shown["segments"] = {k: v for k, v in segments.items() if k not in ("rows", "table")}
    if metadata.get("notes"):
        shown["notes"] = metadata["notes"]
    return shown


class StoredModelAccessors:
    """``name``, ``version`` and ``metrics`` of a finished run, for the results of ``train`` and
    ``train_stream`` (both hold ``ref``, the stored version, and ``metadata``, its model.json)."""

    ref: Any
    metadata: dict[str, Any]

    @property
    def name(self) -> str | None:
        return self.ref.name if self.ref is not None else None

    @property
    def version(self) -> int | None:
        return self.ref.version if self.ref is not None else None

    @property
    def metrics(self) -> dict[str, Any]:
        return self.metadata.get("metrics", {})


def open_model_store(name: str | None, store: Any) -> Any:
    """The store a training run saves ``name`` into, checked before any work (the name, and a
    local folder's writability); None when the model is not to be saved."""
    if name is None:
        return None
    from skfleet.store import ModelStore, validate_name

    validate_name(name)
    model_store = store if isinstance(store, ModelStore) else ModelStore(store)
    model_store.check_writable()
    return model_store
