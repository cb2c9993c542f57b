"""One model per segment: :class:`SegmentRouter` sends each row to the model of its segment.

``skfleet train --group-by COL`` fits a copy of the estimator on the rows of each distinct value of
``COL`` (in parallel, on the engine) plus one *global* model on all rows. At prediction time a row
goes to its segment's model; a row whose segment was not seen in training (or was too small to get
its own model, or is null) goes to the global model instead, and :meth:`SegmentRouter.route_counts`
says how many did. Like every skfleet model it takes a table (``pyarrow.Table`` or DataFrame).

>>> import numpy as np, pandas as pd
>>> from sklearn.compose import ColumnTransformer
>>> from sklearn.linear_model import LinearRegression
>>> from sklearn.pipeline import make_pipeline
>>> pick_x = ColumnTransformer([("x", "passthrough", ["x"])])  # the model ignores "shop"
>>> table = pd.DataFrame({"shop": ["a", "a", "a", "b", "b", "b"], "x": [0.0, 1, 2, 0, 1, 2]})
>>> y = np.array([0.0, 1, 2, 0, 10, 20])  # slope 1 in shop a, 10 in shop b
>>> router = SegmentRouter(make_pipeline(pick_x, LinearRegression()), by="shop").fit(table, y)
>>> router.segments_
['a', 'b']
>>> new = pd.DataFrame({"shop": ["a", "b", "zz"], "x": [3.0, 3.0, 3.0]})
>>> router.predict(new).round(6).tolist()[:2]
[3.0, 30.0]
>>> router.route_counts(new)
{'segments': {'a': 1, 'b': 1}, 'fallback': 1}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils import get_tags
from sklearn.utils.parallel import delayed
from sklearn.utils.validation import check_is_fitted

from skfleet.errors import MissingColumnError, UsageError
from skfleet.train.parallel import CountingParallel
from skfleet.util.blocks import call_in_blocks, take_rows

#: The key :meth:`SegmentRouter.route_counts` uses for rows that go to the global model.
FALLBACK = "fallback"


def column_as_arrow(X: Any, name: str) -> pa.ChunkedArray:
    """Column ``name`` of a table as Arrow (dictionary columns decoded to their values)."""
    if isinstance(X, pa.Table):
        if name not in X.column_names:
            raise MissingColumnError(f"segment column {name!r} is missing from the table")
        column = X.column(name)
    else:
        if name not in getattr(X, "columns", ()):
            raise MissingColumnError(f"segment column {name!r} is missing from the table")
        column = pa.chunked_array([pa.Array.from_pandas(X[name])])
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column


def segment_codes(column: pa.ChunkedArray, segments: Sequence[Any]) -> np.ndarray:
    """For each row, the index of its value in ``segments``, or -1 (unseen, or null)."""
    if not segments:
        return np.full(len(column), -1, dtype=np.int64)
    try:
        value_set = pa.array(list(segments)).cast(column.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        # The column now has a type the training values cannot take: every row is unseen.
        return np.full(len(column), -1, dtype=np.int64)
    codes = pc.index_in(column, value_set=value_set)  # null for unseen values and nulls
    return pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _fit_one(estimator: Any, X: Any, y: np.ndarray) -> Any:
    """Worker side: fit one segment's (or the global) model."""
    return estimator.fit(X, y)


