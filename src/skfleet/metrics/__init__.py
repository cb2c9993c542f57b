"""Evaluation metrics as plain, JSON-ready dicts — one-shot and mergeable.

One-shot functions score arrays held in memory (out-of-fold predictions, a holdout set):

- :func:`classification_metrics` — accuracy, ROC AUC, log loss, Brier, confusion matrix, n
- :func:`regression_metrics` — R2, RMSE, MAE, n

Accumulators score a whole dataset partition by partition on workers: each worker ``update`` s its
own accumulator, the client ``merge`` s them and calls ``result()``, which returns the same keys:

- :class:`ClassificationAccumulator` — exact except ROC AUC (fixed-bin histogram, see its docstring)
- :class:`RegressionAccumulator` — exact (sums, and a stable merge of the target's variance)

Undefined metrics (AUC with one class present, R2 of a constant target) are ``None`` and the
reason is in ``notes``: a report shows why instead of crashing at the end of a long run.

>>> import json
>>> m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
>>> json.dumps(m)
'{"r2": 0.5, "rmse": 0.5773502691896257, "mae": 0.3333333333333333, "n": 3, "notes": []}'
"""

from __future__ import annotations

from skfleet.metrics.classification import ClassificationAccumulator, classification_metrics
from skfleet.metrics.regression import RegressionAccumulator, regression_metrics

__all__ = [
    "ClassificationAccumulator",
    "RegressionAccumulator",
    "classification_metrics",
    "regression_metrics",
]
