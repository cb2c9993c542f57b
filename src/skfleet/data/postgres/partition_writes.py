"""The PostgreSQL sink's partition writes: each partition and its ledger row in one transaction.

:meth:`~PostgresPartitionWrites.write` loads a whole table; ``write_stream`` feeds one ``COPY``
as the batches are produced (read and scored while it is written). Either way the ledger row is
inserted first (a concurrent writer of the same partition then waits, and finds it taken), the
rows are counted into it at the end, and nothing is visible until the transaction commits.
:class:`PostgresPartitionWrites` is that part of :class:`~skfleet.data.postgres.sink.PostgresSink`.
"""

from __future__ import annotations

import pyarrow as pa

from skfleet.data.base import check_partition_id
from skfleet.data.postgres.conn import adbc_cursor, driver_errors
from skfleet.data.postgres.ingest import ingest
from skfleet.data.postgres.ledger import LEDGER
from skfleet.data.postgres.types import cast_column
from skfleet.errors import MissingColumnError, SkfleetError, UsageError


class PostgresPartitionWrites:
    """``write`` / ``write_stream`` of the sink, over the names and schema it opened with."""

    def _prepare(self, table: pa.Table) -> pa.Table:
        wire = self._wire
        have = set(table.column_names)
        for name in wire.names:
            if name not in have:
                raise MissingColumnError(
                    f"column {name!r} is missing from the partition written to {self.display_name}"
                )
        extra = sorted(have - set(wire.names))
        if extra:
            raise UsageError(
                f"column {extra[0]!r} was not in the schema {self.display_name} was opened with"
            )
        where = f"the data for {self.display_name}"
        arrays = [cast_column(table.column(f.name), f.type, f.name, where) for f in wire]
        return pa.Table.from_arrays(arrays, schema=wire)

    def write(self, partition_id: str, table: pa.Table) -> int:
        """Write one partition and its ledger row in one transaction; 0 if already committed."""
        self._require_open()
        check_partition_id(partition_id)
        data = self._prepare(table)

        def load(cursor) -> int:
            if data.num_rows:
                self._ingest(cursor, data)
                if self._keys_table is not None:
                    ingest(cursor, self._nsp, self._keys_table, data.select(list(self._keys)))
            return data.num_rows

        return self._in_transaction(partition_id, load)

    def write_stream(self, partition_id, schema, batches, before_commit=None) -> int:
        """One partition's COPY fed as its batches are produced (read and scored while it is
        written), in the transaction of its ledger row. Decimal columns (their text detour) and
        an append run's key table take the gathering path of :meth:`Sink.write_stream`."""
        self._require_open()
        check_partition_id(partition_id)
        wire = self._wire
        if self._keys_table is not None or any(pa.types.is_decimal(f.type) for f in wire):
            return super().write_stream(partition_id, schema, batches, before_commit)
        failed: list[BaseException] = []
        rows = [0]

        def prepared():
            # An error here must not surface inside the driver's COPY (it would come out as a
            # driver error): the stream ends, and the error is raised before the commit.
            try:
                for batch in batches:
                    table = self._prepare(pa.Table.from_batches([batch], schema=schema))
                    rows[0] += table.num_rows
                    yield from table.to_batches()
            except BaseException as exc:
                failed.append(exc)

        def load(cursor) -> int:
            reader = pa.RecordBatchReader.from_batches(wire, prepared())
            cursor.adbc_ingest(self._write_to, reader, mode="append", db_schema_name=self._nsp)
            if failed:
                raise failed[0]
            if before_commit is not None:
                before_commit(rows[0])
            return rows[0]

        return self._in_transaction(partition_id, load)

    def _in_transaction(self, partition_id: str, load) -> int:
        """``load(cursor)`` (which returns the rows it wrote) in one transaction with the
        partition's ledger row; 0, and nothing loaded, when the partition is committed already."""
        from psycopg import sql

        book, key, run = (
            self._book(LEDGER),
            sql.Literal(self._target_key),
            sql.Literal(self._run_id),
        )
        part = sql.Literal(partition_id)
        ledger = sql.SQL(
            "INSERT INTO {} (target, run_id, partition_id, rows) VALUES ({}, {}, {}, 0) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ).format(book, key, run, part)
        count = "UPDATE {} SET rows = {} WHERE target = {} AND run_id = {} AND partition_id = {}"
        try:
            with adbc_cursor(self._target) as cursor:
                cursor.execute("BEGIN")
                # Ledger first: a concurrent writer of the same partition blocks here until we
                # commit, then finds the key taken and writes nothing.
                cursor.execute(ledger.as_string(None))
                if not cursor.fetchall():
                    cursor.execute("ROLLBACK")
                    return 0
                if self._done:
                    cursor.execute("ROLLBACK")
                    raise self._not_in_run(partition_id)
                rows = load(cursor)
                rows_sql = sql.SQL(count).format(book, sql.Literal(rows), key, run, part)
                cursor.execute(rows_sql.as_string(None))
                cursor.execute("COMMIT")
        except SkfleetError:
            raise
        except driver_errors() as exc:
            raise self._error(exc) from None
        return rows

    def _ingest(self, cursor, data: pa.Table) -> None:
        """Append ``data`` to the table partitions go to, inside the caller's transaction."""
        ingest(cursor, self._nsp, self._write_to, data)
