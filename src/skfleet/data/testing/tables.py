"""The tables the conformance kit writes and reads back.

>>> id_table(3).column_names, id_table(3, start=5)["id"].to_pylist()
(['id', 'x', 'tag'], [5, 6, 7])
"""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pyarrow as pa


def typed_table() -> pa.Table:
    """Every type the kit round-trips, with NULLs in each column."""
    utc = dt.UTC
    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "small": pa.array([7, None, -3, 0], pa.int32()),
            "ratio": pa.array([0.5, None, -1.25e-7, 3.0e12], pa.float64()),
            "flag": pa.array([True, False, None, True], pa.bool_()),
            "at": pa.array(
                [
                    dt.datetime(2013, 1, 1, 5, 15, tzinfo=utc),
                    None,
                    dt.datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=utc),
                    dt.datetime(2030, 6, 1, tzinfo=utc),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "amount": pa.array(
                [
                    decimal.Decimal("12.34"),
                    decimal.Decimal("-0.01"),
                    None,
                    decimal.Decimal("99999999.99"),
                ],
                pa.decimal128(10, 2),
            ),
            "label": pa.array(
                ["plain", "quote \" and ' and , comma", None, "ünïcødé ✈ 東京\ttab"], pa.string()
            ),
        }
    )


def id_table(n: int, start: int = 0) -> pa.Table:
    """``n`` rows: ``id`` from ``start``, a float and a short string column."""
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {"id": ids, "x": ids.astype(np.float64) * 0.5, "tag": pa.array((ids % 7).astype(str))}
    )


def sorted_by_id(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


def read_ids(source, parts) -> np.ndarray:
    """The ``id`` values of every partition in ``parts``, in read order."""
    return np.concatenate([source.read(p, columns=["id"])["id"].to_numpy() for p in parts])