class SegmentRouter(MetaEstimatorMixin, BaseEstimator):
    """Route rows by the value of column ``by`` to one fitted copy of ``estimator`` per value.

    Parameters:
        estimator: the template, fitted once per segment and once on all rows (the global model).
            It takes the table as given, so it should ignore ``by`` itself (skfleet's encoder is
            built with ``exclude=[by]``).
        by: the segment column.
        min_rows: a segment with fewer training rows gets no model of its own; its rows use the
            global model. A classifier segment with a single class is treated the same way.
        n_jobs: joblib ``n_jobs`` for fitting the segments (on the engine's backend).

    Fitted attributes: ``segments_`` (segment values with their own model), ``estimators_``
    (their models, same order), ``fallback_`` (the global model), ``segment_rows_`` (training
    rows per segment), ``fallback_segments_`` (``{value: reason}`` for segments routed to the
    global model at training time), ``classes_`` for classifiers.
    """

    def __init__(self, estimator: Any, by: str, min_rows: int = 1, n_jobs: int | None = None):
        self.estimator = estimator
        self.by = by
        self.min_rows = min_rows
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags.required = True
        return tags

    # -- fitting ---------------------------------------------------------------------------------

    def _plan(self, column: pa.ChunkedArray, y: np.ndarray) -> tuple[list, list, dict]:
        """Which segments get their own model: (values, row indices per value, fallbacks)."""
        if not isinstance(self.min_rows, int | np.integer) or self.min_rows < 1:
            raise UsageError(f"min_rows must be a positive integer, not {self.min_rows!r}")
        encoded = pc.dictionary_encode(column.combine_chunks())
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        values = encoded.dictionary.to_pylist()
        rows_by_code = [np.flatnonzero(codes == code) for code in range(len(values))]
        classifier = is_classifier(self.estimator)
        kept, indices, fallbacks = [], [], {}
        for value, rows in sorted(zip(values, rows_by_code, strict=True), key=_segment_key):
            if len(rows) < self.min_rows:
                fallbacks[value] = f"{len(rows)} rows < min_rows {self.min_rows}"
            elif classifier and len(np.unique(y[rows])) < 2:
                fallbacks[value] = "a single class"
            else:
                kept.append(value)
                indices.append(rows)
        return kept, indices, fallbacks

    def fit(self, X: Any, y: Any) -> SegmentRouter:
        y = np.asarray(y)
        column = column_as_arrow(X, self.by)
        if len(column) != len(y):
            raise ValueError(f"X has {len(column)} rows but y has {len(y)}")
        segments, indices, fallbacks = self._plan(column, y)
        jobs = [delayed(_fit_one)(clone(self.estimator), X, y)]
        jobs += [
            delayed(_fit_one)(clone(self.estimator), take_rows(X, rows), y[rows])
            for rows in indices
        ]
        fitted = CountingParallel(n_jobs=self.n_jobs)(jobs)
        self.fallback_ = fitted[0]
        self.estimators_ = list(fitted[1:])
        self.segments_ = [_plain(v) for v in segments]
        self.segment_rows_ = [int(len(rows)) for rows in indices]
        self.fallback_segments_ = {str(_plain(k)): reason for k, reason in fallbacks.items()}
        self.n_null_rows_ = int(column.null_count)
        if hasattr(self.fallback_, "classes_"):
            self.classes_ = self.fallback_.classes_
        return self

    # -- prediction ------------------------------------------------------------------------------

    def _codes(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        return segment_codes(column_as_arrow(X, self.by), self.segments_)

    def route_counts(self, X: Any) -> dict[str, Any]:
        """Rows of ``X`` per segment model, and how many fall back to the global model."""
        codes = self._codes(X)
        counts = np.bincount(codes[codes >= 0], minlength=len(self.segments_))
        return {
            "segments": {str(s): int(c) for s, c in zip(self.segments_, counts, strict=True) if c},
            FALLBACK: int(np.sum(codes < 0)),
        }

    def _routed(self, X: Any, method: str, width: int | None):
        codes = self._codes(X)
        n = len(codes)
        out = None
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            model = self.fallback_ if code < 0 else self.estimators_[code]
            part = call_in_blocks(getattr(model, method), take_rows(X, rows))
            if method == "predict_proba":
                part = self._align_proba(model, part)
            if out is None:
                shape = (n,) if part.ndim == 1 else (n, part.shape[1])
                out = np.empty(shape, dtype=part.dtype if width is None else np.float64)
            elif part.dtype != out.dtype and method == "predict":
                out = out.astype(np.result_type(out.dtype, part.dtype))
            out[rows] = part
        if out is None:  # no rows
            out = getattr(self.fallback_, method)(X)
        return out

    def _align_proba(self, model: Any, proba: np.ndarray) -> np.ndarray:
        """Probabilities in the global model's class order (a class a segment never saw: 0)."""
        if model is self.fallback_ or np.array_equal(model.classes_, self.classes_):
            return proba
        aligned = np.zeros((proba.shape[0], len(self.classes_)), dtype=np.float64)
        where = {c: i for i, c in enumerate(self.classes_.tolist())}
        for j, c in enumerate(model.classes_.tolist()):
            aligned[:, where[c]] = proba[:, j]
        return aligned

    def predict(self, X: Any) -> np.ndarray:
        return self._routed(X, "predict", None)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy for a classifier, R2 for a regressor, as scikit-learn's own estimators score
        (permutation importance scores with it)."""
        from sklearn.metrics import accuracy_score, r2_score

        metric = accuracy_score if is_classifier(self) else r2_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))

    def predict_proba(self, X: Any) -> np.ndarray:
        if not hasattr(self, "classes_"):
            raise AttributeError("predict_proba is only available for classifiers")
        return self._routed(X, "predict_proba", len(self.classes_))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _segment_key(item: tuple) -> tuple:
    value = item[0]
    return (type(value).__name__, value)
