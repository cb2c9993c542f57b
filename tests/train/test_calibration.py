"""``--calibrate sigmoid|isotonic``: a miscalibrated classifier (Gaussian naive Bayes on
near-duplicate features, which counts the same evidence six times) gets a lower Brier score on
held-out rows; the stored model is scikit-learn's ``CalibratedClassifierCV`` on the run's folds,
scores with ``skfleet predict`` without ``--trust``, and its out-of-fold predictions are nested."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from skfleet.cli import main
from skfleet.features import TableEncoder
from skfleet.store import ModelStore
from skfleet.train import CVConfig, train
from skfleet.train.cv import make_splits
from tests.train.data import regression_table, write

NB = "sklearn.naive_bayes.GaussianNB"
FEATURES = [f"x{i}" for i in range(6)]


def redundant(n: int, seed: int) -> pa.Table:
    """Six noisy copies of one signal: naive Bayes multiplies their evidence, so it is
    overconfident (probabilities piled near 0 and 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    columns = {"id": np.arange(n)}
    columns |= {name: x + rng.normal(scale=0.3, size=n) for name in FEATURES}
    columns["late"] = np.where(x + rng.normal(size=n) > 0, "late", "on_time")
    return pa.table(columns)


def brier(y: np.ndarray, p_on_time: np.ndarray) -> float:
    return skm.brier_score_loss(y == "on_time", p_on_time)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same table trained plain and with each method, stored, with a fresh table to score."""
    folder = tmp_path_factory.mktemp("calibration")
    store = str(folder / "models")
    table = redundant(600, seed=0)
    results = {
        method: train(
            NB,
            table,
            "late",
            keys=["id"],
            cv=5,
            calibrate=method,
            name=f"nb-{method}",
            store=store,
            report=False,
        )  # fmt: skip
        for method in (None, "sigmoid", "isotonic")
    }
    fresh = redundant(3000, seed=1)
    return table, results, store, fresh, write(fresh, folder, "fresh.parquet")


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_lowers_the_brier_score_on_held_out_rows(runs, method):
    _, results, store, fresh, _ = runs
    plain, calibrated = results[None], results[method]
    # Out of fold (each outer fold's calibration never saw the rows it scores) ...
    assert calibrated.metrics["overall"]["brier"] < plain.metrics["overall"]["brier"] - 0.01
    assert calibrated.metrics["overall"]["log_loss"] < plain.metrics["overall"]["log_loss"]
    # ... and on rows neither model was trained on.
    y = fresh["late"].to_numpy(zero_copy_only=False)
    models = ModelStore(store)
    p_plain = models.load("nb-None").model.predict_proba(fresh)[:, 1]
    p_calibrated = models.load(f"nb-{method}").model.predict_proba(fresh)[:, 1]
    assert brier(y, p_calibrated) < brier(y, p_plain) - 0.01


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_predict_equals_calibrated_classifier_cv_refit_by_hand_on_the_run_folds(
    runs, tmp_path, method
):
    table, results, store, fresh, fresh_path = runs
    meta = ModelStore(store).metadata(f"nb-{method}")
    assert meta["calibration"]["method"] == method and meta["calibration"]["folds"] == 5
    assert meta["estimator"]["class"] == "sklearn.naive_bayes.GaussianNB"
    assert meta["input_columns"] == FEATURES
    out = tmp_path / "scores.parquet"
    args = ["predict", f"nb-{method}", fresh_path, "--store", store, "--out", str(out),
            "--key", "id", "--engine", "local"]  # fmt: skip
    result = CliRunner().invoke(main, args)  # no --trust: the model loads on the allowed lists
    assert result.exit_code == 0, result.stderr
    scores = pq.read_table(out).sort_by("id")

    # By hand: the stored encoder's features, and CalibratedClassifierCV on the run's folds.
    encoder = ModelStore(store).load(f"nb-{method}").model[:-1]
    y = table["late"].to_numpy(zero_copy_only=False)
    folds = make_splits("classification", CVConfig(folds=5), y)
    by_hand = CalibratedClassifierCV(GaussianNB(), method=method, cv=folds)
    by_hand.fit(encoder.transform(table), y)
    expected = by_hand.predict_proba(encoder.transform(fresh))
    np.testing.assert_allclose(scores["proba_late"].to_numpy(), expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(scores["proba_on_time"].to_numpy(), expected[:, 1], atol=1e-12)
    assert scores["prediction"].to_pylist() == by_hand.classes_[expected.argmax(1)].tolist()


def test_out_of_fold_predictions_are_nested(runs):
    """Each outer fold is a whole calibrated pipeline fitted on that fold's training rows only."""
    table, results, _, _, _ = runs
    result = results["isotonic"]
    y = table["late"].to_numpy(zero_copy_only=False)
    oof = result.oof
    features = table.select(FEATURES)
    for i, (train_rows, test_rows) in enumerate(
        make_splits("classification", CVConfig(folds=5), y)
    ):
        inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        model = Pipeline(
            [
                ("encode", TableEncoder()),
                ("model", CalibratedClassifierCV(GaussianNB(), method="isotonic", cv=inner)),
            ]
        ).fit(features.take(train_rows), y[train_rows])
        expected = model.predict_proba(features.take(test_rows))[:, 1]
        assert (oof["fold"].to_numpy()[test_rows] == i).all()
        np.testing.assert_allclose(oof["proba_on_time"].to_numpy()[test_rows], expected)


def test_calibrated_and_weighted_dask_equals_in_process(dask_engine):
    table = redundant(300, seed=2)
    rng = np.random.default_rng(0)
    table = table.append_column("w", pa.array(rng.choice([0.5, 1.0, 3.0], size=300)))
    options = {"keys": ["id"], "cv": 3, "calibrate": "sigmoid", "weight": "w", "report": False}
    here = train(NB, table, "late", engine="local", **options)
    there = train(NB, table, "late", engine=dask_engine, **options)
    np.testing.assert_allclose(
        there.oof["proba_late"].to_numpy(), here.oof["proba_late"].to_numpy(), rtol=1e-12
    )
    assert there.metrics["overall"]["brier"] == pytest.approx(here.metrics["overall"]["brier"])
    # The weights reach both the naive Bayes fits and the calibrators.
    encoder = here.model[:-1]
    y = table["late"].to_numpy(zero_copy_only=False)
    folds = make_splits("classification", CVConfig(folds=3), y)
    by_hand = CalibratedClassifierCV(GaussianNB(), method="sigmoid", cv=folds)
    by_hand.fit(encoder.transform(table), y, sample_weight=table["w"].to_numpy())
    np.testing.assert_allclose(
        there.model.predict_proba(table), by_hand.predict_proba(encoder.transform(table))
    )


BAD = [
    ("regression", ["--model", "ridge", "--calibrate", "sigmoid"],
     "--calibrate calibrates a classifier's probabilities, and Ridge is a regressor"),
    ("classification", ["--model", NB, "--calibrate", "isotonic", "--cv", "0"],
     "--calibrate fits its calibration on the run's folds: use --cv 2 or more"),
    ("classification", ["--model", NB, "--calibrate", "isotonic", "--group-by", "x0"],
     "--calibrate cannot be combined with --group-by"),
    ("classification", ["--model", NB, "--calibrate", "platt"], "Invalid value for '--calibrate'"),
    ("classification", ["--model", "sklearn.cluster.KMeans", "--calibrate", "sigmoid"],
     "KMeans is neither a classifier nor a regressor"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "flags", "message"), BAD)
def test_bad_calibrate_is_one_line_exit_2_and_nothing_stored(tmp_path, kind, flags, message):
    table = redundant(60, seed=3) if kind == "classification" else regression_table(60)
    path = write(table, tmp_path)
    store = tmp_path / "models"
    target = "late" if kind == "classification" else "y"
    args = ["train", path, "--target", target, "--key", "id", "--cv", "3",
            "--name", "m", "--store", str(store), "--no-report"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, *flags])  # a later --cv wins
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not store.exists() or ModelStore(str(store)).names() == []


def test_cli_json_names_the_calibration(tmp_path):
    path = write(redundant(150, seed=4), tmp_path)
    args = ["train", path, "--target", "late", "--model", NB, "--key", "id", "--cv", "3",
            "--calibrate", "isotonic", "--store", str(tmp_path / "m"), "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["calibration"] == "isotonic" and summary["weight"] is None
    assert summary["report"].endswith("report.html")
