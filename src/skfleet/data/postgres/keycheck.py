"""The PostgreSQL sink's duplicate-key check: one statement on the server, at commit.

``fail`` and ``replace`` runs count on their staging table, which holds exactly the run's rows.
An ``append`` run writes each partition straight into the target, among the rows of earlier
runs (which are not compared: today's rows may well repeat yesterday's keys), so it also copies
its rows' key columns to a table of its own, ``_skfleet_keys_<digest>``, in the same
transaction as the partition (exactly once, like the rows), and drops it at commit or abort.

The check is a ``GROUP BY`` of the key columns rather than a unique index: it counts every
repeat (``warn`` says how many), treats null keys as equal like the per-partition check does,
and leaves no index on the published table. The server sorts or hashes, spilling to disk as it
needs; the client receives one row.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from skfleet.data.base import DuplicateKeys
from skfleet.data.keyhash import key_text
from skfleet.data.postgres.types import pg_type_for


def create_keys_table(conn, qualified, wire: pa.Schema, keys: Sequence[str]) -> None:
    """Create the append run's key table ``qualified`` (a psycopg identifier) unless a resumed
    run's is there, its columns typed as ``wire`` types the keys."""
    from psycopg import sql

    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(pg_type_for(wire.field(k))))
        for k in keys
    )
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(qualified, columns))


def repeated_keys(conn, qualified, keys: Sequence[str]) -> DuplicateKeys:
    """Rows of table ``qualified`` whose ``keys`` another row has, and one such key."""
    from psycopg import sql

    columns = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
    query = sql.SQL(
        "SELECT {cols}, sum(_skfleet_n - 1) OVER () FROM (SELECT {cols}, count(*) AS "
        "_skfleet_n FROM {table} GROUP BY {cols} HAVING count(*) > 1) AS repeated LIMIT 1"
    ).format(cols=columns, table=qualified)
    row = conn.execute(query).fetchone()
    if row is None:
        return DuplicateKeys(0)
    return DuplicateKeys(int(row[-1]), key_text(dict(zip(keys, row[:-1], strict=True)), keys))
