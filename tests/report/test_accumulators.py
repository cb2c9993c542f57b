"""Mergeable accumulators: merged over random splits equal one-shot results; they pickle."""

import pickle

import numpy as np
import pytest
from sklearn import metrics as skm

from skfleet.errors import DataError
from skfleet.metrics import (
    ClassificationAccumulator,
    RegressionAccumulator,
    classification_metrics,
    regression_metrics,
)
from tests.report.samples import classifier_output


def _random_chunks(n, rng, parts=7):
    """Row slices at random cut points, one of them possibly empty: partitions of any size."""
    cuts = np.sort(rng.integers(0, n + 1, parts - 1))
    bounds = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _merged(make, chunks, rng, *arrays):
    """Update one accumulator per chunk (pickled, as if on a worker) and merge in random order."""
    parts = []
    for chunk in chunks:
        acc = make().update(*(a[chunk] for a in arrays))
        parts.append(pickle.loads(pickle.dumps(acc)))
    order = rng.permutation(len(parts))
    total = make()
    for i in order:
        total.merge(parts[i])
    return total


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c", "d"]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_merged_equals_one_shot(classes, seed):
    rng = np.random.default_rng(seed)
    y, pred, proba = classifier_output(3000, classes, seed=seed + 10)
    chunks = _random_chunks(len(y), rng)
    merged = _merged(lambda: ClassificationAccumulator(classes), chunks, rng, y, pred, proba)
    whole = ClassificationAccumulator(classes).update(y, pred, proba)
    exact = classification_metrics(y, pred, proba, classes)
    got = merged.result()
    assert set(got) == set(exact)
    assert got["n"] == exact["n"] and got["accuracy"] == exact["accuracy"]
    assert got["confusion_matrix"] == exact["confusion_matrix"]
    assert got["log_loss"] == pytest.approx(exact["log_loss"], rel=1e-12)
    assert got["brier"] == pytest.approx(exact["brier"], rel=1e-12)
    # Histograms are integer counts: the split cannot change the AUC at all.
    assert got["roc_auc"] == whole.result()["roc_auc"]
    assert abs(got["roc_auc"] - exact["roc_auc"]) <= merged.roc_auc_error_bound()
    assert got["notes"] == []


def _scores(kind, n, rng):
    """Binary labels and scores shaped like different models' outputs."""
    y = rng.integers(0, 2, n)
    if kind == "uniform":
        return y, rng.random(n)
    if kind == "separable":
        return y, 1 / (1 + np.exp(-(rng.normal(size=n) * 3 + 8 * (y - 0.5))))
    if kind == "rare positives":
        y = (rng.random(n) < 0.01).astype(int)
        return y, 1 / (1 + np.exp(-(rng.normal(size=n) * 1.5 - 5 + 3 * y)))
    if kind == "beta":
        return y, np.where(y == 1, rng.beta(3, 2, n), rng.beta(2, 3, n))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["uniform", "separable", "rare positives", "beta"])
def test_histogram_auc_is_within_its_bound_of_sklearn(kind):
    # The tolerance is not a guess: pairs of a positive and a negative in different bins are
    # ordered exactly as their scores, and each same-bin pair counts 1/2 where the truth is 0, 1/2
    # or 1. So |error| <= half the share of same-bin pairs, which is what the bound reports; with
    # the default bins it must stay under 1e-3 for scores spread like these.
    rng = np.random.default_rng(42)
    y, score = _scores(kind, 50_000, rng)
    acc = ClassificationAccumulator([0, 1]).update(y, None, score)
    exact = skm.roc_auc_score(y, score)
    bound = acc.roc_auc_error_bound()
    assert abs(acc.result()["roc_auc"] - exact) <= bound
    assert bound < 1e-3
    assert acc.result()["notes"] == []


def test_crowded_scores_say_the_auc_is_approximate():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 5000)
    score = 0.5 + 1e-4 * rng.random(5000) + 1e-5 * y  # all in one bin
    acc = ClassificationAccumulator([0, 1]).update(y, None, score)
    result = acc.result()
    assert abs(result["roc_auc"] - skm.roc_auc_score(y, score)) <= acc.roc_auc_error_bound()
    assert any("roc_auc is approximate" in note for note in result["notes"])


