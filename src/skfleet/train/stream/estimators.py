"""Which estimators can learn out of core, and how to call their ``partial_fit``.

``train-stream`` accepts an estimator instance, a preset name (``sgd-logistic``, ...) or a
scikit-learn class name (``SGDClassifier``). The estimator must have ``partial_fit``; an estimator
without one is refused with a pointer to ``skfleet train``, which fits in memory.

>>> resolve_estimator("sgd-logistic")
SGDClassifier(loss='log_loss', random_state=0)
>>> resolve_estimator("SGDRegressor", seed=3, params={"alpha": 0.001})
SGDRegressor(alpha=0.001, random_state=3)
>>> task_of(resolve_estimator("minibatch-kmeans"))
'clustering'
>>> resolve_estimator("RandomForestClassifier")
Traceback (most recent call last):
...
skfleet.errors.UsageError: RandomForestClassifier has no partial_fit, so it cannot learn out of core; use `skfleet train` (in memory) for it, or an incremental model such as sgd-logistic, sgd-linear, perceptron, multinomial-nb, bernoulli-nb, minibatch-kmeans, incremental-pca, mlp-classifier, mlp-regressor
"""

from __future__ import annotations

import inspect
from typing import Any

from sklearn.base import clone, is_classifier, is_clusterer, is_regressor

from skfleet.errors import UsageError
from skfleet.train import presets


def _sklearn_class(name: str) -> type | None:
    from sklearn.utils import all_estimators

    for est_name, cls in all_estimators():
        if est_name == name:
            return cls
    return None


def _suggestions() -> str:
    return ", ".join(presets.preset_names("train-stream"))


def resolve_estimator(model: Any, seed: int | None = None, params: dict | None = None) -> Any:
    """An unfitted estimator for ``model`` (instance, preset, class name or import path).

    ``params`` are checked against the estimator's parameters (a typo is an error). A
    ``random_state`` left at ``None`` is set to ``seed``: ``partial_fit`` draws from it (SGD's
    in-chunk shuffle, MLP batches, k-means sampling), and a resumed run must replay the same draws.
    """
    if isinstance(model, str):
        if model in presets.PRESETS:
            est = presets.PRESETS[model].build()
        elif "." not in model:
            cls = _sklearn_class(model)
            if cls is None:
                raise UsageError(
                    f"--model {model!r} is neither an incremental preset ({_suggestions()}) "
                    "nor a scikit-learn estimator class name"
                )
            est = cls()
        else:
            est = presets.resolve_model(model)
    else:
        if inspect.isclass(model):
            model = model()
        if not hasattr(model, "get_params"):
            raise UsageError(f"--model {type(model).__name__} is not a scikit-learn estimator")
        est = clone(model)
    if not callable(getattr(est, "partial_fit", None)):
        raise UsageError(
            f"{type(est).__name__} has no partial_fit, so it cannot learn out of core; use "
            f"`skfleet train` (in memory) for it, or an incremental model such as {_suggestions()}"
        )
    presets.set_params_checked(est, params or {})
    if seed is not None and "random_state" in est.get_params() and est.random_state is None:
        est.set_params(random_state=seed)
    return est


def task_of(est: Any) -> str:
    """``classification``, ``regression``, ``clustering`` or ``transform``.

    >>> from sklearn.decomposition import IncrementalPCA
    >>> task_of(IncrementalPCA())
    'transform'
    """
    if is_classifier(est):
        return "classification"
    if is_regressor(est):
        return "regression"
    if is_clusterer(est):
        return "clustering"
    return "transform"


def needs_target(task: str) -> bool:
    """Supervised tasks need ``--target``; clustering and transforms learn from features only."""
    return task in ("classification", "regression")
