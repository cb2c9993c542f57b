"""Which key columns a PostgreSQL table itself keeps unique: its primary key and unique indexes.

Key columns are unique when they hold every key column of one index the server enforces: the
primary key, or a unique index that is valid (not a failed ``CREATE INDEX CONCURRENTLY``), not
partial (``WHERE ...``), on columns rather than expressions, and whose columns are all NOT NULL
or that is ``NULLS NOT DISTINCT`` (PostgreSQL 15+): a plain unique index lets any number of rows
hold a null, and the duplicate-key check counts nulls as equal. An index's ``INCLUDE`` columns
take no part in its uniqueness, so they are not among its columns here.

Refused as well: an index on a ``numeric`` without precision (read as float64, which can map two
values to one), and a table with inheritance children, whose rows a read of the parent includes
though the parent's indexes do not cover them (a partitioned table's unique indexes do cover
every partition).

>>> covered(["id", "day"], [frozenset({"id"})]), covered(["day"], [frozenset({"id", "day"})])
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: ``NULLS NOT DISTINCT`` indexes, and validated NOT NULL constraints in their own column.
NULLS_NOT_DISTINCT_MIN_VERSION = 150000
NOT_NULL_VALID_MIN_VERSION = 180000


def unique_sets_query(server_version: int) -> str:
    """One row per index enforcing uniqueness on the table whose oid is the query's parameter:
    the names of its key columns (one query for all of them, answered from the catalog)."""
    if server_version >= NULLS_NOT_DISTINCT_MIN_VERSION:
        nulls_equal = "bool_or(i.indnullsnotdistinct)"
    else:
        nulls_equal = "false"
    # PostgreSQL 18 can add a NOT NULL constraint NOT VALID: attnotnull is set, older rows may
    # still hold nulls.
    not_null = "a.attnotnull"
    if server_version >= NOT_NULL_VALID_MIN_VERSION:
        not_null = "a.attnotnull AND a.attnotnullvalid"
    return (
        "SELECT array_agg(a.attname::text) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid "
        # indkey is 0-based; its first indnkeyatts entries are the key columns.
        "JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) "
        "WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid "
        "AND i.indpred IS NULL AND i.indexprs IS NULL "
        "AND (c.relkind = 'p' OR NOT c.relhassubclass) "
        "GROUP BY i.indexrelid "
        f"HAVING (bool_or(i.indisprimary) OR {nulls_equal} OR bool_and({not_null})) "
        "AND NOT bool_or(a.atttypid = 1700 AND a.atttypmod = -1)"
    )


def covered(keys: Sequence[str], unique_sets: Iterable[frozenset[str]]) -> bool:
    """Whether ``keys`` hold all the columns of one of ``unique_sets`` (rows that differ in a
    subset of the keys differ in the keys)."""
    wanted = set(keys)
    return bool(wanted) and any(columns <= wanted for columns in unique_sets)
