"""HistGradientBoosting presets split on categories natively: every level seen (not the 32 most
frequent one-hot features), unscaled numbers; the feature contract is the encoder's, and predict
checks tables against it as before."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.features import TableEncoder
from skfleet.features.codes import TableCodes, TableOrdinal
from skfleet.store import ModelStore
from skfleet.train import train

LEVELS = [f"D{i:03d}" for i in range(104)]


def flights(n: int, seed: int = 0) -> pa.Table:
    """``delay`` depends on each of 104 ``dest`` levels (uniformly frequent) and on ``hour``."""
    rng = np.random.default_rng(seed)
    effect = np.random.default_rng(99).normal(0, 10, len(LEVELS))
    dest = rng.integers(0, len(LEVELS), n)
    hour = rng.integers(0, 24, n)
    delay = effect[dest] + 0.5 * hour + rng.normal(0, 1, n)
    return pa.table(
        {"id": np.arange(n), "dest": np.asarray(LEVELS)[dest], "hour": hour, "delay": delay}
    )


def test_hgb_gets_every_level_and_the_contract_is_the_encoders(tmp_path):
    table = flights(3_000)
    store = str(tmp_path / "models")
    native = train(
        "hgb-regressor", table, target="delay", keys=["id"], cv=2, name="d", store=store,
        report=False, params={"max_iter": 40},
    )  # fmt: skip
    step = native.model.steps[0][1]
    assert isinstance(step, TableCodes)
    assert native.model.named_steps["model"].is_categorical_.tolist() == [True, False]
    assert native.metadata["encoding"] == "categories"
    assert native.metadata["input_columns"] == ["dest", "hour"]
    expected = TableEncoder().fit(table.select(["dest", "hour"])).contract_.to_dict()
    got = native.metadata["features"]
    assert (
        got["columns"] == expected["columns"] and got["feature_names"] == expected["feature_names"]
    )
    one_hot = train(
        "hgb-regressor", table, target="delay", keys=["id"], cv=2, report=False,
        params={"max_iter": 40, "categorical_features": None},
    )  # fmt: skip
    assert isinstance(one_hot.model.steps[0][1], TableEncoder)
    assert not isinstance(one_hot.model.steps[0][1], TableCodes)
    # 72 of the 104 destinations share __other__ once one-hot encoded; natively each has its own.
    assert native.metrics["overall"]["rmse"] < 0.7 * one_hot.metrics["overall"]["rmse"]

    new = flights(500, seed=3).drop_columns(["delay"])
    dest = new["dest"].to_pylist()
    dest[:7] = ["NEW"] * 7
    new = new.set_column(1, "dest", pa.array(dest))
    src = tmp_path / "new.parquet"
    pq.write_table(new, src)
    out = str(tmp_path / "out")
    run = CliRunner().invoke(
        main, ["predict", "d", str(src), "--out", out, "--store", store, "--engine", "local"]
    )
    assert run.exit_code == 0, run.stderr
    assert "unseen levels in 'dest': 7 values" in run.stdout
    loaded = ModelStore(store).load("d").model  # without trust
    got = pq.read_table(out).sort_by("id")["prediction"].to_numpy()
    np.testing.assert_allclose(got, loaded.predict(new))


def test_forests_get_every_level_as_a_number_and_load_without_trust(tmp_path):
    table = flights(3_000)
    store = str(tmp_path / "models")
    forest = train(
        "random-forest-regressor", table, target="delay", keys=["id"], cv=2, name="f",
        store=store, report=True, params={"n_estimators": 30, "random_state": 0},
    )  # fmt: skip
    step = forest.model.steps[0][1]
    assert isinstance(step, TableOrdinal)
    assert forest.metadata["encoding"] == "ordinal"
    assert forest.metadata["input_columns"] == ["dest", "hour"]
    features = step.transform(table.select(["dest", "hour"]))
    assert features["dest"].nunique() == len(LEVELS)  # not the 32 most frequent
    # The same forest behind one-hot features (72 of the 104 levels share __other__) does worse
    # on held-out rows.
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import make_pipeline

    fit_rows, held_out = table.slice(0, 2_000), table.slice(2_000)
    inputs = ["dest", "hour"]

    def held_out_rmse(model) -> float:
        model.fit(fit_rows.select(inputs), fit_rows["delay"].to_numpy())
        errors = model.predict(held_out.select(inputs)) - held_out["delay"].to_numpy()
        return float(np.sqrt(np.mean(errors**2)))

    forest_args = {"n_estimators": 30, "random_state": 0}
    ordinal = held_out_rmse(make_pipeline(TableOrdinal(), RandomForestRegressor(**forest_args)))
    one_hot = held_out_rmse(make_pipeline(TableEncoder(), RandomForestRegressor(**forest_args)))
    assert ordinal < 0.8 * one_hot, (ordinal, one_hot)

    new = flights(300, seed=4).drop_columns(["delay"])
    loaded = ModelStore(store).load("f").model  # without trust
    np.testing.assert_allclose(loaded.predict(new), forest.model.predict(new))
    unseen = new.set_column(1, "dest", pa.array(["NEW"] * new.num_rows))
    assert np.isfinite(loaded.predict(unseen)).all()  # unseen levels take the missing branch
