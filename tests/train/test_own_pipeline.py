"""A data scientist's own Pipeline, which selects columns by name, trains as it would in plain
scikit-learn: same folds, same scores; it is stored, loads without ``--trust`` and predicts
through the CLI with the contract's checks (missing columns, unseen levels)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skfleet.cli import main
from skfleet.errors import UsageError
from skfleet.features.frame import TableFrame
from skfleet.store import ModelStore
from skfleet.train import train

CATEGORICAL = ["cut", "color", "clarity"]
NUMERIC = ["carat", "depth"]


def diamonds(n: int, seed: int = 0) -> pd.DataFrame:
    """Diamonds-like rows: three string columns and two numbers driving ``log_price``."""
    rng = np.random.default_rng(seed)
    cut = rng.choice(["Fair", "Good", "Very Good", "Premium", "Ideal"], n)
    color = rng.choice(list("DEFGHIJ"), n)
    clarity = rng.choice(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"], n)
    carat = rng.gamma(2.0, 0.4, n)
    depth = rng.normal(61.7, 1.4, n)
    bonus = pd.Series(cut).map({"Fair": -0.3, "Good": -0.1, "Ideal": 0.2}).fillna(0.0).to_numpy()
    log_price = 6.0 + 1.7 * np.log(carat) + bonus + 0.05 * (color < "G") + rng.normal(0, 0.1, n)
    return pd.DataFrame(
        {"id": np.arange(n), "cut": cut, "color": color, "clarity": clarity, "carat": carat,
         "depth": depth, "log_price": log_price}
    )  # fmt: skip


def their_pipeline() -> Pipeline:
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
         ("num", StandardScaler(), NUMERIC)]
    )  # fmt: skip
    return Pipeline([("prep", prep), ("model", Ridge(alpha=1.0))])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("own") / "models")
    df = diamonds(1_500)
    result = train(
        their_pipeline(), df, target="log_price", keys=["id"], cv=5, name="gems", store=store
    )
    return df, store, result


def test_scores_equal_plain_scikit_learn_on_the_same_folds(trained):
    df, _, result = trained
    folds = KFold(n_splits=5, shuffle=True, random_state=0)  # skfleet's default CV
    X, y = df[CATEGORICAL + NUMERIC], df["log_price"]
    expected = cross_val_score(their_pipeline(), X, y, cv=folds, scoring="r2")
    got = [fold["r2"] for fold in result.metadata["metrics"]["folds"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # The stored model is the user's Pipeline fitted on every row, behind the checking step.
    reference = their_pipeline().fit(X, y)
    np.testing.assert_allclose(result.model.predict(df), reference.predict(X), rtol=1e-9)
    assert [name for name, _ in result.model.steps] == ["check", "model"]


def test_contract_is_recorded_without_encoding(trained):
    df, store, result = trained
    meta = ModelStore(store).metadata("gems")
    assert meta["encoding"] == "frame"
    assert meta["input_columns"] == CATEGORICAL + NUMERIC  # fit order; key and target are not
    columns = {c["name"]: c for c in meta["features"]["columns"]}
    assert sorted(columns["cut"]["levels"]) == sorted(df["cut"].unique())
    assert meta["estimator"]["class"].endswith("Pipeline")
    assert "feature_importance" in meta  # permutation importance over the input columns
    assert set(meta["feature_importance"]["values"]) == set(CATEGORICAL + NUMERIC)


def test_loads_without_trust(trained):
    _, store, _ = trained
    loaded = ModelStore(store).load("gems")  # trust=False: the policy must accept TableFrame
    assert isinstance(loaded.model.steps[0][1], TableFrame)


def test_cli_predict_checks_and_scores(trained, tmp_path):
    df, store, result = trained
    new = diamonds(400, seed=7).drop(columns=["log_price"])
    new.loc[:9, "cut"] = "Astor"  # a level never seen at fit time
    src = tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), src)
    out = str(tmp_path / "scored")
    run = CliRunner().invoke(
        main,
        ["predict", "gems", str(src), "--out", out, "--store", store, "--engine", "local",
         "--json"],
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["drift"]["unseen_levels"] == {"cut": 10}
    got = pq.read_table(out).to_pandas().sort_values("id")
    reference = clone(their_pipeline()).fit(df[CATEGORICAL + NUMERIC], df["log_price"])
    np.testing.assert_allclose(got["prediction"], reference.predict(new[CATEGORICAL + NUMERIC]))

    pq.write_table(pa.Table.from_pandas(new.drop(columns=["clarity"]), preserve_index=False), src)
    run = CliRunner().invoke(
        main,
        ["predict", "gems", str(src), "--out", out + "2", "--store", store, "--engine", "local"],
    )
    assert run.exit_code == 2
    assert "clarity" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_encode_true_on_a_by_name_pipeline_is_refused_before_any_fit():
    with pytest.raises(UsageError, match="selects columns by name.*encode=False"):
        train(their_pipeline(), diamonds(50), target="log_price", encode=True, report=False)


def test_encode_false_hands_a_plain_estimator_the_frame():
    df = diamonds(300)[NUMERIC + ["log_price"]]
    result = train("ridge", df, target="log_price", encode=False, cv=3, report=False)
    assert isinstance(result.model.steps[0][1], TableFrame)
    assert result.metadata["encoding"] == "frame"
    expected = cross_val_score(
        clone(result.model.named_steps["model"]), df[NUMERIC], df["log_price"],
        cv=KFold(3, shuffle=True, random_state=0), scoring="r2",
    )  # fmt: skip
    got = [fold["r2"] for fold in result.metadata["metrics"]["folds"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_notebook_view_of_the_result(trained):
    df, _, result = trained
    assert isinstance(result.oof, pd.DataFrame)
    assert result.oof.columns.tolist() == ["id", "fold", "y_true", "prediction"]
    np.testing.assert_allclose(result.oof.sort_values("id")["y_true"], df["log_price"])
    r2 = result.metrics["overall"]["r2"]
    assert repr(result).startswith(f"<TrainResult gems@1: log_price, r2={r2:.4g}, ")
    html = result._repr_html_()
    assert f"<th style='text-align:left'>r2 (5-fold CV)</th><td>{r2:.4g}</td>" in html
    assert result.report_path and f"href='{result.report_path}'" in html
