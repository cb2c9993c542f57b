"""CSV (optionally gzip-compressed): read in an explicit schema, errors located by file and row.

>>> import io, pyarrow as pa
>>> fmt = CsvFormat(compression="gzip")
>>> table, out = pa.table({"id": [1, 2], "label": ["a", None]}), io.BytesIO()
>>> fmt.write_parts_to(table.schema, [table.slice(0, 1), table.slice(1)], out)
>>> fmt.extension, fmt.parse(out.getvalue(), table.schema).equals(table)
('.csv.gz', True)
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re

import pyarrow as pa
import pyarrow.csv as pacsv

from skfleet.data.files.formats import FORMAT_FLAG, FileFormat, conform, rebatch
from skfleet.data.files.store import FileStore
from skfleet.errors import DataError

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

    @staticmethod
    def _read_options(schema: pa.Schema) -> pacsv.ReadOptions:
        """Blocks that grow with the width of a row.

        pyarrow parses a CSV in blocks of a fixed size (1 MiB) and makes one chunk per column per
        block: the wider the rows, the fewer fit in a block, so the chunks (and the time) grew with
        the square of the columns (10,000 columns x 1,000 rows: 70 blocks of 14 rows, 700,000
        chunks). About 4 KiB per column keeps some hundreds of rows in a block at any width.
        """
        return pacsv.ReadOptions(block_size=min(256 << 20, max(1 << 20, 4096 * len(schema))))

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

    def _options(self, schema, columns) -> dict:
        """What reading a file of ``schema`` takes, whole or in batches: only ``columns``, each
        parsed as its schema type."""
        return {
            "read_options": self._read_options(schema),
            "parse_options": self._parse_options(),
            "convert_options": self._convert_options(schema, columns),
        }

    def read(self, store, path, schema, columns, row_groups=None):
        with self._stream(store, path) as stream, self._errors(store, path, schema):
            table = pacsv.read_csv(stream, **self._options(schema, columns))
        return conform(table, schema, columns, store.url(path))

    def iter_batches(self, store, path, schema, columns, batch_rows, row_groups=None):
        where = store.url(path)
        with self._stream(store, path) as stream, self._errors(store, path, schema):
            reader = pacsv.open_csv(stream, **self._options(schema, columns))
            for batch in rebatch(reader, batch_rows):
                yield from conform(
                    pa.Table.from_batches([batch]), schema, columns, where
                ).to_batches()

    def parse(self, data: bytes, schema: pa.Schema) -> pa.Table:
        """Parse CSV bytes (as :meth:`write_to` writes them) in ``schema``."""
        if self.compression == "gzip":
            data = gzip.decompress(data)
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=self._read_options(schema),
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
    def write_to(self, table: pa.Table, handle) -> None:
        self.write_parts_to(table.schema, [table], handle)

    def write_parts_to(self, schema, tables, handle) -> None:
        with contextlib.ExitStack() as stack:
            if self.compression == "gzip":
                # No file name in the gzip header (it would be the temporary file's), one member.
                handle = stack.enter_context(
                    gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=handle)
                )
            options = pacsv.WriteOptions(delimiter=self.delimiter, quoting_style="needed")
            writer = stack.enter_context(pacsv.CSVWriter(handle, schema, write_options=options))
            for table in tables:  # the header once, then each table's rows
                writer.write_table(table)

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
