"""Connections to PostgreSQL and the translation of driver errors into one-line skfleet errors.

Two drivers, each for what it is best at: psycopg for catalog queries, the exported snapshot and
the sink's bookkeeping (small statements, proper parameter quoting); ADBC for the bulk paths,
because its C reader/writer turns binary COPY straight into Arrow columns (and back) without a
Python object per value. Measured on 1M rows x 23 columns: psycopg's binary COPY costs ~0.9 CPU-s
just to hand each row to Python (libpq yields one row per call), before any decoding; ADBC
decodes everything into Arrow in ~1.4 CPU-s. Writing (bigint, float8): ADBC ingest ~2.7M rows/s
from one process, psycopg's ``write_row`` is per-row Python.

>>> message_of_driver_error(Exception(
...     'NOT_FOUND: Failed to prepare query: ERROR:  relation "t" does not exist\\nLINE 1: ...'))
'relation "t" does not exist'
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from skfleet.data.postgres.url import PgURL
from skfleet.errors import (
    ConnectionFailedError,
    DataError,
    MissingColumnError,
    SkfleetError,
    SourceNotFoundError,
    UsageError,
)
from skfleet.util.redact import redact_text

_ERROR_LINE = re.compile(r"(?:ERROR|FATAL):\s+(.*)")
_SNAPSHOT_STATE = "22023"  # invalid_parameter_value: what an unknown snapshot id raises


class SnapshotGoneError(SkfleetError):
    """The snapshot a partition was planned in no longer exists (its source was closed)."""


def message_of_driver_error(exc: BaseException) -> str:
    """The server's primary message (one line, password-free) from a psycopg or ADBC error."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return redact_text(primary)
    text = str(exc)
    found = _ERROR_LINE.search(text)
    if found:
        return redact_text(found.group(1).strip())
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    # psycopg/ADBC prefixes that add nothing for the reader.
    for prefix in ("connection failed: ", "IO: [libpq] Failed to connect: "):
        first = first.removeprefix(prefix)
    return redact_text(first)


