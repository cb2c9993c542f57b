"""File formats: the :class:`FileFormat` interface, format names, and helpers all formats share.

The formats are :class:`~skfleet.data.files.parquet_format.ParquetFormat` and
:class:`~skfleet.data.files.csv_format.CsvFormat`. A format object is small and picklable; it is
handed a :class:`~skfleet.data.files.store.FileStore` and a path for every call, and always returns rows in the schema it is asked for (columns in the
requested order, types cast, absent columns as NULLs) so that every partition of a source agrees.

>>> import io, pyarrow as pa
>>> fmt = format_for("csv.gz")
>>> fmt.name, fmt.extension
('csv', '.csv.gz')
>>> format_of_name("flights/2013.parquet"), format_of_name("notes.txt") is None
('parquet', True)
>>> table, out = pa.table({"id": [1, 2], "label": ["a", None]}), io.BytesIO()
>>> fmt.write_to(table, out)
>>> fmt.parse(out.getvalue(), table.schema).equals(table)
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

import pyarrow as pa

from skfleet.data.files.store import FileStore
from skfleet.errors import DataError, UsageError

FORMAT_FLAG = "--format"
_SUFFIXES = (
    (".csv.gz", "csv"),
    (".csv.gzip", "csv"),
    (".csv", "csv"),
    (".parquet", "parquet"),
    (".parq", "parquet"),
    (".pq", "parquet"),
)
_CHOICES = "parquet, csv or csv.gz"


def format_of_name(name: str) -> str | None:
    """``"parquet"``/``"csv"`` from a file or directory name's extension, else None."""
    lower = name.lower().rstrip("/")
    for suffix, fmt in _SUFFIXES:
        if lower.endswith(suffix):
            return fmt
    return None


def strip_data_suffix(name: str) -> str:
    """``name`` without its data-format extension.

    >>> strip_data_suffix("year=2013/part-0.csv.gz")
    'year=2013/part-0'
    """
    lower = name.lower()
    for suffix, _ in _SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def format_for(spec: str | None, *, default_name: str = "", what: str = "") -> FileFormat:
    """The format named by a ``--format`` value, else by ``default_name``'s extension.

    Raises UsageError naming ``--format`` when neither says.
    """
    from skfleet.data.files.csv_format import CsvFormat
    from skfleet.data.files.parquet_format import ParquetFormat

    if spec is not None:
        key = str(spec).strip().lower().lstrip(".")
        if key == "parquet":
            return ParquetFormat()
        if key == "csv":
            return CsvFormat()
        if key in ("csv.gz", "csv+gzip", "csv.gzip"):
            return CsvFormat(compression="gzip")
        raise UsageError(f"unknown {FORMAT_FLAG} {spec!r} (choose {_CHOICES})")
    detected = format_of_name(default_name)
    if detected is None:
        raise UsageError(
            f"cannot tell the file format of {what or default_name}: pass {FORMAT_FLAG} "
            f"({_CHOICES})"
        )
    gz = detected == "csv" and default_name.lower().rstrip("/").endswith((".gz", ".gzip"))
    return CsvFormat(compression="gzip" if gz else None) if detected == "csv" else ParquetFormat()


def conform(table: pa.Table, schema: pa.Schema, columns: Sequence[str], where: str) -> pa.Table:
    """``table`` reduced to ``columns`` of ``schema``: cast where types differ, NULLs where a
    column is absent from this file, so that all partitions of a source share one schema."""
    arrays, fields = [], []
    # By position, looked up once: ``table.column_names`` builds a list per call, and a lookup
    # per column made a 10,000-column file take minutes.
    present = {name: i for i, name in enumerate(table.column_names)}
    for name in columns:
        field = schema.field(name)
        if name in present:
            column = table.column(present[name])
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DataError(
                        f"column {name!r} in {where} is {column.type} and cannot be read as "
                        f"{field.type}: {exc}"
                    ) from None
        else:
            column = pa.nulls(table.num_rows, field.type)
        arrays.append(column)
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


def rebatch(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Split batches so none is longer than ``batch_rows``."""
    for batch in batches:
        for offset in range(0, batch.num_rows, batch_rows):
            yield batch.slice(offset, batch_rows)


class FileFormat(ABC):
    """One file format: read a file (or a slice of it) in a given schema, write a table."""

    name: str
    extension: str

    @abstractmethod
    def read(
        self,
        store: FileStore,
        path: str,
        schema: pa.Schema,
        columns: Sequence[str],
        row_groups: Sequence[int] | None = None,
    ) -> pa.Table:
        """Rows of ``path`` as ``columns`` of ``schema``."""

    @abstractmethod
    def iter_batches(
        self,
        store: FileStore,
        path: str,
        schema: pa.Schema,
        columns: Sequence[str],
        batch_rows: int,
        row_groups: Sequence[int] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``path`` in batches of at most ``batch_rows`` rows, memory staying flat."""

    @abstractmethod
    def write_to(self, table: pa.Table, handle: BinaryIO) -> None:
        """Write one output file holding ``table`` into the binary file ``handle`` (streamed:
        a part never needs to be whole in memory as bytes)."""

    @abstractmethod
    def write_parts_to(
        self, schema: pa.Schema, tables: Iterable[pa.Table], handle: BinaryIO
    ) -> None:
        """Write one file holding ``tables`` (of ``schema``) one after another into ``handle``,
        taking one table at a time from the iterable (a single-file output)."""

    @abstractmethod
    def count_rows(self, store: FileStore, path: str, schema: pa.Schema) -> int:
        """The exact number of rows in ``path``."""

    def check_writable(self, schema: pa.Schema) -> None:
        """Raise DataError if this format cannot hold a column of ``schema`` (Parquet holds all)."""
        return None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.__dict__.items()))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__})"
