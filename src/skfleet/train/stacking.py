"""The ``stacking`` candidate: scikit-learn's ``StackingClassifier``/``StackingRegressor`` over
the other candidates, built from what the comparison already fitted.

``StackingClassifier(estimators, cv=<the run's folds>).fit(X, y)`` would fit every candidate
once per fold to get out-of-fold predictions, then once more on all rows, then its final
estimator on those predictions: exactly the fits the comparison has just made. So the stack is
assembled from them instead: ``estimators_`` are the candidates' final models, and the final
estimator is fitted on their out-of-fold predictions (class probabilities, the first column
dropped for two classes, as scikit-learn does; predictions for regressors), laid out by the
stack's own ``_concatenate_predictions``, which ``predict`` uses too. The result is the model
scikit-learn's ``fit`` gives with those folds, at the cost of one small fit.

The stored model is ``Pipeline([("check", TableFrame), ("model", stack)])``: the table step
checks a table against the contract and hands the candidates (each a pipeline with its own table
step) a DataFrame, so ``skfleet predict`` scores it like any model.

Its out-of-fold metrics fit the final estimator again per fold, on the other folds' rows of the
candidates' out-of-fold predictions. Those predictions came from models that saw the held-out
fold's rows, so the figures are slightly optimistic (:data:`STACKING_NOTE`).

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.naive_bayes import GaussianNB
>>> from skfleet.train.cv import cross_validate, make_splits, CVConfig
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
>>> y = (X["a"] + rng.normal(size=120) > 0).to_numpy()
>>> splits = make_splits("classification", CVConfig(folds=3), y)
>>> bases = {"lr": LogisticRegression(), "nb": GaussianNB()}
>>> runs = {k: cross_validate(m, X, y, splits, "classification", np.unique(y), final=True)
...         for k, m in bases.items()}
>>> stack, _ = assemble_stack("classification", [(k, r.final_model, r) for k, r in runs.items()],
...                          y, splits, {})
>>> from sklearn.ensemble import StackingClassifier
>>> reference = StackingClassifier(list(bases.items()), cv=splits).fit(X, y)
>>> bool(np.allclose(stack.predict_proba(X), reference.predict_proba(X)))
True
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch

from skfleet.errors import UsageError
from skfleet.train.cv import CVResult, align_proba, collect_folds

STACKING_NOTE = (
    "stacking: its out-of-fold metrics refit the final estimator per fold on the candidates' "
    "out-of-fold predictions, which come from models that saw the held-out fold, so they are "
    "slightly optimistic"
)


def unfitted_stack(task: str, bases: list[tuple[str, Any]], params: dict) -> Any:
    """scikit-learn's stack over ``bases`` with its default final estimator (logistic regression,
    ``RidgeCV`` for regressors); ``params`` (``--param stacking:k=v``) go to the final estimator."""
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV

    from skfleet.train.presets import set_params_checked

    if task == "classification":
        final = set_params_checked(LogisticRegression(), params, flag="--param stacking")
        return StackingClassifier(bases, final_estimator=final, stack_method="predict_proba")
    final = set_params_checked(RidgeCV(), params, flag="--param stacking")
    return StackingRegressor(bases, final_estimator=final)


def assemble_stack(task, fitted: list[tuple[str, Any, CVResult]], y, splits, params: dict):
    """(the fitted stack, its out-of-fold :class:`CVResult`) from the candidates' final models
    and out-of-fold results ``fitted`` (name, model, CV result)."""
    if len(fitted) < 2:
        raise UsageError("--model stacking needs at least two other candidates to stack")
    if task == "classification":
        for name, _, result in fitted:
            if result.proba is None:
                raise UsageError(
                    f"--model stacking: candidate {name} has no predict_proba, so it cannot be "
                    "stacked (the stack's inputs are class probabilities)"
                )
    # The parameter holds unfitted copies, as after scikit-learn's own fit: the store writes
    # each object it meets, so fitted models there would be stored once more.
    stack = unfitted_stack(task, [(name, clone(model)) for name, model, _ in fitted], params)
    stack.estimators_ = [model for _, model, _ in fitted]
    stack.named_estimators_ = Bunch(**{name: model for name, model, _ in fitted})
    if task == "classification":
        from sklearn.preprocessing import LabelEncoder

        stack.stack_method_ = ["predict_proba"] * len(fitted)
        stack._label_encoder = LabelEncoder().fit(y)
        stack.classes_ = stack._label_encoder.classes_
        target = stack._label_encoder.transform(y)
        inputs = [result.proba for _, _, result in fitted]
    else:
        stack.stack_method_ = ["predict"] * len(fitted)
        target = y
        inputs = [np.asarray(result.prediction, dtype=np.float64) for _, _, result in fitted]
    meta = stack._concatenate_predictions(None, inputs)
    stack.final_estimator_ = clone(stack.final_estimator).fit(meta, target)
    return stack, _meta_folds(stack, meta, target, y, splits, task)


def _meta_folds(stack, meta, target, y, splits, task) -> CVResult:
    """The stack's out-of-fold result: its final estimator refitted per fold (see the module)."""
    classes = stack.classes_ if task == "classification" else None
    outputs = []
    for train, test in splits:
        started = time.perf_counter()
        final = clone(stack.final_estimator).fit(meta[train], target[train])
        seconds = time.perf_counter() - started
        predicted = final.predict(meta[test])
        proba = None
        if classes is not None:
            predicted = stack._label_encoder.inverse_transform(predicted)
            codes = np.arange(len(classes))
            proba = align_proba(final.predict_proba(meta[test]), final.classes_, codes)
        outputs.append((np.asarray(predicted), proba, seconds, None))
    return collect_folds(outputs, y, splits, task, classes)


def stacked_pipeline(stack: Any, features: Any, encoder_options: dict) -> Any:
    """``Pipeline([("check", TableFrame), ("model", stack)])``, the table step fitted on
    ``features`` (the training table), as skfleet stores every model."""
    from sklearn.pipeline import Pipeline

    from skfleet.features.frame import TableFrame

    check = TableFrame(**encoder_options).fit(features)
    pipeline = Pipeline([("check", check), ("model", stack)])
    return pipeline
