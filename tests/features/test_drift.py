"""Drift at transform time: missing columns, unseen levels, type drift; the report."""

from __future__ import annotations

import decimal
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from skfleet.errors import DataError, DriftWarning, MissingColumnError
from skfleet.features import DriftReport, TableEncoder
from tests.features.strategies import same_output

TRAIN = pa.table(
    {
        "carrier": ["UA", "AA", "UA", "B6"],
        "seats": pa.array([150, 180, 150, 100], pa.int64()),
        "fare": [100.5, 200.25, None, 50.0],
        "code": pa.array([1, 2, 1, 3], pa.int64()),
    }
)


def fitted(**kw):
    return TableEncoder(categorical=["code"], **kw).fit(TRAIN)


def test_missing_column_is_an_error_naming_it_by_default():
    with pytest.raises(MissingColumnError, match="column 'fare' is missing from the table"):
        fitted().transform(TRAIN.drop_columns(["fare"]))
    with pytest.raises(MissingColumnError, match=r"'carrier' is missing .*also missing: 'fare'"):
        fitted().transform(TRAIN.drop_columns(["fare", "carrier"]))


def test_missing_column_coerced_or_warned_is_filled_and_counted():
    enc = fitted(on_missing_column="coerce")
    out, report = enc.transform_with_drift(TRAIN.drop_columns(["seats"]))
    assert report.missing_columns == {"seats": 4} and report.rows_with_missing == 4
    names = list(enc.get_feature_names_out())
    assert np.all(out[:, names.index("seats")] == 0)  # the mean, scaled
    full = enc.transform(TRAIN)
    others = [i for i, n in enumerate(names) if n != "seats"]
    assert np.array_equal(out[:, others], full[:, others])
    with pytest.warns(DriftWarning, match="missing column 'seats'"):
        fitted(on_missing_column="warn").transform(TRAIN.drop_columns(["seats"]))


def test_unseen_levels_are_counted_and_routed_to_other():
    new = TRAIN.set_column(0, "carrier", pa.array(["ZZ", "AA", "QQ", "ZZ"]))
    enc = fitted()
    out, report = enc.transform_with_drift(new)
    assert report.unseen_levels == {"carrier": 3}
    assert report.unseen_examples == {"carrier": ["QQ", "ZZ"]}
    names = list(enc.get_feature_names_out())
    assert out[:, names.index("carrier=__other__")].tolist() == [1, 0, 1, 1]
    # transform alone applies the policy: coerce (default) is silent, warn warns, error raises.
    assert same_output(enc.transform(new), out)
    with pytest.warns(DriftWarning, match="unseen levels in 'carrier'"):
        fitted(on_unseen_level="warn").transform(new)
    with pytest.raises(DataError, match=r"'carrier' has 3 values never seen .*'QQ', 'ZZ'"):
        fitted(on_unseen_level="error").transform(new)


def test_lossless_type_drift_is_coerced_and_counted():
    enc = fitted()
    expected = enc.transform(TRAIN)
    drifted = pa.table(
        {
            "carrier": pa.array(["UA", "AA", "UA", "B6"]).dictionary_encode(),  # not drift
            "seats": pa.array([150, 180, 150, 100], pa.int32()),
            "fare": pa.array(["100.5", "200.25", "", "50"]),  # numbers as text
            "code": pa.array([1.0, 2.0, 1.0, 3.0]),  # whole floats into integer levels
        }
    )
    out, report = enc.transform_with_drift(drifted)
    assert same_output(out, expected)
    assert report.coerced == {
        "seats": {"int32 -> int64": 4},
        "fare": {"string -> double": 4},
        "code": {"double -> int64": 4},
    }
    # pandas nullable integers and decimals
    df = TRAIN.to_pandas()
    df["seats"] = df["seats"].astype("Int64")
    df["fare"] = [decimal.Decimal("100.50"), decimal.Decimal("200.25"), None, decimal.Decimal(50)]
    out, report = enc.transform_with_drift(df)
    assert same_output(out, expected)
    assert set(report.coerced) == {"fare"} and "decimal128" in next(iter(report.coerced["fare"]))


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("seats", pa.array([150.5, 180, 150, 100]), "150.5 is not a whole number"),
        ("fare", pa.array(["1.5", "n/a", None, "2"]), "cannot read 'n/a' as a number"),
        ("code", pa.array(["1", "x", "1", "2"]), "cannot read 'x' as a number"),
        ("seats", pa.array([2**53 + 1, 1, 2, 3], pa.uint64()), "exactly"),
        ("carrier", pa.array([1.5, 2.0, 1.0, 3.0]), "1.5 is not a whole number"),
        ("fare", pa.array([1, 2, 3, 4], pa.timestamp("s")), "not numbers"),
    ],
)
def test_lossy_type_drift_is_refused_naming_the_column(column, values, message):
    table = TRAIN.set_column(TRAIN.column_names.index(column), column, values)
    with pytest.raises(DataError, match=f"column '{column}'.*{message}"):
        fitted().transform(table)


