"""Read a Redshift table or query in partitions that workers read by themselves.

With ``staging=`` (the fast path): the first :meth:`RedshiftSource.partitions` call runs one
``UNLOAD`` of the table or query to a prefix of its own under the staging area (see
:mod:`skfleet.data.redshift.unload`); the partitions are the unloaded Parquet files (large files
split by row groups), which workers read straight from S3 through the file source. The UNLOAD is
the consistent view, as the exported snapshot is for PostgreSQL; :meth:`RedshiftSource.close`
removes the prefix (``keep_staging=true`` keeps it).

Partition ids are the file names plus a digest of the whole manifest (names and sizes): a
resumed run re-runs the UNLOAD, and if the table changed the files differ, the ids differ and
``--resume`` refuses rather than mixing two states of the table.

Without ``staging=`` (the slow path): plain SELECTs through the leader node, one per key range
(``key=``) or one for everything, each its own statement (no common view). It works, and a
:class:`SlowReadWarning` says why it is slow.
"""

from __future__ import annotations

import hashlib
import math
import os
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from skfleet.data.base import Partition, Source, selected_columns
from skfleet.data.postgres.conn import driver_errors
from skfleet.data.postgres.plan import key_range, key_ranges
from skfleet.data.postgres.source import MAX_SAMPLE, SAMPLE_PER_PARTITION, pick_boundaries
from skfleet.data.postgres.types import conform_table, schema_of
from skfleet.data.redshift.conn import connect, error_of
from skfleet.data.redshift.staging import Staging, authorization
from skfleet.data.redshift.unload import max_file_mb, read_manifest, unload_sql
from skfleet.data.redshift.url import parse_redshift_url
from skfleet.errors import DataError, SkfleetWarning, UsageError


class SlowReadWarning(SkfleetWarning):
    """A Redshift table is read without ``staging=``: row by row through the leader node."""


