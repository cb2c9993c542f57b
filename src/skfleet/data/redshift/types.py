"""Arrow <-> Redshift column types.

Writing: each Arrow type has one Redshift column type and one Parquet (Arrow) type the COPY reads
it from. Text is ``VARCHAR(65535)``, Redshift's widest; its limit counts *bytes*, so a longer
value is refused here, naming the column, instead of failing the COPY. Reading: the type OIDs a
Redshift query reports are PostgreSQL's, so :func:`skfleet.data.postgres.types.arrow_type_for` maps
them.

>>> [redshift_type(pa.field("x", t)) for t in (pa.string(), pa.int64(), pa.decimal128(12, 2))]
['VARCHAR(65535)', 'BIGINT', 'DECIMAL(12,2)']
>>> redshift_type(pa.field("at", pa.timestamp("ns", tz="Europe/Paris"))), wire_type(pa.field("u", pa.uint32()))
('TIMESTAMPTZ', DataType(int64))
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import DataError, UsageError

VARCHAR_MAX = 65_535
UTC_US = pa.timestamp("us", tz="UTC")


def _unsupported(field: pa.Field) -> UsageError:
    return UsageError(
        f"column {field.name!r} has Arrow type {field.type}, which skfleet cannot write to Redshift"
    )


def wire_type(field: pa.Field) -> pa.DataType:
    """The Arrow type a column is staged as in the Parquet object the COPY loads."""
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
        return pa.string()
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_decimal(t):
        if t.precision > 38:
            raise UsageError(
                f"column {field.name!r} is {t}: Redshift's DECIMAL holds at most 38 digits"
            )
        return pa.decimal128(t.precision, t.scale)
    if pa.types.is_timestamp(t):
        return UTC_US if t.tz is not None else pa.timestamp("us")
    if pa.types.is_date(t):
        return pa.date32()
    raise _unsupported(field)


def redshift_type(field: pa.Field) -> str:
    """The column type ``CREATE TABLE`` uses for an Arrow field."""
    t = wire_type(field)
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz is not None else "TIMESTAMP"
    return {
        pa.bool_(): "BOOLEAN",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "REAL",
        pa.float64(): "DOUBLE PRECISION",
        pa.string(): f"VARCHAR({VARCHAR_MAX})",
        pa.date32(): "DATE",
    }[t]


def check_text_width(array, name: str, where: str, limit: int = VARCHAR_MAX) -> None:
    """Refuse text values longer than a VARCHAR column holds (Redshift counts bytes)."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return
    if len(array) == 0 or array.null_count == len(array):
        return
    longest = pc.max(pc.binary_length(array)).as_py()
    if longest is not None and longest > limit:
        raise DataError(
            f"column {name!r} of {where} holds a value of {longest:,} bytes; Redshift's "
            f"VARCHAR({limit}) holds at most {limit:,}"
        )
