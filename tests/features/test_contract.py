"""The contract is plain JSON with a format version; reading it back is exact and checked."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from skfleet.errors import DataError
from skfleet.features import FeatureContract, TableEncoder
from skfleet.features.dtypes import type_from_str, type_to_str


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.int8(), pa.uint64(), pa.float16(), pa.float32(), pa.float64(), pa.bool_(), pa.null(),
        pa.string(), pa.large_string(), pa.date32(), pa.date64(), pa.timestamp("s"),
        pa.timestamp("ns", tz="America/New_York"), pa.timestamp("us", tz="+01:00"),
        pa.decimal128(10, 2), pa.decimal256(40, -3),
    ],
)  # fmt: skip
def test_arrow_types_round_trip_through_their_string_form(arrow_type):
    assert type_from_str(type_to_str(arrow_type)) == arrow_type


@pytest.fixture
def contract():
    table = pa.table(
        {
            "carrier": ["UA", "AA", "UA", None, "B6", "DL"],
            "fare": [10.5, None, 3.25, 7.0, 1e-3, 2.0],
            "flag": [True, False, True, True, None, False],
            "when": pa.array([0, 10**15, 2 * 10**15, None, 5, 6], pa.timestamp("us", tz="UTC")),
            "note": ["x", "y", "z", "w", "v", "u"],
        }
    )
    return TableEncoder(max_levels=2, hash=["note"], hash_features=4).fit(table).contract_


def test_contract_holds_everything_the_issue_lists(contract):
    data = json.loads(contract.to_json())
    assert data["format_version"] == 1
    assert set(data["versions"]) >= {"python", "skfleet", "numpy", "pyarrow", "scikit-learn"}
    kinds = {c["name"]: c["kind"] for c in data["columns"]}
    assert kinds == {
        "carrier": "categorical",
        "fare": "numeric",
        "flag": "boolean",
        "when": "datetime",
        "note": "categorical",
    }
    carrier = contract.column("carrier")
    assert carrier.levels == ["UA", "AA"] and carrier.other_levels == ["B6", "DL"]
    assert carrier.indicator and carrier.fill_value == "UA"
    assert contract.column("note").hash.n_features == 4
    assert contract.column("when").parts == ["year", "month", "dayofweek", "hour", "epoch"]
    assert contract.column("when").arrow_type == "timestamp[us, tz=UTC]"
    assert data["feature_names"] == contract.feature_names
    assert contract.input_columns == ["carrier", "fare", "flag", "note", "when"]


def test_json_round_trip_is_exact(contract):
    text = contract.to_json()
    again = FeatureContract.from_json(text)
    assert again == contract and again.to_json() == text
    assert FeatureContract.from_dict(json.loads(json.dumps(contract.to_dict()))) == contract


def test_newer_format_is_refused_with_a_clear_message(contract):
    data = contract.to_dict()
    data["format_version"] = 99
    with pytest.raises(DataError, match="format 99 is not supported"):
        FeatureContract.from_dict(data)


def test_inconsistent_or_broken_contracts_are_refused(contract):
    data = contract.to_dict()
    data["feature_names"] = data["feature_names"][:-1]
    with pytest.raises(DataError, match="inconsistent"):
        FeatureContract.from_dict(data)
    with pytest.raises(DataError, match="not valid JSON"):
        FeatureContract.from_json("{not json")
    with pytest.raises(DataError, match="format_version"):
        FeatureContract.from_json("[]")
    data = contract.to_dict()
    data["columns"][0]["kind"] = "fancy"
    with pytest.raises(DataError, match="unknown kind 'fancy'"):
        FeatureContract.from_dict(data)


def test_from_contract_rebuilds_parameters_and_policies(contract):
    enc = TableEncoder.from_contract(contract.with_policies(on_unseen_level="warn"))
    assert enc.max_levels == 2 and enc.hash == ("note",) and enc.on_unseen_level == "warn"
    assert enc.contract_.on_unseen_level == "warn"
    assert list(enc.feature_names_in_) == contract.input_columns
    with pytest.raises(Exception, match="contract alone"):
        enc.partial_fit(pa.table({"fare": [1.0]}))


def test_duplicate_feature_names_are_refused():
    # Level "1" of column "x" and the numeric column "x=1" would both be called "x=1".
    with pytest.raises(DataError, match="feature name 'x=1' is produced twice"):
        TableEncoder().fit(pa.table({"x": ["1", "2"], "x=1": [1.0, 2.0]}))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_of_this_century_encode_alike_in_every_unit(unit):
    # A nanosecond timestamp (pandas' default) of 2024 is beyond 2**53: it must still encode.
    seconds = [1_704_067_200, 1_719_792_000 + 3_600 * 7, None, 1_735_689_599]
    per = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    table = pa.table({"when": pa.array([None if s is None else s * per for s in seconds],
                                       pa.timestamp(unit, tz="UTC"))})  # fmt: skip
    in_seconds = pa.table({"when": pa.array(seconds, pa.timestamp("s", tz="UTC"))})
    encoder = TableEncoder().fit(in_seconds)
    assert (encoder.transform(table) == encoder.transform(in_seconds)).all()
    # Fitted in another unit, the missing value's fill rounds in its own unit's float.
    fitted_here = TableEncoder().fit(table).transform(table)
    np.testing.assert_allclose(fitted_here, encoder.transform(in_seconds), atol=1e-6)