def test_accumulator_undefined_cases_match_one_shot_notes():
    proba = np.array([[0.8, 0.2], [0.3, 0.7]])
    acc = ClassificationAccumulator(["no", "yes"]).update(["no", "no"], ["no", "yes"], proba)
    one_shot = classification_metrics(["no", "no"], ["no", "yes"], proba, ["no", "yes"])
    assert acc.result()["roc_auc"] is None and acc.result()["notes"] == one_shot["notes"]
    # Probabilities for only some partitions: no silent average over a subset.
    acc.update(["yes"], ["yes"])
    assert acc.result()["log_loss"] is None
    assert "probabilities were given for 2 of 3 rows" in acc.result()["notes"][0]


def test_accumulator_refuses_foreign_labels_and_mismatched_merges():
    acc = ClassificationAccumulator(["no", "yes"])
    with pytest.raises(DataError, match="predicted label 'maybe'"):
        acc.update(["no"], ["maybe"])
    with pytest.raises(ValueError, match="different classes"):
        acc.merge(ClassificationAccumulator(["no", "yes", "maybe"]))


@pytest.mark.parametrize("offset", [0.0, 1e9])
def test_regression_merged_equals_sklearn(offset):
    # A large offset (epoch seconds, say) with small spread: sum(y**2) - sum(y)**2 / n would lose
    # every digit; the pairwise merge must not.
    rng = np.random.default_rng(int(offset) % 7)
    y = offset + rng.normal(0, 3, 5000)
    pred = y + rng.normal(0, 1, 5000)
    merged = _merged(RegressionAccumulator, _random_chunks(len(y), rng), rng, y, pred)
    got, exact = merged.result(), regression_metrics(y, pred)
    assert got["n"] == exact["n"] and got["notes"] == []
    for key in ("r2", "rmse", "mae"):
        assert got[key] == pytest.approx(exact[key], rel=1e-9)


def test_regression_accumulator_constant_target_and_empty():
    assert RegressionAccumulator().result()["n"] == 0
    acc = RegressionAccumulator().update([2.0, 2.0], [1.0, 3.0])
    assert acc.result() == regression_metrics([2.0, 2.0], [1.0, 3.0])


def test_accumulators_pickle_mid_stream():
    y, pred, proba = classifier_output(400, ["a", "b", "c"], seed=9)
    acc = ClassificationAccumulator(["a", "b", "c"]).update(y[:200], pred[:200], proba[:200])
    restored = pickle.loads(pickle.dumps(acc))
    restored.update(y[200:], pred[200:], proba[200:])
    acc.update(y[200:], pred[200:], proba[200:])
    assert restored.result() == acc.result()
    reg = RegressionAccumulator().update([1.0, 2.0], [1.5, 2.5])
    assert pickle.loads(pickle.dumps(reg)).result() == reg.result()


@pytest.mark.parametrize(
    "labels, classes",
    [
        (np.array([True, False, True]), [False, True]),
        (np.array([True, False, True]), [True, False]),  # unsorted: the general lookup
        (np.array([3, 1, 2, 3]), [1, 2, 3]),
        (np.array([2.0, 0.0]), [0, 1, 2]),
        (np.array(["b", "a"], dtype=object), ["a", "b"]),
    ],
)
def test_label_codes_match_the_general_lookup(labels, classes):
    from skfleet.metrics.labels import encode_labels

    expected = [list(classes).index(v) for v in labels.tolist()]
    assert encode_labels(labels, classes, "target label").tolist() == expected


@pytest.mark.parametrize("labels", [np.array([1, 4]), np.array([0.5]), np.array([np.nan])])
def test_numeric_label_outside_the_classes_is_named(labels):
    from skfleet.metrics.labels import encode_labels

    with pytest.raises(DataError, match="target label .* is not one of the model's classes"):
        encode_labels(labels, [0, 1, 2, 3], "target label")
