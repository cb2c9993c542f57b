"""Scoring a streamed model batch by batch: mergeable metrics per task.

Supervised tasks use :mod:`skfleet.metrics` accumulators; clustering accumulates the inertia per
row and transforms the reconstruction error per value. :meth:`Scorer.headline` is the one number
early stopping watches (higher is better).

>>> import numpy as np
>>> from sklearn.linear_model import SGDRegressor
>>> X = np.arange(20, dtype=float).reshape(-1, 1) / 20
>>> est = SGDRegressor(random_state=0).partial_fit(X, 2 * X[:, 0])
>>> scorer = Scorer("regression")
>>> acc = scorer.new()
>>> scorer.update(acc, est, X, 2 * X[:, 0])
>>> sorted(scorer.result(acc))
['mae', 'n', 'notes', 'r2', 'rmse']
>>> curve_values("holdout", {"r2": 0.5, "n": 20, "notes": []})
{'holdout_r2': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from skfleet.metrics import ClassificationAccumulator, RegressionAccumulator


class MeanAccumulator:
    """A mean of per-row (or per-value) losses, mergeable like the metric accumulators.

    >>> a = MeanAccumulator("inertia"); a.update(6.0, 3)
    >>> a.merge(MeanAccumulator("inertia")).result()
    {'inertia': 2.0, 'n': 3, 'notes': []}
    """

    def __init__(self, name: str):
        self.name = name
        self.total = 0.0
        self.n = 0

    def update(self, total: float, n: int) -> None:
        self.total += float(total)
        self.n += int(n)

    def merge(self, other: MeanAccumulator) -> MeanAccumulator:
        self.total += other.total
        self.n += other.n
        return self

    def result(self) -> dict[str, Any]:
        if not self.n:
            return {self.name: None, "n": 0, "notes": ["no rows to score"]}
        return {self.name: self.total / self.n, "n": self.n, "notes": []}


class Scorer:
    """How to score a model of one task on a batch ``(X, y)``."""

    def __init__(self, task: str, classes: Sequence[Any] | None = None):
        self.task = task
        self.classes = None if classes is None else label_array(classes)

    def new(self) -> Any:
        if self.task == "classification":
            return ClassificationAccumulator(list(self.classes))
        if self.task == "regression":
            return RegressionAccumulator()
        if self.task == "clustering":
            return MeanAccumulator("inertia")
        return MeanAccumulator("reconstruction_mse")

    def predict(self, est: Any, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(prediction, proba or None)`` of a supervised model."""
        if self.task == "classification":
            if hasattr(est, "predict_proba"):
                proba = np.asarray(est.predict_proba(X), dtype=np.float64)
                # The estimator's classes_ are the profile's classes in the same (sorted) order.
                return self.classes[proba.argmax(axis=1)], proba
            return np.asarray(est.predict(X)), None
        return np.asarray(est.predict(X), dtype=np.float64), None

    def update(self, acc: Any, est: Any, X: Any, y: np.ndarray | None) -> None:
        """Score ``est`` on one batch into ``acc``."""
        n = X.shape[0]
        if n == 0:
            return
        if self.task in ("classification", "regression"):
            pred, proba = self.predict(est, X)
            if self.task == "classification":
                # With probabilities the accumulator takes the prediction as their argmax (the
                # same columns, in the same order) rather than looking the labels up again.
                acc.update(y, None if proba is not None else pred, proba)
            else:
                acc.update(y, pred)
        elif self.task == "clustering":
            # score() is minus the summed squared distance to the closest centre.
            acc.update(-float(est.score(X)), n)
        else:
            dense = X.toarray() if sp.issparse(X) else np.asarray(X)
            restored = est.inverse_transform(est.transform(dense))
            diff = dense - restored
            acc.update(float(np.einsum("ij,ij->", diff, diff)), n * dense.shape[1])

    def result(self, acc: Any) -> dict[str, Any]:
        return acc.result()

    def headline(self, result: Mapping[str, Any]) -> float | None:
        """The early-stopping score of a result (higher is better), or None if undefined."""
        if self.task == "classification":
            names, sign = ("roc_auc", "accuracy"), 1.0
        elif self.task == "regression":
            names, sign = ("r2",), 1.0
        elif self.task == "clustering":
            names, sign = ("inertia",), -1.0
        else:
            names, sign = ("reconstruction_mse",), -1.0
        for name in names:
            value = result.get(name)
            if isinstance(value, int | float) and math.isfinite(value):
                return sign * float(value)
        return None


def curve_values(prefix: str, result: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of ``result`` named ``<prefix>_<metric>`` (for the learning curve)."""
    out = {}
    for key, value in result.items():
        if key == "n" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[f"{prefix}_{key}"] = float(value)
    return out


def label_array(labels: Sequence[Any]) -> np.ndarray:
    """Labels as a numpy array: bool and int dtypes kept, strings as Python objects.

    >>> label_array(["a", "b"]).dtype, label_array([False, True]).dtype
    (dtype('O'), dtype('bool'))
    """
    array = np.asarray(list(labels))
    if array.dtype.kind in "US":
        array = array.astype(object)
    return array
