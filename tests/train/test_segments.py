"""One model per segment: SegmentRouter on its own and through ``train(group_by=...)``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from skfleet.features import TableEncoder
from skfleet.store import ModelStore
from skfleet.train import SegmentRouter, train
from tests.train.data import Recorder, classification_table, regression_table


def linear(by: str = "shop") -> Pipeline:
    return Pipeline([("encode", TableEncoder(exclude=[by])), ("model", LinearRegression())])


def test_each_segment_gets_its_own_model_and_unseen_ones_the_global_model():
    table = regression_table(300)
    y = table["y"].to_numpy()
    router = SegmentRouter(linear(), by="shop").fit(table.select(["x", "shop"]), y)
    assert router.segments_ == ["a", "b", "c"]
    assert sum(router.segment_rows_) == 300
    probe = pa.table({"x": [1.0, 1.0, 1.0, 1.0, 1.0], "shop": ["a", "b", "c", "zz", None]})
    predicted = router.predict(probe)
    # The slopes of regression_table: 1 in a, 5 in b, -3 in c; the global model is in between.
    np.testing.assert_allclose(predicted[:3], [1.0, 5.0, -3.0], atol=0.1)
    global_prediction = router.fallback_.predict(probe.slice(3, 2))
    np.testing.assert_allclose(predicted[3:], global_prediction)
    assert not np.allclose(predicted[3], predicted[:3], atol=0.5)
    assert router.route_counts(probe) == {"segments": {"a": 1, "b": 1, "c": 1}, "fallback": 2}


def test_router_takes_pandas_too_and_follows_sklearn_conventions():
    table = regression_table(120)
    frame = table.select(["x", "shop"]).to_pandas()
    y = table["y"].to_numpy()
    template = SegmentRouter(linear(), by="shop", min_rows=5)
    assert is_regressor(template) and not is_classifier(template)
    assert clone(template).get_params()["min_rows"] == 5
    from_pandas = clone(template).fit(frame, y).predict(frame)
    from_arrow = clone(template).fit(table.select(["x", "shop"]), y).predict(table)
    np.testing.assert_allclose(from_pandas, from_arrow)


def test_small_and_single_class_segments_fall_back():
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=n)
    group = np.array(["big"] * 150 + ["tiny"] * 10 + ["one_class"] * 40)
    label = np.where(x > 0, "yes", "no").astype(object)
    label[160:] = "no"  # the one_class segment only ever says "no"
    label[150:160] = np.where(x[150:160] > 0, "maybe", "no")  # a class only the tiny segment has
    table = pa.table({"x": x, "g": group})
    template = Pipeline([("encode", TableEncoder(exclude=["g"])), ("model", LogisticRegression())])
    router = SegmentRouter(template, by="g", min_rows=20).fit(table, label)
    assert is_classifier(router)
    assert router.segments_ == ["big"]
    assert router.fallback_segments_ == {
        "one_class": "a single class",
        "tiny": "10 rows < min_rows 20",
    }
    assert router.classes_.tolist() == ["maybe", "no", "yes"]
    proba = router.predict_proba(table)
    assert proba.shape == (n, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The "big" segment's model never saw "maybe": its rows get probability 0 for it.
    assert np.all(proba[:150, 0] == 0.0)
    assert router.route_counts(table) == {"segments": {"big": 150}, "fallback": 50}


def test_integer_segments_and_a_column_of_another_type_at_prediction():
    table = pa.table({"x": np.arange(60.0), "g": pa.array([1, 2] * 30, pa.int32())})
    y = np.where(table["g"].to_numpy() == 1, 1.0, -1.0) * table["x"].to_numpy()
    router = SegmentRouter(linear("g"), by="g").fit(table, y)
    assert router.segments_ == [1, 2]
    as_int64 = pa.table({"x": [10.0, 10.0], "g": pa.array([2, 3], pa.int64())})
    assert router.route_counts(as_int64) == {"segments": {"2": 1}, "fallback": 1}
    assert router.predict(as_int64)[0] == pytest.approx(-10.0)
    # The same values written as text still find their segment (a lossless type change) ...
    as_text = pd.DataFrame({"x": [1.0, 1.0], "g": ["1", "one"]})
    assert router.route_counts(as_text) == {"segments": {"1": 1}, "fallback": 1}
    # ... and a type the training values cannot take sends every row to the global model.
    as_dates = pa.table({"x": [1.0], "g": pa.array([0], pa.date32())})
    assert router.route_counts(as_dates) == {"segments": {}, "fallback": 1}


def test_train_group_by_stores_a_segmented_model(tmp_path, dask_engine):
    table = regression_table(300)
    store = str(tmp_path / "models")
    recorder = Recorder()
    result = train(
        "linear",
        table,
        target="y",
        keys=["id"],
        group_by="shop",
        cv=3,
        name="by-shop",
        store=store,
        engine=dask_engine,
        report=False,
        progress=recorder,
    )
    # The final fit: one model per shop and the global one, each counted as it finished.
    assert recorder.phases[-1] == ["final fit", 4, 4]
    meta = ModelStore(store).metadata("by-shop")
    assert meta["kind"] == "segmented"
    assert sorted(meta["input_columns"]) == ["shop", "x"]
    segments = meta["segments"]
    assert segments["by"] == "shop" and segments["count"] == 3
    assert sum(segments["rows"].values()) == 300 and segments["fallback_segments"] == {}
    assert "global model" in segments["fallback"]
    # One model per shop beats one straight line for all shops by far.
    assert meta["metrics"]["overall"]["r2"] > 0.99
    assert result.model.n_jobs is None
    loaded = ModelStore(store).load("by-shop").model  # skops, no trust needed
    assert isinstance(loaded, SegmentRouter)
    probe = pa.table({"x": [2.0, 2.0], "shop": ["b", "new"]})
    np.testing.assert_allclose(loaded.predict(probe), result.model.predict(probe))
    assert loaded.route_counts(probe) == {"segments": {"b": 1}, "fallback": 1}


def test_train_group_by_classifier_with_grid_search():
    table = classification_table(300)
    result = train(
        "logistic",
        table,
        target="label",
        keys=["id"],
        group_by="city",
        cv=3,
        search={"grid": {"C": [0.1, 10.0]}},
        min_segment_rows=20,
        report=False,
    )
    assert set(result.metadata["search"]["best_params"]) == {"C"}
    assert (
        result.metadata["search"]["best_params"]["C"]
        == result.model.estimator.named_steps["model"].C
    )
    assert result.oof_table.column_names[-2:] == ["proba_late", "proba_on_time"]
    assert result.metadata["classes"] == ["late", "on_time"]
