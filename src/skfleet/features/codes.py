"""``TableCodes`` and ``TableOrdinal``: tables for tree models, categories kept whole, numbers unscaled.

One-hot features and scaled numbers serve linear models; a histogram gradient boosting model
splits on categories natively and does not care about scale. ``TableCodes`` learns the same
:class:`~skfleet.features.FeatureContract` as :class:`~skfleet.features.TableEncoder` and checks
tables against it the same way (through :class:`~skfleet.features.frame.TableFrame`), then hands
on a pandas DataFrame the model reads with ``categorical_features="from_dtype"``:

- categorical columns as pandas categoricals over every level seen at fit time (not only the
  ``max_levels`` most frequent), up to :data:`MAX_CATEGORIES`; rarer levels share ``__other__``;
  unseen levels and missing values are missing (the model sends them down its missing branch);
- hashed columns as categoricals over their hash buckets;
- numbers and booleans as float64 (missing: NaN), unscaled; dates as epoch seconds;
- text columns as the encoder's hashed word counts; excluded columns (ids) are left out.

>>> import pyarrow as pa
>>> train = pa.table({"dest": ["SFO", "LAX", "SFO", "JFK"], "miles": [2586, 2475, 2586, None]})
>>> codes = TableCodes(max_levels=1).fit(train)
>>> out = codes.transform(pa.table({"dest": ["JFK", "ORD"], "miles": [1, 2]}))
>>> out["dest"].tolist(), list(out["dest"].cat.categories), out["miles"].tolist()
(['JFK', nan], ['SFO', 'JFK', 'LAX'], [1.0, 2.0])
>>> codes.contract_.column("dest").levels  # the contract is the encoder's
['SFO']

Random forests, extra trees and decision trees in scikit-learn have no categorical splits, but
they split on any ordering of the levels and take missing values (NaN) natively. For them
:class:`TableOrdinal` writes each categorical as its level's position (NaN when missing or
unseen), over every level seen, where one-hot encoding would keep only the ``max_levels`` most
frequent and scale the numbers for nothing:

>>> ordinal = TableOrdinal(max_levels=1).fit(train)
>>> ordinal.transform(pa.table({"dest": ["JFK", "ORD", "SFO"], "miles": [1, 2, 3]}))["dest"].tolist()
[1.0, nan, 0.0]
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.utils.validation import check_array, check_is_fitted

from skfleet.features.coerce import epoch_seconds
from skfleet.features.contract import OTHER, FeatureContract
from skfleet.features.drift import UNSEEN_MISSING
from skfleet.features.encode import encode_table
from skfleet.features.frame import TableFrame
from skfleet.features.hashing import bucket_strings
from skfleet.features.tables import as_input_table

#: Categories per column a HistGradientBoosting model takes (its ``max_bins`` is at most 255,
#: one bin being kept for missing values).
MAX_CATEGORIES = 254


class TableCodes(TableFrame):
    """A :class:`TableFrame` whose DataFrame is ready for native categorical handling."""

    #: Levels kept per column before the rarest share ``__other__`` (None: every level).
    max_categories: int | None = MAX_CATEGORIES

    @property
    def output_columns(self) -> list[str]:
        """The columns ``transform`` requires: those the encoder would use (ids excluded)."""
        used = set(self.contract_.input_columns)
        return [name for name in super().output_columns if name in used]

    def transform_with_drift(self, X):
        """``(DataFrame for the tree model, DriftReport)``; error policies raise."""
        frame, report = super().transform_with_drift(X)
        report.unseen_as = UNSEEN_MISSING
        parts: dict[str, object] = {}
        for name in frame.columns:
            spec = self.contract_.column(name)
            values = frame[name]
            if spec.kind == "text":
                sub = FeatureContract.build([spec])
                words, _ = encode_table(sub, as_input_table(pd.DataFrame({name: values})))
                for j, feature in enumerate(sub.feature_names):
                    parts[feature] = words[:, j].astype(np.float64)
            elif spec.hashed:
                column = pa.chunked_array([pa.array(values, from_pandas=True)])
                buckets = bucket_strings(column, spec.hash.n_features, spec.hash.seed)
                buckets = np.where(values.isna().to_numpy(), -1, buckets)
                parts[name] = pd.Categorical.from_codes(buckets, range(spec.hash.n_features))
            elif spec.kind == "categorical":
                categories = _categories(spec, self.max_categories)
                known = values.isin(categories)
                if categories[-1:] == [OTHER]:  # capped: the rarest levels seen share one
                    rare = ~known & values.isin(spec.other_levels)
                    values, known = values.mask(rare, OTHER), known | rare
                # Unseen levels are counted in the drift report, and missing for the model.
                parts[name] = pd.Categorical(values.where(known), categories=categories)
            elif spec.kind == "datetime":
                column = pa.chunked_array([pa.array(values, from_pandas=True)])
                parts[name] = epoch_seconds(column)
            else:
                parts[name] = pd.to_numeric(values, errors="coerce").astype(np.float64)
        return pd.DataFrame(parts, index=frame.index), report

    def get_feature_names_out(self, input_features=None):
        """The DataFrame's columns (a text column becomes its word-count columns)."""
        check_is_fitted(self, "contract_")
        names: list[str] = []
        for name in self.output_columns:
            spec = self.contract_.column(name)
            names += spec.output_names() if spec.kind == "text" else [name]
        return np.asarray(names, dtype=object)