def sqlstate_of(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or None


def translate(exc: BaseException, what: str, display: str) -> SkfleetError:
    """Map a driver error raised while working on ``what`` (e.g. ``table public.t``) to an error
    whose message names it and the (password-masked) URL."""
    state = sqlstate_of(exc) or ""
    message = message_of_driver_error(exc)
    if state.startswith("28"):  # invalid authorization (wrong password, unknown role)
        return ConnectionFailedError(f"cannot log in to {display}: {message}")
    if state == "3D000":
        return SourceNotFoundError(f"cannot connect to {display}: {message}")
    if state.startswith("08") or state.startswith("57P"):
        return ConnectionFailedError(f"lost the connection to {display}: {message}")
    if state == "42P01":
        return SourceNotFoundError(f"{what} in {display}: {message}")
    if state == "42703":
        return MissingColumnError(f"{what} in {display}: {message}")
    if state == "42501":
        return SkfleetError(f"{what} in {display}: {message}")
    if state.startswith("42"):
        return UsageError(f"{what} in {display} is not valid SQL: {message}")
    if state.startswith(("22", "23")):
        return DataError(f"{what} in {display}: {message}")
    return SkfleetError(f"{what} in {display} failed: {message}")


def _connect_error(exc: BaseException, target: PgURL) -> SkfleetError:
    state = sqlstate_of(exc) or ""
    message = message_of_driver_error(exc)
    if state == "3D000" or "does not exist" in message and "database" in message:
        return SourceNotFoundError(f"cannot connect to {target.display}: {message}")
    if state.startswith("28") or "authentication failed" in message:
        return ConnectionFailedError(f"cannot log in to {target.display}: {message}")
    return ConnectionFailedError(f"cannot connect to {target.display}: {message}")


def connect_psycopg(target: PgURL, autocommit: bool = True):
    """A psycopg connection; connection problems become :class:`ConnectionFailedError`."""
    import psycopg

    try:
        conn = psycopg.connect(with_dead_peer_limits(target.conninfo), autocommit=autocommit)
    except psycopg.Error as exc:
        # from None: the chained driver error is not needed and must not carry the conninfo.
        raise _connect_error(exc, target) from None
    if conn.info.server_version < 90000:  # Redshift reports 8.0.2: point to redshift://
        from skfleet.data.redshift.conn import refuse_redshift

        refuse_redshift(conn, target)
    return conn


#: How long either end of a connection waits for a silent peer. A cut cable or a lost host sends
#: no FIN or RST: without limits a worker waits for the server for ~2 h (the kernel's keepalive
#: default), and the server keeps a cut-off writer's transaction, which holds its partition's
#: ledger row, for as long as TCP retransmits (~15 min), so the retry of that partition on
#: another worker waits on the row just as long. 10 s of silence, then 3 probes 5 s apart, and
#: at most 30 s of unacknowledged data (Dask's own comms give up on a peer after 30 s too).
#: libpq's side goes in the connection string (a value already in the URL wins); it never
#: reaches the server, so poolers and Redshift accept it.
DEAD_PEER_LIBPQ = {
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
#: The server's side, set per session on the connections that write: one statement each, so a
#: server without one of them (tcp_user_timeout is PostgreSQL 12+, Redshift has neither) keeps
#: its own defaults for that one and the connection works as before.
DEAD_PEER_SERVER = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 30000",
)


def with_dead_peer_limits(conninfo: str) -> str:
    """``conninfo`` (a ``postgresql://`` URI) plus the :data:`DEAD_PEER_LIBPQ` it does not set.

    >>> with_dead_peer_limits("postgresql://h/db?keepalives_idle=60")
    'postgresql://h/db?keepalives_idle=60&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=30000'
    """
    from urllib.parse import parse_qsl, urlsplit

    given = {name for name, _ in parse_qsl(urlsplit(conninfo).query)}
    extra = "&".join(f"{k}={v}" for k, v in DEAD_PEER_LIBPQ.items() if k not in given)
    if not extra:
        return conninfo
    return f"{conninfo}{'&' if '?' in conninfo else '?'}{extra}"


def _limit_server_wait(conn, errors: type[BaseException]) -> None:
    """Apply :data:`DEAD_PEER_SERVER` to a new (autocommit) connection, skipping any the server
    refuses."""
    with contextlib.closing(conn.cursor()) as cursor:
        for statement in DEAD_PEER_SERVER:
            with contextlib.suppress(errors):
                cursor.execute(statement)


#: Idle ADBC connections kept per process and URL. Opening one costs ~40 ms (the driver loads
#: the server's type catalog), as much as reading 100k rows; a worker reads many partitions.
_POOL_SIZE = 4
_POOL_IDLE_SECONDS = 30.0
_pool: dict[tuple[int, str], list[tuple[float, Any]]] = {}
_pool_lock = threading.Lock()


def _checkout(conninfo: str):
    key = (os.getpid(), conninfo)  # never reuse a connection inherited through fork()
    now = time.monotonic()
    with _pool_lock:
        idle = _pool.get(key, [])
        while idle:
            since, conn = idle.pop()
            if now - since < _POOL_IDLE_SECONDS:
                return conn
            _close_quietly(conn)
    return None


def _checkin(conninfo: str, conn) -> None:
    with _pool_lock:
        idle = _pool.setdefault((os.getpid(), conninfo), [])
        if len(idle) < _POOL_SIZE:
            idle.append((time.monotonic(), conn))
            return
    _close_quietly(conn)


def _close_quietly(conn) -> None:
    with contextlib.suppress(Exception):
        conn.close()


@atexit.register
def _drain_pool() -> None:
    with _pool_lock:
        idle = [conn for conns in _pool.values() for _, conn in conns]
        _pool.clear()
    for conn in idle:
        _close_quietly(conn)


@contextlib.contextmanager
def adbc_cursor(target: PgURL) -> Iterator:
    """An ADBC cursor on an autocommit connection (pooled per process), released on exit.

    Autocommit, so that transactions are ours: we send ``BEGIN``/``COMMIT`` ourselves, which is the
    only way to put ``SET TRANSACTION SNAPSHOT`` first in a transaction. A connection goes back to
    the pool only after a clean exit (its transaction ended); after an error it is closed.
    """
    import adbc_driver_manager

    from skfleet.data.postgres import adbc

    conn = _checkout(target.conninfo)
    if conn is None:
        try:
            conn = adbc.connect(with_dead_peer_limits(target.conninfo))
        except adbc_driver_manager.Error as exc:
            raise _connect_error(exc, target) from None
        _limit_server_wait(conn, adbc_driver_manager.Error)
    ok = False
    try:
        with contextlib.closing(conn.cursor()) as cursor:
            yield cursor
        ok = True
    finally:
        if ok:
            _checkin(target.conninfo, conn)
        else:
            _close_quietly(conn)


def driver_errors() -> tuple[type[BaseException], ...]:
    """The exception classes of both drivers (imported lazily)."""
    import adbc_driver_manager
    import psycopg

    return (psycopg.Error, adbc_driver_manager.Error)


def is_snapshot_error(exc: BaseException) -> bool:
    return sqlstate_of(exc) == _SNAPSHOT_STATE and "snapshot" in str(exc).lower()
