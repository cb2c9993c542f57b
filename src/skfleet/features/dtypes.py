"""Arrow data types as the contract stores them, and the families the encoder reasons with.

A contract records each column's Arrow type as its plain string form, so the JSON stays readable:

>>> type_to_str(pa.timestamp("us", tz="UTC"))
'timestamp[us, tz=UTC]'
>>> type_from_str("timestamp[us, tz=UTC]") == pa.timestamp("us", tz="UTC")
True
>>> type_from_str("decimal128(10, 2)")
Decimal128Type(decimal128(10, 2))

Dictionary encoding is a storage detail, so a dictionary column is recorded by its value type:

>>> type_to_str(pa.dictionary(pa.int8(), pa.large_string()))
'large_string'
>>> family(pa.int32()), family(pa.float32()), family(pa.date32()), family(pa.string_view())
('int', 'float', 'datetime', 'string')
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.types as pat

from skfleet.errors import DataError

_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:, tz=(.+))?\]$")
_DECIMAL = re.compile(r"^decimal(32|64|128|256)\((\d+), (-?\d+)\)$")
_DECIMAL_FACTORIES = {
    "32": getattr(pa, "decimal32", pa.decimal128),
    "64": getattr(pa, "decimal64", pa.decimal128),
    "128": pa.decimal128,
    "256": pa.decimal256,
}


def value_type(t: pa.DataType) -> pa.DataType:
    """The type a column holds once any dictionary encoding is removed."""
    return t.value_type if pat.is_dictionary(t) else t


def type_to_str(t: pa.DataType) -> str:
    """The string the contract stores for ``t`` (dictionary encoding dropped)."""
    return str(value_type(t))


def type_from_str(text: str) -> pa.DataType:
    """Inverse of :func:`type_to_str` for the types a contract can hold.

    >>> type_from_str("large_string")
    DataType(large_string)
    >>> type_from_str("list<item: int64>")
    Traceback (most recent call last):
    ...
    skfleet.errors.DataError: unknown Arrow type 'list<item: int64>' in the feature contract
    """
    match = _TIMESTAMP.match(text)
    if match:
        return pa.timestamp(match.group(1), tz=match.group(2))
    match = _DECIMAL.match(text)
    if match:
        return _DECIMAL_FACTORIES[match.group(1)](int(match.group(2)), int(match.group(3)))
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError) as exc:
        raise DataError(f"unknown Arrow type {text!r} in the feature contract") from exc


def family(t: pa.DataType) -> str:
    """One of ``null bool int float decimal string datetime other``."""
    t = value_type(t)
    if pat.is_null(t):
        return "null"
    if pat.is_boolean(t):
        return "bool"
    if pat.is_integer(t):
        return "int"
    if pat.is_floating(t):
        return "float"
    if pat.is_decimal(t):
        return "decimal"
    if pat.is_string(t) or pat.is_large_string(t) or _is_string_view(t):
        return "string"
    if pat.is_timestamp(t) or pat.is_date(t):
        return "datetime"
    return "other"


def _is_string_view(t: pa.DataType) -> bool:
    check = getattr(pat, "is_string_view", None)
    return bool(check and check(t))


_UNITS = {"s": 0, "ms": 1, "us": 2, "ns": 3}


def unify(a: pa.DataType, b: pa.DataType, column: str) -> pa.DataType:
    """The type that holds values of both ``a`` and ``b`` (two chunks of one column).

    Order does not matter, so chunked and merged fits agree on the result.

    >>> unify(pa.int32(), pa.int64(), "x"), unify(pa.int64(), pa.float32(), "x")
    (DataType(int64), DataType(double))
    >>> unify(pa.string(), pa.int64(), "zip")
    Traceback (most recent call last):
    ...
    skfleet.errors.DataError: column 'zip' holds string values in one part of the table and int64 in another
    """
    a, b = value_type(a), value_type(b)
    if a == b:
        return a
    fa, fb = family(a), family(b)
    if fa == "null":
        return b
    if fb == "null":
        return a
    if fa == fb == "string":
        return pa.large_string()
    if fa == fb == "int":
        return pa.int64()
    numeric = {"int", "float", "decimal"}
    if fa in numeric and fb in numeric:
        return pa.float64()
    if fa == fb == "datetime":
        tz_a = getattr(a, "tz", None)
        tz_b = getattr(b, "tz", None)
        if tz_a == tz_b:
            units = [t.unit for t in (a, b) if pat.is_timestamp(t)] or ["ms"]
            return pa.timestamp(max(units, key=_UNITS.__getitem__), tz=tz_a)
    raise DataError(
        f"column {column!r} holds {a} values in one part of the table and {b} in another"
    )


def is_representation_change(src: pa.DataType, dst: pa.DataType) -> bool:
    """True when ``src`` and ``dst`` hold the same values and differ only in storage.

    Such differences (dictionary encoding, ``string`` vs ``large_string``) are not type drift.

    >>> is_representation_change(pa.dictionary(pa.int8(), pa.string()), pa.large_string())
    True
    >>> is_representation_change(pa.int32(), pa.int64())
    False
    """
    src, dst = value_type(src), value_type(dst)
    return src == dst or family(src) == family(dst) == "string"
