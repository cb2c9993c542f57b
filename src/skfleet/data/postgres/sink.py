"""Write a PostgreSQL table, each partition exactly once.

Two bookkeeping tables live in their own schema, ``skfleet`` (the URL's ``bookkeeping=`` names
another), created with it on first use:

``skfleet_runs(target, run_id, mode, state, stage, ...)``
    one row per run: how it was opened, where its rows go, whether it is committed.
``skfleet_ledger(target, run_id, partition_id, rows, committed_at)``
    one row per written partition; the primary key is what makes a second write of the same
    partition a no-op, also when two workers race (the second one's INSERT waits on the first
    one's uncommitted key, then sees the conflict).

A partition's rows (binary COPY through ADBC) and its ledger row commit in ONE transaction.
Output columns are created under the names the table has (``proba_true``: lower case, so SQL
needs no quotes; :func:`~skfleet.predict.scoring.proba_column`). ``replace`` and ``fail`` write
to a staging table next to the target, named from the run id, and swap it in at
:meth:`PostgresSink.commit` (one transaction: drop + rename), so the target is never visible
half-written; ``append`` writes each partition straight into the target.

The bookkeeping tables are :mod:`~skfleet.data.postgres.ledger`'s, the COPY of one partition
:mod:`~skfleet.data.postgres.ingest`'s.

>>> PostgresSink("postgresql://db.example/sales?table=public.scores").label
"table 'public.scores'"
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from skfleet.data.base import (
    DuplicateKeys,
    RunTasks,
    check_if_exists,
    check_unique_columns,
    checked_run_id,
)
from skfleet.data.postgres import keycheck
from skfleet.data.postgres.conn import connect_psycopg, driver_errors, translate
from skfleet.data.postgres.ledger import (
    LEDGER,
    RUNS,
    LedgerSink,
    ensure_bookkeeping,
    keys_table_name,
    staging_name,
)
from skfleet.data.postgres.partition_writes import PostgresPartitionWrites
from skfleet.data.postgres.types import arrow_type_for, pg_type_for, wire_type
from skfleet.data.postgres.url import parse_pg_url
from skfleet.data.postgres.watermarks import PostgresWatermarks
from skfleet.errors import MissingColumnError, SkfleetError, UsageError


class PostgresSink(PostgresPartitionWrites, PostgresWatermarks, LedgerSink):
    """A PostgreSQL table to write (``postgresql://.../db?table=schema.name``).

    Picklable once opened (it holds names and the Arrow schema, no connection): workers call
    :meth:`write` in their own processes.
    """

    def __init__(self, url: str, **options: Any):
        super().__init__(url, options, parse_pg_url)
        self._keys: tuple[str, ...] | None = None  # track_keys() of an append: copied to...
        self._keys_table: str | None = None  # ...this table of the run, with each partition
        self._watermark: tuple[str, dict] | None = None  # (stream, state) the commit stores

    # -- names -----------------------------------------------------------------------------------
    def _book(self, name: str):
        """A bookkeeping table: in its own schema, not among the user's tables."""
        from psycopg import sql

        return sql.Identifier(self._target.bookkeeping, name)

    @property
    def _target_key(self) -> str:
        """The ledger's name for the target: its quoted, schema-qualified name."""
        return self._qualified(self._target.table[1]).as_string(None)

    def _error(self, exc: BaseException) -> SkfleetError:
        return translate(exc, self.label, self.display_name)

    # -- bookkeeping tables ----------------------------------------------------------------------
    def _ensure_bookkeeping(self, conn) -> None:
        ensure_bookkeeping(conn, self._target.bookkeeping, self.display_name)

    def _resolve_schema(self, conn) -> tuple[str, str | None]:
        """(schema the target is or will be in, its relkind or None if absent)."""
        from psycopg import sql

        nsp, name = self._target.table
        quoted = sql.Identifier(*filter(None, (nsp, name))).as_string(conn)
        row = conn.execute(
            "SELECT n.nspname, c.relkind FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
            [quoted],
        ).fetchone()
        if row is not None:
            return row[0], row[1]
        if nsp is not None:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [nsp]).fetchone()
            if found is None:
                raise UsageError(f"schema {nsp!r} does not exist in {self.display_name}")
            return nsp, None
        current = conn.execute("SELECT current_schema()").fetchone()[0]
        if current is None:
            raise UsageError(
                f"no schema on the search_path of {self.display_name}; use schema.name"
            )
        return current, None

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self, schema: pa.Schema, if_exists: str = "fail", run_id: str | None = None) -> None:
        """Prepare the target; with the ``run_id`` of an unfinished run, resume that run."""
        check_if_exists(if_exists)
        run_id = checked_run_id(run_id)
        wire = pa.schema([pa.field(f.name, wire_type(f)) for f in schema])
        check_unique_columns(wire.names, f"the table written to {self.display_name}")
        with connect_psycopg(self._target) as conn:
            try:
                self._nsp, relkind = self._resolve_schema(conn)
                self._ensure_bookkeeping(conn)
                with conn.transaction():
                    # Serialise open/commit of the same target: deciding "exists?" and creating
                    # the staging table must not interleave with another run's swap.
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self._target_key])
                    self._open_locked(conn, wire, if_exists, run_id, relkind)
            except SkfleetError:
                raise
            except driver_errors() as exc:
                raise self._error(exc) from None
        self._run_id, self._mode = run_id, if_exists

    def _open_locked(self, conn, wire: pa.Schema, if_exists: str, run_id: str, relkind) -> None:
        from psycopg import sql

        name = self._target.table[1]
        run = conn.execute(
            sql.SQL("SELECT mode, state, stage FROM {} WHERE target = %s AND run_id = %s").format(
                self._book(RUNS)
            ),
            [self._target_key, run_id],
        ).fetchone()
        if run is not None:
            self._resume(conn, run, wire, if_exists, run_id)
            return
        self._check_target(relkind, if_exists, tables="rp")  # a partitioned table is one too
        stage = None
        if if_exists == "append" and relkind is not None and self._watermark is not None:
            # An incremental run: its rows wait in a staging table shaped like the target and
            # go in at commit, in the transaction that moves the watermark (an abort leaves
            # nothing, and a reader never sees half a run).
            stage = staging_name(self._target_key, run_id)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._qualified(stage)))
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {})").format(
                    self._qualified(stage), self._qualified(name)
                )
            )
            self._wire = self._wire_for_existing(conn, stage, wire)
            self._write_to = stage
        elif if_exists == "append":
            if relkind is None:
                self._create(conn, name, wire)
                self._wire = wire
            else:
                self._wire = self._wire_for_existing(conn, name, wire)
            self._write_to = name
        else:
            stage = staging_name(self._target_key, run_id)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._qualified(stage)))
            self._create(conn, stage, wire)
            self._write_to, self._wire = stage, wire
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (target, run_id, mode, state, stage) VALUES (%s, %s, %s, 'open', %s)"
            ).format(self._book(RUNS)),
            [self._target_key, run_id, if_exists, stage],
        )

    def _relkind_of(self, conn, name: str) -> str | None:
        row = conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
            [self._qualified(name).as_string(conn)],
        ).fetchone()
        return None if row is None else row[0]

    def _create(self, conn, name: str, wire: pa.Schema) -> None:
        from psycopg import sql

        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(pg_type_for(f))) for f in wire
        )
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(self._qualified(name), columns))

    def _wire_for_existing(self, conn, name: str, wire: pa.Schema) -> pa.Schema:
        """Arrow types to send to an existing table: its own column types where skfleet reads
        them natively (so int64 data into an ``integer`` column is cast, overflow named)."""
        from psycopg import sql

        cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(self._qualified(name)))
        existing = {c.name: c for c in cur.description or []}
        fields = []
        for f in wire:
            column = existing.get(f.name)
            if column is None:
                raise MissingColumnError(
                    f"{self.label} in {self.display_name} has no column {f.name!r}"
                )
            native = arrow_type_for(column.type_code, column.precision, column.scale)
            fields.append(pa.field(f.name, native if native is not None else f.type))
        return pa.schema(fields)

    def committed(self) -> dict[str, int]:
        from psycopg import sql

        self._require_open()
        with connect_psycopg(self._target) as conn:
            try:
                rows = conn.execute(
                    sql.SQL(
                        "SELECT partition_id, rows FROM {} WHERE target = %s AND run_id = %s"
                    ).format(self._book(LEDGER)),
                    [self._target_key, self._run_id],
                ).fetchall()
            except driver_errors() as exc:
                raise self._error(exc) from None
        return {partition: int(n) for partition, n in rows}

    def commit(self) -> None:
        """Publish: swap the staging table in (replace/fail) in one transaction. Idempotent."""
        from psycopg import sql

        self._require_open()
        name = self._target.table[1]
        runs = self._book(RUNS)
        with connect_psycopg(self._target) as conn:
            try:
                if self._write_to != name and not self._done and self._mode != "append":
                    # Statistics before publishing: planners and count_estimate() need them.
                    conn.execute(sql.SQL("ANALYZE {}").format(self._qualified(self._write_to)))
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self._target_key])
                    state = conn.execute(
                        sql.SQL(
                            "SELECT state FROM {} WHERE target = %s AND run_id = %s FOR UPDATE"
                        ).format(runs),
                        [self._target_key, self._run_id],
                    ).fetchone()
                    if state is None or state[0] == "aborted":
                        raise UsageError(f"run {self._run_id!r} of {self.label} is not open")
                    if state[0] == "committed":
                        self._done = True
                        return
                    if self._write_to != name and self._mode == "append":
                        self._append_staged(conn, name)
                    elif self._write_to != name:
                        self._swap(conn, name)
                    self._drop_keys_table(conn)
                    self._store_watermark(conn)
                    conn.execute(
                        sql.SQL(
                            "UPDATE {} SET state = 'committed', committed_at = now() "
                            "WHERE target = %s AND run_id = %s"
                        ).format(runs),
                        [self._target_key, self._run_id],
                    )
            except SkfleetError:
                raise
            except driver_errors() as exc:
                raise self._error(exc) from None
        self._done = True

    def _append_staged(self, conn, name: str) -> None:
        """Move a staged append into the target (in the commit's transaction)."""
        from psycopg import sql

        cols = sql.SQL(", ").join(sql.Identifier(n) for n in self._wire.names)
        stage = self._qualified(self._write_to)
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                self._qualified(name), cols, cols, stage
            )
        )
        conn.execute(sql.SQL("DROP TABLE {}").format(stage))

    def abort(self) -> None:
        """Drop the staging table. Partitions already appended to a target stay (each was its
        own committed transaction); the run is marked aborted so it cannot be resumed."""
        from psycopg import sql

        if self._run_id is None:
            return
        with connect_psycopg(self._target) as conn:
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self._target_key])
                    state = conn.execute(
                        sql.SQL("SELECT state FROM {} WHERE target = %s AND run_id = %s").format(
                            self._book(RUNS)
                        ),
                        [self._target_key, self._run_id],
                    ).fetchone()
                    if state is None or state[0] != "open":
                        return
                    self._drop_keys_table(conn)
                    if self._write_to != self._target.table[1]:
                        conn.execute(
                            sql.SQL("DROP TABLE IF EXISTS {}").format(
                                self._qualified(self._write_to)
                            )
                        )
                        conn.execute(
                            sql.SQL("DELETE FROM {} WHERE target = %s AND run_id = %s").format(
                                self._book(LEDGER)
                            ),
                            [self._target_key, self._run_id],
                        )
                    conn.execute(
                        sql.SQL(
                            "UPDATE {} SET state = 'aborted' WHERE target = %s AND run_id = %s"
                        ).format(self._book(RUNS)),
                        [self._target_key, self._run_id],
                    )
            except driver_errors() as exc:
                raise self._error(exc) from None

    # -- the duplicate-key check (see :mod:`~skfleet.data.postgres.keycheck`) --------------------
    def track_keys(self, keys) -> None:
        """An ``append`` run copies its rows' keys to a table of its own (its rows join the
        target's old ones at once); the other modes count on their staging table."""
        self._require_open()
        if self._done or self._write_to != self._target.table[1]:
            return
        name = keys_table_name(self._target_key, self._run_id)
        with connect_psycopg(self._target) as conn:
            try:
                keycheck.create_keys_table(conn, self._qualified(name), self._wire, keys)
            except driver_errors() as exc:
                raise self._error(exc) from None
        self._keys, self._keys_table = tuple(keys), name

    def _drop_keys_table(self, conn) -> None:
        from psycopg import sql

        if self._write_to == self._target.table[1]:  # append: a resumed run may not know it
            name = keys_table_name(self._target_key, self._run_id)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._qualified(name)))

    def duplicate_keys(self, keys, run_tasks: RunTasks) -> DuplicateKeys | None:
        """One statement on the server over this run's rows: its staging table, or for an
        append the table of its keys (:func:`~skfleet.data.postgres.keycheck.repeated_keys`)."""
        self._require_open()
        if self._done:
            return DuplicateKeys(0)  # checked before that commit
        table = self._write_to if self._keys_table is None else self._keys_table
        if table == self._target.table[1]:
            return None  # an append whose keys were not tracked: its rows are among others
        with connect_psycopg(self._target) as conn:
            try:
                return keycheck.repeated_keys(conn, self._qualified(table), keys)
            except driver_errors() as exc:
                raise self._error(exc) from None
