"""Convert a column to the type the feature contract expects, refusing any loss.

Used at fit time (a ``numeric=`` override on a text column) and at transform time (type drift:
the table being scored holds ``int32`` where training saw ``int64``, decimals, numbers stored as
strings, ...). A conversion either keeps every value exactly or raises :class:`DataError` naming
the column and a value that does not fit.

>>> to_float64(pa.chunked_array([["1.5", " 2", "", None]]), "fare").to_pylist()
[1.5, 2.0, None, None]
>>> to_float64(pa.chunked_array([["1.5", "n/a"]]), "fare")
Traceback (most recent call last):
...
skfleet.errors.DataError: column 'fare': cannot read 'n/a' as a number
>>> to_float64(pa.chunked_array([[1.5]]), "passengers", integral=True)
Traceback (most recent call last):
...
skfleet.errors.DataError: column 'passengers': 1.5 is not a whole number (the contract expects int64)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import DataError
from skfleet.features.dtypes import family, value_type

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(inf|infinity|nan)$"
#: Dates and times written as ISO 8601 text are parsed to these types: without a zone offset
#: (``2013-01-01 05:00``) to naive timestamps, with one (``2013-01-01T10:00:00Z``) to UTC.
TEXT_TIMESTAMP = {"naive": pa.timestamp("us"), "zoned": pa.timestamp("us", tz="UTC")}
_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?"
DATETIME_TEXT = {"naive": _ISO + "$", "zoned": _ISO + r"(Z|[+-]\d{2}(:?\d{2})?)$"}
_SECONDS_PER_UNIT = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def decoded(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """``values`` without dictionary encoding."""
    if pa.types.is_dictionary(values.type):
        return values.cast(values.type.value_type)
    return values


def _blank_to_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trim strings; an empty string is a missing value (as in CSV files)."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)


def nan_to_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if family(values.type) != "float":
        return values
    return pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)


def _first(values: pa.ChunkedArray, mask: pa.ChunkedArray):
    bad = values.filter(pc.fill_null(mask, False))
    return bad[0].as_py() if len(bad) else None


def parse_strings(values: pa.ChunkedArray, target: pa.DataType, column: str) -> pa.ChunkedArray:
    """Parse numbers, booleans or timestamps stored as text; blanks become missing."""
    clean = _blank_to_null(values)
    try:
        return clean.cast(target)
    except _ARROW_ERRORS as exc:
        if pa.types.is_floating(target) or pa.types.is_integer(target):
            example = _first(
                clean, pc.invert(pc.match_substring_regex(clean, _NUMBER, ignore_case=True))
            )
            if example is not None:
                raise DataError(f"column {column!r}: cannot read {example!r} as a number") from exc
        raise DataError(f"column {column!r}: cannot read the text as {target}: {exc}") from exc


def _check_whole(values: pa.ChunkedArray, column: str, expected: str) -> None:
    finite = pc.and_(pc.is_finite(values), pc.is_valid(values))
    frac = pc.and_(finite, pc.not_equal(pc.floor(values), values))
    example = _first(values, frac)
    if example is not None:
        raise DataError(
            f"column {column!r}: {example!r} is not a whole number (the contract expects {expected})"
        )


def to_float64(
    values: pa.ChunkedArray, column: str, *, integral: bool = False, expected: str = "int64"
) -> pa.ChunkedArray:
    """Numbers as ``float64``, converting without loss; ``integral`` refuses fractions.

    NaN and infinities pass through (the encoder treats them as missing values).
    """
    values = decoded(values)
    fam = family(values.type)
    if fam == "float":
        out = values.cast(pa.float64())
    elif fam in ("int", "bool", "null"):
        try:
            out = values.cast(pa.float64())
        except _ARROW_ERRORS as exc:
            raise DataError(
                f"column {column!r}: integers beyond 2**53 cannot be represented exactly ({exc})"
            ) from exc
        return out
    elif fam == "decimal":
        out = values.cast(pa.float64())
        back = out.cast(values.type, safe=False)
        lossy = pc.not_equal(back, values)
        example = _first(values, lossy)
        if example is not None:
            raise DataError(f"column {column!r}: decimal {example} has no exact float64 value")
    elif fam == "string":
        out = parse_strings(values, pa.float64(), column)
    else:
        raise DataError(f"column {column!r} holds {values.type} values, not numbers")
    if integral:
        _check_whole(out, column, expected)
    return out


def _round_trip_check(src: pa.ChunkedArray, out: pa.ChunkedArray, column: str) -> None:
    """Refuse a cast whose result does not convert back to the original values."""
    try:
        back = out.cast(src.type, safe=False)
    except _ARROW_ERRORS:
        return
    example = _first(src, pc.not_equal(back, src))
    if example is not None:
        raise DataError(f"column {column!r}: value {example!r} would change when converted")


def to_type(values: pa.ChunkedArray, target: pa.DataType, column: str) -> pa.ChunkedArray:
    """Convert ``values`` to ``target`` exactly, or raise :class:`DataError`.

    >>> to_type(pa.chunked_array([[1, 2]]), pa.large_string(), "code").to_pylist()
    ['1', '2']
    >>> to_type(pa.chunked_array([[1.0, None]]), pa.large_string(), "code").to_pylist()
    ['1', None]
    >>> to_type(pa.chunked_array([[2]], pa.int64()), pa.bool_(), "flag")
    Traceback (most recent call last):
    ...
    skfleet.errors.DataError: column 'flag': value 2 would change when converted
    """
    values = decoded(values)
    src, dst = values.type, value_type(target)
    if src == dst:
        return values
    fs, fd = family(src), family(dst)
    if fs == "null":
        return values.cast(dst)
    if fs == fd == "string":
        return values.cast(dst)
    if fs == "string":
        if fd == "float":
            return parse_strings(values, pa.float64(), column).cast(dst)
        return parse_strings(values, dst, column)
    if fd == "float":
        return to_float64(values, column).cast(dst)
    if fs == "float" and fd in ("int", "string", "bool"):
        values = nan_to_null(values)
        _check_whole(values, column, str(dst))
        values = values.cast(pa.int64())
        src, fs = values.type, "int"
        if fd == "int":
            return _checked_cast(values, dst, column)
    if fs == "datetime" and fd == "datetime":
        if getattr(src, "tz", None) is None and getattr(dst, "tz", None) is not None:
            raise DataError(
                f"column {column!r}: timestamps without a time zone cannot be matched to {dst}"
            )
        if getattr(src, "tz", None) is not None and getattr(dst, "tz", None) is None:
            raise DataError(
                f"column {column!r}: timestamps in time zone {src.tz} cannot be matched to {dst}"
            )
    if fd == "string" and fs not in ("int", "bool"):
        raise DataError(f"column {column!r}: {src} values cannot be matched to text levels")
    out = _checked_cast(values, dst, column)
    if fd != "string":
        _round_trip_check(values, out, column)
    return out


def _checked_cast(values: pa.ChunkedArray, dst: pa.DataType, column: str) -> pa.ChunkedArray:
    try:
        return values.cast(dst)
    except _ARROW_ERRORS as exc:
        detail = str(exc).splitlines()[0]
        raise DataError(
            f"column {column!r}: cannot convert {values.type} to {dst} ({detail})"
        ) from exc


def float64_numpy(values: pa.ChunkedArray) -> np.ndarray:
    """A float64 column as numpy, NaN where null. Without nulls in one chunk (the usual batch) it
    is Arrow's own buffer, read-only, not a copy.

    >>> float64_numpy(pa.chunked_array([[1.5, None]])).tolist()
    [1.5, nan]
    """
    if values.null_count == 0 and values.num_chunks == 1:
        return values.chunk(0).to_numpy(zero_copy_only=False)
    return np.asarray(pc.fill_null(values, np.nan).to_numpy(), dtype=np.float64)


def epoch_seconds(values: pa.ChunkedArray) -> np.ndarray:
    """Seconds since 1970-01-01 UTC of dates or timestamps, as float64 (NaN where missing).

    >>> epoch_seconds(pa.chunked_array([[86_400_000, None]], pa.timestamp("ms"))).tolist()
    [86400.0, nan]
    >>> epoch_seconds(pa.chunked_array([[1_704_067_200 * 10**9]], pa.timestamp("ns"))).tolist()
    [1704067200.0]
    """
    t = values.type
    if pa.types.is_timestamp(t):
        raw = values.cast(pa.int64())
        per_second = _SECONDS_PER_UNIT[t.unit]
    elif pa.types.is_date32(t):
        raw = values.cast(pa.int32()).cast(pa.int64())
        per_second = 1 / 86_400
    else:
        raw = values.cast(pa.int64())
        per_second = 1_000
    # Unchecked: a nanosecond timestamp of this century is beyond 2**53, which a checked cast to
    # float64 refuses; the float keeps it to about a microsecond, finer than a feature needs.
    return float64_numpy(raw.cast(pa.float64(), safe=False)) / per_second
