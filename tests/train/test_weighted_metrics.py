"""Weighted metrics: the one-shot functions equal scikit-learn's weighted metrics, and the
mergeable accumulators, updated with weights partition by partition and merged in any order,
equal them too (ROC AUC within its histogram bound)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn import metrics as skm

from skfleet.metrics import (
    ClassificationAccumulator,
    RegressionAccumulator,
    classification_metrics,
    regression_metrics,
)
from tests.report.samples import classifier_output


def _chunks(n: int, rng, parts: int = 6) -> list[slice]:
    cuts = np.sort(rng.integers(0, n + 1, parts - 1))
    bounds = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _merged(make, rng, n, *arrays, weight):
    parts = []
    for chunk in _chunks(n, rng):
        acc = make().update(*(a[chunk] for a in arrays), sample_weight=weight[chunk])
        parts.append(pickle.loads(pickle.dumps(acc)))  # as if from a worker
    total = make()
    for i in rng.permutation(len(parts)):
        total.merge(parts[i])
    return total.result()


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c"]])
def test_weighted_classification_equals_sklearn_one_shot_and_merged(classes):
    rng = np.random.default_rng(4)
    y, pred, proba = classifier_output(3000, classes, seed=7)
    w = rng.choice([0.0, 0.5, 1.0, 4.0], size=len(y))
    codes = np.searchsorted(classes, y)
    expected = {
        "accuracy": skm.accuracy_score(y, pred, sample_weight=w),
        "log_loss": skm.log_loss(codes, proba, labels=range(len(classes)), sample_weight=w),
    }
    if len(classes) == 2:
        expected["roc_auc"] = skm.roc_auc_score(codes == 1, proba[:, 1], sample_weight=w)
        expected["brier"] = skm.brier_score_loss(codes == 1, proba[:, 1], sample_weight=w)
    else:
        onehot = np.eye(len(classes))[codes]
        expected["roc_auc"] = np.mean(
            [skm.roc_auc_score(onehot[:, c], proba[:, c], sample_weight=w) for c in range(3)]
        )
        expected["brier"] = np.mean(
            [skm.brier_score_loss(onehot[:, c], proba[:, c], sample_weight=w) for c in range(3)]
        )
    one_shot = classification_metrics(y, pred, proba, classes, sample_weight=w)
    merged = _merged(lambda: ClassificationAccumulator(classes), rng, len(y), y, pred, proba,
                     weight=w)  # fmt: skip
    for key, value in expected.items():
        assert one_shot[key] == pytest.approx(value, rel=1e-12), key
        tolerance = 2e-3 if key == "roc_auc" else 1e-12
        assert merged[key] == pytest.approx(value, rel=tolerance, abs=tolerance), key
    assert merged["n"] == one_shot["n"] == len(y)
    assert merged["confusion_matrix"] == one_shot["confusion_matrix"]  # rows, not weights
    unweighted = classification_metrics(y, pred, proba, classes)
    assert one_shot["log_loss"] != pytest.approx(unweighted["log_loss"], rel=1e-6)


def test_weighted_regression_equals_sklearn_one_shot_and_merged():
    rng = np.random.default_rng(5)
    t = 1e6 + rng.normal(size=2000)  # a large offset: the merge of deviations must stay stable
    p = t + rng.normal(scale=0.3, size=2000)
    w = rng.choice([0.0, 0.5, 2.0], size=2000)
    expected = {
        "r2": skm.r2_score(t, p, sample_weight=w),
        "rmse": np.sqrt(skm.mean_squared_error(t, p, sample_weight=w)),
        "mae": skm.mean_absolute_error(t, p, sample_weight=w),
    }
    one_shot = regression_metrics(t, p, sample_weight=w)
    merged = _merged(RegressionAccumulator, rng, len(t), t, p, weight=w)
    for key, value in expected.items():
        assert one_shot[key] == pytest.approx(value, rel=1e-12), key
        assert merged[key] == pytest.approx(value, rel=1e-9), key


def test_unweighted_accumulators_are_unchanged_and_zero_weights_say_so():
    y, pred, proba = classifier_output(500, ["no", "yes"], seed=1)
    acc = ClassificationAccumulator(["no", "yes"]).update(y, pred, proba).result()
    exact = classification_metrics(y, pred, proba, ["no", "yes"])
    assert acc["accuracy"] == exact["accuracy"] and acc["notes"] == exact["notes"]
    assert acc["log_loss"] == pytest.approx(exact["log_loss"], rel=1e-12)
    zero = ClassificationAccumulator(["no", "yes"]).update(y, pred, proba, sample_weight=[0] * 500)
    assert zero.result()["accuracy"] is None
    assert "every sample weight is 0" in zero.result()["notes"][-1]
    none = regression_metrics([1.0, 2.0], [1.0, 3.0], sample_weight=[0, 0])
    assert none["rmse"] is None and none["n"] == 2
