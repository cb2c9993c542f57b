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

>>> staging_name('"public"."scores"', "run1")
'_skfleet_stage_c657959271608111'
"""

from __future__ import annotations

import contextlib
import hashlib

from skfleet.errors import UsageError

LEDGER = "skfleet_ledger"
RUNS = "skfleet_runs"


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
    ]
    # Created concurrently by another sink? IF NOT EXISTS is not race-free; the loser's
    # catalog insert fails, and the table is there all the same.
    racing = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable)
    for statement in statements:
        with contextlib.suppress(*racing):
            conn.execute(statement)
