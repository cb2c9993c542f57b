"""The bookkeeping tables of :class:`~skfleet.data.postgres.sink.PostgresSink`, in their own schema.

They live in schema ``skfleet`` (the URL's ``bookkeeping=`` names another), created on first
use, so the user's schema holds only the user's tables (and a run's staging table until it
commits):

``skfleet_runs(target, run_id, mode, state, stage, ...)``
    one row per run: how it was opened, where its rows go (``stage``: its staging table),
    whether it is open, committed or aborted.
``skfleet_ledger(target, run_id, partition_id, rows, committed_at)``
    one row per written partition, committed in the same transaction as its rows; the primary
    key makes a second write of the same partition a no-op, also when two workers race.
``skfleet_watermarks(target, stream, state, run_id, updated_at)``
    the watermark of each incremental stream (model and source) into the target, written in
    the transaction of the commit that publishes its run (PostgreSQL sink only).

:class:`LedgerSink` is what the PostgreSQL and Redshift sinks share around these records (the
target, the run, resuming it, publishing its staging table); each keeps its own SQL for the
rest (Redshift has no ``ON CONFLICT`` and no advisory locks).

>>> staging_name('"public"."scores"', "run1")
'_skfleet_stage_c657959271608111'
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from skfleet.data.base import Sink, check_watermark_unmoved
from skfleet.errors import SkfleetError, TargetExistsError, UsageError

LEDGER = "skfleet_ledger"
RUNS = "skfleet_runs"
WATERMARKS = "skfleet_watermarks"


class LedgerSink(Sink):
    """What the PostgreSQL and Redshift sinks share: a ``?table=`` target in some schema, and a
    run (its id, mode, the table its partitions go to) kept in the two tables above."""

    def __init__(self, url: str, options: dict[str, Any], parse: Callable[[str], Any]):
        super().__init__(url)
        if options:
            raise UsageError(f"unknown option(s) {sorted(options)} for {self.display_name}")
        self._target = parse(url)
        if self._target.table is None:
            raise UsageError(f"{self.display_name} is a query; write to a ?table= URL")
        self._run_id: str | None = None
        self._mode: str | None = None
        self._nsp: str | None = None  # resolved schema of the target
        self._write_to: str | None = None  # table partitions go to (staging or target)
        self._wire: pa.Schema | None = None  # Arrow types sent, in the order written
        self._done = False  # the run is committed: only no-op writes remain

    @property
    def label(self) -> str:
        return f"table {self._target.relation_label!r}"

    @property
    def run_id(self) -> str | None:
        return self._run_id

    def _qualified(self, name: str):
        from psycopg import sql

        return sql.Identifier(self._nsp, name)

    def _require_open(self) -> None:
        if self._run_id is None:
            raise UsageError(f"open() the sink for {self.display_name} before writing")

    @abstractmethod
    def _relkind_of(self, conn, name: str) -> str | None:
        """The ``pg_class.relkind`` of table ``name`` in the target's schema; None: absent."""

    def _swap(self, conn, name: str) -> None:
        """Publish the staging table as ``name`` (in the caller's transaction); a ``fail`` run
        refuses if ``name`` appeared meanwhile, the others replace it."""
        from psycopg import sql

        exists = self._relkind_of(conn, name) is not None
        if exists and self._mode == "fail":
            raise TargetExistsError(
                f"{self.label} was created in {self.display_name} while this run was writing; "
                f"nothing was published (run {self._run_id!r} can be aborted)"
            )
        if exists:
            conn.execute(sql.SQL("DROP TABLE {}").format(self._qualified(name)))
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                self._qualified(self._write_to), sql.Identifier(name)
            )
        )

    @abstractmethod
    def _wire_for_existing(self, conn, name: str, wire: pa.Schema) -> pa.Schema:
        """The Arrow types to send to the existing table ``name`` for data of ``wire``."""

    def _resume(self, conn, run: tuple, wire: pa.Schema, if_exists: str, run_id: str) -> None:
        """Pick up the run recorded as ``run`` (its mode, state and staging table)."""
        mode, state, stage = run
        self._done = resumed(mode, state, if_exists, f"run {run_id!r} of {self.label}")
        self._write_to = stage or self._target.table[1]
        if self._done:  # only no-op writes remain; the staging table was renamed away
            self._wire = wire
            return
        if self._relkind_of(conn, self._write_to) is None:
            raise SkfleetError(
                f"the staging table of run {run_id!r} for {self.label} is gone; start a new run"
            )
        self._wire = self._wire_for_existing(conn, self._write_to, wire)

    def _check_target(self, relkind: str | None, if_exists: str, tables: str = "r") -> None:
        """A new run's target, of ``relkind`` (None: absent), is a table (a relkind among
        ``tables``) that ``if_exists`` allows writing."""
        if relkind is not None and relkind not in tables:
            raise UsageError(
                f"{self.label} in {self.display_name} is not a table (relkind {relkind})"
            )
        if relkind is not None and if_exists == "fail":
            raise TargetExistsError(
                f"{self.label} already exists in {self.display_name}; "
                "pass --if-exists replace or append"
            )

    def _not_in_run(self, partition_id: str) -> UsageError:
        """A write to a committed run of a partition the ledger does not have."""
        return UsageError(
            f"run {self._run_id!r} of {self.label} is already committed; "
            f"partition {partition_id!r} was not part of it"
        )


