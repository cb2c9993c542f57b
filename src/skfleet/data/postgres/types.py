"""PostgreSQL <-> Arrow types, in both directions.

Reading: a column's type OID (plus numeric precision/scale) gives the Arrow type skfleet promises;
types outside the table are read as their text form (``col::text``) so a schema never depends on
a driver's opinion of, say, ``uuid`` or an enum. Writing: each Arrow type has one column type.

>>> arrow_type_for(20), arrow_type_for(1700, 10, 2), arrow_type_for(1184)
(DataType(int64), Decimal128Type(decimal128(10, 2)), TimestampType(timestamp[us, tz=UTC]))
>>> arrow_type_for(2950) is None  # uuid: read as text
True
>>> pg_type_for(pa.field("amount", pa.decimal128(10, 2))), pg_type_for(pa.field("x", pa.uint32()))
('numeric(10,2)', 'bigint')
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import DataError, UsageError

UTC_US = pa.timestamp("us", tz="UTC")

# OID -> Arrow type for the types ADBC's binary COPY reader decodes itself.
_BY_OID: dict[int, pa.DataType] = {
    16: pa.bool_(),
    17: pa.binary(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    19: pa.string(),  # name
    1042: pa.string(),  # char(n)
    1043: pa.string(),  # varchar
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: UTC_US,
    1186: pa.month_day_nano_interval(),
    114: pa.string(),  # json: ADBC gives an arrow.json extension over string; we keep the string
    3802: pa.string(),  # jsonb
}
NUMERIC_OID = 1700


def arrow_type_for(
    oid: int, precision: int | None = None, scale: int | None = None
) -> pa.DataType | None:
    """The Arrow type a column of type ``oid`` is read as; ``None``: read its text form.

    ``numeric(p,s)`` becomes ``decimal128(p,s)`` (``decimal256`` above 38 digits). A ``numeric``
    without a declared precision has no fixed decimal shape, so it is read as ``float64``.
    """
    if oid == NUMERIC_OID:
        if precision is None or scale is None or precision <= 0:
            return pa.float64()
        if precision <= 38:
            return pa.decimal128(precision, scale)
        if precision <= 76:
            return pa.decimal256(precision, scale)
        return pa.float64()
    return _BY_OID.get(oid)


def schema_of(description, where: str) -> tuple[pa.Schema, frozenset[str]]:
    """The Arrow schema of a query's result (a driver's ``cursor.description``) and the names of
    the columns read as their text form; ``where`` names the relation when two columns share a
    name (a query may repeat one; a schema may not).

    >>> from collections import namedtuple
    >>> Column = namedtuple("Column", "name type_code precision scale")
    >>> schema_of([Column("id", 20, None, None), Column("u", 2950, None, None)], "query")
    (id: int64
    u: string, frozenset({'u'}))
    """
    fields, text_columns, seen = [], set(), set()
    for column in description:
        if column.name in seen:
            raise UsageError(
                f"{where} has two columns named {column.name!r}; give them distinct aliases"
            )
        seen.add(column.name)
        arrow = arrow_type_for(column.type_code, column.precision, column.scale)
        if arrow is None:
            text_columns.add(column.name)
            arrow = pa.string()
        fields.append(pa.field(column.name, arrow))
    return pa.schema(fields), frozenset(text_columns)


def unsupported(field: pa.Field, system: str = "PostgreSQL") -> UsageError:
    """The one-line refusal of a column whose Arrow type ``system`` has no column type for."""
    return UsageError(
        f"column {field.name!r} has Arrow type {field.type}, which skfleet cannot write to {system}"
    )


def wire_type(field: pa.Field) -> pa.DataType:
    """The Arrow type a column is sent to PostgreSQL as (what binary COPY ingest accepts)."""
    t = field.type
    if pa.types.is_dictionary(t):
        return wire_type(pa.field(field.name, t.value_type))
    if pa.types.is_boolean(t) or t in (
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.float32(),
        pa.float64(),
    ):
        return t
    if t in (pa.int8(), pa.uint8()):
        return pa.int16()
    if t == pa.uint16():
        return pa.int32()
    if t == pa.uint32():
        return pa.int64()
    if t == pa.uint64():
        return pa.decimal128(20, 0)
    if t == pa.float16():
        return pa.float32()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.large_string() if pa.types.is_large_string(t) else pa.string()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.large_binary() if pa.types.is_large_binary(t) else pa.binary()
    if pa.types.is_decimal(t):
        if t.precision > 1000:
            raise unsupported(field)
        return t
    if pa.types.is_timestamp(t):
        return UTC_US if t.tz is not None else pa.timestamp("us")
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.time64("us")
    if pa.types.is_duration(t):
        return pa.duration("us")
    if pa.types.is_null(t):
        return pa.string()
    raise unsupported(field)


def pg_type_for(field: pa.Field) -> str:
    """The column type ``CREATE TABLE`` uses for an Arrow field."""
    t = wire_type(field)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz is not None else "timestamp"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "bytea"
    return {
        pa.int16(): "smallint",
        pa.int32(): "integer",
        pa.int64(): "bigint",
        pa.float32(): "real",
        pa.float64(): "double precision",
        pa.date32(): "date",
        pa.time64("us"): "time",
        pa.duration("us"): "interval",
    }[t]


def _plain(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Drop Arrow extension wrappers (ADBC's ``arrow.opaque`` numeric, ``arrow.json``) and
    dictionary encoding, keeping the values."""
    if isinstance(array, pa.ChunkedArray):
        if isinstance(array.type, pa.ExtensionType):
            return pa.chunked_array([c.storage for c in array.chunks], array.type.storage_type)
        return array
    if isinstance(array.type, pa.ExtensionType):
        return array.storage
    return array


def cast_column(array, target: pa.DataType, name: str, where: str):
    """Cast one column, naming it when a value does not fit (``DataError``)."""
    array = _plain(array)
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    if array.type == target:
        return array
    try:
        return pc.cast(array, target, safe=not pa.types.is_timestamp(target))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"column {name!r} of {where} cannot be converted from {array.type} to {target}: {exc}"
        ) from None


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    """Give a batch from the driver exactly ``schema`` (names, order, types, no metadata)."""
    arrays = [cast_column(batch.column(i), f.type, f.name, where) for i, f in enumerate(schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def conform_table(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """Like :func:`conform_batch` for a whole table (columns matched by position)."""
    arrays = [cast_column(table.column(i), f.type, f.name, where) for i, f in enumerate(schema)]
    return pa.Table.from_arrays(arrays, schema=schema)
