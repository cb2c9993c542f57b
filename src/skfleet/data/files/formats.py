"""Parquet and CSV: how the file backend reads, streams, writes and sizes one file of each format.

A format object is small and picklable; it is handed a :class:`~skfleet.data.files.store.FileStore`
and a path for every call, and always returns rows in the schema it is asked for (columns in the
requested order, types cast, absent columns as NULLs) so that every partition of a source agrees.

>>> import pyarrow as pa
>>> fmt = format_for("csv.gz")
>>> fmt.name, fmt.extension
('csv', '.csv.gz')
>>> format_of_name("flights/2013.parquet"), format_of_name("notes.txt") is None
('parquet', True)
>>> table = pa.table({"id": [1, 2], "label": ["a", None]})
>>> fmt.parse(fmt.serialize(table), table.schema).equals(table)
True
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

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


@dataclass(frozen=True)
class ParquetInfo:
    """What a Parquet footer tells without reading data."""

    schema: pa.Schema
    rows: int
    row_group_rows: tuple[int, ...]


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
    def serialize(self, table: pa.Table) -> bytes:
        """The bytes of one output file holding ``table``."""

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
            present = [c for c in columns if c in pf.schema_arrow.names]
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
            present = [c for c in columns if c in pf.schema_arrow.names]
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

    def count_rows(self, store, path, schema):
        return self.info(store, path).rows


PARQUET_MAGIC = b"PAR1"
#: Longest message text quoted from a file's content.
_QUOTED = 300


def printable(text: str) -> str:
    """``text`` fit for one line on a terminal: control bytes escaped, long quotes cut.

    >>> print(printable("PAR1" + chr(21) + chr(10) + "x"))
    PAR1\\x15\\nx
    """
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return out if len(out) <= _QUOTED else out[:_QUOTED] + "..."


_CONVERSION = re.compile(
    r"In CSV column #(\d+): CSV conversion error to (.+?): invalid value '(.*)'$"
)


class CsvFormat(FileFormat):
    """CSV with a header row, optionally gzip-compressed; read in an explicit schema.

    Strings are written quoted and NULLs as empty fields, and read back with
    ``quoted_strings_can_be_null=False``, so NULL and the empty string stay apart.
    """

    name = "csv"
    #: Bytes read to infer a schema from the first file.
    infer_bytes = 4 << 20

    def __init__(self, compression: str | None = None, delimiter: str = ","):
        self.compression = compression
        self.delimiter = delimiter

    @property
    def extension(self) -> str:  # type: ignore[override]
        return ".csv.gz" if self.compression == "gzip" else ".csv"

    # -- options --------------------------------------------------------------------------------
    def _parse_options(self) -> pacsv.ParseOptions:
        # Quoted values may hold newlines (our writer emits them for such strings).
        return pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)

    def _convert_options(self, schema: pa.Schema | None, columns=None) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema} if schema is not None else None,
            include_columns=list(columns) if columns is not None else None,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )

    def _gzipped(self, path: str) -> bool:
        return self.compression == "gzip" or path.lower().endswith((".gz", ".gzip"))

    @contextlib.contextmanager
    def _stream(self, store: FileStore, path: str):
        with store.open(path) as handle:
            yield pa.input_stream(handle, compression="gzip" if self._gzipped(path) else None)

    # -- reading --------------------------------------------------------------------------------
    def infer_schema(self, store: FileStore, path: str) -> pa.Schema:
        """Types guessed from the start of ``path``; all-NULL columns become strings."""
        with store.open(path) as handle, store.errors(path):
            if handle.read(4) == PARQUET_MAGIC:
                raise DataError(
                    f"{store.url(path)} is a Parquet file, not CSV: pass {FORMAT_FLAG} parquet"
                )
        with self._stream(store, path) as stream, self._errors(store, path, None):
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=self.infer_bytes),
                parse_options=self._parse_options(),
                convert_options=self._convert_options(None),
            )
            schema = reader.schema
        fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema]
        return pa.schema(fields)

    def read(self, store, path, schema, columns, row_groups=None):
        with self._stream(store, path) as stream, self._errors(store, path, schema):
            table = pacsv.read_csv(
                stream,
                parse_options=self._parse_options(),
                convert_options=self._convert_options(schema, columns),
            )
        return conform(table, schema, columns, store.url(path))

    def iter_batches(self, store, path, schema, columns, batch_rows, row_groups=None):
        where = store.url(path)
        with self._stream(store, path) as stream, self._errors(store, path, schema):
            reader = pacsv.open_csv(
                stream,
                parse_options=self._parse_options(),
                convert_options=self._convert_options(schema, columns),
            )
            for batch in rebatch(reader, batch_rows):
                yield from conform(
                    pa.Table.from_batches([batch]), schema, columns, where
                ).to_batches()

    def parse(self, data: bytes, schema: pa.Schema) -> pa.Table:
        """Parse CSV bytes (as :meth:`serialize` writes them) in ``schema``."""
        if self.compression == "gzip":
            data = gzip.decompress(data)
        return pacsv.read_csv(
            io.BytesIO(data),
            parse_options=self._parse_options(),
            convert_options=self._convert_options(schema),
        )

    def count_rows(self, store, path, schema):
        first = [schema.names[0]] if len(schema) else None
        strings = pa.schema([pa.field(n, pa.string()) for n in (first or [])])
        with self._stream(store, path) as stream, self._errors(store, path, None):
            reader = pacsv.open_csv(
                stream,
                parse_options=self._parse_options(),
                convert_options=self._convert_options(strings, first),
            )
            return sum(batch.num_rows for batch in reader)

    def sample_density(self, store: FileStore, path: str, size: int) -> tuple[float, float]:
        """(rows per uncompressed byte, uncompressed/compressed size ratio) of ``path``, from its
        first MiB and, when gzipped, the size the gzip trailer records."""
        with self._stream(store, path) as stream, self._errors(store, path, None):
            sample = stream.read(1 << 20)
        lines = max(sample.count(b"\n") - 1, 1)
        density = lines / max(len(sample), 1)
        ratio = 1.0
        if self._gzipped(path) and size >= 18:
            # ISIZE: the uncompressed size modulo 2**32 in the last four bytes.
            isize = int.from_bytes(store.tail(path, 4), "little")
            ratio = isize / size if isize >= size else 4.0
        return density, ratio

    @contextlib.contextmanager
    def _errors(self, store: FileStore, path: str, schema: pa.Schema | None):
        where = store.url(path)
        with store.errors(path):
            try:
                yield
            except pa.ArrowKeyError as exc:
                raise DataError(
                    f"{where} does not have the columns of this source ({exc}); all CSV files "
                    "of one source need the same header"
                ) from None
            except pa.ArrowInvalid as exc:
                raise DataError(
                    f"malformed CSV in {where}: {printable(self._locate(store, path, exc))}"
                ) from None
            except OSError as exc:
                if isinstance(exc, FileNotFoundError | PermissionError):
                    raise
                # e.g. a truncated .csv.gz: "Truncated compressed stream"
                raise DataError(f"{where} cannot be read: {printable(str(exc))}") from None

    def _locate(self, store: FileStore, path: str, exc: BaseException) -> str:
        """pyarrow's message, with the row number added where pyarrow left it out."""
        message = str(exc)
        match = _CONVERSION.search(message)
        try:
            if message.startswith("CSV parse error") and "Row #" not in message:
                # The threaded parser does not know row numbers; a serial re-parse does.
                with self._stream(store, path) as stream:
                    pacsv.read_csv(
                        stream,
                        read_options=pacsv.ReadOptions(use_threads=False),
                        parse_options=self._parse_options(),
                        convert_options=pacsv.ConvertOptions(column_types={}),
                    )
            elif match:
                index, target, value = int(match[1]), match[2], match[3]
                row, name = self._find_value(store, path, index, value)
                if row is not None:
                    return (
                        f"row {row}: column {name!r} cannot be read as {target}: invalid value "
                        f"{value!r}"
                    )
        except pa.ArrowInvalid as again:
            return str(again)
        return message

    def _find_value(self, store: FileStore, path: str, index: int, value: str):
        with self._stream(store, path) as stream:
            header = pacsv.open_csv(stream, parse_options=self._parse_options()).schema.names
        name = header[index]
        strings = pa.schema([pa.field(name, pa.string())])
        seen = 0
        with self._stream(store, path) as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(use_threads=False),
                parse_options=self._parse_options(),
                convert_options=pacsv.ConvertOptions(
                    column_types=strings, include_columns=[name], strings_can_be_null=False
                ),
            )
            for batch in reader:
                position = batch.column(0).index(value).as_py()
                if position >= 0:
                    # Row 1 is the header, as in pyarrow's own "Row #" numbers.
                    return seen + position + 2, name
                seen += batch.num_rows
        return None, name

    # -- writing --------------------------------------------------------------------------------
    def serialize(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(
            table,
            sink,
            write_options=pacsv.WriteOptions(delimiter=self.delimiter, quoting_style="needed"),
        )
        data = sink.getvalue().to_pybytes()
        return gzip.compress(data, compresslevel=6) if self.compression == "gzip" else data

    def check_writable(self, schema: pa.Schema) -> None:
        for field in schema:
            probe = pa.table({field.name: pa.nulls(1, field.type)})
            try:
                pacsv.write_csv(probe, io.BytesIO())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(
                    f"CSV cannot hold column {field.name!r} of type {field.type}; write Parquet "
                    f"instead ({FORMAT_FLAG} parquet)"
                ) from None
