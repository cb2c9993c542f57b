"""``--weight COL``: the fitted model equals scikit-learn's ``fit(..., sample_weight=...)``, the
out-of-fold metrics equal scikit-learn's weighted metrics, and every bad weight column is one line,
exit 2, nothing stored."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression, Ridge

from skfleet.cli import main
from skfleet.store import ModelStore
from skfleet.train import train
from tests.train.data import classification_table, regression_table, write


def weighted(table: pa.Table, seed: int = 3, zeros: int = 0) -> pa.Table:
    """``table`` with a column ``w`` of uneven weights (the first ``zeros`` rows weigh 0)."""
    rng = np.random.default_rng(seed)
    w = rng.choice([0.2, 1.0, 5.0], size=table.num_rows)
    w[:zeros] = 0.0
    return table.append_column("w", pa.array(w))


def encoded(model, table: pa.Table) -> np.ndarray:
    """The features the stored model's estimator sees for ``table``."""
    return model[:-1].transform(table)


def test_coefficients_equal_sklearn_sample_weight_fit(tmp_path):
    table = weighted(classification_table(300), zeros=10)
    store = str(tmp_path / "models")
    result = train(
        "logistic", table, "label", keys=["id"], weight="w", cv=3, name="w", store=store,
        report=False,
    )  # fmt: skip
    meta = ModelStore(store).metadata("w")
    assert "w" not in meta["input_columns"] and sorted(meta["input_columns"]) == ["city", "x", "z"]
    assert meta["weight"]["column"] == "w" and meta["weight"]["zero_rows"] == 10
    model = ModelStore(store).load("w").model
    X = encoded(model, table)
    y = table["label"].to_numpy(zero_copy_only=False)
    w = table["w"].to_numpy()
    by_hand = LogisticRegression(max_iter=1000).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(model[-1].coef_, by_hand.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model[-1].intercept_, by_hand.intercept_, rtol=1e-6, atol=1e-8)
    # The weights mattered: the unweighted fit is another model.
    plain = LogisticRegression(max_iter=1000).fit(X, y)
    assert np.abs(plain.coef_ - model[-1].coef_).max() > 1e-2
    assert result.to_dict()["weight"] == "w"


