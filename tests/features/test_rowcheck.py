"""``find_bad_rows`` names exactly the rows the table steps refuse, with the right reason.

Exactness is checked against the table steps themselves: the rows left once the bad ones are
removed encode without an error, and every row named bad is refused when encoded alone.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from skfleet.errors import DataError
from skfleet.features import TableEncoder
from skfleet.features.codes import TableCodes
from skfleet.features.frame import TableFrame
from skfleet.features.rowcheck import REASONS, find_bad_rows

TRAIN = pa.table(
    {
        "fare": [1.5, 2.0, 3.5, 4.0],
        "seats": pa.array([1, 2, 3, 4], pa.int64()),
        "when": pa.array([0, 3_600_000_000, 7_200_000_000, 9_000_000_000], pa.timestamp("us")),
        "cabin": ["A", "B", "A", "C"],
        "member": [True, False, True, False],
        "code": pa.array([10, 20, 10, 30], pa.int32()),
    }
)


def _scored(step, table: pa.Table) -> None:
    step.transform_with_drift(table)


def _check_exact(step, table: pa.Table):
    bad = find_bad_rows(step.contract_, table)
    _scored(step, table.filter(pa.array(~bad.mask)))  # the rest encodes
    for row in np.flatnonzero(bad.mask):
        with pytest.raises(DataError):
            _scored(step, table.slice(int(row), 1))  # each bad row alone is refused
    with pytest.raises(DataError):
        _scored(step, table)
    return bad


@pytest.mark.parametrize("step_class", [TableEncoder, TableCodes, TableFrame])
def test_every_reason_is_found_exactly(step_class):
    step = step_class(on_unseen_level="error", categorical=["code"]).fit(TRAIN)
    table = pa.table(
        {
            "fare": ["2.5", "n/a", " 3 ", "", "1e3", "4", "5", "6", "7", "8"],
            "seats": [1.0, 2.0, 2.5, None, 3.0, float("nan"), 1.0, 1.0, 1.0, 1.0],
            "when": [
                "2013-01-01",
                "2013-01-01 10:00",
                "2013-02-30",
                "soon",
                "2013-01-01 25:00",
                None,
                "2013-06-01T12:30:00",
                "2013-01-01",
                "2013-01-01",
                "2013-01-01",
            ],
            "cabin": ["A", "B", "A", "Z", "C", None, "A", "A", "A", "A"],
            "member": ["true", "FALSE", "1", "0", "maybe", "", "true", "true", "true", "true"],
            "code": pa.array([10, 20, 30, 10, 10, 10, 40, 10, 2**40, 10], pa.int64()),
        }
    )
    bad = _check_exact(step, table)
    found = {(p.column, p.reason): p.rows.tolist() for p in bad.problems}
    assert found == {
        ("fare", "unparseable_number"): [1],
        ("seats", "not_whole_number"): [2],
        ("when", "unparseable_date"): [2, 3, 4],
        ("cabin", "unseen_level"): [3],
        ("member", "unparseable_boolean"): [4],
        ("code", "unseen_level"): [6],
        ("code", "type_refused"): [8],  # 2**40 does not fit the contract's int32
    }
    assert set(bad.counts()) <= set(REASONS)


def test_numbers_that_change_or_lose_precision():
    step = TableEncoder().fit(TRAIN)
    n = 6
    table = pa.table(
        {
            "fare": pa.array([1, 2, 2**53 + 1, 4, 5, 6], pa.int64()),
            "seats": pa.array([1, 2, 3, 4, 5, 6], pa.decimal128(10, 2)),
            "when": pa.array([0] * n, pa.timestamp("us")),
            "cabin": ["A"] * n,
            "member": pa.array([0, 1, 1, 2, 0, -1], pa.int64()),
            "code": pa.array([10] * n, pa.int32()),
        }
    )
    bad = _check_exact(step, table)
    found = {(p.column, p.reason): p.rows.tolist() for p in bad.problems}
    assert found == {("fare", "inexact_number"): [2], ("member", "type_refused"): [3, 5]}


def test_refusals_that_are_no_rows_fault_are_left_to_the_step():
    """A type the drift policy refuses, or timestamps in a time zone, fail every row alike: no
    row is named, and the table step keeps refusing the table."""
    strict = TableEncoder(on_type_drift="error").fit(TRAIN)
    table = TRAIN.set_column(0, "fare", pa.array(["1.5", "x", "2", "3"]))
    assert find_bad_rows(strict.contract_, table).count == 0
    zoned = TRAIN.set_column(2, "when", TRAIN["when"].cast(pa.timestamp("us", tz="UTC")))
    assert find_bad_rows(TableEncoder().fit(TRAIN).contract_, zoned).count == 0
    with pytest.raises(DataError, match="time zone"):
        TableEncoder().fit(TRAIN).transform(zoned)


def test_a_clean_table_has_no_bad_rows_and_unseen_levels_pass_when_coerced():
    step = TableEncoder().fit(TRAIN)  # on_unseen_level="coerce"
    table = TRAIN.set_column(3, "cabin", pa.array(["A", "Z", "B", "C"]))
    bad = find_bad_rows(step.contract_, table)
    assert bad.count == 0 and bad.problems == [] and bad.mask.tolist() == [False] * 4


def test_a_wide_partition_with_a_few_bad_values_is_found_in_bulk():
    """1,000 malformed values among 200,000 rows: every one found, and only those."""
    rng = np.random.default_rng(3)
    n = 200_000
    fare = rng.random(n).round(3).astype(str).astype(object)
    rows = np.sort(rng.choice(n, 1_000, replace=False))
    fare[rows] = "?"
    step = TableEncoder().fit(TRAIN.select(["fare"]))
    bad = find_bad_rows(step.contract_, pa.table({"fare": fare.tolist()}))
    assert bad.problems[0].rows.tolist() == rows.tolist()
    assert bad.counts() == {"unparseable_number": 1_000}
