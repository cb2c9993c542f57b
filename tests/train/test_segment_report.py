"""The segmented model's report: a per-segment table (rows, which model serves it, out-of-fold
metric next to the global model's on the same rows), importance that works, no empty headings."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

from skfleet.train import train
from skfleet.train.config import TrainConfig
from skfleet.train.cv import make_splits
from skfleet.train.template import make_template

SLOPES = {"north": 1.0, "south": -2.0, "east": 4.0, "tiny": 0.5}
SIZES = {"north": 300, "south": 200, "east": 120, "tiny": 12}


def shops(seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    shop = np.concatenate([[s] * n for s, n in SIZES.items()])
    rng.shuffle(shop)
    x = rng.normal(size=len(shop))
    slope = np.array([SLOPES[s] for s in shop])
    y = slope * x + rng.normal(0, 0.1, len(shop))
    return pa.table({"shop": shop, "x": x, "noise": rng.normal(size=len(shop)), "y": y})


@pytest.fixture(scope="module")
def result():
    return train("linear", shops(), target="y", group_by="shop", cv=5, min_segment_rows=30)


def test_segment_table_matches_out_of_fold_predictions(result):
    table = result.metadata["segments"]["table"]
    assert [row["segment"] for row in table] == ["north", "south", "east", "tiny"]
    assert [row["train_rows"] for row in table] == list(SIZES.values())
    assert table[-1]["model"] == "global: 12 rows < min_rows 30"
    assert {row["model"] for row in table[:3]} == {"own"}

    data = shops()
    shop = np.asarray(data["shop"].to_pylist())
    y = data["y"].to_numpy()
    # The global model, refitted by hand in skfleet's folds.
    config = TrainConfig(target="y", group_by="shop")
    global_model = make_template(LinearRegression(), config)[0].estimator
    features = data.drop_columns(["y"])
    global_oof = np.empty(len(y))
    for train_rows, test_rows in make_splits("regression", config.cv, y):
        fitted = clone(global_model).fit(features.take(train_rows), y[train_rows])
        global_oof[test_rows] = fitted.predict(features.take(test_rows))
    segment_oof = result.oof["prediction"].to_numpy()
    for row in table:
        where = shop == row["segment"]
        own = np.sqrt(mean_squared_error(y[where], segment_oof[where]))
        shared = np.sqrt(mean_squared_error(y[where], global_oof[where]))
        assert row["rmse"] == pytest.approx(own, rel=1e-9)
        assert row["rmse_global"] == pytest.approx(shared, rel=1e-9)
    # One slope per shop: the segment models beat the global one where they have their own.
    assert all(row["rmse"] < row["rmse_global"] / 3 for row in table[:3])


def test_report_shows_the_segments_and_importance(result):
    html = result.report_html
    assert '<section id="segments">' in html
    section = html.split('<section id="segments">')[1].split("</section>")[0]
    assert section.count("<tr>") == 1 + len(SIZES)  # header and one row per segment
    assert "rmse_global" in section
    assert "score' method" not in html and "importance unavailable" not in html
    importance = result.metadata["feature_importance"]
    assert importance["method"] == "permutation"
    assert max(importance["values"], key=importance["values"].get) in ("x", "shop")
    assert importance["values"]["noise"] < importance["values"]["x"]


def test_no_empty_heading_for_empty_fallbacks():
    data = shops().filter(pa.compute.not_equal(shops()["shop"], "tiny"))
    result = train("linear", data, target="y", group_by="shop", cv=0, min_segment_rows=30)
    assert result.metadata["segments"]["fallback_segments"] == {}
    html = result.report_html
    after = html.split("<h3>fallback_segments</h3>")[1]
    assert re.match(r"\s*<p>none</p>", after)
    assert "rmse_global" not in html  # no cross-validation, nothing to compare
