"""Read CSV and Parquet files, one file, a directory, a glob, locally or on S3, in partitions.

What a URL reads:

* a file (``flights.parquet``, ``s3://b/x.csv.gz``): that file;
* a glob (``data/*.csv``, ``s3://b/2013/*/part-*.parquet``): the files it matches;
* a directory or prefix written by skfleet (it holds ``_manifest.json``): the parts the manifest
  lists, in the exact schema it records; any other directory: every file of the format below it,
  skipping names that start with ``_`` or ``.`` (staging folders, ``_SUCCESS``, temp files).

The format comes from ``format=`` (the CLI's ``--format``) or the file extensions. A Parquet source
has the union of its files' schemas; a CSV source infers its schema once, from the first file, and
reads every file in that schema, so all partitions agree.

Partitions are one per file, or for a Parquet file larger than ``target_rows`` one per group of
row groups; their ids come from the file names, so the same files always plan the same ids.

An incremental read (:meth:`FileSource.restrict`, Parquet only) plans only the files and row
groups whose column statistics may hold rows of its range, and filters rows inside them.

>>> import os, tempfile, pyarrow as pa, pyarrow.csv as pacsv
>>> folder = tempfile.mkdtemp()
>>> for i in range(3):
...     pacsv.write_csv(pa.table({"id": [2 * i, 2 * i + 1]}), os.path.join(folder, f"day{i}.csv"))
>>> source = FileSource(os.path.join(folder, "day*.csv"))
>>> [p.id for p in source.partitions(target_rows=1_000)]
['day0', 'day1', 'day2']
>>> source.read_all()["id"].to_pylist()
[0, 1, 2, 3, 4, 5]
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import pyarrow as pa

from skfleet.data.base import (
    Partition,
    Source,
    check_unique_columns,
    selected_columns,
)
from skfleet.data.files.csv_format import CsvFormat
from skfleet.data.files.formats import (
    FORMAT_FLAG,
    FileFormat,
    format_for,
    format_of_name,
    strip_data_suffix,
)
from skfleet.data.files.incremental import IncrementalReads, group_row_groups
from skfleet.data.files.ledger import RunLedger
from skfleet.data.files.manifest import read_manifest
from skfleet.data.files.parquet_format import ParquetFormat, ParquetInfo
from skfleet.data.files.ranges import GroupRange
from skfleet.data.files.store import FileStore, glob_base, is_glob
from skfleet.errors import DataError, SourceNotFoundError, UsageError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]")


class FileEntry(NamedTuple):
    """One file of a source: fsspec path, size in bytes and row count when known, partition id."""

    path: str
    size: int | None
    rows: int | None
    id: str


def partition_ids(relatives: Sequence[str]) -> list[str]:
    """Stable, filename-safe ids for files named by paths relative to the source's root.

    The id is the path without its extension (``/`` becoming ``__``); a short hash of the path is
    appended when the name had to be altered or would collide with another file's.

    >>> partition_ids(["a.csv", "year=2013/b.csv", "a.csv.gz", "c d.csv"])
    ['a-8445be2a', 'year=2013__b', 'a-87ecb641', 'c_d-5f9a5508']
    """
    plain = [strip_data_suffix(r).replace("/", "__") for r in relatives]
    safe = [_UNSAFE.sub("_", p)[:150] or "file" for p in plain]
    counts = Counter(safe)
    ids = []
    for relative, original, stem in zip(relatives, plain, safe, strict=True):
        if stem != original or counts[stem] > 1:
            stem = f"{stem}-{hashlib.sha1(relative.encode()).hexdigest()[:8]}"
        ids.append(stem)
    return ids


class FileSource(IncrementalReads, Source):
    """CSV or Parquet files at a path, directory, glob or ``s3://`` URL (see the module docs).

    Options: ``format`` (``parquet``, ``csv``, ``csv.gz``), ``delimiter`` for CSV, and
    ``storage_options`` passed to s3fs (credentials otherwise come from the standard AWS chain;
    ``AWS_ENDPOINT_URL`` selects an S3-compatible store).
    """

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        delimiter: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ):
        super().__init__(url)
        self._store, self._root = FileStore.from_url(url, storage_options)
        self._schema: pa.Schema | None = None
        self._infos: dict[str, ParquetInfo] = {}
        self._density: tuple[float, float] | None = None
        self._format_option = format
        self._ranges: dict[tuple[str, str], list[GroupRange]] = {}  # planning-time statistics
        self._range: tuple[str, Any, Any] | None = None  # restrict(): (column, lower, upper)
        self._format, self._entry_list = self._discover(format)
        if delimiter is not None and isinstance(self._format, CsvFormat):
            self._format.delimiter = delimiter

    # -- discovery ------------------------------------------------------------------------------
    def _discover(self, option: str | None) -> tuple[FileFormat, list[FileEntry]]:
        store, root = self._store, self._root
        if is_glob(root):
            files = store.glob(root)
            if not files:
                raise SourceNotFoundError(f"no file matches {self.display_name}")
            fmt = self._format_from_names(option, root, [p for p, _ in files])
            return fmt, self._entries_of(files, glob_base(root))
        kind = store.kind(root)
        if kind is None:
            raise SourceNotFoundError(f"{self.display_name} does not exist")
        if kind == "file":
            fmt = format_for(option, default_name=root, what=self.display_name)
            return fmt, self._entries_of([(root, store.size(root))], posixpath.dirname(root))
        manifest = read_manifest(store, root)
        if manifest is not None:
            fmt = format_for(manifest.format + (".gz" if manifest.compression == "gzip" else ""))
            if option is not None and format_for(option).name != fmt.name:
                raise UsageError(
                    f"{FORMAT_FLAG} {option} does not match the {fmt.name} files that "
                    f"{self.display_name} holds"
                )
            self._schema = manifest.schema
            relatives = [p.path for p in manifest.parts]
            ids = partition_ids(relatives)
            entries = [
                FileEntry(FileStore.join(root, p.path), None, p.rows, pid)
                for p, pid in zip(manifest.parts, ids, strict=True)
            ]
            return fmt, entries
        files = store.list_files(root)
        if not files:
            unfinished = RunLedger.unfinished_runs(store, root)
            if unfinished:
                raise SourceNotFoundError(
                    f"{self.display_name} holds no committed table, only the staging of "
                    f"unfinished run {', '.join(unfinished)} (finish it with --resume)"
                )
        fmt = self._format_from_names(option, root, [p for p, _ in files])
        matching = [(p, s) for p, s in files if format_of_name(p) == fmt.name]
        if not matching and option is not None:
            # An explicit --format also reads files without a data extension (data.txt).
            matching = [(p, s) for p, s in files if format_of_name(p) is None]
        if not matching:
            raise SourceNotFoundError(f"no {fmt.name} files in {self.display_name}")
        return fmt, self._entries_of(matching, root)

    def _format_from_names(self, option: str | None, root: str, names: list[str]) -> FileFormat:
        if option is not None or format_of_name(root):
            return format_for(option, default_name=root)
        found = {format_of_name(n) for n in names} - {None}
        if len(found) > 1:
            raise UsageError(
                f"{self.display_name} holds both CSV and Parquet files: pass {FORMAT_FLAG}"
            )
        if not found:
            raise UsageError(
                f"cannot tell the file format of {self.display_name}: pass {FORMAT_FLAG} "
                "(parquet, csv or csv.gz)"
            )
        return format_for(found.pop())

    @staticmethod
    def _entries_of(files: list[tuple[str, int]], base: str) -> list[FileEntry]:
        base = base.rstrip("/")
        relatives = [p[len(base) :].lstrip("/") if base else p for p, _ in files]
        ids = partition_ids(relatives)
        return [
            FileEntry(path, size, None, pid) for (path, size), pid in zip(files, ids, strict=True)
        ]

    # -- metadata -------------------------------------------------------------------------------
    @property
    def _entries(self) -> list[FileEntry]:
        if self._entry_list is None:  # unpickled on a worker: listed again only if asked
            self._entry_list = self._discover(self._format_option)[1]
        return self._entry_list

    @property
    def format(self) -> FileFormat:
        return self._format

    @property
    def files(self) -> list[str]:
        """The URLs of the files this source reads."""
        return [self._store.url(e.path) for e in self._entries]

    def _parquet_infos(self, paths: Sequence[str]) -> list[ParquetInfo]:
        assert isinstance(self._format, ParquetFormat)
        missing = [p for p in dict.fromkeys(paths) if p not in self._infos]
        if missing:
            # Footers are small; on S3 the round trips dominate, so fetch several at once.
            workers = 1 if self._store.is_local or len(missing) == 1 else 8
            with ThreadPoolExecutor(workers) as pool:
                infos = pool.map(lambda p: self._format.info(self._store, p), missing)
                self._infos.update(zip(missing, infos, strict=True))
        return [self._infos[p] for p in paths]

    def schema(self) -> pa.Schema:
        if self._schema is None:
            if not self._entries:
                raise SourceNotFoundError(f"no files in {self.display_name}")
            if isinstance(self._format, ParquetFormat):
                self._schema = self._unify([e.path for e in self._entries])
            else:
                first = self._entries[0].path
                schema = self._format.infer_schema(self._store, first)
                check_unique_columns(schema.names, self._store.url(first))
                self._schema = schema
        return self._schema

    def _unify(self, paths: list[str]) -> pa.Schema:
        infos = self._parquet_infos(paths)
        for path, info in zip(paths, infos, strict=True):
            check_unique_columns(info.schema.names, self._store.url(path))
        try:
            return pa.unify_schemas([i.schema for i in infos], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
        seen: dict[str, tuple[pa.DataType, str]] = {}
        for path, info in zip(paths, infos, strict=True):
            for field in info.schema:
                first = seen.setdefault(field.name, (field.type, path))
                if first[0] != field.type:
                    raise DataError(
                        f"column {field.name!r} is {first[0]} in {self._store.url(first[1])} but "
                        f"{field.type} in {self._store.url(path)}"
                    ) from None
        raise DataError(f"the Parquet files of {self.display_name} have incompatible schemas")

    def count_estimate(self) -> int:
        if isinstance(self._format, ParquetFormat):
            unknown = [e.path for e in self._entries if e.rows is None]
            known = {p: i.rows for p, i in zip(unknown, self._parquet_infos(unknown), strict=True)}
            return sum(e.rows if e.rows is not None else known[e.path] for e in self._entries)
        return sum(self._csv_rows(e) for e in self._entries)

    def _csv_rows(self, entry: FileEntry) -> int:
        """Known rows, else an estimate from the file size and the first file's density."""
        if entry.rows is not None:
            return entry.rows
        assert isinstance(self._format, CsvFormat)
        size = entry.size if entry.size is not None else self._store.size(entry.path)
        if self._density is None:
            first = self._entries[0]
            first_size = first.size if first.size is not None else self._store.size(first.path)
            self._density = self._format.sample_density(self._store, first.path, first_size)
        density, ratio = self._density
        gzipped = self._format._gzipped(entry.path)
        return max(int(size * (ratio if gzipped else 1.0) * density), 0)

    # -- partitions -----------------------------------------------------------------------------
    def partitions(self, target_rows: int) -> list[Partition]:
        if target_rows < 1:
            raise UsageError(f"target_rows must be at least 1, not {target_rows}")
        self.schema()  # fixed now, so that it travels with the pickled source to every worker
        if self._range is not None:
            return self._range_partitions(target_rows)
        if isinstance(self._format, CsvFormat):
            return [Partition(e.id, self._csv_rows(e), {"path": e.path}) for e in self._entries]
        # Only files that may need splitting have their footer read.
        big = [e.path for e in self._entries if e.rows is None or e.rows > target_rows]
        infos = dict(zip(big, self._parquet_infos(big), strict=True))
        parts = []
        for entry in self._entries:
            info = infos.get(entry.path)
            rows = entry.rows if info is None else info.rows
            if info is None or rows <= target_rows or len(info.row_group_rows) < 2:
                parts.append(Partition(entry.id, rows, {"path": entry.path, "row_groups": None}))
                continue
            for group in group_row_groups(info.row_group_rows, target_rows):
                parts.append(
                    Partition(
                        f"{entry.id}.rg{group[0]}-{group[-1]}",
                        sum(info.row_group_rows[i] for i in group),
                        {"path": entry.path, "row_groups": tuple(group)},
                    )
                )
        return parts

    # -- reading --------------------------------------------------------------------------------
    def _columns(self, columns: Sequence[str] | None) -> list[str]:
        return selected_columns(self.schema(), columns, self.display_name)

    def _read_columns(self, names: list[str]) -> list[str]:
        """What to read for ``names``: also the restricted column, which the filter needs."""
        if self._range is None or self._range[0] in names:
            return names
        return [*names, self._range[0]]

    def read(self, partition: Partition, columns: Sequence[str] | None = None) -> pa.Table:
        names = self._columns(columns)
        spec = partition.spec
        table = self._format.read(
            self._store,
            spec["path"],
            self.schema(),
            self._read_columns(names),
            spec.get("row_groups"),
        )
        return table if self._range is None else self._in_range(table, names)

    def _batches(self, partition: Partition, columns: Sequence[str] | None, batch_rows: int):
        names = self._columns(columns)
        spec = partition.spec
        batches = self._format.iter_batches(
            self._store,
            spec["path"],
            self.schema(),
            self._read_columns(names),
            batch_rows,
            spec.get("row_groups"),
        )
        if self._range is None:
            yield from batches
            return
        for batch in batches:
            yield from self._in_range(pa.Table.from_batches([batch]), names).to_batches()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_infos"] = {}  # planning-time footers: workers do not need them
        state["_ranges"] = {}
        if self._schema is not None:
            # Nor the file list once the schema is known: read() needs only the partition's
            # path, and every task carries the source, so a list of P files would travel (and
            # sit in the scheduler) P times over.
            state["_entry_list"] = None
        return state
