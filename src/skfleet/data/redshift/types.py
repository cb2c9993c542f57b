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

from skfleet.data.postgres.types import unsupported
from skfleet.data.postgres.types import wire_type as pg_wire_type
from skfleet.errors import DataError, UsageError

VARCHAR_MAX = 65_535

#: Redshift's column type for each wire type but decimals and timestamps.
_COLUMN_TYPES = {
    pa.bool_(): "BOOLEAN",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "REAL",
    pa.float64(): "DOUBLE PRECISION",
    pa.string(): f"VARCHAR({VARCHAR_MAX})",
    pa.date32(): "DATE",
}


def wire_type(field: pa.Field) -> pa.DataType:
    """The Arrow type a column is staged as in the Parquet object the COPY loads: PostgreSQL's
    (:func:`skfleet.data.postgres.types.wire_type`), less the types Redshift has no column for."""
    t = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    if pa.types.is_decimal(t) and t.precision > 38:
        raise UsageError(
            f"column {field.name!r} is {t}: Redshift's DECIMAL holds at most 38 digits"
        )
    try:
        wire = pg_wire_type(field)
    except UsageError:
        raise unsupported(field, "Redshift") from None
    if pa.types.is_decimal(wire):
        return pa.decimal128(wire.precision, wire.scale)
    if wire == pa.large_string():
        return pa.string()
    if wire not in _COLUMN_TYPES and not pa.types.is_timestamp(wire):
        raise unsupported(field, "Redshift")  # binary, time of day, duration
    return wire


def redshift_type(field: pa.Field) -> str:
    """The column type ``CREATE TABLE`` uses for an Arrow field."""
    t = wire_type(field)
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz is not None else "TIMESTAMP"
    return _COLUMN_TYPES[t]


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
