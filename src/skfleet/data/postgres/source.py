"""Read a PostgreSQL table, view or query in partitions that workers read by themselves.

Tables are split into ranges of heap blocks (``ctid`` TID range scans, PostgreSQL 14+); views,
queries and partitioned tables into key ranges when ``key=`` names a column, else read as one
partition. Every partition is read inside one *exported snapshot*: the source keeps a REPEATABLE
READ transaction open on the client (from the first :meth:`PostgresSource.partitions` call until
:meth:`PostgresSource.close`) and each worker imports it with ``SET TRANSACTION SNAPSHOT``, so all
partitions see the same table state even while the table is being written.

Reading after the planning source was closed raises :class:`SnapshotGoneError` rather than quietly
reading a newer state: a silent fallback would break the one guarantee the snapshot gives.

How the partitions are cut (block and key ranges, their WHERE clauses) is
:mod:`~skfleet.data.postgres.plan`; this module talks to the server.

>>> PostgresSource("postgresql://db.example/sales?query=select%201").label
'query'
"""

from __future__ import annotations

import contextlib
import json
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from skfleet.data.base import Partition, Source, selected_columns
from skfleet.data.postgres.conn import (
    SnapshotGoneError,
    adbc_cursor,
    connect_psycopg,
    driver_errors,
    is_snapshot_error,
    translate,
)
from skfleet.data.postgres.incremental import PostgresIncremental
from skfleet.data.postgres.plan import (  # noqa: F401  (MAX_SAMPLE...: the redshift backend's)
    MAX_SAMPLE,
    SAMPLE_PER_PARTITION,
    block_partitions,
    key_partitions,
    key_sample_query,
    pick_boundaries,
    where_clause,
)
from skfleet.data.postgres.types import conform_batch, conform_table, schema_of
from skfleet.data.postgres.unique import covered, unique_sets_query
from skfleet.data.postgres.url import parse_pg_url
from skfleet.errors import MissingColumnError, SkfleetError, SourceNotFoundError, UsageError

#: Relation kinds whose rows live in one heap, so block ranges split them.
HEAP_KINDS = ("r", "m")
TID_RANGE_MIN_VERSION = 140000


@dataclass(frozen=True)
class _Relation:
    """What a worker needs to build its SELECT; learned once, pickled along with the source."""

    from_sql: str  # a quoted relation name or a parenthesised query with an alias
    schema: pa.Schema
    text_columns: frozenset[str]  # columns read through ::text (types Arrow has no stand-in for)
    relkind: str | None  # pg_class.relkind, None for a query
    oid: int | None
    server_version: int


