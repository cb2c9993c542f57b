"""Feature importance per INPUT column, for a model that takes a table.

Users think in the columns of their table, not in the 300 one-hot features an encoder made of
them, so importances are always reported per input column:

- **native**: when the final estimator has ``feature_importances_`` (trees) or ``coef_`` (linear
  models; mean |coef| over classes), each encoded feature's value is added to the input column it
  came from, using the ``feature_to_input`` mapping the caller gives (output feature name -> input
  column; names that are input columns themselves map to themselves). Caveat: |coef| compares
  columns fairly only when the encoded features share a scale.
- **permutation**: otherwise (or when the encoded feature names are unknown),
  :func:`sklearn.inspection.permutation_importance` on the raw table: shuffling an input column
  shuffles every feature made from it. Its cost is sized to the table, not to its rows: a table of
  at most ``max_rows`` (2,000) rows is used whole, 5 shuffles per column (exactly what
  ``permutation_importance`` gives on it); a larger one is first cut to a fixed-seed sample of
  ``max_rows`` rows (only those rows are converted from Arrow), so the work is at most
  ``(5 x columns + 1)`` predictions of 2,000 rows whatever the table's size. The predictions run
  on one thread: on so few rows a thread pool's start-up and hand-offs cost more than they save,
  and on a busy machine HistGradientBoosting's OpenMP threads spin-wait for each other (a 1,000-row
  table: 0.4 s a prediction instead of 0.03 s).

>>> import pandas as pd
>>> from sklearn.tree import DecisionTreeClassifier
>>> X = pd.DataFrame({"a": [0, 1, 0, 1] * 5, "b": [0, 0, 1, 1] * 5})
>>> tree = DecisionTreeClassifier(random_state=0).fit(X, X["a"])
>>> feature_importance(tree, X, X["a"])
({'a': 1.0, 'b': 0.0}, 'native')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from skfleet.report._render import subsample


def feature_importance(
    model: Any,
    X: Any,
    y: Any = None,
    feature_to_input: Mapping[str, str] | None = None,
    *,
    max_rows: int = 2000,
    n_repeats: int = 5,
    scoring: Any = None,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> tuple[dict[str, float], str]:
    """Importance per input column and the method used (``"native"`` or ``"permutation"``).

    ``model`` is fitted and takes the table ``X`` (pandas DataFrame or pyarrow Table) directly.
    ``y`` is needed for the permutation method only. Permutation importance scores at most
    ``max_rows`` rows drawn with ``random_state``, ``n_repeats`` shuffles per column, with
    ``scoring`` (the estimator's default score if None). The result is sorted, largest first.
    """
    columns = _columns(X)
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    native = _native_values(final)
    if native is not None:
        names = _encoded_names(model, final, len(native))
        if names is not None:
            return _sum_to_inputs(names, native, feature_to_input, columns), "native"
    if y is None:
        raise ValueError("permutation importance needs y: the model has no native importances")
    from sklearn.inspection import permutation_importance

    rows = subsample(len(X), max_rows, seed=random_state)
    sample = _sample_frame(X, rows)
    target = np.asarray(y)[rows] if not isinstance(y, pd.Series) else y.iloc[rows].to_numpy()
    with threadpool_limits(limits=1):
        found = permutation_importance(
            model,
            sample,
            target,
            n_repeats=n_repeats,
            scoring=scoring,
            random_state=random_state,
            n_jobs=n_jobs,
        )
    values = {str(c): float(v) for c, v in zip(columns, found.importances_mean, strict=True)}
    return _ranked(values), "permutation"


def _columns(X: Any) -> list[str]:
    if isinstance(X, pd.DataFrame):
        return list(X.columns)
    if hasattr(X, "to_pandas") and hasattr(X, "column_names"):
        return list(X.column_names)
    raise TypeError(f"X must be a pandas DataFrame or a pyarrow Table, not {type(X).__name__}")


def _sample_frame(X: Any, rows: np.ndarray) -> pd.DataFrame:
    """The sampled rows as a DataFrame; an Arrow table converts only those rows."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows].reset_index(drop=True)
    return (X if len(rows) == X.num_rows else X.take(rows)).to_pandas()


def _native_values(final: Any) -> np.ndarray | None:
    """One non-negative value per encoded feature, or None when the estimator has none."""
    for attribute in ("feature_importances_", "coef_"):
        try:
            values = getattr(final, attribute)
        except Exception:  # some estimators raise other errors for an unfitted attribute
            continue
        values = np.abs(np.asarray(values, dtype=np.float64))
        if values.ndim == 2:
            # One row of coefficients per class (or output): how much a feature matters to any.
            values = values.mean(axis=0)
        if values.ndim == 1 and np.isfinite(values).all():
            return values
    return None


def _encoded_names(model: Any, final: Any, width: int) -> list[str] | None:
    """Names of the features the final estimator sees, or None if they cannot be known."""
    names = None
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        try:
            names = model[:-1].get_feature_names_out()
        except Exception:  # a step without get_feature_names_out: use permutation
            names = None
    elif hasattr(final, "feature_names_in_"):
        names = final.feature_names_in_
    if names is None or len(names) != width:
        return None
    return [str(n) for n in names]


def _sum_to_inputs(
    names: list[str], values: np.ndarray, mapping: Mapping[str, str] | None, columns: Any
) -> dict[str, float]:
    inputs = {str(c) for c in columns}
    mapping = mapping or {}
    totals: dict[str, float] = {}
    for name, value in zip(names, values, strict=True):
        column = mapping.get(name, name if name in inputs else None)
        if column is None:
            raise ValueError(f"encoded feature {name!r} has no input column in feature_to_input")
        totals[column] = totals.get(column, 0.0) + float(value)
    return _ranked(totals)


def _ranked(values: dict[str, float]) -> dict[str, float]:
    return dict(sorted(values.items(), key=lambda kv: -kv[1]))