class RedshiftSource(Source):
    """A Redshift table or query (``redshift://.../db?table=schema.name&staging=s3://...``).

    :meth:`unique_keys` stays False even for a table with a primary key: Redshift does not
    enforce primary keys or unique constraints, so a table can hold a declared key twice."""

    def __init__(self, url: str, **options: Any):
        super().__init__(url)
        if options:
            raise UsageError(f"unknown option(s) {sorted(options)} for {self.display_name}")
        self._target = parse_redshift_url(url)
        self._schema: pa.Schema | None = None
        self._from_sql: str | None = None
        self._count: int | None = None
        self._files = None  # the FileSource over the unloaded files (pickled to workers)
        self._digest: str | None = None
        self._unloaded = False
        self._staging: Staging | None = None
        self._owner_pid: int | None = None  # the process that ran the UNLOAD removes its files

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_owner_pid": None}

    @property
    def label(self) -> str:
        if self._target.table is None:
            return "query"
        return f"table {self._target.relation_label!r}"

    def _error(self, exc: BaseException, what: str | None = None):
        return error_of(exc, what or self.label, self.display_name)

    # -- catalog ---------------------------------------------------------------------------------
    def _describe(self) -> pa.Schema:
        if self._schema is not None:
            return self._schema
        from psycopg import sql

        if self._target.table is not None:
            nsp, name = self._target.table
            from_sql = sql.Identifier(*filter(None, (nsp, name))).as_string(None)
        else:
            from_sql = f"(\n{self._target.query}\n) AS _skfleet_q"
        with connect(self._target.pg) as conn:
            try:
                description = conn.execute(f"SELECT * FROM {from_sql} LIMIT 0").description or []
            except driver_errors() as exc:
                raise self._error(exc) from None
        where = f"{self.label} in {self.display_name}"
        schema, _ = schema_of(description, where)
        self._from_sql, self._schema = from_sql, schema
        return self._schema

    def schema(self) -> pa.Schema:
        return self._describe()

    def count_estimate(self) -> int:
        """An exact ``count(*)`` (cheap on Redshift's columnar tables; exact for queries)."""
        if self._count is None:
            self._describe()
            with connect(self._target.pg) as conn:
                try:
                    self._count = int(
                        conn.execute(f"SELECT count(*) FROM {self._from_sql}").fetchone()[0]
                    )
                except driver_errors() as exc:
                    raise self._error(exc) from None
        return self._count

    def _selected(self, columns: Sequence[str] | None) -> list[str]:
        return selected_columns(self._describe(), columns, f"{self.label} ({self.display_name})")

    def select_sql(self, columns: Sequence[str] | None = None, where=None) -> str:
        from psycopg import sql

        names = self._selected(columns)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.SQL(self._from_sql)
        )
        if where is not None:
            query = sql.SQL("{} WHERE {}").format(query, where)
        return query.as_string(None)

    # -- planning --------------------------------------------------------------------------------
    def partitions(self, target_rows: int) -> list[Partition]:
        """The UNLOAD's files (with ``staging=``), else key ranges read with plain SELECTs."""
        if target_rows < 1:
            raise UsageError(f"target_rows must be positive, not {target_rows}")
        self._describe()
        for key in self._target.key:
            self._selected([key])
        if self._target.staging is None:
            warnings.warn(
                f"{self.display_name} has no staging=s3://...: reading it with plain SELECTs, "
                "whose rows all pass through Redshift's leader node and this connection one at a "
                "time (no UNLOAD to S3 in parallel); this is slow for large tables",
                SlowReadWarning,
                stacklevel=2,
            )
            return self._select_partitions(target_rows)
        if not self._unloaded:
            self._unload(target_rows)
        if self._files is None:
            return [Partition(f"u{self._digest}.empty", 0, {"kind": "empty"})]
        return [
            Partition(f"u{self._digest}.{p.id}", p.rows_estimate, {"kind": "file", "inner": p})
            for p in self._files.partitions(target_rows)
        ]

    def _unload(self, target_rows: int) -> None:
        from skfleet.data.files.source import FileSource

        target = self._target
        staging = Staging(target.staging, f"skfleet-unload-{uuid.uuid4().hex[:16]}", target.region)
        statement = unload_sql(
            self.select_sql(),
            staging.url,
            authorization(target.iam_role, self.display_name),
            max_file_mb(target_rows, self._describe()),
            target.region,
        )
        what = f"UNLOAD of {self.label} to {staging.url}/"
        self._staging, self._owner_pid = staging, os.getpid()
        try:
            with connect(target.pg) as conn:
                try:
                    conn.execute(statement)
                except driver_errors() as exc:
                    raise self._error(exc, what) from None
            entries = read_manifest(staging)
            digest = hashlib.sha1()
            for url, size in sorted(entries):
                digest.update(f"{url.rsplit('/', 1)[-1]}:{size}\n".encode())
            self._digest = digest.hexdigest()[:8]
            if entries:
                files = FileSource(staging.url + "/", format="parquet")
                if sorted(files.files) != sorted(url for url, _ in entries):
                    raise DataError(
                        f"the files under {staging.url}/ are not the ones the UNLOAD's manifest "
                        "lists; is another process writing there?"
                    )
                self._files = files
        except BaseException:
            self.close()
            raise
        self._unloaded = True

    def _select_partitions(self, target_rows: int) -> list[Partition]:
        from psycopg import sql

        keys = self._target.key
        if not keys:
            return [Partition("all", self.count_estimate(), {"kind": "select", "where": None})]
        total = self.count_estimate()
        n_parts = math.ceil(total / target_rows) if total else 1
        bounds: list[tuple] = []
        if n_parts > 1:
            wanted = min(total, max(SAMPLE_PER_PARTITION * n_parts, 1_000), MAX_SAMPLE)
            idents = [sql.Identifier(k) for k in keys]
            conditions = [sql.SQL("{} IS NOT NULL").format(i) for i in idents]
            if wanted < total:
                conditions.append(sql.SQL("RANDOM() < {}").format(sql.Literal(wanted / total)))
            query = sql.SQL("SELECT {cols} FROM {src} WHERE {cond} ORDER BY {cols}").format(
                cols=sql.SQL(", ").join(idents),
                src=sql.SQL(self._from_sql),
                cond=sql.SQL(" AND ").join(conditions),
            )
            with connect(self._target.pg) as conn:
                try:
                    bounds = pick_boundaries(conn.execute(query).fetchall(), n_parts)
                except driver_errors() as exc:
                    raise self._error(exc) from None
        ranges = key_ranges(bounds)
        return [
            Partition(name, total // len(ranges), {"kind": "select", "where": (keys, lower, upper)})
            for name, lower, upper in ranges
        ]

    # -- reading ---------------------------------------------------------------------------------
    def read(self, partition: Partition, columns: Sequence[str] | None = None) -> pa.Table:
        names = self._selected(columns)
        schema = pa.schema([self._describe().field(n) for n in names])
        spec = partition.spec or {}
        kind = spec.get("kind")
        where = f"{self.label} ({self.display_name})"
        if kind == "empty":
            return schema.empty_table()
        if kind == "file":
            if self._files is None:
                raise UsageError(f"partition {partition.id} was not planned by this source")
            table = self._files.read(spec["inner"], names)
            return conform_table(table.select(names), schema, where)
        if kind == "select":
            return self._read_select(spec.get("where"), names, schema, where)
        raise UsageError(f"unknown partition kind {kind!r}")

    def _read_select(self, bounds, names, schema: pa.Schema, where: str) -> pa.Table:
        clause = None if bounds is None else key_range(*bounds)
        query = self.select_sql(names, clause)
        with connect(self._target.pg) as conn:
            try:
                rows = conn.execute(query).fetchall()
            except driver_errors() as exc:
                raise self._error(exc) from None
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        arrays = []
        for field, values in zip(schema, columns, strict=True):
            if pa.types.is_string(field.type):
                values = [None if v is None else str(v) for v in values]
            arrays.append(pa.array(values, type=field.type))
        return conform_table(pa.Table.from_arrays(arrays, schema=schema), schema, where)

    def close(self) -> None:
        """Remove the unloaded files (unless ``keep_staging=true``); the planned partitions can
        no longer be read."""
        staging, self._staging = self._staging, None
        if staging is not None and self._owner_pid == os.getpid() and not self._target.keep_staging:
            staging.remove()
