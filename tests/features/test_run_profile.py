"""Training profiles (model.json ``profile``) and the profiles of scored rows."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skfleet
from skfleet.features import TableEncoder
from skfleet.features.run_profile import RowProfile, profile_rows, psi, reference_profile
from skfleet.predict.drift_runs import scoring_bins
from skfleet.store import ModelStore

N = 3_000


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(
        {
            "id": np.arange(N),
            "x": rng.normal(size=N),
            "c": rng.choice(["a", "b", "c"], N),
            "g": rng.choice(["north", "south"], N),
            "flag": rng.random(N) > 0.5,
            "when": pd.date_range("2024-01-01", periods=N, freq="h"),
        }
    )
    out.loc[rng.random(N) < 0.1, "x"] = np.nan
    out["y"] = (out["x"].fillna(0) + (out["c"] == "a")) > 0.5
    return out


def _check_reference(meta: dict, rows: int) -> None:
    profile = meta["profile"]
    assert profile["n_rows"] == rows and set(profile["columns"]) >= {"x", "c", "flag", "when"}
    for name, col in profile["columns"].items():
        assert sum(col["counts"]) + col["n_missing"] == rows, name
    assert profile["columns"]["x"]["kind"] == "numeric"
    assert len(profile["columns"]["x"]["counts"]) == len(profile["columns"]["x"]["edges"]) + 1
    assert profile["columns"]["x"]["n_missing"] == pytest.approx(0.1 * rows, rel=0.2)
    contract = {c["name"]: c for c in meta["features"]["columns"]}
    assert profile["columns"]["c"]["levels"] == contract["c"]["levels"]
    assert profile["columns"]["flag"]["levels"] == [False, True]
    json.dumps(profile, allow_nan=False)


def test_batch_and_segmented_models_store_the_training_profile(tmp_path):
    store = str(tmp_path / "models")
    data = frame()
    skfleet.train("logistic", data, "y", keys=["id"], name="b", store=store, report=False)
    skfleet.train(
        "logistic", data, "y", keys=["id"], group_by="g", name="s", store=store, report=False
    )
    for name in ("b", "s"):
        meta = ModelStore(store).metadata(name)
        _check_reference(meta, N)
    quantiles = ModelStore(store).metadata("b")["profile"]["columns"]["x"]["counts"]
    assert max(quantiles) - min(quantiles) <= 2  # quantile bins hold the same share of rows


def test_a_streamed_model_stores_a_profile_from_a_sample(tmp_path):
    store = str(tmp_path / "models")
    os.makedirs(tmp_path / "in")
    data = frame()
    for i in range(3):
        part = data.iloc[i * 1000 : (i + 1) * 1000]
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), tmp_path / f"in/{i}.parquet"
        )
    skfleet.train_stream(
        "sgd-logistic", str(tmp_path / "in"), "y", keys=["id"], name="st", store=store,
        report=False, epochs=1, holdout=0.0,
    )  # fmt: skip
    meta = ModelStore(store).metadata("st")
    # Small enough to be taken whole: the sample is every training row.
    _check_reference(meta, N)
    assert meta["profile"]["sampled_from"] == N


def test_profiles_merge_to_the_profile_of_all_rows():
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    contract = TableEncoder(exclude=["id"]).fit(table.drop_columns(["y"])).contract_
    bins = scoring_bins({"profile": reference_profile(contract, table)})
    whole = profile_rows(table, bins)
    parts = [profile_rows(table.slice(i, 700), bins) for i in range(0, N, 700)]
    merged = parts[0]
    for part in reversed(parts[1:]):
        merged = merged.merge(part)
    assert merged.n_rows == whole.n_rows
    for name, col in whole.columns.items():
        assert merged.columns[name].counts == col.counts
        assert merged.columns[name].moments.mean == pytest.approx(col.moments.mean)
    assert RowProfile.from_dict(json.loads(json.dumps(merged.to_dict()))) == merged


def test_drifted_types_and_missing_columns_are_counted_not_fatal():
    train = pa.table(
        {
            "code": [1, 2, 3, 1] * 50,
            "v": [0.5, 1.5, 2.5, 3.5] * 50,
            "day": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"] * 50,
        }
    )
    contract = TableEncoder(categorical=["code"]).fit(train).contract_
    bins = scoring_bins({"profile": reference_profile(contract, train, bins=4)})
    assert bins["columns"]["day"].get("parsed_type")  # dates written as text
    later = pa.table(
        {
            "code": ["1", "9", None],
            "v": ["n/a", "2", "3"],
            "day": ["2024-01-01", None, "2024-04-02"],
        }
    )
    profile = profile_rows(later, bins)
    assert profile.columns["code"].counts == [1, 0, 0, 1]  # '1' is level 1; '9' another value
    assert profile.columns["code"].n_missing == 1
    assert profile.columns["v"].counts is None  # text that is not all numbers: missing only
    assert profile.columns["day"].n_missing == 1 and sum(profile.columns["day"].counts) == 2
    gone = profile_rows(later.drop_columns(["v"]), bins)
    assert gone.columns["v"].n_missing == 3 and gone.column_counts("v") == (None, 3)


def test_psi():
    assert psi([10, 10], 0, [10, 10], 0) == 0.0
    assert psi([10, 10], 0, [20, 20], 0) == 0.0  # proportions, not counts
    assert psi([10, 10], 0, [10, 10], 20) > 1  # half the rows went missing
    assert psi([10, 10], 0, [0, 0], 0) is None and psi(None, 5, [1], 0) is None
    assert psi(None, 4, None, 4) == 0.0 and psi(None, 0, None, 0) is None
    # Symmetric, as PSI is.
    assert psi([30, 10], 0, [10, 30], 0) == pytest.approx(psi([10, 30], 0, [30, 10], 0))