def test_weighted_cv_metrics_equal_sklearn_on_the_oof_predictions():
    table = weighted(classification_table(400, seed=2))
    result = train("logistic", table, "label", keys=["id"], weight="w", cv=4, report=False)
    oof = result.oof.sort_values("id")
    w = table["w"].to_numpy()[oof["id"].to_numpy()]
    y = (oof["y_true"] == "on_time").to_numpy()
    p = oof["proba_on_time"].to_numpy()
    overall = result.metrics["overall"]
    assert overall["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w))
    assert overall["brier"] == pytest.approx(skm.brier_score_loss(y, p, sample_weight=w))
    assert overall["log_loss"] == pytest.approx(
        skm.log_loss(oof["y_true"], oof[["proba_late", "proba_on_time"]], sample_weight=w)
    )
    assert overall["accuracy"] == pytest.approx(
        skm.accuracy_score(oof["y_true"], oof["prediction"], sample_weight=w)
    )
    unweighted = skm.roc_auc_score(y, p)
    assert overall["roc_auc"] != pytest.approx(unweighted, abs=1e-6)
    for fold in result.metrics["folds"]:
        rows = (oof["fold"] == fold["fold"]).to_numpy()
        assert fold["brier"] == pytest.approx(
            skm.brier_score_loss(y[rows], p[rows], sample_weight=w[rows])
        )


def test_weighted_regression_coefficients_and_metrics():
    table = weighted(regression_table(240))
    result = train("ridge", table, "y", keys=["id"], weight="w", cv=3, report=False)
    X = encoded(result.model, table)
    w = table["w"].to_numpy()
    by_hand = Ridge().fit(X, table["y"].to_numpy(), sample_weight=w)
    np.testing.assert_allclose(result.model[-1].coef_, by_hand.coef_, rtol=1e-8)
    oof = result.oof.sort_values("id")
    wo = w[oof["id"].to_numpy()]
    overall = result.metrics["overall"]
    yt, yp = oof["y_true"].to_numpy(), oof["prediction"].to_numpy()
    assert overall["r2"] == pytest.approx(skm.r2_score(yt, yp, sample_weight=wo))
    assert overall["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp, sample_weight=wo))
    assert overall["rmse"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(yt, yp, sample_weight=wo))
    )


def test_weighted_search_refits_with_the_weights():
    table = weighted(classification_table(240))
    result = train(
        "logistic", table, "label", keys=["id"], weight="w", cv=3, report=False,
        search={"method": "grid", "grid": {"C": [0.01, 10.0]}},
    )  # fmt: skip
    best_c = result.metadata["search"]["best_params"]["C"]
    X = encoded(result.model, table)
    by_hand = LogisticRegression(max_iter=1000, C=best_c).fit(
        X, table["label"].to_numpy(zero_copy_only=False), sample_weight=table["w"].to_numpy()
    )
    np.testing.assert_allclose(result.model[-1].coef_, by_hand.coef_, rtol=1e-6, atol=1e-8)


def test_dask_weighted_run_equals_in_process(dask_engine):
    table = weighted(classification_table(300, seed=4))
    options = {"target": "label", "keys": ["id"], "cv": 3, "report": False, "weight": "w"}
    here = train("logistic", table, engine="local", **options)
    there = train("logistic", table, engine=dask_engine, **options)
    np.testing.assert_allclose(
        there.oof["proba_late"].to_numpy(), here.oof["proba_late"].to_numpy(), rtol=1e-12
    )
    assert there.metrics["overall"]["brier"] == pytest.approx(
        here.metrics["overall"]["brier"], rel=1e-12
    )
    np.testing.assert_allclose(there.model[-1].coef_, here.model[-1].coef_, rtol=1e-12)


def _bad_weights(tmp_path) -> dict[str, str]:
    base = classification_table(60)
    n = base.num_rows
    columns = {
        "negative": pa.array(np.where(np.arange(n) == 5, -1.0, 1.0)),
        "nan": pa.array(np.where(np.arange(n) == 7, np.nan, 1.0)),
        "null": pa.array([None if i == 3 else 1.0 for i in range(n)], pa.float64()),
        "zero": pa.array(np.zeros(n)),
        "text": pa.array(["1"] * n),
        "inf": pa.array(np.where(np.arange(n) == 2, np.inf, 1.0)),
    }
    return {
        kind: write(base.append_column("w", column), tmp_path, f"{kind}.parquet")
        for kind, column in columns.items()
    }


LOGISTIC = ["--model", "logistic"]
BAD_WEIGHTS = [
    ("negative", LOGISTIC, "--weight column 'w' of "),
    ("negative", LOGISTIC, "is negative in 1 row"),
    ("nan", LOGISTIC, "is null or NaN in 1 row"),
    ("null", LOGISTIC, "is null or NaN in 1 row"),
    ("zero", LOGISTIC, "is 0 in every row"),
    ("text", LOGISTIC, "is string, not numeric"),
    ("inf", LOGISTIC, "is infinite in 1 row"),
    ("negative", [*LOGISTIC, "--weight", "wt"], "--weight column 'wt' is missing from"),
    (
        "negative",
        [*LOGISTIC, "--weight", "label"],
        "column 'label' is given both as --target and --weight",
    ),
    ("negative", [*LOGISTIC, "--group-by", "city"], "--weight cannot be combined with --group-by"),
    (
        "negative",
        ["--model", "sklearn.neighbors.KNeighborsClassifier"],
        "--weight: KNeighborsClassifier.fit takes no sample_weight",
    ),
]


@pytest.mark.parametrize(("table", "flags", "message"), BAD_WEIGHTS)
def test_bad_weight_is_one_line_exit_2_and_nothing_stored(tmp_path, table, flags, message):
    paths = _bad_weights(tmp_path)
    store = tmp_path / "models"
    args = ["train", paths[table], "--target", "label", "--cv", "2",
            "--key", "id", "--weight", "w", "--name", "m", "--store", str(store), "--no-report",
            *flags]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert not store.exists() or ModelStore(str(store)).names() == []


def test_cli_json_names_the_weight_and_help_shows_it(tmp_path):
    path = write(weighted(classification_table(120)), tmp_path)
    args = ["train", path, "--target", "label", "--model", "logistic", "--cv", "2", "--key", "id",
            "--weight", "w", "--store", str(tmp_path / "m"), "--no-report", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["weight"] == "w" and summary["calibration"] is None
    assert "weighted by the sample weights" in summary["metrics"]["notes"][0]
    help_text = CliRunner().invoke(main, ["train", "--help"]).stdout
    assert "--weight COL" in help_text and "--calibrate [sigmoid|isotonic]" in help_text