class PostgresSource(PostgresIncremental, Source):
    """A PostgreSQL table, view or query (see the module docs for the URL and the partitioning).

    Pickles without its connection: a worker holding a copy plus a :class:`Partition` reads it by
    itself. The password stays inside :attr:`url`; messages and ``repr`` use ``display_name``.
    """

    def __init__(self, url: str, **options: Any):
        super().__init__(url)
        if options:
            raise UsageError(f"unknown option(s) {sorted(options)} for {self.display_name}")
        self._target = parse_pg_url(url)
        self._relation: _Relation | None = None
        self._count: int | None = None
        self._snapshot_conn = None
        self._snapshot_id: str | None = None
        self._finalizer = None
        #: ``(column, lower, upper)`` of an incremental read (:meth:`restrict`), else None.
        self._range: tuple[str, Any, Any] | None = None
        #: The column sets the table's primary key and unique indexes enforce (:meth:`unique_keys`).
        self._unique_sets: tuple[frozenset[str], ...] | None = None

    # -- pickling: never a live connection, never another process's snapshot ------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_snapshot_conn=None, _snapshot_id=None, _finalizer=None)
        return state

    @property
    def label(self) -> str:
        """``table public.t`` / ``query``: how messages name what this source reads."""
        if self._target.table is None:
            return "query"
        return f"table {self._target.relation_label!r}"

    def _error(self, exc: BaseException) -> SkfleetError:
        if is_snapshot_error(exc):
            return SnapshotGoneError(
                f"the snapshot {self.label} was planned in is gone ({self.display_name}): the source "
                "that planned these partitions was closed or lost its connection; plan them again"
            )
        return translate(exc, self.label, self.display_name)

    # -- catalog ---------------------------------------------------------------------------------
    def _describe(self) -> _Relation:
        if self._relation is not None:
            return self._relation
        from psycopg import sql

        target = self._target
        with connect_psycopg(target) as conn:
            try:
                relkind = oid = None
                if target.table is not None:
                    schema_name, name = target.table
                    quoted = sql.Identifier(*filter(None, (schema_name, name))).as_string(conn)
                    row = conn.execute(
                        "SELECT c.oid, c.relkind, n.nspname, c.relname FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.oid = to_regclass(%s)",
                        [quoted],
                    ).fetchone()
                    if row is None:
                        raise SourceNotFoundError(
                            f"table {target.relation_label!r} does not exist in {self.display_name}"
                        )
                    oid, relkind, nsp, relname = row
                    from_sql = sql.Identifier(nsp, relname).as_string(conn)
                else:
                    # Newlines: a trailing "-- comment" in the query must not swallow the alias.
                    from_sql = f"(\n{target.query}\n) AS _skfleet_q"
                cur = conn.execute(f"SELECT * FROM {from_sql} LIMIT 0")
                description = cur.description or []
            except driver_errors() as exc:
                raise self._error(exc) from None
            schema, text_columns = schema_of(description, f"{self.label} in {self.display_name}")
            self._relation = _Relation(
                from_sql,
                schema,
                text_columns,
                relkind,
                oid,
                conn.info.server_version,
            )
        return self._relation

    def schema(self) -> pa.Schema:
        return self._describe().schema

    def _planner_rows(self, conn, relation: _Relation) -> int:
        plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {relation.from_sql}").fetchone()[
            0
        ]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])

    def _heap_size(self, conn, relation: _Relation) -> tuple[int, int]:
        """(estimated rows, current number of blocks) of a heap relation from pg_class."""
        reltuples, relpages, nblocks = conn.execute(
            "SELECT c.reltuples, c.relpages, "
            "pg_relation_size(c.oid) / current_setting('block_size')::bigint "
            "FROM pg_class c WHERE c.oid = %s",
            [relation.oid],
        ).fetchone()
        if nblocks == 0:
            return 0, 0
        if reltuples >= 0 and relpages > 0:
            # Density from the last ANALYZE/VACUUM, scaled to the relation's size now (what the
            # planner does too).
            return int(round(reltuples / relpages * nblocks)), int(nblocks)
        return self._planner_rows(conn, relation), int(nblocks)

    def count_estimate(self) -> int:
        """Tables: pg_class statistics scaled to the current size (the planner's estimate if the
        table was never analyzed). Views and queries have no statistics: an exact ``count(*)``."""
        if self._count is not None:
            return self._count
        relation = self._describe()
        with connect_psycopg(self._target) as conn:
            try:
                if relation.relkind in HEAP_KINDS:
                    count = self._heap_size(conn, relation)[0]
                elif relation.relkind in ("p", "f"):
                    count = self._planner_rows(conn, relation)
                else:
                    count = conn.execute(f"SELECT count(*) FROM {relation.from_sql}").fetchone()[0]
            except driver_errors() as exc:
                raise self._error(exc) from None
        self._count = int(count)
        return self._count

    # -- the exported snapshot -------------------------------------------------------------------
    def _export_snapshot(self) -> str | None:
        if not self._target.snapshot:
            return None
        if self._snapshot_conn is not None:
            try:  # still alive? (a server restart ends it; SELECT 1 takes no lock)
                self._snapshot_conn.execute("SELECT 1")
                return self._snapshot_id
            except driver_errors():
                self.close()
        from psycopg import IsolationLevel

        conn = connect_psycopg(self._target)
        try:
            # This transaction stays idle for as long as workers read; don't let the server end it.
            conn.execute("SET idle_in_transaction_session_timeout = 0")
            conn.autocommit = False
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            # Nothing else runs in this transaction: it must not hold locks on the table (a
            # concurrent replace of the table would wait for this source to close).
            self._snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except driver_errors() as exc:
            conn.close()
            raise self._error(exc) from None
        self._snapshot_conn = conn
        self._finalizer = weakref.finalize(self, _end_snapshot, conn)
        return self._snapshot_id

    def close(self) -> None:
        """End the exported snapshot: partitions planned by this source can no longer be read."""
        if self._finalizer is not None:
            self._finalizer()
        self._snapshot_conn = self._snapshot_id = self._finalizer = None

    def unique_keys(self, keys: Sequence[str]) -> bool:
        """True when ``keys`` hold all the columns of the table's primary key or of a unique
        index that allows no two rows with nulls (:mod:`~skfleet.data.postgres.unique`). Views
        and queries: False. One catalog query per source, in the snapshot the partitions read,
        so the index was there for every row they see."""
        relation = self._describe()
        if relation.oid is None:
            return False
        if self._unique_sets is None:
            with self._in_run_snapshot() as (conn, _):
                query = unique_sets_query(relation.server_version)
                rows = conn.execute(query, [relation.oid]).fetchall()
            self._unique_sets = tuple(frozenset(row[0]) for row in rows)
        return covered(keys, self._unique_sets)

    # -- planning --------------------------------------------------------------------------------
    def partitions(self, target_rows: int) -> list[Partition]:
        """Block ranges for tables, key ranges for views/queries with ``key=``, else one
        partition; all in this source's exported snapshot (taken on the first call)."""
        if target_rows < 1:
            raise UsageError(f"target_rows must be positive, not {target_rows}")
        relation = self._describe()
        if self._range is not None:
            return self._range_partitions(target_rows)
        if self._target.key:
            self._key_columns(relation)  # a typo in key= is an error even where ctid ranges win
        snapshot = self._export_snapshot()
        if relation.relkind in HEAP_KINDS and relation.server_version >= TID_RANGE_MIN_VERSION:
            return self._block_partitions(relation, target_rows, snapshot)
        if self._target.key:
            return self._key_partitions(relation, target_rows, snapshot)
        with connect_psycopg(self._target) as conn:
            try:
                estimate = self._planner_rows(conn, relation)
            except driver_errors() as exc:
                raise self._error(exc) from None
        return [Partition("all", estimate, {"kind": "all", "snapshot": snapshot})]

    def _block_partitions(self, relation: _Relation, target_rows: int, snapshot: str | None):
        with connect_psycopg(self._target) as conn:
            try:
                rows, nblocks = self._heap_size(conn, relation)
            except driver_errors() as exc:
                raise self._error(exc) from None
        return block_partitions(rows, nblocks, target_rows, snapshot)

    def _key_columns(self, relation: _Relation) -> tuple[str, ...]:
        missing = [k for k in self._target.key if k not in relation.schema.names]
        if missing:
            raise MissingColumnError(
                f"key column {missing[0]!r} is not in {self.label} ({self.display_name})"
            )
        return self._target.key

    def _key_partitions(self, relation: _Relation, target_rows: int, snapshot: str | None):
        keys = self._key_columns(relation)
        total = self.count_estimate()
        n_parts = math.ceil(total / target_rows) if total else 1
        bounds: list[tuple] = []
        if n_parts > 1:
            query = key_sample_query(keys, relation.from_sql, total, n_parts)
            with connect_psycopg(self._target) as conn:
                try:
                    bounds = pick_boundaries(conn.execute(query).fetchall(), n_parts)
                except driver_errors() as exc:
                    raise self._error(exc) from None
        return key_partitions(keys, total, bounds, snapshot)

    # -- incremental reads -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _in_run_snapshot(self):
        """``(conn, snapshot)``: a psycopg connection in a read-only transaction that sees what
        the partitions will read (the run's exported snapshot), ended on exit; driver errors
        are worded as this source's."""
        from psycopg import sql

        snapshot = self._export_snapshot()
        with connect_psycopg(self._target) as conn:
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if snapshot:
                    set_snapshot = sql.SQL("SET TRANSACTION SNAPSHOT {}")
                    conn.execute(set_snapshot.format(sql.Literal(snapshot)))
                yield conn, snapshot
                conn.execute("COMMIT")
            except driver_errors() as exc:
                raise self._error(exc) from None

    # -- reading ---------------------------------------------------------------------------------
    def _selected(self, columns: Sequence[str] | None) -> list[str]:
        where = f"{self.label} ({self.display_name})"
        return selected_columns(self._describe().schema, columns, where)

    def select_sql(self, partition: Partition, columns: Sequence[str] | None = None) -> str:
        """The SELECT a worker runs for ``partition`` (inside its snapshot)."""
        from psycopg import sql

        relation = self._describe()
        items = []
        for name in self._selected(columns):
            ident = sql.Identifier(name)
            if name in relation.text_columns:
                items.append(sql.SQL("{}::text AS {}").format(ident, ident))
            else:
                items.append(ident)
        where = where_clause(partition.spec or {"kind": "all"})
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(items) if items else sql.SQL(""), sql.SQL(relation.from_sql)
        )
        if where is not None:
            query = sql.SQL("{} WHERE {}").format(query, where)
        return query.as_string(None)

    def _begin(self, cursor, partition: Partition) -> None:
        """Open the worker's transaction in the partition's snapshot; check the table is the
        one that was planned (a replaced table would look empty in the old snapshot)."""
        from psycopg import sql

        spec = partition.spec or {}
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = spec.get("snapshot")
        if snapshot:
            cursor.execute(
                sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)).as_string(None)
            )
        relation = self._describe()
        if relation.oid is not None:
            cursor.execute(
                sql.SQL("SELECT to_regclass({})::oid::bigint")
                .format(sql.Literal(relation.from_sql))
                .as_string(None)
            )
            found = cursor.fetchone()[0]
            if found != relation.oid:
                raise SourceNotFoundError(
                    f"{self.label} in {self.display_name} was dropped or replaced after its "
                    "partitions were planned; plan them again"
                )

    def read(self, partition: Partition, columns: Sequence[str] | None = None) -> pa.Table:
        """Read one partition into Arrow (binary COPY through ADBC)."""
        names = self._selected(columns)
        schema = pa.schema([self._describe().schema.field(n) for n in names])
        query = self.select_sql(partition, names)
        try:
            with adbc_cursor(self._target) as cursor:
                self._begin(cursor, partition)
                cursor.execute(query)
                table = cursor.fetch_arrow_table()
                cursor.execute("COMMIT")
        except driver_errors() as exc:
            raise self._error(exc) from None
        return conform_table(table, schema, f"{self.label} ({self.display_name})")

    def _batches(self, partition: Partition, columns: Sequence[str] | None, batch_rows: int):
        """Stream one partition; memory stays at about one driver batch."""
        names = self._selected(columns)
        schema = pa.schema([self._describe().schema.field(n) for n in names])
        query = self.select_sql(partition, names)
        where = f"{self.label} ({self.display_name})"
        try:
            with adbc_cursor(self._target) as cursor:
                self._begin(cursor, partition)
                cursor.execute(query)
                reader = cursor.fetch_record_batch()
                try:
                    for batch in reader:
                        batch = conform_batch(batch, schema, where)
                        for offset in range(0, batch.num_rows, batch_rows):
                            yield batch.slice(offset, batch_rows)
                finally:
                    reader.close()
                cursor.execute("COMMIT")
        except driver_errors() as exc:
            raise self._error(exc) from None


def _end_snapshot(conn) -> None:
    """End the exporting transaction, then disconnect. The ROLLBACK is what makes the snapshot
    unusable at once: a closed socket only ends it once the server notices, so a read right
    after :meth:`PostgresSource.close` could still import it."""
    with contextlib.suppress(Exception):  # a dead connection has no transaction left to end
        conn.rollback()
    conn.close()
