"""Kind inference and the user's overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp

from skfleet.errors import MissingColumnError
from skfleet.features import EncoderOptions, FeatureParamError, FeatureWarning, TableEncoder


def kinds(enc):
    return {c.name: c.kind for c in enc.contract_.columns}


def test_low_cardinality_strings_are_categorical_high_cardinality_hashed_or_text():
    n = 300
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "origin": rng.choice(["JFK", "LGA", "EWR"], n),
            "tailnum": [f"N{i:05d}" for i in rng.integers(0, 10_000, n)],
            "remark": [f"late crew number {i} waiting at gate" for i in range(n)],
        }
    )
    enc = TableEncoder(hash_features=16, options=EncoderOptions(max_distinct=50)).fit(table)
    assert kinds(enc) == {"origin": "categorical", "tailnum": "categorical", "remark": "text"}
    assert enc.contract_.column("origin").levels is not None
    assert enc.contract_.column("tailnum").hash.n_features == 16
    assert "more than 50 distinct" in enc.contract_.column("tailnum").reason
    # Text: each word adds one to its bucket.
    out = enc.transform(table.slice(0, 1))
    words = enc.get_feature_names_out()
    text = out[0, [i for i, w in enumerate(words) if w.startswith("remark__hash")]]
    assert text.sum() == 7


def test_levels_are_capped_most_frequent_first_with_an_other_bucket():
    values = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"]
    enc = TableEncoder(max_levels=2).fit(pa.table({"c": values}))
    spec = enc.contract_.column("c")
    assert spec.levels == ["a", "b"] and spec.other_levels == ["c", "d"]  # ties by value
    out, report = enc.transform_with_drift(pa.table({"c": ["a", "b", "c", "d"]}))
    assert out.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]
    assert not report  # "c" and "d" were seen at fit time: not drift


def test_integer_ids_are_excluded_with_a_warning_and_override_keeps_them():
    table = pa.table({"id": np.arange(500), "n": np.arange(500) % 7})
    with pytest.warns(FeatureWarning, match="'id' excluded: integer id"):
        enc = TableEncoder().fit(table)
    assert kinds(enc) == {"id": "excluded", "n": "numeric"}
    assert enc.contract_.input_columns == ["n"]
    assert kinds(TableEncoder(numeric=["id"]).fit(table))["id"] == "numeric"


def test_ids_past_the_distinct_limit_are_found_by_the_sketch():
    table = pa.table({"id": np.random.default_rng(1).permutation(20_000) + 10**9})
    with pytest.warns(FeatureWarning, match="integer id"):
        enc = TableEncoder(options=EncoderOptions(max_distinct=100)).fit(table)
    assert kinds(enc) == {"id": "excluded"}
    # A repeated code with many values is not an id.
    codes = pa.table({"flight": np.random.default_rng(2).integers(0, 4000, 20_000)})
    assert kinds(TableEncoder(options=EncoderOptions(max_distinct=100)).fit(codes)) == {
        "flight": "numeric"
    }


def test_overrides_categorical_numeric_exclude_hash():
    table = pa.table(
        {
            "month": [1, 2, 3, 1],
            "zip": ["10001", "10002", "10001", "11001"],
            "code": ["a", "b", "c", "a"],
            "gone": [1.0, 2.0, 3.0, 4.0],
        }
    )
    enc = TableEncoder(categorical=["month"], numeric="zip", exclude=["gone"], hash=["code"])
    enc.fit(table)
    assert kinds(enc) == {
        "month": "categorical",
        "zip": "numeric",
        "code": "categorical",
        "gone": "excluded",
    }
    assert enc.contract_.column("month").levels == [1, 2, 3]
    assert enc.contract_.column("zip").arrow_type == "string"
    assert enc.contract_.column("zip").center == pytest.approx(
        np.mean([10001, 10002, 10001, 11001])
    )
    assert enc.contract_.column("code").hashed
    with pytest.raises(FeatureParamError, match="both categorical= and hash="):
        TableEncoder(categorical=["code"], hash=["code"]).fit(table)
    with pytest.raises(MissingColumnError, match="'nope' named in exclude= is not in the table"):
        TableEncoder(exclude=["nope"]).fit(table)
    with pytest.raises(FeatureParamError, match="categorical= names column 't'"):
        TableEncoder(categorical=["t"]).fit(pa.table({"t": pa.array([1], pa.timestamp("s"))}))


def test_booleans_datetimes_and_dates_in_text():
    table = pa.table(
        {
            "ok": [True, None, True, False],
            "at": pa.array([0, 3_600, 90_000, None], pa.timestamp("s", tz="America/New_York")),
            "day": pa.array([0, 1, 2, 3], pa.date32()),
            "when": ["2013-01-01 05:00", "2013-01-07", None, "2013-12-31 23:59:59.5"],
            "utc": ["2013-01-01T10:00:00Z", "2013-06-01T00:00:00+02:00", "2013-01-01T10:00Z", None],
        }
    )
    enc = TableEncoder().fit(table)
    assert kinds(enc) == {
        "at": "datetime",
        "day": "datetime",
        "ok": "boolean",
        "utc": "datetime",
        "when": "datetime",
    }
    assert enc.contract_.column("day").parts == ["year", "month", "dayofweek", "epoch"]
    assert enc.contract_.column("when").parsed_type == "timestamp[us]"
    assert enc.contract_.column("utc").parsed_type == "timestamp[us, tz=UTC]"
    out = pd.DataFrame(enc.transform(table), columns=enc.get_feature_names_out())
    # Parts are local to the column's time zone: 1970-01-01 00:00 UTC is 19:00 on Dec 31 in NY.
    assert out.loc[0, ["at__year", "at__month", "at__dayofweek", "at__hour"]].tolist() == [
        1969,
        12,
        2,
        19,
    ]
    assert out.loc[0, ["when__year", "when__dayofweek", "when__hour"]].tolist() == [2013, 1, 5]
    assert out.loc[1, ["utc__month", "utc__hour"]].tolist() == [5, 22]
    assert out["ok"].tolist() == [1, 1, 1, 0]  # missing -> the most frequent value
    assert out["ok__missing"].tolist() == [0, 1, 0, 0]
    epoch = out["at__epoch"].to_numpy()
    assert epoch[3] == pytest.approx(0.0, abs=1e-6)  # missing -> the mean instant
    assert epoch[:3].mean() == pytest.approx(0.0, abs=1e-6)


def test_strings_that_are_not_all_dates_stay_strings():
    enc = TableEncoder().fit(pa.table({"d": ["2013-01-01", "soon", "2013-01-02"]}))
    assert kinds(enc) == {"d": "categorical"}


def test_output_is_sparse_when_wide_and_dense_otherwise():
    table = pa.table({"c": [f"v{i}" for i in range(40)], "x": np.arange(40) * 1.5})
    assert isinstance(TableEncoder(max_levels=50).fit(table).transform(table), np.ndarray)
    wide = TableEncoder(max_levels=50, options=EncoderOptions(sparse_above=20)).fit(table)
    out = wide.transform(table)
    assert sp.isspmatrix_csr(out) and out.dtype == np.float32
    assert np.array_equal(out.toarray(), TableEncoder(max_levels=50).fit(table).transform(table))
    assert isinstance(TableEncoder(sparse=True).fit(table).transform(table), sp.csr_matrix)


@pytest.mark.parametrize("with_text", [False, True])
def test_sparse_output_is_canonical_and_equals_dense(with_text):
    """Zeros, missing values and hashed buckets: CSR rows sorted, no explicit zeros, no repeats."""
    rng = np.random.default_rng(0)
    n = 300
    columns = {
        "x": np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),
        "c": pa.array([None if i % 7 == 0 else f"v{i % 13}" for i in range(n)]),
        "h": [f"user{i % 50}" for i in range(n)],
        "k": rng.integers(0, 3, n),
    }
    if with_text:
        columns["t"] = [f"red red car {i % 5}" if i % 4 else None for i in range(n)]
    table = pa.table(columns)
    params = {"hash": ["h"], "hash_features": 16, "max_levels": 50}
    if with_text:
        params["text"] = ["t"]
    sparse = TableEncoder(sparse=True, **params).fit(table).transform(table)
    dense = TableEncoder(sparse=False, **params).fit(table).transform(table)
    assert sp.isspmatrix_csr(sparse) and sparse.has_canonical_format
    assert not (sparse.data == 0).any()
    assert np.array_equal(sparse.toarray(), dense)


def test_options_indicators_and_scale():
    table = pa.table({"x": [1.0, 2.0, 3.0]})
    enc = TableEncoder(options=EncoderOptions(indicators="always", scale=False)).fit(table)
    assert enc.get_feature_names_out().tolist() == ["x", "x__missing"]
    assert enc.transform(pa.table({"x": [None, 5.0]})).tolist() == [[2.0, 1.0], [5.0, 0.0]]
    never = TableEncoder(options=EncoderOptions(indicators="never")).fit(
        pa.table({"x": [1.0, None]})
    )
    assert never.get_feature_names_out().tolist() == ["x"]


def test_pandas_categorical_and_dictionary_columns():
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", "a", None])})
    enc = TableEncoder().fit(df)
    assert enc.contract_.column("c").arrow_type == "large_string"
    plain = pd.DataFrame({"c": pd.array(["a", "b", "a", None], dtype="str")})
    assert np.array_equal(enc.transform(plain), enc.transform(df))
    _, report = enc.transform_with_drift(plain)
    assert not report  # dictionary vs plain strings is storage, not drift
