"""ADBC's PostgreSQL driver through the driver manager's own API, without its DB-API module.

``adbc_driver_manager.dbapi`` imports ``pyarrow.dataset`` and with it pandas: 0.35 s of every
cold ``skfleet copy``, and an import lock that threads reading partitions side by side wait on
while another thread imports scikit-learn. It also prepares each new statement on the server
before running it, a round trip that a statement run once does not need. skfleet asks four
things of a connection, all here: run a statement, fetch its few rows, fetch a partition as Arrow
(whole or as a stream), and bulk-load Arrow data (``COPY``).

Connections are in autocommit mode (ADBC's default): skfleet sends ``BEGIN`` and ``COMMIT``
itself, which is the only way to put ``SET TRANSACTION SNAPSHOT`` first in a transaction. Errors
are the driver manager's (``adbc_driver_manager.Error`` and its subclasses), as from the DB-API.
Long calls go through the driver manager's interruptible call, so Ctrl-C cancels a running
statement in the main thread.
"""

from __future__ import annotations

import contextlib
from typing import Any

import adbc_driver_manager as manager
import pyarrow as pa

try:  # the driver manager's cancellable call (Ctrl-C cancels the statement), where it has one
    from adbc_driver_manager._lib import _blocking_call
except ImportError:  # pragma: no cover - a driver manager without it

    def _blocking_call(func, args, kwargs, cancel):
        return func(*args, **kwargs)


def connect(uri: str) -> Connection:
    """A new autocommit connection to the PostgreSQL server at ``uri`` (a libpq URI)."""
    import adbc_driver_postgresql

    database = adbc_driver_postgresql.connect(uri)
    try:
        return Connection(database, manager.AdbcConnection(database))
    except BaseException:
        database.close()
        raise


class Connection:
    """One ADBC connection (and the database handle it was opened from)."""

    def __init__(self, database: Any, connection: Any):
        self._database = database
        self._connection = connection

    def cursor(self) -> Cursor:
        return Cursor(self._connection)

    def close(self) -> None:
        try:
            self._connection.close()
        finally:
            self._database.close()


class Cursor:
    """A statement on a :class:`Connection`: ``execute`` a query, then read its result.

    A result not read is released by the next ``execute`` or by ``close``.
    """

    def __init__(self, connection: Any):
        self._statement = manager.AdbcStatement(connection)
        self._result: pa.RecordBatchReader | None = None

    def execute(self, query: str) -> Cursor:
        self._release()
        self._statement.set_sql_query(query)
        handle, _ = self._call(self._statement.execute_query)
        self._result = pa.RecordBatchReader._import_from_c(handle.address)
        return self

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The result as a stream of record batches (read it before the next ``execute``)."""
        result, self._result = self._taken(), None
        return result

    def fetch_arrow_table(self) -> pa.Table:
        reader = self.fetch_record_batch()
        try:
            return self._call(reader.read_all)
        finally:
            reader.close()

    def fetchall(self) -> list[tuple]:
        table = self.fetch_arrow_table()
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return list(zip(*columns, strict=True)) if columns else []

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def adbc_ingest(
        self,
        table_name: str,
        data: pa.Table | pa.RecordBatchReader,
        mode: str = "append",
        *,
        db_schema_name: str | None = None,
        temporary: bool = False,
    ) -> int:
        """Append ``data`` to ``table_name`` with the driver's bulk load (binary ``COPY``)."""
        if mode != "append":
            raise ValueError(f"only append is used here, not {mode!r}")
        self._release()
        names = manager.StatementOptions
        options = {
            names.INGEST_TARGET_TABLE.value: table_name,
            names.INGEST_MODE.value: manager.INGEST_OPTION_MODE_APPEND,
            names.INGEST_TEMPORARY.value: "true" if temporary else "false",
        }
        if db_schema_name is not None:
            options[names.INGEST_TARGET_DB_SCHEMA.value] = db_schema_name
        self._statement.set_options(**options)
        self._statement.bind_stream(data)
        return self._call(self._statement.execute_update)

    def close(self) -> None:
        self._release()
        self._statement.close()

    def _taken(self) -> pa.RecordBatchReader:
        if self._result is None:
            raise manager.ProgrammingError("no result to fetch: execute a query first")
        return self._result

    def _release(self) -> None:
        if self._result is not None:
            with contextlib.suppress(Exception):
                self._result.close()
            self._result = None

    def _call(self, func):
        return _blocking_call(func, (), {}, self._statement.cancel)
