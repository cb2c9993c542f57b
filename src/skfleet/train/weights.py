"""Sample weights from a column (``--weight COL``): checked once, then handed to the estimator's
``fit`` as ``sample_weight`` and to the out-of-fold metrics.

The column is read with the table but is not a feature: it is left out of the feature contract
like the target, so a stored model never asks for it at prediction time. Its values must be
numbers, finite, at least 0, without nulls, and not all 0; anything else is one line naming the
column and the table, before any model is fitted.

Inside skfleet's pipeline the estimator is a step, so the weights travel under the step's name
(``model__sample_weight``, or ``model__<last step>__sample_weight`` for the user's own Pipeline);
scikit-learn's searches and ``CalibratedClassifierCV`` pass them on to each fit on the rows of
that fit.

>>> import pyarrow as pa
>>> check_weight(pa.chunked_array([[1, 0, 2.5]]), "w", "t.csv").tolist()
[1.0, 0.0, 2.5]
>>> check_weight(pa.chunked_array([[1.0, -2.0, None]]), "w", "t.csv")
Traceback (most recent call last):
...
skfleet.errors.DataError: --weight column 'w' of t.csv is null or NaN in 1 row: sample weights must be numbers >= 0
>>> from sklearn.pipeline import Pipeline
>>> from sklearn.linear_model import LogisticRegression
>>> weight_key(Pipeline([("model", LogisticRegression())]))
'model__sample_weight'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import DataError, UsageError


def check_weight(column: pa.ChunkedArray, name: str, source: str) -> np.ndarray:
    """The weights of ``column`` as float64, or a :class:`DataError` naming ``name`` in
    ``source``: not numeric, null or NaN, infinite, negative, or zero in every row."""
    what = f"--weight column {name!r} of {source}"
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if not numeric:
        raise DataError(f"{what} is {kind}, not numeric: sample weights must be numbers >= 0")
    values = column.cast(pa.float64()) if column.type != pa.float64() else column
    missing = pc.sum(pc.is_null(values, nan_is_null=True).cast(pa.int64())).as_py() or 0
    if missing:
        raise DataError(
            f"{what} is null or NaN in {_rows(missing)}: sample weights must be numbers >= 0"
        )
    weights = np.asarray(values.to_numpy(), dtype=np.float64)
    for count, problem in (
        (int(np.isinf(weights).sum()), "infinite"),
        (int((weights < 0).sum()), "negative"),
    ):
        if count:
            raise DataError(f"{what} is {problem} in {_rows(count)}: sample weights must be >= 0")
    if len(weights) and not weights.any():
        raise DataError(f"{what} is 0 in every row: there is nothing to learn from")
    return weights


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def final_estimator(model: Any) -> Any:
    """The estimator at the end of ``model``'s chain of Pipelines (``model`` itself if none)."""
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def accepts_weights(estimator: Any) -> bool:
    """Whether ``estimator``'s ``fit`` (at the end of its Pipelines) takes ``sample_weight``.

    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.naive_bayes import GaussianNB
    >>> accepts_weights(GaussianNB()), accepts_weights(KNeighborsClassifier())
    (True, False)
    """
    from sklearn.utils.validation import has_fit_parameter

    return has_fit_parameter(final_estimator(estimator), "sample_weight")


def check_accepts_weights(estimator: Any) -> None:
    """Refuse ``--weight`` for an estimator whose ``fit`` has no ``sample_weight``, in one line."""
    if not accepts_weights(estimator):
        name = type(final_estimator(estimator)).__name__
        raise UsageError(f"--weight: {name}.fit takes no sample_weight, so it cannot use weights")


def weight_key(template: Any) -> str:
    """The fit parameter that reaches the first estimator (not a Pipeline) in ``template``
    as its ``sample_weight``: Pipeline steps are named on the way down."""
    from sklearn.pipeline import Pipeline

    parts = []
    while isinstance(template, Pipeline):
        name, template = template.steps[-1]
        parts.append(name)
    return "__".join([*parts, "sample_weight"])


def fit_params(key: str | None, weight: np.ndarray | None, rows: np.ndarray | None = None):
    """``{key: weight}`` (the ``rows`` of it if given) for a ``fit`` call; ``{}`` unweighted.

    >>> fit_params("model__sample_weight", np.array([1.0, 2.0, 3.0]), np.array([2, 0]))
    {'model__sample_weight': array([3., 1.])}
    >>> fit_params(None, None)
    {}
    """
    if key is None or weight is None:
        return {}
    return {key: weight if rows is None else weight[rows]}


def weight_summary(column: str, weight: np.ndarray) -> dict[str, Any]:
    """What ``model.json`` records of the weights: the column, their total and zero rows, and
    what they do not reach (scikit-learn's search scorers and the permutation importance score
    rows unweighted unless metadata routing is switched on globally; the report's curves count
    rows).

    >>> weight_summary("w", np.array([0.0, 1.5, 2.5]))["zero_rows"]
    1
    """
    return {
        "column": column,
        "sum": float(weight.sum()),
        "zero_rows": int((weight == 0).sum()),
        "used_in": ["fit", "cv_metrics"],
        "not_used_in": ["search ranking", "feature importance", "report plots"],
    }
