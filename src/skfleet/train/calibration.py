"""Calibrated probabilities (``--calibrate sigmoid|isotonic``): scikit-learn's
``CalibratedClassifierCV`` over the run's own folds, stored as the model step of the pipeline.

The classifier in skfleet's pipeline is replaced by ``CalibratedClassifierCV(classifier,
method=..., cv=StratifiedKFold(<the run's folds>), ensemble=True)``. Its splitter is the very one
the run's cross-validation uses (same folds, shuffle and seed, stratified on the target), so:

- the stored model, fitted on all rows, splits them into exactly the run's folds: in each, a
  clone of the classifier is fitted on the fold's training rows and a calibrator (a sigmoid, or an
  isotonic regression) on that clone's predictions for the held-out rows, i.e. on the run's own
  out-of-fold predictions. ``predict_proba`` averages the calibrated folds.
- the out-of-fold metrics of the run are nested, hence honest: each outer fold clones the whole
  pipeline and fits it on its training rows only, so its calibration is learnt from folds of those
  rows, never from the rows it is scored on (calibrating on the rows scored would make the Brier
  score optimistic).

The price is fits: ``K`` outer folds each fit the classifier ``K`` times, and the final model ``K``
times, so ``K * (K + 1)`` fits against ``K + 1`` uncalibrated. Reusing the outer folds' models for
the final calibration would save them, but then the reported metrics would be those of a
calibration that had seen the scored rows.

>>> from sklearn.naive_bayes import GaussianNB
>>> from sklearn.pipeline import Pipeline
>>> from skfleet.train.config import TrainConfig
>>> config = TrainConfig.build(target="y", cv=3, calibrate="isotonic")
>>> model, prefix = calibrated(Pipeline([("model", GaussianNB())]), "model__", config,
...                            "classification")
>>> model.named_steps["model"].cv, prefix
(StratifiedKFold(n_splits=3, random_state=0, shuffle=True), 'model__estimator__')
"""

from __future__ import annotations

from typing import Any

from skfleet.errors import UsageError
from skfleet.train.config import TrainConfig


def run_splitter(config: TrainConfig) -> Any:
    """The plain scikit-learn splitter of the run's (stratified) folds; on the same target it
    gives the same folds as :func:`skfleet.train.cv.make_splits`, whatever ``X`` is."""
    from sklearn.model_selection import StratifiedKFold

    cv = config.cv
    random_state = cv.random_state if cv.shuffle else None
    return StratifiedKFold(n_splits=cv.folds, shuffle=cv.shuffle, random_state=random_state)


def calibrated(template: Any, prefix: str, config: TrainConfig, task: str) -> tuple[Any, str]:
    """``template`` with its ``model`` step calibrated as ``config.calibrate`` says, and the
    prefix that now reaches the classifier (``model__estimator__``); unchanged without it.

    A regressor, or a classifier with neither ``predict_proba`` nor ``decision_function``, is
    refused in one line.
    """
    if config.calibrate is None:
        return template, prefix
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline

    name, estimator = template.steps[-1]
    kind = type(estimator).__name__
    if task != "classification":
        raise UsageError(
            f"--calibrate calibrates a classifier's probabilities, and {kind} is a regressor"
        )
    if not (hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")):
        raise UsageError(
            f"--calibrate: {kind} has neither predict_proba nor decision_function to calibrate"
        )
    model = CalibratedClassifierCV(
        estimator, method=config.calibrate, cv=run_splitter(config), ensemble=True
    )
    return Pipeline([*template.steps[:-1], (name, model)]), f"{prefix}estimator__"


def calibration_summary(config: TrainConfig) -> dict[str, Any]:
    """What ``model.json`` records of the calibration.

    >>> calibration_summary(TrainConfig.build(target="y", cv=4, calibrate="sigmoid"))["folds"]
    4
    """
    return {
        "method": config.calibrate,
        "estimator": "sklearn.calibration.CalibratedClassifierCV",
        "folds": config.cv.folds,
        "cv": "the run's folds: the calibrator of each is fitted on its out-of-fold predictions",
        "ensemble": True,
        "oof_metrics": "nested: each outer fold calibrates on folds of its own training rows",
    }
