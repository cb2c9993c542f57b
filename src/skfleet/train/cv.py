"""K-fold cross-validation that keeps every out-of-fold prediction.

Each fold is one task: clone the whole model (encoder included, so the encoder learns its levels,
fill values and scales from the training rows of that fold only), fit it on the fold's training
rows, predict the held-out rows. The tasks run through joblib on the engine's backend; with Dask the
table goes to the workers once per run (joblib scatters it) and each task carries only its row
indices.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> X = pd.DataFrame({"x": np.arange(40.0)})
>>> y = np.array([0] * 20 + [1] * 20)
>>> splits = make_splits("classification", CVConfig(folds=4), y)
>>> result = cross_validate(LogisticRegression(), X, y, splits, "classification", np.array([0, 1]))
>>> result.overall["accuracy"], len(result.folds), sorted(set(result.fold.tolist()))
(1.0, 4, [0, 1, 2, 3])
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.parallel import delayed

from skfleet.errors import DataError
from skfleet.metrics import classification_metrics, regression_metrics
from skfleet.train.config import CVConfig
from skfleet.train.parallel import CountingParallel
from skfleet.train.weights import fit_params
from skfleet.util.blocks import take_rows

Split = tuple[np.ndarray, np.ndarray]


class CompactSplits:
    """A scikit-learn splitter whose row indices are int32 when the row count allows.

    Index arrays are what every fit task carries to a worker: at 200k rows a fold's indices are
    1.6 MB as int64. Wrapping keeps the object itself small (a search pickles its splitter into
    every task) while halving what the indices weigh.

    >>> splits = list(CompactSplits(KFold(2)).split(np.zeros((4, 1))))
    >>> [train.dtype.name for train, _ in splits], splits[0][1].tolist()
    (['int32', 'int32'], [0, 1])
    """

    def __init__(self, splitter: Any):
        self.splitter = splitter

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.splitter.get_n_splits(X, y, groups)

    def split(self, X, y=None, groups=None):
        n = len(y) if y is not None else X.shape[0]
        dtype = np.int32 if n < 2**31 else np.int64
        for train, test in self.splitter.split(X, y, groups):
            yield train.astype(dtype, copy=False), test.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"CompactSplits({self.splitter!r})"


class ReplaySplits:
    """A splitter that replays folds computed once, without carrying them when pickled.

    scikit-learn's searches pickle themselves, splitter included, into every fit task, so a
    splitter holding the index arrays would ship them with each fit. This one holds a token; the
    arrays stay in this process (registered by :meth:`holding`) and reach the workers as task
    arguments — the very arrays the engine already holds, so they are not sent again. Only the
    client calls ``split``.

    >>> folds = [(np.array([1, 2]), np.array([0])), (np.array([0]), np.array([1, 2]))]
    >>> with ReplaySplits.holding(folds) as splitter:
    ...     splitter.get_n_splits(), [test.tolist() for _, test in splitter.split(None)]
    (2, [[0], [1, 2]])
    """

    _folds: ClassVar[dict[str, list[Split]]] = {}

    def __init__(self, token: str):
        self.token = token

    @classmethod
    @contextlib.contextmanager
    def holding(cls, folds: list[Split]) -> Iterator[ReplaySplits]:
        token = uuid.uuid4().hex
        cls._folds[token] = list(folds)
        try:
            yield cls(token)
        finally:
            del cls._folds[token]

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return len(self._folds[self.token])

    def split(self, X, y=None, groups=None):
        yield from self._folds[self.token]

    def __repr__(self) -> str:
        return f"ReplaySplits({self.token[:8]})"


def make_splitter(task: str, cv: CVConfig) -> CompactSplits:
    """The splitter for ``cv``: stratified for classifiers, int32 indices."""
    random_state = cv.random_state if cv.shuffle else None
    cls = StratifiedKFold if task == "classification" else KFold
    return CompactSplits(cls(n_splits=cv.folds, shuffle=cv.shuffle, random_state=random_state))


def make_splits(task: str, cv: CVConfig, y: np.ndarray) -> list[Split]:
    """The (train, test) row indices of every fold, computed once on the client."""
    n = len(y)
    if n < cv.folds:
        raise DataError(f"--cv {cv.folds} needs at least {cv.folds} rows with a target, got {n}")
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.max() < cv.folds:
            raise DataError(
                f"--cv {cv.folds}: every class of the target has fewer than {cv.folds} rows "
                f"(largest: {counts.max()}); use fewer folds"
            )
    return list(make_splitter(task, cv).split(np.zeros((n, 1)), y))


def align_proba(proba: np.ndarray, model_classes: Any, classes: np.ndarray) -> np.ndarray:
    """Columns of ``proba`` in the order of ``classes`` (a class the model never saw gets 0).

    >>> align_proba(np.array([[0.3, 0.7]]), ["b", "c"], np.array(["a", "b", "c"], dtype=object))
    array([[0. , 0.3, 0.7]])
    """
    model_classes = list(np.asarray(model_classes).tolist())
    wanted = list(classes.tolist())
    proba = np.asarray(proba, dtype=np.float64)
    # Models fed float32 features may return float32 probabilities whose rows miss 1 by ~1e-7;
    # rescaling in float64 keeps the log loss and Brier checks of scikit-learn quiet and exact.
    totals = proba.sum(axis=1, keepdims=True)
    proba = np.divide(proba, totals, out=np.zeros_like(proba), where=totals > 0)
    if model_classes == wanted:
        return proba
    out = np.zeros((proba.shape[0], len(wanted)), dtype=np.float64)
    where = {c: i for i, c in enumerate(wanted)}
    for j, c in enumerate(model_classes):
        out[:, where[c]] = proba[:, j]
    return out


def fit_fold(
    estimator: Any,
    X: Any,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    classes: Any,
    weight: np.ndarray | None = None,
    weight_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None, float, np.ndarray | None]:
    """Worker side: fit a clone on ``train`` rows (with their sample weights, passed to ``fit``
    as ``weight_key``), predict ``test`` rows.

    Returns (predictions, class probabilities in ``classes`` order or None, fit seconds, and for
    a segmented model the predictions of its global model, fitted in the same fold: what the
    report compares each segment with, at no extra fit).
    """
    started = time.perf_counter()
    params = fit_params(weight_key, weight, train)
    model = clone(estimator).fit(take_rows(X, train), y[train], **params)
    fit_seconds = time.perf_counter() - started
    X_test = take_rows(X, test)
    prediction = np.asarray(model.predict(X_test))
    proba = None
    if classes is not None and hasattr(model, "predict_proba"):
        proba = align_proba(np.asarray(model.predict_proba(X_test)), model.classes_, classes)
    fallback = getattr(model, "fallback_", None)
    global_prediction = np.asarray(fallback.predict(X_test)) if fallback is not None else None
    return prediction, proba, fit_seconds, global_prediction


def fit_all_rows(
    estimator: Any,
    X: Any,
    y: np.ndarray,
    weight: np.ndarray | None = None,
    weight_key: str | None = None,
) -> Any:
    """Worker side: the final model, a clone fitted on every row."""
    return clone(estimator).fit(X, y, **fit_params(weight_key, weight))


@dataclass
class CVResult:
    """Out-of-fold predictions (in row order), metrics per fold and overall, and the model fitted
    on all rows when it was asked for alongside the folds; for a segmented model, the out-of-fold
    predictions of its global model too."""

    prediction: np.ndarray
    proba: np.ndarray | None
    fold: np.ndarray
    folds: list[dict[str, Any]]
    overall: dict[str, Any]
    final_model: Any = None
    global_prediction: np.ndarray | None = None


def score(
    task: str, y_true: np.ndarray, prediction: np.ndarray, proba, classes, weight=None
) -> dict[str, Any]:
    if task == "classification":
        return classification_metrics(y_true, prediction, proba, list(classes.tolist()), weight)
    return regression_metrics(y_true, prediction, weight)


def cross_validate(
    estimator: Any,
    X: Any,
    y: np.ndarray,
    splits: list[Split],
    task: str,
    classes: np.ndarray | None,
    n_jobs: int | None = None,
    pre_dispatch: str = "2*n_jobs",
    final: bool = False,
    weight: np.ndarray | None = None,
    weight_key: str | None = None,
) -> CVResult:
    """Fit ``estimator`` once per split (in parallel through joblib) and score the held-out rows.

    ``final=True`` also fits it on all rows in the same parallel call: one more task among the
    folds rather than a fit of its own after them (with 3 folds on 2 workers, 2 rounds instead of
    3), and on a worker, single-threaded like the folds. With ``weight``, every fit gets its
    rows' weights as the fit parameter ``weight_key`` and the metrics are weighted.
    """
    classes = classes if task == "classification" else None
    # The weights go whole to every task (the engine holds them once, like X), sliced there.
    jobs = [
        delayed(fit_fold)(estimator, X, y, train, test, classes, weight, weight_key)
        for train, test in splits
    ]
    if final:
        # First: the longest task starts first, so it does not run alone at the end.
        jobs.insert(0, delayed(fit_all_rows)(estimator, X, y, weight, weight_key))
    outputs = CountingParallel(n_jobs=n_jobs, pre_dispatch=pre_dispatch)(jobs)
    final_model = outputs.pop(0) if final else None
    result = collect_folds(outputs, y, splits, task, classes, weight)
    result.final_model = final_model
    return result


def collect_folds(
    outputs: list,
    y: np.ndarray,
    splits: list[Split],
    task: str,
    classes: np.ndarray | None,
    weight: np.ndarray | None = None,
) -> CVResult:
    """The :class:`CVResult` of the :func:`fit_fold` ``outputs`` of ``splits`` (in that order):
    out-of-fold predictions in row order, metrics per fold and overall (weighted by ``weight``
    if given)."""
    classes = classes if task == "classification" else None
    n = len(y)
    fold = np.full(n, -1, dtype=np.int32)
    prediction = global_prediction = None
    has_proba = classes is not None and all(out[1] is not None for out in outputs)
    proba = np.zeros((n, len(classes)), dtype=np.float64) if has_proba else None
    folds = []
    for i, ((_, test), output) in enumerate(zip(splits, outputs, strict=True)):
        pred, fold_proba, seconds, global_pred = output
        if prediction is None:
            prediction = np.empty(n, dtype=y.dtype if task == "classification" else np.float64)
        prediction[test] = pred
        if global_pred is not None:
            if global_prediction is None:
                global_prediction = np.empty(n, dtype=prediction.dtype)
            global_prediction[test] = global_pred
        fold[test] = i
        if proba is not None:
            proba[test] = fold_proba
        fold_weight = None if weight is None else weight[test]
        metrics = score(
            task, y[test], pred, fold_proba if has_proba else None, classes, fold_weight
        )
        folds.append(
            {"fold": i, "rows": int(len(test)), "fit_seconds": round(seconds, 3), **metrics}
        )
    overall = score(task, y, prediction, proba, classes, weight)
    return CVResult(
        prediction=prediction,
        proba=proba,
        fold=fold,
        folds=folds,
        overall=overall,
        global_prediction=global_prediction,
    )
