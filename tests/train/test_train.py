"""``skfleet.train``: CV with out-of-fold predictions, model.json, store round trips, engines."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skfleet.errors import DataError, MissingColumnError, SkfleetError, UsageError
from skfleet.features import TableEncoder
from skfleet.store import ModelStore
from skfleet.train import CVConfig, TrainConfig, train
from tests.train.data import Recorder, classification_table, regression_table, write

MODEL_JSON_KEYS = {
    "kind", "task", "target", "classes", "label_type", "key_columns", "input_columns",
    "features", "estimator", "metrics", "rows", "source",
}  # fmt: skip


def test_classifier_model_json_oof_and_reload(tmp_path):
    table = classification_table(300)
    path = write(table, tmp_path)
    store = str(tmp_path / "models")
    result = train(
        "logistic",
        path,
        target="label",
        keys=["id"],
        cv=3,
        name="late",
        store=store,
        report=False,
    )
    assert (result.name, result.version) == ("late", 1)
    meta = ModelStore(store).metadata("late@1")
    assert set(meta) >= MODEL_JSON_KEYS
    assert meta["kind"] == "batch" and meta["task"] == "classification"
    assert meta["classes"] == ["late", "on_time"] and meta["label_type"] == "string"
    assert meta["key_columns"] == ["id"]
    assert sorted(meta["input_columns"]) == ["city", "x", "z"]  # key and target are not inputs
    assert meta["estimator"]["class"].endswith("LogisticRegression")
    assert meta["estimator"]["params"]["max_iter"] == 1000
    assert meta["rows"] == {"train": 300, "dropped_missing_target": 0}
    assert meta["source"] == path
    assert len(meta["metrics"]["folds"]) == 3
    assert sum(f["rows"] for f in meta["metrics"]["folds"]) == 300
    assert meta["main_metric"]["name"] == "roc_auc"

    oof = pq.read_table(ModelStore(store).local_path("late", "oof.parquet"))
    assert oof.column_names == ["id", "fold", "y_true", "prediction", "proba_late", "proba_on_time"]
    assert sorted(oof["id"].to_pylist()) == list(range(300))
    assert oof["y_true"].to_pylist() == table["label"].to_pylist()
    assert sorted(set(oof["fold"].to_pylist())) == [0, 1, 2]
    proba = np.column_stack([oof["proba_late"].to_numpy(), oof["proba_on_time"].to_numpy()])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    expected_pred = np.array(["late", "on_time"], dtype=object)[proba.argmax(axis=1)]
    assert oof["prediction"].to_pylist() == expected_pred.tolist()
    # The stored metrics are those of the stored predictions.
    accuracy = np.mean(
        np.array(oof["prediction"].to_pylist()) == np.array(oof["y_true"].to_pylist())
    )
    assert meta["metrics"]["overall"]["accuracy"] == pytest.approx(accuracy)
    # Stratified: every fold holds the classes in the overall proportion (to one row).
    late_share = np.mean(np.array(table["label"].to_pylist()) == "late")
    for fold in range(3):
        labels = np.array(oof.filter(pc.equal(oof["fold"], fold))["y_true"].to_pylist())
        assert abs(np.mean(labels == "late") - late_share) <= 1.5 / len(labels)

    loaded = ModelStore(store).load("late")
    assert isinstance(loaded.model, Pipeline)
    features = table.select(["x", "z", "city"])
    np.testing.assert_array_equal(loaded.model.predict(features), result.model.predict(features))
    # The final model was fitted on every row, not on a fold.
    assert loaded.model.named_steps["encode"].contract_.n_rows == 300


def test_encoder_is_fitted_inside_each_fold():
    """Each fold's predictions come from an encoder that never saw that fold's held-out rows."""
    rng = np.random.default_rng(3)
    n = 120
    # A skewed feature: its mean and scale (learnt by the encoder) differ noticeably between folds.
    x = rng.lognormal(sigma=1.5, size=n)
    table = pa.table({"x": x, "y": (x + rng.normal(size=n) > 2).astype(np.int64)})
    result = train(LogisticRegression(C=0.1), table, target="y", cv=3, report=False)
    oof_proba = result.oof["proba_1"].to_numpy()
    fold = result.oof["fold"].to_numpy()
    X, y = table.select(["x"]), table["y"].to_numpy()
    template = Pipeline([("encode", TableEncoder()), ("model", LogisticRegression(C=0.1))])
    for k in range(3):
        train_rows, test_rows = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        honest = clone(template).fit(X.take(train_rows), y[train_rows])
        expected = honest.predict_proba(X.take(test_rows))[:, 1]
        np.testing.assert_allclose(oof_proba[test_rows], expected, rtol=1e-6)
        # An encoder fitted on all rows would have given other probabilities: the check has teeth.
        leaky_encoder = TableEncoder().fit(X)
        leaky_model = LogisticRegression(C=0.1).fit(
            leaky_encoder.transform(X.take(train_rows)), y[train_rows]
        )
        leaky = leaky_model.predict_proba(leaky_encoder.transform(X.take(test_rows)))[:, 1]
        assert not np.allclose(oof_proba[test_rows], leaky, rtol=1e-6)


def test_regression_with_missing_targets_dropped_and_counted(tmp_path):
    table = regression_table(200)
    y = table["y"].to_numpy().copy()
    y[[3, 50]] = np.nan
    target = pa.array(y).to_pylist()
    target[7] = None  # an Arrow null as well as two NaNs
    table = table.set_column(3, "y", pa.array(target, pa.float64()))
    result = train("ridge", table, target="y", keys=["id"], cv=4, report=False)
    meta = result.metadata
    assert meta["rows"] == {"train": 197, "dropped_missing_target": 3}
    assert meta["task"] == "regression" and meta["classes"] is None
    assert meta["label_type"] == "double"
    assert set(meta["metrics"]["overall"]) >= {"r2", "rmse", "mae"}
    assert result.oof_table.column_names == ["id", "fold", "y_true", "prediction"]
    assert result.oof_table.schema.field("prediction").type == pa.float64()
    assert not {3, 7, 50} & set(result.oof_table["id"].to_pylist())
    with pytest.raises(DataError, match="target column 'y' is missing in 3 of 200 rows"):
        train("ridge", table, target="y", keys=["id"], cv=4, report=False, missing_target="error")


def test_dask_result_equals_in_process_result(dask_engine):
    table = classification_table(400, seed=5)
    options = {"target": "label", "keys": ["id"], "cv": 4, "report": False}
    here = train("logistic", table, engine="local", **options)
    recorder = Recorder()
    there = train("logistic", table, engine=dask_engine, progress=recorder, **options)
    assert there.metadata["engine"].startswith("dask:local")
    assert there.oof_table["prediction"].to_pylist() == here.oof_table["prediction"].to_pylist()
    for column in ("proba_late", "proba_on_time"):
        np.testing.assert_allclose(
            there.oof[column].to_numpy(), here.oof[column].to_numpy(), rtol=1e-12
        )
    assert there.oof_table["fold"].equals(here.oof_table["fold"])
    for a, b in zip(there.metrics["folds"], here.metrics["folds"], strict=True):
        assert a["roc_auc"] == pytest.approx(b["roc_auc"], rel=1e-12)
        assert a["confusion_matrix"] == b["confusion_matrix"]
    assert there.metrics["overall"]["log_loss"] == pytest.approx(
        here.metrics["overall"]["log_loss"], rel=1e-12
    )
    # The final model is fitted on a worker, alongside the folds, and equals the in-process one.
    features = table.drop_columns(["label"])
    np.testing.assert_allclose(
        there.model.predict_proba(features), here.model.predict_proba(features), rtol=1e-12
    )
    # Fits finished on Dask workers are counted on the client.
    assert [(p[0], p[2]) for p in recorder.phases] == [("cross-validation and final fit", 5)]
    assert any("dashboard" in n for n in recorder.notes)


def test_grid_search_picks_the_best_candidate_on_dask(dask_engine, tmp_path):
    table = classification_table(300, seed=2)
    recorder = Recorder()
    grid = {"C": [0.001, 1.0, 100.0], "fit_intercept": [True, False]}
    result = train(
        "logistic",
        table,
        target="label",
        keys=["id"],
        cv=3,
        search={"method": "grid", "grid": grid},
        engine=dask_engine,
        progress=recorder,
        name="searched",
        store=str(tmp_path / "m"),
        report=False,
    )
    search = result.metadata["search"]
    assert search["method"] == "grid" and search["scoring"] == "roc_auc"
    assert search["n_candidates"] == 6 and len(search["cv_results"]) == 6
    best = max(search["cv_results"], key=lambda r: r["mean_test_score"])
    assert search["best_params"] == best["params"]
    assert search["cv_results"][0]["rank"] == 1
    assert set(search["best_params"]) == {"C", "fit_intercept"}  # no pipeline prefix
    model = result.model.named_steps["model"]
    assert search["best_params"]["C"] == model.C
    assert result.metadata["estimator"]["params"]["C"] == search["best_params"]["C"]
    assert any("optimistic" in n for n in result.metadata["notes"])
    # 6 candidates x 3 folds + the refit, then 3 CV fits; no separate final fit.
    assert [(p[0], p[2]) for p in recorder.phases] == [("search", 19), ("cross-validation", 3)]
    # Each phase counts the table's rows once, not once per fit.
    assert recorder.rows == [300, 300]
    stored = ModelStore(str(tmp_path / "m")).metadata("searched")
    assert stored["search"]["best_params"] == search["best_params"]
    json.dumps(stored)


@pytest.mark.parametrize("method", ["random", "halving"])
def test_random_and_halving_search(method):
    table = regression_table(300)
    search = {"method": method, "grid": {"alpha": [0.01, 0.1, 1.0, 10.0]}, "n_iter": 2}
    result = train("ridge", table, target="y", keys=["id"], cv=3, search=search, report=False)
    summary = result.metadata["search"]
    assert summary["method"] == method and summary["scoring"] == "r2"
    assert summary["best_params"]["alpha"] in (0.01, 0.1, 1.0, 10.0)
    assert result.model.named_steps["model"].alpha == summary["best_params"]["alpha"]
    if method == "random":
        assert summary["n_candidates"] == 2
    else:
        assert {"iter", "n_resources"} <= set(summary["cv_results"][0])


def test_user_pipeline_goes_after_the_encoder():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge

    user = Pipeline([("pca", PCA(n_components=2)), ("ridge", Ridge())])
    table = regression_table(150)
    result = train(
        user,
        table,
        target="y",
        keys=["id"],
        cv=3,
        params={"ridge__alpha": 0.5},
        search={"grid": {"pca__n_components": [1, 2]}},
        report=False,
    )
    assert [name for name, _ in result.model.steps] == ["encode", "model"]
    assert result.model.named_steps["model"].named_steps["ridge"].alpha == 0.5
    assert set(result.metadata["search"]["best_params"]) == {"pca__n_components"}


def test_no_cross_validation_still_fits_and_stores(tmp_path):
    from pathlib import Path

    path = Path(write(regression_table(100), tmp_path))  # a path object works as a source too
    result = train(
        "ridge",
        path,
        target="y",
        keys=["id"],
        cv=0,
        name="plain",
        store=str(tmp_path / "models"),
        report=False,
    )
    assert result.oof is None and result.metrics == {}
    meta = ModelStore(str(tmp_path / "models")).metadata("plain")
    assert "oof.parquet" not in meta["files"] and "main_metric" not in meta
    assert meta["rows"]["train"] == 100 and meta["source"] == str(path)


def test_bad_input_stops_before_anything_is_stored(tmp_path):
    table = classification_table(60)
    store = tmp_path / "models"
    cases = [
        (MissingColumnError, "target column 'nope' is missing", {"target": "nope"}),
        (MissingColumnError, "--key column 'ident' is missing", {"keys": ["ident"]}),
        (UsageError, "LogisticRegression has no parameter 'depth'", {"params": {"depth": 3}}),
        (UsageError, "--grid depth: LogisticRegression", {"search": {"grid": {"depth": [1]}}}),
        (UsageError, "clashes with an output column", {"keys": ["fold"]}),
        (
            UsageError,
            "column 'x' is given both as --key and --exclude",
            {"keys": ["x"], "exclude": ["x"]},
        ),
        (UsageError, "--cv must be 0", {"cv": 1}),
        (UsageError, "model name 'a/b' is not allowed", {"name": "a/b"}),
        (UsageError, "model name '..' is not allowed", {"name": ".."}),
    ]
    for error, message, override in cases:
        options = {"target": "label", "name": "ok", "report": False, **override}
        with pytest.raises(error, match=message):
            train("logistic", table, store=str(store), **options)
    assert not store.exists() or ModelStore(str(store)).names() == []


def test_target_checks():
    table = classification_table(60)
    with pytest.raises(DataError, match="single class \\('late'\\)"):
        train("logistic", table.filter(pc.equal(table["label"], "late")), target="label")
    with pytest.raises(DataError, match="holds continuous values"):
        train("logistic", table, target="x")
    with pytest.raises(DataError, match="is string, not numeric"):
        train("ridge", table, target="label")
    constant = table.set_column(1, "x", pa.array([2.5] * 60))
    with pytest.raises(DataError, match="constant \\(2.5 in every row\\)"):
        train("ridge", constant, target="x")
    empty = table.set_column(1, "x", pa.nulls(60, pa.float64()))
    with pytest.raises(DataError, match="no values"):
        train("ridge", empty, target="x")
    with pytest.raises(UsageError, match="neither a classifier nor a regressor"):
        train("sklearn.cluster.KMeans", table, target="label")


def test_unwritable_store_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SkfleetError, match="is not writable"):
        train(
            "logistic",
            classification_table(60),
            target="label",
            name="m",
            store=str(blocker / "models"),
            report=False,
        )
    assert blocker.read_text() == "not a folder"


def test_config_object_and_overrides():
    config = TrainConfig(target="label", keys=("id",), cv=CVConfig(folds=2, random_state=7))
    result = train("logistic", classification_table(80), config=config, report=False)
    assert result.metadata["cv"] == {
        "folds": 2,
        "stratified": True,
        "shuffle": True,
        "random_state": 7,
    }
    again = train("logistic", classification_table(80), config=config, cv=3, report=False)
    assert again.metadata["cv"]["folds"] == 3


def test_the_table_travels_to_the_cluster_once_per_run(dask_engine):
    """Search rounds and CV reuse one upload of the table (joblib alone would resend it)."""
    table = classification_table(3000, seed=4)
    client = dask_engine.client
    scattered: list[object] = []
    original = client.scatter

    def spy(data, *args, **kwargs):
        scattered.extend(data if isinstance(data, list) else [data])
        return original(data, *args, **kwargs)

    client.scatter = spy
    try:
        result = train(
            "logistic",
            table,
            target="label",
            keys=["id"],
            cv=3,
            engine=dask_engine,
            search={"method": "halving", "grid": {"C": [0.01, 0.1, 1.0, 10.0]}},
            report=False,
        )
    finally:
        del client.scatter  # back to the class's method
    assert result.metadata["search"]["method"] == "halving"
    assert max(r["iter"] for r in result.metadata["search"]["cv_results"]) >= 1  # several rounds
    tables = [obj for obj in scattered if isinstance(obj, pa.Table)]
    assert len(tables) == 1 and tables[0].num_rows == 3000
    targets = [obj for obj in scattered if isinstance(obj, np.ndarray) and len(obj) == 3000]
    assert len(targets) == 1
