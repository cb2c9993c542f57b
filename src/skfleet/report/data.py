"""What a report is built from: :class:`ReportData`, one small bag of optional parts.

Each section of the report appears only when its part is given, so the same type serves a
cross-validated batch model (out-of-fold predictions, folds, search), a streamed model (learning
curve, holdout metrics) and a registered one (metadata only).

>>> data = ReportData(title="delays", task="regression", y_true=[1.0, 2.0], y_pred=[1.5, 2.0])
>>> data.y_true.dtype.kind, data.has_predictions
('f', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skfleet.metrics.labels import plain_classes

TASKS = ("classification", "regression", "clustering", "transform")


@dataclass
class ReportData:
    """Everything :func:`skfleet.report.build_report` can show; all but ``title`` optional.

    - ``y_true``, ``y_pred``, ``proba`` (n x len(classes), columns in ``classes`` order): the
      predictions to diagnose, typically out-of-fold; ``predictions_label`` says which.
    - ``metrics``: ``{"overall": {...}, "folds": [{...}, ...], "holdout": {...}}`` as in
      ``model.json`` (any part may be missing); computed from the predictions when ``None``.
    - ``feature_importance``: input column -> importance, with ``importance_method``
      (``"native"`` or ``"permutation"``).
    - ``search_results``: dicts with ``params``, ``mean_test_score``, ``std_test_score``,
      ``rank``; ``search_scoring`` names the score.
    - ``learning_curve``: one dict per epoch: ``epoch`` and numeric values named
      ``<set>_<metric>`` (e.g. ``progressive_log_loss``, ``holdout_log_loss``); one panel per metric.
    - ``segments``: one dict per segment of a segmented model (``segment``, ``train_rows``,
      ``model``, then metric columns, a ``<metric>_global`` column for the global model's
      out-of-fold value on the same rows).
    - ``drift``: a drift summary (mapping, list of dicts, or an object with ``to_dict()``).
    - ``metadata``: key -> value (estimator, params, rows, source, ...).

    Every string shown is passed through :func:`skfleet.util.redact.redact_text` and HTML-escaped.
    """

    title: str = "Model report"
    name: str | None = None
    version: str | int | None = None
    task: str = "classification"
    classes: Sequence[Any] | None = None
    y_true: Any = None
    y_pred: Any = None
    proba: Any = None
    predictions_label: str = "out-of-fold"
    metrics: Mapping[str, Any] | None = None
    feature_importance: Mapping[str, float] | None = None
    importance_method: str | None = None
    search_results: Sequence[Mapping[str, Any]] | None = None
    search_scoring: str | None = None
    learning_curve: Sequence[Mapping[str, Any]] | None = None
    segments: Sequence[Mapping[str, Any]] | None = None
    drift: Any = None
    metadata: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {self.task!r}")
        if self.y_true is not None:
            self.y_true = _column(self.y_true)
        if self.y_pred is not None:
            self.y_pred = _column(self.y_pred)
        if self.proba is not None:
            self.proba = np.asarray(self.proba, dtype=np.float64)
        if self.task == "classification" and self.classes is None and self.y_true is not None:
            self.classes = sorted(set(self.y_true.tolist()))
        if self.classes is not None:
            self.classes = plain_classes(self.classes)
        if (
            self.y_true is not None
            and self.y_pred is not None
            and len(self.y_true) != len(self.y_pred)
        ):
            raise ValueError(
                f"y_true has {len(self.y_true)} rows but y_pred has {len(self.y_pred)}"
            )
        if hasattr(self.drift, "to_dict"):
            self.drift = self.drift.to_dict()

    @property
    def has_predictions(self) -> bool:
        """True when there are rows to draw diagnostics from."""
        return (
            self.y_true is not None
            and len(self.y_true) > 0
            and (self.y_pred is not None or self.proba is not None)
        )


def _column(values: Any) -> np.ndarray:
    """A 1-d numpy array from a list, numpy array, pandas Series or pyarrow array."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        try:
            values = values.to_numpy(zero_copy_only=False)  # pyarrow
        except TypeError:
            values = values.to_numpy()  # pandas
    array = np.asarray(values)
    if array.dtype.kind in "US":
        # Fixed-width numpy strings would turn labels into numpy scalars; keep Python str.
        array = array.astype(object)
    return array.ravel()