def staging_name(target_key: str, run_id: str) -> str:
    """The staging table of a run: deterministic (a resumed run finds it), under 63 bytes."""
    digest = hashlib.sha1(f"{target_key}\x00{run_id}".encode()).hexdigest()[:16]
    return f"_skfleet_stage_{digest}"


def keys_table_name(target_key: str, run_id: str) -> str:
    """The table an ``append`` run copies its rows' keys to, for the duplicate-key check (its
    rows go straight into the target, among rows of earlier runs).

    >>> keys_table_name('"public"."scores"', "run1")
    '_skfleet_keys_c657959271608111'
    """
    return staging_name(target_key, run_id).replace("_stage_", "_keys_")


def resumed(mode: str, state: str, if_exists: str, run: str) -> bool:
    """Check that the run recorded as ``(mode, state)`` may be resumed with ``if_exists``;
    ``True`` if it is already committed (only no-op writes remain). ``run`` names it in
    messages. The Redshift sink keeps the same run records.

    >>> resumed("append", "open", "append", "run 'r1'")
    False
    >>> resumed("append", "open", "replace", "run 'r1'")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: run 'r1' was opened with if_exists='append'; resume it with the same, not 'replace'
    """
    if mode != if_exists:
        raise UsageError(
            f"{run} was opened with if_exists={mode!r}; resume it with the same, not {if_exists!r}"
        )
    if state == "aborted":
        raise UsageError(f"{run} was aborted; start a new run")
    return state == "committed"


def ensure_bookkeeping(conn, nsp: str, where: str = "the database") -> None:
    """Create schema ``nsp`` and both tables in it unless they exist (psycopg ``conn``)."""
    import psycopg
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [nsp]).fetchone()
    if exists is None:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(nsp)))
        except psycopg.errors.InsufficientPrivilege:
            raise UsageError(
                f"cannot create schema {nsp!r} for skfleet's run records in {where} (permission "
                "denied): create it once for this user, or add bookkeeping=<a schema you may "
                "write> to the URL"
            ) from None
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
            pass  # created concurrently by another sink
    statements = [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target text NOT NULL, run_id text NOT NULL, "
            "mode text NOT NULL, state text NOT NULL, stage text, "
            "created_at timestamptz NOT NULL DEFAULT now(), committed_at timestamptz, "
            "PRIMARY KEY (target, run_id))"
        ).format(sql.Identifier(nsp, RUNS)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target text NOT NULL, run_id text NOT NULL, "
            "partition_id text NOT NULL, rows bigint NOT NULL, "
            "committed_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (target, run_id, partition_id))"
        ).format(sql.Identifier(nsp, LEDGER)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target text NOT NULL, stream text NOT NULL, "
            "state jsonb NOT NULL, run_id text NOT NULL, "
            "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, stream))"
        ).format(sql.Identifier(nsp, WATERMARKS)),
    ]
    # Created concurrently by another sink? IF NOT EXISTS is not race-free; the loser's
    # catalog insert fails, and the table is there all the same.
    racing = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable)
    for statement in statements:
        with contextlib.suppress(*racing):
            conn.execute(statement)


def stored_watermark(conn, nsp: str, target_key: str, stream: str) -> dict | None:
    """The watermark state of ``stream`` into the target (None: none, or no table yet)."""
    from psycopg import sql

    book = sql.Identifier(nsp, WATERMARKS)
    if conn.execute("SELECT to_regclass(%s)", [book.as_string(conn)]).fetchone()[0] is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT state FROM {} WHERE target = %s AND stream = %s").format(book),
        [target_key, stream],
    ).fetchone()
    return None if row is None else row[0]


def store_watermark(
    conn,
    nsp: str,
    target_key: str,
    pending: tuple[str, dict] | None,
    run_id: str,
    *,
    replaced: bool,
    where: str,
) -> None:
    """In a commit's transaction: a replaced table forgets every watermark into it (its rows
    are gone), then the run's ``(stream, state)`` is stored over the one it started from."""
    import json

    from psycopg import sql

    table = sql.Identifier(nsp, WATERMARKS)
    if replaced:
        conn.execute(sql.SQL("DELETE FROM {} WHERE target = %s").format(table), [target_key])
    if pending is None:
        return
    stream, state = pending
    check_watermark_unmoved(stored_watermark(conn, nsp, target_key, stream), state, stream, where)
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (target, stream, state, run_id) VALUES (%s, %s, %s::jsonb, %s) "
            "ON CONFLICT (target, stream) DO UPDATE SET state = EXCLUDED.state, "
            "run_id = EXCLUDED.run_id, updated_at = now()"
        ).format(table),
        [target_key, stream, json.dumps(state), run_id],
    )
