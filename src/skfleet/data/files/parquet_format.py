"""Parquet: compressed with zstd, read by row groups (a big file's partitions are groups of them).

>>> import pyarrow as pa
>>> fmt = ParquetFormat()
>>> fmt.name, fmt.extension, fmt.compression
('parquet', '.parquet', 'zstd')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from skfleet.data.files.formats import FileFormat, conform, rebatch
from skfleet.data.files.store import FileStore
from skfleet.errors import DataError


@dataclass(frozen=True)
class ParquetInfo:
    """What a Parquet footer tells without reading data."""

    schema: pa.Schema
    rows: int
    row_group_rows: tuple[int, ...]


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding in Parquet: text, binary and categorical ones.

    Numbers are left plain: scores and keys are nearly all distinct, so pyarrow would build a
    dictionary only to drop it; zstd compresses repeated numbers as well. Writing a
    (bigint key, float64 score) partition went from 46 ms to 14 ms per 250k rows, and the file
    got smaller.

    >>> dictionary_columns(pa.schema([("k", pa.int64()), ("label", pa.string()),
    ...                               ("city", pa.dictionary(pa.int32(), pa.string()))]))
    ['label', 'city']
    """
    wanted = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_dictionary,
    )
    return [f.name for f in schema if any(test(f.type) for test in wanted)]


def _present(columns, pf) -> list[str]:
    """The ``columns`` this file holds, in their order (a set: ``schema_arrow.names`` builds a
    list per access, and one lookup per column made wide files quadratic)."""
    names = set(pf.schema_arrow.names)
    return [c for c in columns if c in names]


class ParquetFormat(FileFormat):
    """Parquet files, compressed with zstd; partitions may be groups of row groups."""

    name = "parquet"
    extension = ".parquet"

    def __init__(self, compression: str = "zstd"):
        self.compression = compression

    def info(self, store: FileStore, path: str) -> ParquetInfo:
        with self._file(store, path) as pf:
            meta = pf.metadata
            return ParquetInfo(
                pf.schema_arrow,
                meta.num_rows,
                tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups)),
            )

    @contextlib.contextmanager
    def _file(self, store: FileStore, path: str) -> Iterator[pq.ParquetFile]:
        handle = None
        if store.is_local:
            # Arrow's own file reads column chunks with pread and no Python in between: a
            # quarter less time per partition than going through fsspec's local file object.
            with contextlib.suppress(OSError):
                handle = pa.OSFile(path, "rb")
        if handle is None:
            handle = store.open(path)  # S3, or a local path Arrow cannot open: fsspec names why
        with handle, store.errors(path):
            try:
                yield pq.ParquetFile(handle)
            except pa.ArrowInvalid as exc:
                raise DataError(
                    f"{store.url(path)} is not a readable Parquet file: {exc}"
                ) from None

    def read(self, store, path, schema, columns, row_groups=None):
        with self._file(store, path) as pf:
            present = _present(columns, pf)
            if present:
                if row_groups is None:
                    table = pf.read(columns=present)
                else:
                    table = pf.read_row_groups(list(row_groups), columns=present)
            else:
                # None of the asked columns is in this file: only its row count matters.
                groups = range(pf.metadata.num_row_groups) if row_groups is None else row_groups
                rows = sum(pf.metadata.row_group(i).num_rows for i in groups)
                table = pa.table({"_": pa.nulls(rows)})
            return conform(table, schema, columns, store.url(path))

    def iter_batches(self, store, path, schema, columns, batch_rows, row_groups=None):
        where = store.url(path)
        with self._file(store, path) as pf:
            present = _present(columns, pf)
            if not present:
                yield from self.read(store, path, schema, columns, row_groups).to_batches(
                    max_chunksize=batch_rows
                )
                return
            groups = None if row_groups is None else list(row_groups)
            batches = pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=present)
            for batch in rebatch(batches, batch_rows):
                table = conform(pa.Table.from_batches([batch]), schema, columns, where)
                yield from table.to_batches()

    def serialize(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(
            table,
            sink,
            compression=self.compression,
            use_dictionary=dictionary_columns(table.schema),
        )
        return sink.getvalue().to_pybytes()

    def serialize_parts(self, tables):
        """One row group per part: readers split the file where the run's partitions were."""
        sink = pa.BufferOutputStream()
        schema = tables[0].schema
        options = {"compression": self.compression, "use_dictionary": dictionary_columns(schema)}
        with pq.ParquetWriter(sink, schema, **options) as writer:
            for table in tables:
                writer.write_table(table, row_group_size=max(1, table.num_rows))
        return sink.getvalue().to_pybytes()

    def count_rows(self, store, path, schema):
        return self.info(store, path).rows
