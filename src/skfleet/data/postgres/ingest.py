"""The COPY of one partition into a PostgreSQL table, inside the writer's transaction.

Every type goes straight in through ADBC's bulk ingest, except decimals (see :func:`ingest`).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from skfleet.data.postgres.types import pg_type_for

#: The temporary table decimal columns pass through (see :func:`ingest`).
DECIMAL_DETOUR = "_skfleet_decimal_rows"


def ingest(cursor, nsp: str, table: str, data: pa.Table) -> None:
    """Append ``data`` to ``nsp.table``, inside the caller's transaction.

    Decimal columns take a detour: the pinned ADBC driver (1.8, see ``pyproject.toml``)
    writes ``numeric`` values with their scale dropped (12.34 arrives as 1234.00). They are
    sent as exact text to a temporary table and cast by the server on the way in.
    """
    from psycopg import sql

    decimals = {f.name for f in data.schema if pa.types.is_decimal(f.type)}
    if not decimals:
        cursor.adbc_ingest(table, data, mode="append", db_schema_name=nsp)
        return
    columns = [sql.Identifier(name) for name in data.column_names]
    text = pa.table(
        [
            pc.cast(data.column(f.name), pa.string()) if f.name in decimals else data.column(i)
            for i, f in enumerate(data.schema)
        ],
        names=data.column_names,
    )
    temp = sql.Identifier(DECIMAL_DETOUR)
    create = sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        temp,
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(ident, sql.SQL(pg_type_for(field)))
            for ident, field in zip(columns, text.schema, strict=True)
        ),
    )
    values = sql.SQL(", ").join(
        sql.SQL("{}::{}").format(ident, sql.SQL(pg_type_for(f))) if f.name in decimals else ident
        for ident, f in zip(columns, data.schema, strict=True)
    )
    cursor.execute(create.as_string(None))
    cursor.adbc_ingest(DECIMAL_DETOUR, text, mode="append", temporary=True)
    cursor.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}")
        .format(sql.Identifier(nsp, table), sql.SQL(", ").join(columns), values, temp)
        .as_string(None)
    )
    # Gone now, not at commit: the same transaction may ingest a second table (a run's keys).
    cursor.execute(sql.SQL("DROP TABLE {}").format(temp).as_string(None))
