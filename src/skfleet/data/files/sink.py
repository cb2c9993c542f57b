"""Write a table as a directory of part files, locally or on S3, each partition exactly once.

The target URL is a directory (an S3 prefix): ``out/scores/``, ``s3://bucket/scores/``. Its format
is the ``format=`` option (the CLI's ``--format``), else the directory name's suffix
(``scores.parquet/``, ``scores.csv/``, ``scores.csv.gz/``), else the format already there, else
Parquet (zstd). A target that is an existing *file* is refused: the sink always writes a directory.

Layout::

    out/scores/
      _manifest.json               written last, at commit: parts, rows, schema, run id
      part-<partition>.parquet     one object per partition, appearing whole under its final name
      _staging-<run>/              this run's bookkeeping; its staged parts for replace
        _rows/<rows>-<partition>   receipts: which partitions are done, with their row counts

A part is written under a temporary name and renamed (locally) or PUT in one request (S3), and a
partition whose part already exists is not written again: the part *is* the record that the
partition is done, so retries and ``--resume`` (``open`` with the same ``run_id``) never duplicate
rows. A receipt follows each part so that :meth:`FileSink.committed` is one listing, and a missing
receipt is rebuilt from the part.

``if_exists``:

* any mode on an empty target: parts go straight to their final names; a manifest with no parts
  (``pending_run``) is written at :meth:`~FileSink.open` so readers see an empty table until commit;
* ``fail``: TargetExistsError if the target holds a manifest or any data file; nothing is touched;
* ``replace``: parts are staged in ``_staging-<run>/``; commit moves them in (under names the old
  content does not use), writes the manifest, then deletes the old parts — a reader following the
  manifest sees the old table or the new one, never a mix;
* ``append``: parts land next to the old ones as ``part-<partition>-<run>.<ext>`` and the manifest
  gains them at commit. The schema must match the existing one.

One committing run per target at a time: two runs committing into one directory concurrently may
lose one's manifest update.

>>> import tempfile, pyarrow as pa
>>> from skfleet.data.files.source import FileSource
>>> target = tempfile.mkdtemp() + "/scores.csv"
>>> sink = FileSink(target)
>>> sink.open(pa.schema([("id", pa.int64())]), run_id="r1")
>>> sink.write("p0", pa.table({"id": [1, 2]})), sink.write("p0", pa.table({"id": [1, 2]}))
(2, 0)
>>> sink.commit()
>>> FileSource(target).read_all()["id"].to_pylist()
[1, 2]
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pyarrow as pa

from skfleet.data.base import IfExists, Sink, check_if_exists, check_partition_id
from skfleet.data.files.formats import (
    FORMAT_FLAG,
    FileFormat,
    ParquetFormat,
    format_for,
    format_of_name,
)
from skfleet.data.files.manifest import (
    MANIFEST_NAME,
    Manifest,
    Part,
    manifest_path,
    read_manifest,
    write_manifest,
)
from skfleet.data.files.store import FileStore, is_glob
from skfleet.errors import DataError, MissingColumnError, TargetExistsError, UsageError

_RECEIPT = re.compile(r"^(\d+)-(.+)$")

# How a run places its parts (decided in open(), carried to workers by pickling the sink).
FRESH = "fresh"  # empty target: final names, pending manifest hides them
APPEND = "append"  # managed target: run-qualified final names, manifest hides them
STAGED = "staged"  # replace: parts in _staging-<run>/, moved in at commit
STAGED_APPEND = "staged-append"  # append to a directory without manifest
DONE = "done"  # the run already committed


class FileSink(Sink):
    """A directory of CSV or Parquet parts plus ``_manifest.json`` (see the module docs)."""

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        delimiter: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ):
        super().__init__(url)
        self._store, self._dir = FileStore.from_url(url, storage_options)
        if is_glob(self._dir):
            raise UsageError(
                f"cannot write to the glob pattern {self.display_name}; name a directory"
            )
        self._format_option = format
        self._delimiter = delimiter
        self._format: FileFormat | None = None
        self._schema: pa.Schema | None = None
        self._run_id: str | None = None
        self._mode: str | None = None

    # -- paths ----------------------------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        return self._run_id

    @property
    def _run_dir(self) -> str:
        return FileStore.join(self._dir, f"_staging-{self._run_id}")

    @property
    def _receipts_dir(self) -> str:
        return FileStore.join(self._run_dir, "_rows")

    @property
    def _location(self) -> str:
        return self._run_dir if self._mode in (STAGED, STAGED_APPEND) else self._dir

    def _part_name(self, partition_id: str) -> str:
        qualifier = f"-{self._run_id}" if self._mode == APPEND else ""
        return f"part-{partition_id}{qualifier}{self._format.extension}"

    # -- open -----------------------------------------------------------------------------------
    def _resolve_format(self, existing: Manifest | None) -> FileFormat:
        if self._format_option is not None or format_of_name(self._dir):
            fmt = format_for(self._format_option, default_name=self._dir)
        elif existing is not None:
            suffix = ".gz" if existing.compression == "gzip" else ""
            fmt = format_for(existing.format + suffix)
        else:
            fmt = ParquetFormat()
        if self._delimiter is not None and hasattr(fmt, "delimiter"):
            fmt.delimiter = self._delimiter
        return fmt

    def open(
        self, schema: pa.Schema, if_exists: IfExists = "fail", run_id: str | None = None
    ) -> None:
        check_if_exists(if_exists)
        self._mode = None  # until this open() succeeds, the sink refuses writes
        run_id = run_id or uuid.uuid4().hex[:12]
        try:
            check_partition_id(run_id)
        except ValueError:
            raise UsageError(f"run id {run_id!r} may only hold letters, digits and _.=-") from None
        store, target = self._store, self._dir
        kind = store.kind(target)
        if kind == "file":
            if if_exists == "fail":
                raise TargetExistsError(f"{self.display_name} already exists (as a file)")
            raise UsageError(
                f"{self.display_name} is a file; skfleet writes a directory of parts there, "
                "so name a directory instead"
            )
        manifest = read_manifest(store, target) if kind == "directory" else None
        fmt = self._resolve_format(manifest)
        fmt.check_writable(schema)
        self._format, self._schema, self._run_id = fmt, schema, run_id

        if manifest is not None and manifest.run_id == run_id:
            self._mode = DONE
            return
        if manifest is not None and manifest.pending_run == run_id:
            if manifest.format != fmt.name:
                raise UsageError(
                    f"run {run_id} writes {manifest.format} into {self.display_name}; resume it "
                    f"with the same {FORMAT_FLAG}"
                )
            self._mode = FRESH
            return
        data_files = store.list_files(target) if kind == "directory" else []
        data_files = [(p, s) for p, s in data_files if not p.endswith(MANIFEST_NAME)]
        if manifest is None and not data_files:
            self._mode = FRESH
            store.makedirs(target)
            write_manifest(
                store, target, Manifest(fmt.name, schema, fmt.compression, pending_run=run_id)
            )
            return
        if if_exists == "fail":
            pending = manifest is not None and manifest.pending_run and not manifest.parts
            why = f" (run {manifest.pending_run} is writing it)" if pending else ""
            raise TargetExistsError(
                f"{self.display_name} already exists{why}; pass --if-exists replace or append"
            )
        if if_exists == "append":
            self._check_appendable(manifest, fmt, schema)
            self._mode = APPEND if manifest is not None else STAGED_APPEND
        else:
            self._mode = STAGED
        store.makedirs(self._location)

    def _check_appendable(self, manifest: Manifest | None, fmt: FileFormat, schema: pa.Schema):
        if manifest is not None:
            old_format, old_schema = manifest.format, manifest.schema
        else:
            from skfleet.data.files.source import FileSource

            existing = FileSource(self.url, storage_options=self._store.storage_options)
            old_format, old_schema = existing.format.name, existing.schema()
        if old_format != fmt.name:
            raise UsageError(
                f"{self.display_name} holds {old_format} files; cannot append {fmt.name} "
                f"(check {FORMAT_FLAG})"
            )
        if old_schema.names != schema.names:
            raise DataError(
                f"cannot append to {self.display_name}: its columns are "
                f"{old_schema.names}, the new rows have {schema.names}"
            )
        if manifest is not None:
            for old, new in zip(old_schema, schema, strict=True):
                if old.type != new.type:
                    raise DataError(
                        f"cannot append to {self.display_name}: column {new.name!r} is "
                        f"{old.type} there and {new.type} in the new rows"
                    )

    def _require_open(self) -> None:
        if self._mode is None:
            raise UsageError(f"{self!r} is not open: call open() first")

    # -- write ----------------------------------------------------------------------------------
    def write(self, partition_id: str, table: pa.Table) -> int:
        self._require_open()
        try:
            check_partition_id(partition_id)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if self._mode == DONE:
            return 0
        store = self._store
        final = FileStore.join(self._location, self._part_name(partition_id))
        if store.exists(final):
            self._ensure_receipt(partition_id, final)
            return 0
        table = self._conform(partition_id, table)
        store.makedirs(self._location)
        if not store.put_new(final, self._format.serialize(table)):
            self._ensure_receipt(partition_id, final)
            return 0
        self._put_receipt(partition_id, table.num_rows)
        return table.num_rows

    def _conform(self, partition_id: str, table: pa.Table) -> pa.Table:
        schema = self._schema
        for name in schema.names:
            if name not in table.column_names:
                raise MissingColumnError(
                    f"partition {partition_id} for {self.display_name} lacks column {name!r}"
                )
        table = table.select(schema.names)
        if not table.schema.equals(schema, check_metadata=False):
            for field in schema:
                column = table[field.name]
                if column.type != field.type:
                    try:
                        column.cast(field.type)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise DataError(
                            f"column {field.name!r} of partition {partition_id} is {column.type}, "
                            f"not {field.type} as {self.display_name} was opened with: {exc}"
                        ) from None
            table = table.cast(schema)
        return table.replace_schema_metadata(schema.metadata)

    def _put_receipt(self, partition_id: str, rows: int) -> None:
        self._store.makedirs(self._receipts_dir)
        self._store.put(FileStore.join(self._receipts_dir, f"{rows}-{partition_id}"), b"")

    def _ensure_receipt(self, partition_id: str, part_path: str) -> None:
        # A worker may have died between the part and its receipt: rebuild it from the part.
        if partition_id not in self._receipts():
            rows = self._format.count_rows(self._store, part_path, self._schema)
            self._put_receipt(partition_id, rows)

    def _receipts(self) -> dict[str, int]:
        out = {}
        for name in self._store.names(self._receipts_dir):
            match = _RECEIPT.match(name)
            if match:
                out[match[2]] = int(match[1])
        return out

    # -- bookkeeping ----------------------------------------------------------------------------
    def committed(self) -> dict[str, int]:
        self._require_open()
        if self._mode == DONE:
            manifest = read_manifest(self._store, self._dir)
            parts = manifest.parts if manifest is not None else []
            return {p.partition: p.rows for p in parts if p.run_id == self._run_id}
        return dict(sorted(self._receipts().items()))

    def commit(self) -> None:
        self._require_open()
        if self._mode == DONE:
            return
        store, target, run = self._store, self._dir, self._run_id
        receipts = sorted(self._receipts().items())
        present = set(store.names(self._location))
        for partition_id, _ in receipts:
            if self._part_name(partition_id) not in present:
                raise DataError(
                    f"part {self._part_name(partition_id)} of run {run} is missing from "
                    f"{store.url(self._location)}"
                )
        current = read_manifest(store, target)
        if self._mode in (STAGED, STAGED_APPEND):
            old = self._old_content(current)
            taken = set(store.names(target))
            moves, new_parts = [], []
            for partition_id, rows in receipts:
                staged = self._part_name(partition_id)
                final = staged
                if self._mode == STAGED_APPEND or final in taken:
                    # Never reuse a name the old content uses: a reader holding the old manifest
                    # must not find new rows under it.
                    final = f"part-{partition_id}-{run}{self._format.extension}"
                moves.append(
                    (FileStore.join(self._location, staged), FileStore.join(target, final))
                )
                new_parts.append(Part(final, partition_id, rows, run))
            store.move(moves)
            if self._mode == STAGED:
                parts = new_parts
            else:
                parts = [Part(p, None, None, None) for p in old] + new_parts
        else:
            new_parts = [Part(self._part_name(pid), pid, rows, run) for pid, rows in receipts]
            parts = (list(current.parts) if current is not None else []) + new_parts
        pending = current.pending_run if current is not None else None
        manifest = Manifest(
            self._format.name,
            self._schema,
            self._format.compression,
            parts,
            run_id=run,
            pending_run=None if pending == run or self._mode == STAGED else pending,
        )
        write_manifest(store, target, manifest)
        if self._mode == STAGED:
            keep = {p.path for p in parts}
            store.remove([FileStore.join(target, p) for p in old if p not in keep])
        store.remove_tree(self._run_dir)
        self._mode = DONE

    def _old_content(self, current: Manifest | None) -> list[str]:
        """Relative paths of the files that make up the target's table now."""
        if current is not None:
            return [p.path for p in current.parts]
        base = self._dir.rstrip("/")
        if self._mode == STAGED_APPEND:
            from skfleet.data.files.source import FileSource

            # Exactly the files a reader of the directory reads today.
            files = FileSource(self.url, storage_options=self._store.storage_options).files
            prefix = self._store.url(base)
            return [f[len(prefix) :].lstrip("/") for f in files]
        # Replace removes every data file, whatever its format.
        return [
            p[len(base) :].lstrip("/")
            for p, _ in self._store.list_files(self._dir)
            if format_of_name(p) is not None
        ]

    def abort(self) -> None:
        if self._mode in (None, DONE):
            return
        store, target = self._store, self._dir
        if self._mode == FRESH or self._mode == APPEND:
            current = read_manifest(store, target)
            listed = {p.path for p in current.parts} if current is not None else set()
            suffix = f"-{self._run_id}{self._format.extension}"
            mine = [
                n
                for n in store.names(target)
                if n.startswith("part-")
                and n not in listed
                and (n.endswith(suffix) if self._mode == APPEND else True)
            ]
            store.remove([FileStore.join(target, n) for n in mine])
            store.remove_tree(self._run_dir)
            if (
                self._mode == FRESH
                and current is not None
                and current.pending_run == self._run_id
                and not current.parts
            ):
                store.remove([manifest_path(target)])
                store.remove_empty_dir(target)
        else:
            store.remove_tree(self._run_dir)
        self._mode = None
