"""Hypothesis strategies and comparison helpers for the encoder tests."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from hypothesis import strategies as st

from skfleet.features import EncoderOptions

CODES = ["JFK", "LGA", "EWR", "BOS", "ORD", "SFO"]
WORDS = ["delayed", "weather", "crew", "late", "aircraft", "security", "on", "time"]
#: Small limits so that small generated tables exercise hashing, text and capped levels.
OPTIONS = EncoderOptions(max_distinct=8, text_min_words=3.0)


def _column(draw, n, element, arrow_type, nullable=True):
    values = draw(
        st.lists(st.one_of(st.none(), element) if nullable else element, min_size=n, max_size=n)
    )
    # One guaranteed value: an all-missing column is (rightly) excluded with a warning.
    values[0] = draw(element)
    return pa.array(values, type=arrow_type)


@st.composite
def tables(draw, min_rows=1, max_rows=40):
    """Tables with every kind of column: numeric, boolean, categorical, hashed, text, datetime."""
    n = draw(st.integers(min_rows, max_rows))
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    moment = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1))
    phrase = st.lists(st.sampled_from(WORDS), min_size=3, max_size=6).map(" ".join)
    columns = {
        "fare": _column(draw, n, finite, pa.float64()),
        "seats": _column(draw, n, st.integers(-5, 5), pa.int64()),
        "small": _column(draw, n, st.integers(0, 3), pa.int32(), nullable=False),
        "wifi": _column(draw, n, st.booleans(), pa.bool_()),
        "origin": _column(draw, n, st.sampled_from(CODES), pa.large_string()),
        "tail": _column(draw, n, st.text("ABC123", min_size=1, max_size=4), pa.string()),
        "remark": _column(draw, n, phrase, pa.large_string()),
        "departed": _column(draw, n, moment, pa.timestamp("us")),
    }
    return pa.table(columns)


def chunkings(n_rows: int):
    """Sorted cut points splitting ``n_rows`` rows into chunks (empty chunks allowed)."""
    return st.lists(st.integers(0, n_rows), max_size=4).map(sorted)


def split(table: pa.Table, cuts: list[int]) -> list[pa.Table]:
    bounds = [0, *cuts, table.num_rows]
    return [table.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def same_output(a, b) -> bool:
    """Bit-for-bit equality of two encoder outputs (dense or CSR)."""
    if sp.issparse(a) or sp.issparse(b):
        if not (sp.issparse(a) and sp.issparse(b)) or a.shape != b.shape:
            return False
        return (
            np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data.view(np.uint32), b.data.view(np.uint32))
        )
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(
            np.ascontiguousarray(a).view(np.uint32), np.ascontiguousarray(b).view(np.uint32)
        )
    )


def moments_close(a, b) -> bool:
    """Means and variances equal within 1e-9 relative (plus rounding noise near zero)."""
    if a is None or b is None:
        return a is b
    noise = 1e-12 * (1.0 + a.mean * a.mean)
    return (
        a.n == b.n
        and math.isclose(a.mean, b.mean, rel_tol=1e-9, abs_tol=1e-12 * (1.0 + abs(a.mean)))
        and math.isclose(a.variance, b.variance, rel_tol=1e-9, abs_tol=noise)
    )
