"""The unfitted model a training run fits: the table step chosen for the estimator, in a Pipeline.

``make_template`` puts the step that learns the feature contract in front of the estimator
(``TableEncoder``, ``TableCodes``, ``TableOrdinal`` or ``TableFrame``, from what the estimator
does with its input) and wraps it in a :class:`~skfleet.train.segments.SegmentRouter` for
``group_by``. A single run and every candidate of a comparison build theirs here.

>>> from sklearn.ensemble import HistGradientBoostingClassifier
>>> from skfleet.train.config import TrainConfig
>>> template, prefix = make_template(HistGradientBoostingClassifier(), TrainConfig(target="y"))
>>> [type(step).__name__ for _, step in template.steps], prefix, task_of(template)
(['TableCodes', 'HistGradientBoostingClassifier'], 'model__', 'classification')
"""

from __future__ import annotations

import sys
from typing import Any

from sklearn.base import is_classifier, is_regressor
from sklearn.pipeline import Pipeline

from skfleet.errors import UsageError
from skfleet.train.config import TrainConfig
from skfleet.train.segments import SegmentRouter


def task_of(estimator: Any) -> str:
    """``classification`` or ``regression``; anything else cannot be trained on a target."""
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise UsageError(
        f"model {type(estimator).__name__} is neither a classifier nor a regressor: "
        "skfleet train fits a model to a target column"
    )


def selects_columns_by_name(estimator: Any) -> bool:
    """Whether ``estimator`` picks its input columns by name, so it needs a DataFrame: a
    ColumnTransformer with named (or selector) columns, first in a Pipeline or a FeatureUnion.

    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> prep = ColumnTransformer([("cat", OneHotEncoder(), ["cut"])], remainder="passthrough")
    >>> selects_columns_by_name(Pipeline([("prep", prep), ("model", Ridge())]))
    True
    >>> selects_columns_by_name(Ridge()), selects_columns_by_name(
    ...     ColumnTransformer([("cat", OneHotEncoder(), [0])]))
    (False, False)
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion

    if isinstance(estimator, Pipeline):
        first = next(
            (step for _, step in estimator.steps if step not in (None, "passthrough")), None
        )
        return first is not None and selects_columns_by_name(first)
    if isinstance(estimator, FeatureUnion):
        return any(selects_columns_by_name(part) for _, part in estimator.transformer_list)
    if isinstance(estimator, ColumnTransformer):
        for _, _, columns in estimator.transformers:
            if callable(columns) or isinstance(columns, str):
                return True
            listed = list(columns) if isinstance(columns, list | tuple) else []
            if listed and all(isinstance(c, str) for c in listed):
                return True
    return False


def encodes(estimator: Any, config: TrainConfig) -> bool:
    """Whether skfleet's TableEncoder goes in front of ``estimator`` (see ``TrainConfig.encode``)."""
    by_name = selects_columns_by_name(estimator)
    if config.encode is None:
        return not by_name
    if config.encode and by_name:
        raise UsageError(
            f"{type(estimator).__name__} selects columns by name, so it needs the table as a "
            "DataFrame: train it with encode=False (--no-encode), not encode=True"
        )
    return config.encode


def handles_categories(estimator: Any) -> bool:
    """Whether ``estimator`` splits on categories natively when given pandas categoricals
    (scikit-learn's HistGradientBoosting models with ``categorical_features="from_dtype"``).

    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> handles_categories(HistGradientBoostingRegressor())
    True
    >>> handles_categories(HistGradientBoostingRegressor(categorical_features=None))
    False
    """
    if not _ensemble_imported():
        return False
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return (
        isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor)
        and estimator.categorical_features == "from_dtype"
    )


def splits_on_codes(estimator: Any) -> bool:
    """Whether ``estimator`` is a scikit-learn tree model that takes missing values: it is
    served best by every level as a number (``TableOrdinal``) than by capped one-hot features.

    >>> from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    >>> splits_on_codes(RandomForestClassifier()), splits_on_codes(GradientBoostingClassifier())
    (True, False)
    """
    from sklearn.tree import BaseDecisionTree

    kinds: tuple[type, ...] = (BaseDecisionTree,)
    if _ensemble_imported():
        from sklearn.ensemble._forest import BaseForest

        kinds += (BaseForest,)
    return isinstance(estimator, kinds) and estimator.__sklearn_tags__().input_tags.allow_nan


def _ensemble_imported() -> bool:
    """An ensemble model exists only once ``sklearn.ensemble`` is imported (importing any of its
    modules imports the package first): a linear model does not pay for importing it."""
    return "sklearn.ensemble" in sys.modules


def make_template(estimator: Any, config: TrainConfig) -> tuple[Any, str]:
    """The unfitted model skfleet stores, and the prefix that reaches ``estimator`` inside it.

    The first step learns the feature contract and checks tables against it: a
    :class:`~skfleet.features.TableEncoder`; a ``TableCodes`` for a model that handles
    categories itself (categoricals over every level seen, unscaled numbers), a
    ``TableOrdinal`` for other tree models (each level's position, NaN missing); a ``TableFrame``
    (the checked table as a DataFrame) when the estimator encodes its input itself.
    """
    from skfleet.features import TableEncoder
    from skfleet.features.codes import TableCodes, TableOrdinal
    from skfleet.features.frame import TableFrame

    encoder_options = dict(config.encoder)
    if config.group_by:
        encoder_options["exclude"] = [*encoder_options.pop("exclude", ()), config.group_by]
    if encodes(estimator, config) and handles_categories(estimator):
        step = ("encode", TableCodes(**encoder_options))
    elif encodes(estimator, config) and splits_on_codes(estimator):
        step = ("encode", TableOrdinal(**encoder_options))
    elif encodes(estimator, config):
        step = ("encode", TableEncoder(**encoder_options))
    else:
        step = ("check", TableFrame(**encoder_options))
    pipeline = Pipeline([step, ("model", estimator)])
    if config.group_by:
        router = SegmentRouter(pipeline, by=config.group_by, min_rows=config.min_segment_rows)
        return router, "estimator__model__"
    return pipeline, "model__"
