"""Write a Redshift table, each partition exactly once, through COPY from S3.

The bookkeeping is the PostgreSQL sink's (same two tables next to the target, ``skfleet_runs`` and
``skfleet_ledger``), adapted to what Redshift has. A worker stages its partition as one Parquet
object under the run's load prefix, then in ONE transaction::

    LOCK skfleet_ledger;                       -- writers of this schema queue here
    SELECT 1 FROM skfleet_ledger WHERE <this run and partition>;   -- taken? ROLLBACK: return 0
    COPY <staging table or target> FROM 's3://.../part-<id>-<rand>.parquet' ... FORMAT AS PARQUET;
    INSERT INTO skfleet_ledger VALUES (<this run and partition>, rows);
    COMMIT;

Redshift does not enforce primary keys and has no ``INSERT ... ON CONFLICT``, so the ledger row
is checked under an explicit table lock rather than by a unique index: the second writer of a
partition waits for the first to commit, then finds its row and loads nothing. The lock is the
transaction's first statement because Redshift's snapshot starts at the first read. Uploading the
Parquet objects runs in parallel; the COPYs queue on the lock (Redshift serialises COPYs into one
table by itself anyway). ``replace`` and ``fail`` load a staging table that
:meth:`RedshiftSink.commit` swaps in (drop + rename, one transaction); ``append`` loads the target.
Open and commit serialise on ``LOCK skfleet_runs`` (Redshift has no advisory locks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from typing import Any

import pyarrow as pa

from skfleet.data.base import (
    DuplicateKeys,
    check_if_exists,
    check_partition_id,
    checked_run_id,
)
from skfleet.data.postgres.conn import driver_errors
from skfleet.data.postgres.keycheck import repeated_keys
from skfleet.data.postgres.ledger import LEDGER, RUNS, LedgerSink, staging_name
from skfleet.data.postgres.types import arrow_type_for, cast_column
from skfleet.data.redshift.conn import connect, error_of
from skfleet.data.redshift.copy import copy_sql, stage_partition
from skfleet.data.redshift.staging import Staging, authorization
from skfleet.data.redshift.types import check_text_width, redshift_type, wire_type
from skfleet.data.redshift.url import check_identifier, parse_redshift_url
from skfleet.errors import MissingColumnError, SkfleetError, UsageError


class RedshiftSink(LedgerSink):
    """A Redshift table to write (``redshift://.../db?table=schema.name&staging=s3://...``).

    Picklable once opened (names, the Arrow schema, the staging prefix; no connection).
    """

    def __init__(self, url: str, **options: Any):
        super().__init__(url, options, parse_redshift_url)
        self._staging: Staging | None = None

    # -- names -----------------------------------------------------------------------------------
    def _q(self, name: str) -> str:
        return self._qualified(name).as_string(None)

    @property
    def _target_key(self) -> str:
        return self._q(self._target.table[1])

    def _error(self, exc: BaseException) -> SkfleetError:
        return error_of(exc, self.label, self.display_name)

    # -- catalog ---------------------------------------------------------------------------------
    def _relkind_of(self, conn, name: str) -> str | None:
        row = conn.execute(
            "SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            [self._nsp, name],
        ).fetchone()
        return None if row is None else row[0]

    def _resolve_schema(self, conn) -> None:
        nsp = self._target.table[0]
        if nsp is None:
            nsp = conn.execute("SELECT current_schema()").fetchone()[0]
            if nsp is None:
                raise UsageError(f"no schema on the search_path of {self.display_name}")
        elif (
            conn.execute(
                "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [nsp]
            ).fetchone()
            is None
        ):
            raise UsageError(f"schema {nsp!r} does not exist in {self.display_name}")
        self._nsp = nsp

    def _ensure_bookkeeping(self, conn) -> None:
        import psycopg

        statements = [
            f"CREATE TABLE IF NOT EXISTS {self._q(RUNS)} (target VARCHAR(512) NOT NULL, "
            "run_id VARCHAR(256) NOT NULL, mode VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL, "
            "stage VARCHAR(256), created_at TIMESTAMPTZ, committed_at TIMESTAMPTZ, "
            "PRIMARY KEY (target, run_id))",
            f"CREATE TABLE IF NOT EXISTS {self._q(LEDGER)} (target VARCHAR(512) NOT NULL, "
            "run_id VARCHAR(256) NOT NULL, partition_id VARCHAR(256) NOT NULL, "
            "rows BIGINT NOT NULL, committed_at TIMESTAMPTZ, "
            "PRIMARY KEY (target, run_id, partition_id))",
        ]
        racing = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable)
        for statement in statements:
            with contextlib.suppress(*racing):
                conn.execute(statement)

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self, schema: pa.Schema, if_exists: str = "fail", run_id: str | None = None) -> None:
        """Prepare the target; with the ``run_id`` of an unfinished run, resume that run."""
        check_if_exists(if_exists)
        target = self._target
        if target.staging is None:
            raise UsageError(
                f"{self.display_name} needs staging=s3://bucket/prefix to be written: Redshift "
                "loads tables only with COPY from S3"
            )
        run_id = checked_run_id(run_id)
        for f in schema:
            check_identifier(f.name, "column", self.display_name)
        wire = pa.schema([pa.field(f.name, wire_type(f)) for f in schema])
        if len({n.lower() for n in wire.names}) != len(wire.names):
            raise UsageError(
                f"the table written to {self.display_name} repeats a column name (Redshift "
                "folds names to lower case)"
            )
        authorization(target.iam_role, self.display_name)  # no credentials: fail before writing
        with connect(target.pg) as conn:
            try:
                self._resolve_schema(conn)
                digest = hashlib.sha1(f"{self._target_key}\0{run_id}".encode()).hexdigest()[:16]
                staging = Staging(target.staging, f"skfleet-load-{digest}", target.region)
                staging.check_writable()
                self._ensure_bookkeeping(conn)
                with conn.transaction():
                    conn.execute(f"LOCK {self._q(RUNS)}")
                    self._open_locked(conn, wire, if_exists, run_id)
            except SkfleetError:
                raise
            except driver_errors() as exc:
                raise self._error(exc) from None
        self._run_id, self._mode, self._staging = run_id, if_exists, staging

    def _open_locked(self, conn, wire: pa.Schema, if_exists: str, run_id: str) -> None:
        name = self._target.table[1]
        run = conn.execute(
            f"SELECT mode, state, stage FROM {self._q(RUNS)} WHERE target = %s AND run_id = %s",
            [self._target_key, run_id],
        ).fetchone()
        if run is not None:
            self._resume(conn, run, wire, if_exists, run_id)
            return
        relkind = self._relkind_of(conn, name)
        self._check_target(relkind, if_exists)
        stage = None
        if if_exists == "append" and relkind is not None:
            self._wire = self._wire_for_existing(conn, name, wire)
            self._write_to = name
        elif if_exists == "append":
            self._create(conn, name, wire)
            self._wire, self._write_to = wire, name
        else:
            stage = staging_name(self._target_key, run_id)
            conn.execute(f"DROP TABLE IF EXISTS {self._q(stage)}")
            self._create(conn, stage, wire)
            self._wire, self._write_to = wire, stage
        conn.execute(
            f"INSERT INTO {self._q(RUNS)} (target, run_id, mode, state, stage, created_at) "
            "VALUES (%s, %s, %s, 'open', %s, %s)",
            [self._target_key, run_id, if_exists, stage, dt.datetime.now(dt.UTC)],
        )

    def _create(self, conn, name: str, wire: pa.Schema) -> None:
        from psycopg import sql

        columns = ", ".join(
            f"{sql.Identifier(f.name).as_string(None)} {redshift_type(f)}" for f in wire
        )
        conn.execute(f"CREATE TABLE {self._q(name)} ({columns})")

    def _wire_for_existing(self, conn, name: str, wire: pa.Schema) -> pa.Schema:
        """The existing table's columns, in its order, with its types: the staged object must
        match it column for column (a columnar COPY maps by position)."""
        cur = conn.execute(f"SELECT * FROM {self._q(name)} LIMIT 0")
        given = {f.name: f for f in wire}
        fields = []
        for column in cur.description or []:
            native = arrow_type_for(column.type_code, column.precision, column.scale)
            own = given.pop(column.name, None)
            fields.append(pa.field(column.name, native or (own.type if own else pa.string())))
        if given:
            extra = next(iter(given))
            raise MissingColumnError(f"{self.label} in {self.display_name} has no column {extra!r}")
        return pa.schema(fields)

    def _prepare(self, table: pa.Table) -> pa.Table:
        have = set(table.column_names)
        extra = sorted(have - set(self._wire.names))
        if extra:
            raise UsageError(
                f"column {extra[0]!r} was not in the schema {self.display_name} was opened with"
            )
        where = f"the data for {self.display_name}"
        arrays = []
        for f in self._wire:
            if f.name in have:
                array = cast_column(table.column(f.name), f.type, f.name, where)
                check_text_width(array, f.name, where)
            else:  # a column of the existing table the data does not have: NULLs
                array = pa.nulls(table.num_rows, f.type)
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=self._wire)

    def write(self, partition_id: str, table: pa.Table) -> int:
        """Stage and COPY one partition, with its ledger row, in one transaction; 0 if it was
        already committed."""
        self._require_open()
        check_partition_id(partition_id)
        data = self._prepare(table)
        ledger, key = self._q(LEDGER), [self._target_key, self._run_id, partition_id]
        url = None
        try:
            if data.num_rows and not self._done:
                url = stage_partition(self._staging, partition_id, data)
            with connect(self._target.pg, autocommit=False) as conn:
                try:
                    # The lock comes first, before the transaction reads anything: Redshift's
                    # snapshot starts at the first read, and a snapshot taken before the other
                    # writer of this partition committed would not see its ledger row.
                    conn.execute(f"LOCK {ledger}")
                    taken = conn.execute(
                        f"SELECT 1 FROM {ledger} WHERE target = %s AND run_id = %s "
                        "AND partition_id = %s",
                        key,
                    ).fetchone()
                    if taken is not None:
                        conn.rollback()
                        return 0
                    if self._done:
                        conn.rollback()
                        raise self._not_in_run(partition_id)
                    if url is not None:
                        auth = authorization(self._target.iam_role, self.display_name)
                        conn.execute(copy_sql(self._q(self._write_to), url, auth))
                    conn.execute(
                        f"INSERT INTO {ledger} (target, run_id, partition_id, rows, committed_at) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        [*key, data.num_rows, dt.datetime.now(dt.UTC)],
                    )
                    conn.commit()
                except driver_errors() as exc:
                    raise self._error(exc) from None
        finally:
            if url is not None:  # loaded or not, the object has served its purpose
                with contextlib.suppress(Exception):
                    self._staging.store.remove([url.removeprefix("s3://")])
        return data.num_rows

    def committed(self) -> dict[str, int]:
        self._require_open()
        with connect(self._target.pg) as conn:
            try:
                rows = conn.execute(
                    f"SELECT partition_id, rows FROM {self._q(LEDGER)} "
                    "WHERE target = %s AND run_id = %s",
                    [self._target_key, self._run_id],
                ).fetchall()
            except driver_errors() as exc:
                raise self._error(exc) from None
        return {partition: int(n) for partition, n in rows}

    def _locked_state(self, conn) -> tuple[str] | None:
        """This run's state row, under ``LOCK skfleet_runs`` (held until the transaction ends:
        open, commit and abort of one schema's runs take turns)."""
        runs = self._q(RUNS)
        conn.execute(f"LOCK {runs}")
        return conn.execute(
            f"SELECT state FROM {runs} WHERE target = %s AND run_id = %s",
            [self._target_key, self._run_id],
        ).fetchone()

    def commit(self) -> None:
        """Publish: swap the staging table in (replace/fail) in one transaction. Idempotent."""
        self._require_open()
        name = self._target.table[1]
        runs = self._q(RUNS)
        with connect(self._target.pg) as conn:
            try:
                with conn.transaction():
                    state = self._locked_state(conn)
                    if state is None or state[0] == "aborted":
                        raise UsageError(f"run {self._run_id!r} of {self.label} is not open")
                    if state[0] != "committed":
                        if self._write_to != name:
                            self._swap(conn, name)
                        conn.execute(
                            f"UPDATE {runs} SET state = 'committed', committed_at = %s "
                            "WHERE target = %s AND run_id = %s",
                            [dt.datetime.now(dt.UTC), self._target_key, self._run_id],
                        )
            except SkfleetError:
                raise
            except driver_errors() as exc:
                raise self._error(exc) from None
        self._done = True
        self._cleanup()

    def abort(self) -> None:
        """Drop the staging table and the staged objects; partitions already appended to a
        target stay (each was its own committed transaction)."""
        if self._run_id is None:
            return
        runs = self._q(RUNS)
        with connect(self._target.pg) as conn:
            try:
                with conn.transaction():
                    state = self._locked_state(conn)
                    if state is None or state[0] != "open":
                        return
                    if self._write_to != self._target.table[1]:
                        conn.execute(f"DROP TABLE IF EXISTS {self._q(self._write_to)}")
                        conn.execute(
                            f"DELETE FROM {self._q(LEDGER)} WHERE target = %s AND run_id = %s",
                            [self._target_key, self._run_id],
                        )
                    conn.execute(
                        f"UPDATE {runs} SET state = 'aborted' WHERE target = %s AND run_id = %s",
                        [self._target_key, self._run_id],
                    )
            except driver_errors() as exc:
                raise self._error(exc) from None
            finally:
                self._cleanup()

    def duplicate_keys(self, keys, run_tasks) -> DuplicateKeys | None:
        """One ``GROUP BY`` on the server over the run's staging table (``fail``/``replace``);
        an ``append`` run's rows sit among the target's old ones, so it cannot tell (None)."""
        self._require_open()
        if self._done:
            return DuplicateKeys(0)  # checked before that commit
        if self._write_to == self._target.table[1]:
            return None
        with connect(self._target.pg) as conn:
            try:
                return repeated_keys(conn, self._qualified(self._write_to), keys)
            except driver_errors() as exc:
                raise self._error(exc) from None

    def _cleanup(self) -> None:
        if self._staging is not None and not self._target.keep_staging:
            self._staging.remove()