def test_type_drift_policies_error_and_warn():
    table = TRAIN.set_column(1, "seats", pa.array([150, 180, 150, 100], pa.int32()))
    with pytest.raises(DataError, match=r"'seats' holds int32 values .*on_type_drift='error'"):
        fitted(on_type_drift="error").transform(table)
    with pytest.warns(DriftWarning, match="type of 'seats' coerced int32 -> int64"):
        fitted(on_type_drift="warn").transform(table)


def test_new_missing_values_in_columns_that_had_none_are_counted():
    table = TRAIN.set_column(1, "seats", pa.array([None, 180, None, 100], pa.int64()))
    table = table.set_column(0, "carrier", pa.array([None, "AA", "UA", "B6"]))
    out, report = fitted().transform_with_drift(table)
    assert report.missing_values == {"seats": 2, "carrier": 1}
    assert report.rows_with_missing == 2  # rows 0 and 2
    # "fare" had missing values at fit time: its missing values are not drift.
    assert "fare" not in report.missing_values


def test_nan_and_inf_are_missing_values():
    enc = fitted()
    table = TRAIN.set_column(2, "fare", pa.array([np.nan, np.inf, -np.inf, 50.0]))
    out, _ = enc.transform_with_drift(table)
    names = list(enc.get_feature_names_out())
    assert out[:, names.index("fare__missing")].tolist() == [1, 1, 1, 0]
    assert np.isfinite(out).all()
    assert len(set(out[:3, names.index("fare")].tolist())) == 1  # all three filled alike


def test_report_merges_across_partitions_and_round_trips():
    enc = fitted(on_missing_column="coerce")
    parts = [
        TRAIN.set_column(0, "carrier", pa.array(["ZZ", "AA", "UA", "B6"])),
        TRAIN.drop_columns(["seats"]).append_column("extra", pa.array([1, 2, 3, 4])),
        TRAIN.set_column(0, "carrier", pa.array(["YY", "XX", "ZZ", None])),
    ]
    total = DriftReport()
    for part in parts:
        total.merge(enc.transform_with_drift(part)[1])
    whole = enc.transform_with_drift(
        pa.concat_tables([parts[0], parts[2]]),
    )[1]
    assert total.n_rows == 12
    assert total.unseen_levels == {"carrier": 4} == whole.unseen_levels
    assert total.unseen_examples == {"carrier": ["XX", "YY", "ZZ"]}
    assert total.missing_columns == {"seats": 4}
    assert total.missing_values == {"carrier": 1}
    assert total.extra_columns == ["extra"]
    assert bool(total) and not DriftReport(n_rows=3)
    assert DriftReport.from_dict(total.to_dict()) == total
    summary = total.summary()
    assert summary.startswith("drift in 12 rows:")
    assert "unseen levels in 'carrier': 4 values (e.g. 'XX', 'YY', 'ZZ')" in summary
    assert "missing column 'seats'" in summary and "extra columns ignored: extra" in summary


def test_transform_with_drift_is_thread_safe():
    rng = np.random.default_rng(0)
    tables = [
        pa.table(
            {
                "carrier": rng.choice(["UA", "AA", "B6", "ZZ", "QQ"], 5000),
                "seats": rng.integers(90, 200, 5000),
                "fare": rng.normal(100, 20, 5000),
                "code": rng.integers(1, 5, 5000),
            }
        )
        for _ in range(8)
    ]
    enc = fitted()
    expected = [enc.transform_with_drift(t) for t in tables]
    results: dict[int, tuple] = {}

    def work(i):
        results[i] = enc.transform_with_drift(tables[i % 8])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (out, report) in results.items():
        assert same_output(out, expected[i % 8][0])
        assert report == expected[i % 8][1]
    assert not hasattr(enc, "drift_")  # nothing recorded on the encoder


def test_pandas_frame_with_default_string_dtype_matches_arrow():
    enc = fitted()
    assert same_output(enc.transform(TRAIN.to_pandas()), enc.transform(TRAIN))
    df = pd.DataFrame(TRAIN.to_pydict())
    assert same_output(enc.transform(df), enc.transform(TRAIN))


def test_high_precision_decimals_encode_as_floats_but_refuse_lossy_drift():
    precise = pa.array([decimal.Decimal("1.23456789012345678901"), decimal.Decimal("2")])
    precise = precise.cast(pa.decimal128(38, 20))
    enc = TableEncoder().fit(pa.table({"rate": precise}))
    assert enc.contract_.column("rate").arrow_type == "decimal128(38, 20)"
    out, report = enc.transform_with_drift(pa.table({"rate": precise}))
    assert not report and out.shape == (2, 1)
    floats = TableEncoder().fit(pa.table({"rate": [1.5, 2.0]}))
    with pytest.raises(
        DataError, match="column 'rate': decimal 1.23456789012345678901 has no exact"
    ):
        floats.transform(pa.table({"rate": precise}))
