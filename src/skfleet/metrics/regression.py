"""Regression metrics: one-shot with scikit-learn, and an exact mergeable accumulator.

Both return ``r2``, ``rmse``, ``mae``, ``n`` and ``notes``. R2 is ``None`` when the target is
constant (scikit-learn would report 0.0 or 1.0 by convention; a report should say "undefined").

>>> acc = RegressionAccumulator().update([1.0, 2.0], [1.0, 2.0])
>>> acc.merge(RegressionAccumulator().update([3.0], [4.0])).result() == regression_metrics(
...     [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

from skfleet.errors import DataError
from skfleet.metrics.labels import WEIGHTED_NOTE, ZERO_WEIGHT_NOTE, as_weights


def _as_float(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(array).all():
        raise DataError(f"{what} contains NaN or infinite values")
    return array


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_float(y_true, "regression target")
    p = _as_float(y_pred, "regression prediction")
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} rows but y_pred has {len(p)}")
    return t, p


def _empty(notes: list[str]) -> dict[str, Any]:
    notes.append("no rows to score")
    return {"r2": None, "rmse": None, "mae": None, "n": 0, "notes": notes}


_CONSTANT_NOTE = "r2 undefined: the target is constant"


def regression_metrics(y_true: Any, y_pred: Any, sample_weight: Any = None) -> dict[str, Any]:
    """Score regression predictions held in memory; every value is a plain Python object.
    With ``sample_weight``, R2, RMSE and MAE are scikit-learn's weighted ones (``n`` counts rows).

    >>> regression_metrics([2.0, 2.0], [1.0, 3.0])
    {'r2': None, 'rmse': 1.0, 'mae': 1.0, 'n': 2, 'notes': ['r2 undefined: the target is constant']}
    >>> regression_metrics([0.0, 2.0], [1.0, 4.0], sample_weight=[3, 1])["mae"]
    1.25
    """
    t, p = _pair(y_true, y_pred)
    w = as_weights(sample_weight, len(t))
    notes: list[str] = [WEIGHTED_NOTE] if w is not None else []
    if len(t) == 0:
        return _empty(notes)
    if w is not None and not w.any():
        notes.append(ZERO_WEIGHT_NOTE)
        return {"r2": None, "rmse": None, "mae": None, "n": len(t), "notes": notes}
    r2 = None
    if np.ptp(t if w is None else t[w > 0]) > 0:
        r2 = float(skm.r2_score(t, p, sample_weight=w))
    else:
        notes.append(_CONSTANT_NOTE)
    return {
        "r2": r2,
        # sqrt of the MSE rather than root_mean_squared_error: the latter is sklearn >= 1.4 only.
        "rmse": math.sqrt(skm.mean_squared_error(t, p, sample_weight=w)),
        "mae": float(skm.mean_absolute_error(t, p, sample_weight=w)),
        "n": len(t),
        "notes": notes,
    }


class RegressionAccumulator:
    """Mergeable, exact regression metrics for data scored partition by partition.

    Keeps the row count, sums of squared and absolute errors, and the target's mean and sum of
    squared deviations. Deviations are merged with Chan et al.'s pairwise update rather than from
    sum(y) and sum(y**2), which would cancel catastrophically for a target like a timestamp; so
    R2 agrees with scikit-learn's to rounding error however the rows were split.

    ``update(..., sample_weight=w)`` weighs each row (the sums, the mean and the deviations are
    weighted, so R2, RMSE and MAE are scikit-learn's weighted ones; ``n`` counts rows); an update
    without weights weighs its rows 1.

    >>> RegressionAccumulator().update([1.0, 3.0], [2.0, 2.0]).result()["rmse"]
    1.0
    >>> acc = RegressionAccumulator().update([0.0], [1.0], sample_weight=[3.0])
    >>> acc.merge(RegressionAccumulator().update([2.0], [4.0])).result()["mae"]
    1.25
    """

    def __init__(self):
        self.n_ = 0
        self.w_ = 0.0  # total weight (the row count, as a float, without weights)
        self.weighted_ = False
        self.sse_ = 0.0
        self.sae_ = 0.0
        self.mean_ = 0.0
        self.m2_ = 0.0
        # Track whether the target varies exactly: m2_ can be a rounding error above zero.
        self.min_ = math.inf
        self.max_ = -math.inf

    def update(self, y_true: Any, y_pred: Any, sample_weight: Any = None):
        """Add one batch; returns ``self``."""
        t, p = _pair(y_true, y_pred)
        w = as_weights(sample_weight, len(t))
        self.weighted_ = self.weighted_ or w is not None
        if len(t) == 0:
            return self
        other = RegressionAccumulator()
        errors = t - p
        other.n_ = len(t)
        if w is None:
            other.w_ = float(len(t))
            other.sse_ = float(errors @ errors)
            other.sae_ = float(np.abs(errors).sum())
            other.mean_ = float(t.mean())
            other.m2_ = float(((t - other.mean_) ** 2).sum())
            other.min_, other.max_ = float(t.min()), float(t.max())
        else:
            other.w_ = float(w.sum())
            other.sse_ = float(errors**2 @ w)
            other.sae_ = float(np.abs(errors) @ w)
            other.mean_ = float(t @ w / other.w_) if other.w_ else 0.0
            other.m2_ = float((t - other.mean_) ** 2 @ w)
            live = t[w > 0]  # a row of weight 0 does not make the target vary
            if len(live):
                other.min_, other.max_ = float(live.min()), float(live.max())
            if not other.w_:  # rows only: nothing of them enters the weighted sums
                self.n_ += other.n_
                return self
        return self.merge(other)

    def merge(self, other: RegressionAccumulator):
        """Fold ``other`` into this accumulator; returns ``self``."""
        self.weighted_ = self.weighted_ or other.weighted_
        if other.n_ == 0:
            return self
        self.n_ += other.n_
        if other.w_ == 0:
            return self
        w = self.w_ + other.w_
        delta = other.mean_ - self.mean_
        self.m2_ += other.m2_ + delta * delta * self.w_ * other.w_ / w
        self.mean_ += delta * other.w_ / w
        self.w_ = w
        self.sse_ += other.sse_
        self.sae_ += other.sae_
        self.min_ = min(self.min_, other.min_)
        self.max_ = max(self.max_, other.max_)
        return self

    def result(self) -> dict[str, Any]:
        """The metrics of everything seen so far, with the keys of :func:`regression_metrics`."""
        notes: list[str] = [WEIGHTED_NOTE] if self.weighted_ else []
        if self.n_ == 0:
            return _empty(notes)
        if self.w_ == 0:
            notes.append(ZERO_WEIGHT_NOTE)
            return {"r2": None, "rmse": None, "mae": None, "n": int(self.n_), "notes": notes}
        r2 = None
        if self.max_ > self.min_:
            r2 = 1.0 - self.sse_ / self.m2_
        else:
            notes.append(_CONSTANT_NOTE)
        return {
            "r2": r2,
            "rmse": math.sqrt(self.sse_ / self.w_),
            "mae": self.sae_ / self.w_,
            "n": int(self.n_),
            "notes": notes,
        }
