"""Hyperparameter search with scikit-learn's own GridSearchCV / RandomizedSearchCV /
HalvingGridSearchCV, their ``n_jobs`` running on the engine through joblib.

The grid names the model's own parameters (``max_depth``); they are prefixed here to reach the
model inside skfleet's pipeline (``model__max_depth``) and checked against its parameters first.

>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.pipeline import Pipeline
>>> pipe = Pipeline([("model", LogisticRegression())])
>>> prefixed_grid(pipe, "model__", {"C": [0.1, 1.0]})
{'model__C': [0.1, 1.0]}
>>> prefixed_grid(pipe, "model__", {"depth": [1, 2]})
Traceback (most recent call last):
...
skfleet.errors.UsageError: --grid depth: LogisticRegression has no parameter 'depth'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from skfleet.errors import UsageError
from skfleet.train.config import SearchConfig

#: At most this many rows of ``cv_results_`` go into ``model.json`` (best ranks first).
MAX_RESULTS = 200


def _inner(template: Any, prefix: str) -> Any:
    """The estimator the grid's names refer to (the ``model`` step inside the template)."""
    return template.get_params(deep=True)[prefix[:-2]] if prefix else template


def prefixed_grid(template: Any, prefix: str, grid: Mapping[str, Sequence[Any]]) -> dict:
    """``grid`` with names prefixed; an unknown name is a :class:`UsageError` naming it."""
    known = template.get_params(deep=True)
    inner = _inner(template, prefix)
    out = {}
    for key, values in grid.items():
        full = prefix + key
        if full not in known:
            raise UsageError(f"--grid {key}: {type(inner).__name__} has no parameter {key!r}")
        out[full] = list(values)
    return out


def default_scoring(template: Any, n_classes: int) -> str:
    """What a search ranks candidates by, unless told otherwise."""
    if not is_classifier(template):
        return "r2"
    if not hasattr(template, "predict_proba"):
        return "accuracy"
    return "roc_auc" if n_classes == 2 else "neg_log_loss"


def build_search(
    template: Any,
    config: SearchConfig,
    splitter: Any,
    *,
    prefix: str,
    n_classes: int,
    n_jobs: int | None,
    pre_dispatch: str = "2*n_jobs",
):
    """An unfitted scikit-learn search over ``template`` (refit on all rows with the best)."""
    grid = prefixed_grid(template, prefix, config.grid)
    scoring = config.scoring or default_scoring(template, n_classes)
    common = {"scoring": scoring, "cv": splitter, "refit": True, "n_jobs": n_jobs}
    # Fits that fail are an error, not a NaN score: a bad grid value should stop the run.
    common["error_score"] = "raise"
    if config.method == "grid":
        from sklearn.model_selection import GridSearchCV

        return GridSearchCV(template, grid, pre_dispatch=pre_dispatch, **common)
    if config.method == "random":
        from sklearn.model_selection import RandomizedSearchCV

        n_iter = min(config.n_iter, config.n_candidates)
        return RandomizedSearchCV(
            template, grid, n_iter=n_iter, random_state=config.random_state,
            pre_dispatch=pre_dispatch, **common,
        )  # fmt: skip
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    return HalvingGridSearchCV(
        template, grid, factor=config.factor, random_state=config.random_state, **common
    )


def planned_fits(config: SearchConfig, folds: int, n_rows: int, min_rows: int = 1) -> int:
    """How many fits the search will run (halving: its schedule, estimated before it starts).

    >>> planned_fits(SearchConfig("grid", {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]}), 3, 1000)
    48
    """
    if config.method == "grid":
        return config.n_candidates * folds
    if config.method == "random":
        return min(config.n_iter, config.n_candidates) * folds
    candidates, total = config.n_candidates, 0
    iterations = 1 + math.floor(math.log(max(candidates, 1), config.factor))
    for _ in range(iterations):
        total += candidates * folds
        candidates = math.ceil(candidates / config.factor)
    return total


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return repr(value)


def search_summary(search: Any, config: SearchConfig, prefix: str) -> dict[str, Any]:
    """The search for ``model.json`` and the report: best parameters and trimmed results.

    Parameter names lose the pipeline prefix; values are plain JSON (others as their repr).
    """
    results = search.cv_results_
    ranks = np.asarray(results["rank_test_score"])
    order = np.argsort(ranks, kind="stable")[:MAX_RESULTS]

    def strip(params: Mapping[str, Any]) -> dict[str, Any]:
        return {k.removeprefix(prefix): _plain(v) for k, v in params.items()}

    rows = []
    for i in order:
        row = {
            "params": strip(results["params"][i]),
            "mean_test_score": _finite(results["mean_test_score"][i]),
            "std_test_score": _finite(results["std_test_score"][i]),
            "rank": int(ranks[i]),
            "mean_fit_time": _finite(results["mean_fit_time"][i]),
        }
        for extra in ("iter", "n_resources"):
            if extra in results:
                row[extra] = int(results[extra][i])
        rows.append(row)
    return {
        "method": config.method,
        "scoring": search.scoring,
        "best_params": strip(search.best_params_),
        "best_score": _finite(search.best_score_),
        "n_candidates": int(len(ranks)),
        "cv_results": rows,
    }


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