class TableOrdinal(TableCodes):
    """A :class:`TableCodes` whose categoricals are float positions of their level (NaN:
    missing or unseen), for tree models that split on numbers and route NaN natively."""

    max_categories = None

    def transform_with_drift(self, X):
        """``(DataFrame of float64 columns, DriftReport)``; error policies raise."""
        frame, report = super().transform_with_drift(X)
        for name in frame.columns:
            if isinstance(frame[name].dtype, pd.CategoricalDtype):
                codes = frame[name].cat.codes.to_numpy().astype(np.float64)
                frame[name] = np.where(codes < 0, np.nan, codes)
        return frame, report


def _categories(spec, limit: int | None) -> list:
    levels = list(spec.levels or []) + list(spec.other_levels or [])
    if limit is None or len(levels) <= limit:
        return levels
    return levels[: limit - 1] + [OTHER]


def without_check_partials(model: Any) -> Any:
    """``model`` with the ``functools.partial`` its HistGradientBoosting steps hold removed, so
    the stored artifact loads without ``trust`` (skfleet's trust policy refuses every partial).

    Fitted on categoricals, such a model keeps a ColumnTransformer whose numerical branch is
    ``FunctionTransformer(partial(check_array, dtype=float64, ensure_all_finite=False))``. Behind
    ``TableCodes`` those columns are float64 already, so the branch becomes the identity
    (``func=None``) and predictions do not change. Works in place; returns ``model``.
    """
    from sklearn.preprocessing import FunctionTransformer

    for estimator in _estimators(model):
        preprocessor = getattr(estimator, "_preprocessor", None)
        for listing in (
            getattr(preprocessor, "transformers", ()),
            getattr(preprocessor, "transformers_", ()),
        ):
            for _, transformer, _ in listing:
                func = getattr(transformer, "func", None)
                if (
                    isinstance(transformer, FunctionTransformer)
                    and isinstance(func, partial)
                    and func.func is check_array
                ):
                    transformer.set_params(func=None)
    return model


def _estimators(model: Any) -> Iterator[Any]:
    """``model`` and the fitted estimators inside it (pipeline steps, segment models)."""
    yield model
    for _, step in getattr(model, "steps", None) or ():
        yield from _estimators(step)
    for inner in [getattr(model, "fallback_", None), *(getattr(model, "estimators_", None) or ())]:
        if inner is not None and hasattr(inner, "fit"):
            yield from _estimators(inner)
