"""One-shot metrics against scikit-learn computed here, and the undefined cases."""

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from skfleet.errors import DataError
from skfleet.metrics import classification_metrics, regression_metrics
from tests.report.samples import classifier_output


def test_binary_matches_sklearn():
    classes = ["no", "yes"]
    y, pred, proba = classifier_output(500, classes, seed=1)
    m = classification_metrics(y, pred, proba, classes)
    assert m["accuracy"] == skm.accuracy_score(y, pred)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", proba[:, 1]), rel=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes), rel=1e-12)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y == "yes", proba[:, 1]), rel=1e-12)
    assert m["confusion_matrix"] == {
        "labels": classes,
        "matrix": skm.confusion_matrix(y, pred, labels=classes).tolist(),
    }
    assert m["n"] == 500 and m["notes"] == []


def test_multiclass_matches_sklearn():
    classes = [3, 7, 11]
    y, pred, proba = classifier_output(600, classes, seed=2)
    y, pred = y.astype(np.int64), pred.astype(np.int64)
    m = classification_metrics(y, pred, proba, np.array(classes))
    auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    assert m["roc_auc"] == pytest.approx(auc, rel=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes), rel=1e-12)
    # Mean over classes of the one-vs-rest Brier = sklearn's multiclass Brier / number of classes.
    brier = skm.brier_score_loss(y, proba, labels=classes) / len(classes)
    assert m["brier"] == pytest.approx(brier, rel=1e-12)
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred, labels=classes).tolist()
    # Labels come back as plain ints, so the dict is JSON as it stands.
    assert json.loads(json.dumps(m)) == m


def test_class_order_follows_the_estimator_not_sorting():
    y, pred, proba = classifier_output(300, ["a", "b", "c"], seed=3)
    forward = classification_metrics(y, pred, proba, ["a", "b", "c"])
    reordered = classification_metrics(y, pred, proba[:, [2, 0, 1]], ["c", "a", "b"])
    for key in ("accuracy", "roc_auc", "log_loss", "brier"):
        assert reordered[key] == pytest.approx(forward[key], rel=1e-12)
    assert reordered["confusion_matrix"]["labels"] == ["c", "a", "b"]


def test_y_pred_defaults_to_most_probable_class():
    y, _, proba = classifier_output(200, ["a", "b", "c"], seed=4)
    m = classification_metrics(y, None, proba, ["a", "b", "c"])
    assert m["accuracy"] == skm.accuracy_score(y, np.array(["a", "b", "c"])[proba.argmax(axis=1)])


def test_one_class_present_gives_none_auc_with_a_note():
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    m = classification_metrics(["no"] * 3, ["no", "yes", "no"], proba, ["no", "yes"])
    assert m["roc_auc"] is None
    assert m["notes"] == ["roc_auc undefined: only class 'no' is present in y_true"]
    assert m["log_loss"] == pytest.approx(skm.log_loss(["no"] * 3, proba, labels=["no", "yes"]))


def test_multiclass_with_an_absent_class_averages_the_others():
    y, pred, proba = classifier_output(400, ["a", "b", "c"], seed=5)
    keep = y != "c"
    m = classification_metrics(y[keep], pred[keep], proba[keep], ["a", "b", "c"])
    expected = np.mean(
        [skm.roc_auc_score(y[keep] == c, proba[keep, i]) for i, c in enumerate("ab")]
    )
    assert m["roc_auc"] == pytest.approx(expected, rel=1e-12)
    assert "macro average over 2 of 3 classes" in m["notes"][0] and "'c'" in m["notes"][0]


def test_without_proba_only_label_metrics():
    m = classification_metrics(["a", "b"], ["a", "a"], None, ["a", "b"])
    assert (m["accuracy"], m["roc_auc"], m["log_loss"], m["brier"]) == (0.5, None, None, None)
    assert "no probabilities" in m["notes"][0]


def test_label_outside_classes_is_a_data_error_naming_it():
    with pytest.raises(DataError, match=r"target label 'maybe' is not one of the model's classes"):
        classification_metrics(["yes", "maybe"], ["yes", "no"], None, ["no", "yes"])


def test_no_rows():
    m = classification_metrics([], [], np.zeros((0, 2)), ["a", "b"])
    assert (
        m["n"] == 0
        and m["accuracy"] is None
        and m["confusion_matrix"]["matrix"] == [[0, 0], [0, 0]]
    )


def test_regression_matches_sklearn():
    rng = np.random.default_rng(6)
    y = rng.normal(100, 15, 400)
    pred = y + rng.normal(0, 5, 400)
    m = regression_metrics(y, pred)
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), rel=1e-12)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-12)
    assert m["n"] == 400
    assert json.loads(json.dumps(m)) == m


def test_regression_undefined_and_bad_input():
    assert regression_metrics([5.0, 5.0], [4.0, 6.0])["r2"] is None
    assert regression_metrics([], [])["n"] == 0
    with pytest.raises(DataError, match="regression prediction contains NaN"):
        regression_metrics([1.0, 2.0], [1.0, float("nan")])
