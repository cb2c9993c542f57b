"""Write a table as a directory of part files, locally or on S3, each partition exactly once.

The target URL is a directory (an S3 prefix): ``out/scores/``, ``s3://bucket/scores/``, or any
name without a data suffix (``out/scores``). A URL naming one file (``scores.csv``,
``scores.parquet``, no trailing ``/``) gets one file instead: see
:mod:`~skfleet.data.files.single`. Its format
is the ``format=`` option (the CLI's ``--format``), else the directory name's suffix
(``scores.parquet/``, ``scores.csv/``, ``scores.csv.gz/``), else the format already there, else
Parquet (zstd). A target that is an existing *file* is refused: the sink always writes a directory.

Layout::

    out/scores/
      _manifest.json               written last, at commit: parts, rows, schema, run id
      part-<partition>.parquet     one object per partition
      _staging-<run>/              a run until it commits (see :mod:`~skfleet.data.files.ledger`)

Every run writes its parts into its staging folder (hidden from readers), each partition
exactly once (:mod:`~skfleet.data.files.ledger`), and :meth:`FileSink.commit` moves them in and
writes the manifest. Until then the target reads as it did before the run; a run killed before
its commit leaves only its staging folder, which ``--resume`` (``open`` with the same ``run_id``)
picks up and nothing else reads.

``if_exists``:

* any mode on an empty target (no manifest, no visible file): the commit publishes the parts;
  with ``fail``, a table another run committed meanwhile makes the commit fail, publishing nothing;
* ``fail``: TargetExistsError if the target holds a manifest or any file; nothing is touched;
* ``replace``: only a previous skfleet output is replaced: the target must hold nothing but what
  its manifest lists (a folder of anything else is refused, untouched). The commit moves the new
  parts in under names the old content does not use, writes the manifest, then deletes the old
  parts: a reader following the manifest sees the old table or the new one, never a mix;
* ``append``: parts join the old ones as ``part-<partition>-<run>.<ext>`` and the manifest gains
  them at commit (a directory without manifest gets one listing its files). The schema must match.

One committing run per target at a time: two runs committing into one directory concurrently may
lose one's manifest update.

>>> import tempfile, pyarrow as pa
>>> from skfleet.data.files.source import FileSource
>>> target = tempfile.mkdtemp() + "/scores.csv/"
>>> sink = FileSink(target)
>>> sink.open(pa.schema([("id", pa.int64())]), run_id="r1")
>>> sink.write("p0", pa.table({"id": [1, 2]})), sink.write("p0", pa.table({"id": [1, 2]}))
(2, 0)
>>> sink.commit()
>>> FileSource(target).read_all()["id"].to_pylist()
[1, 2]
"""

from __future__ import annotations

import functools
from typing import Any

import pyarrow as pa

from skfleet.data.base import (
    DuplicateKeys,
    IfExists,
    RunTasks,
    Sink,
    check_if_exists,
    check_partition_id,
    check_unique_columns,
    check_watermark_unmoved,
    checked_run_id,
)
from skfleet.data.files import keyruns
from skfleet.data.files.formats import (
    FORMAT_FLAG,
    FileFormat,
    format_for,
    format_of_name,
)
from skfleet.data.files.ledger import RunLedger
from skfleet.data.files.manifest import MANIFEST_NAME, Manifest, Part, read_manifest, write_manifest
from skfleet.data.files.parquet_format import ParquetFormat
from skfleet.data.files.store import FileStore, is_glob
from skfleet.data.files.target import check_appendable, check_replaceable
from skfleet.errors import DataError, MissingColumnError, TargetExistsError, UsageError

# How a run places its parts (decided in open(), carried to workers by pickling the sink).
STAGED = "staged"  # empty target or replace: the run's parts are the whole new table
STAGED_APPEND = "staged-append"  # append: the parts join what the target holds
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
        self._if_exists: str | None = None
        self._created = False  # open() made the target directory (abort removes it again)
        self._keys: tuple[str, ...] | None = None  # track_keys(): write() writes key runs
        self._watermark: tuple[str, dict] | None = None  # (stream, state) the commit stores

    # -- paths ----------------------------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        return self._run_id

    @property
    def _ledger(self) -> RunLedger:
        return RunLedger(self._store, self._dir, self._run_id)

    def _part_name(self, partition_id: str) -> str:
        return f"part-{partition_id}{self._format.extension}"

    def _final_name(self, partition_id: str) -> str:
        """The name a part takes in the target: run-qualified when appending, so that it never
        meets a part of another run."""
        if self._mode == STAGED_APPEND:
            return f"part-{partition_id}-{self._run_id}{self._format.extension}"
        return self._part_name(partition_id)

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
        run_id = checked_run_id(run_id, new_length=12)
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
        check_unique_columns(schema.names, f"the table written to {self.display_name}")
        fmt = self._resolve_format(manifest)
        fmt.check_writable(schema)
        self._format, self._schema, self._run_id = fmt, schema, run_id
        self._if_exists, self._created = if_exists, kind is None

        if manifest is not None and run_id in {
            manifest.run_id,
            *(p.run_id for p in manifest.parts),
        }:
            self._mode = DONE
            return
        info = self._ledger.info() if kind == "directory" else None
        if info is not None:
            # Resuming: the run continues as it was opened (its checks passed then, and a
            # commit cut short may already have moved some of its parts in).
            self._resume(info, fmt, if_exists)
            return
        files = store.list_files(target) if kind == "directory" else []
        files = [p for p, _ in files if not p.endswith("/" + MANIFEST_NAME)]
        exists = manifest is not None or bool(files)
        if exists:
            if if_exists == "fail":
                raise TargetExistsError(
                    f"{self.display_name} already exists; pass --if-exists replace or append"
                )
            if if_exists == "append":
                check_appendable(self, manifest, fmt, schema)
            else:
                check_replaceable(self, manifest, files)
        self._mode = STAGED_APPEND if if_exists == "append" and exists else STAGED
        self._ledger.start(
            {
                "format": _format_key(fmt),
                "if_exists": if_exists,
                "mode": self._mode,
                "created": self._created,
            }
        )

    def _resume(self, info: dict[str, Any], fmt: FileFormat, if_exists: str) -> None:
        """Continue the run whose staging recorded ``info``, opened the same way."""
        run_id = self._run_id
        if info.get("format") != _format_key(fmt):
            raise UsageError(
                f"run {run_id} writes {info.get('format')} into {self.display_name}; resume "
                f"it with the same {FORMAT_FLAG}"
            )
        if info.get("if_exists") != if_exists:
            raise UsageError(
                f"run {run_id} of {self.display_name} was opened with --if-exists "
                f"{info.get('if_exists')}; resume it with the same, not {if_exists}"
            )
        self._mode, self._created = info["mode"], bool(info.get("created"))

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
            if partition_id in self.committed():
                return 0
            raise UsageError(
                f"run {self._run_id!r} of {self.display_name} is already committed; "
                f"partition {partition_id!r} was not part of it"
            )
        store, ledger = self._store, self._ledger
        final = FileStore.join(ledger.folder, self._part_name(partition_id))
        count = lambda: self._format.count_rows(store, final, self._schema)  # noqa: E731
        if store.exists(final):  # a retry: spare it the serialising
            ledger.ensure_receipt(partition_id, count)
            return 0
        table = self._conform(partition_id, table)
        store.makedirs(ledger.folder)
        if self._keys:
            # Before the part, which is the record that the partition is done: a part never
            # lacks its key run (a retry rewrites the same run from the same rows).
            keyruns.write_run(store, ledger.folder, partition_id, table, self._keys)
        # Encoded straight into the temporary file (on S3, the upload): no bytes object of it.
        if not store.put_new(final, functools.partial(self._format.write_to, table)):
            ledger.ensure_receipt(partition_id, count)
            return 0
        ledger.put_receipt(partition_id, table.num_rows)
        return table.num_rows

    def _conform(self, partition_id: str, table: pa.Table) -> pa.Table:
        schema = self._schema
        present = set(table.column_names)  # once: a list per lookup is quadratic in the columns
        for name in schema.names:
            if name not in present:
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

    # -- bookkeeping ----------------------------------------------------------------------------
    def committed(self) -> dict[str, int]:
        self._require_open()
        if self._mode == DONE:
            manifest = read_manifest(self._store, self._dir)
            parts = manifest.parts if manifest is not None else []
            return {p.partition: p.rows for p in parts if p.run_id == self._run_id}
        return self._ledger.receipts()

    def commit(self) -> None:
        self._require_open()
        if self._mode == DONE:
            return
        store, target, run, ledger = self._store, self._dir, self._run_id, self._ledger
        receipts = self._ledger.receipts()
        staged = set(store.names(ledger.folder))
        current = read_manifest(store, target)
        if current is not None and self._if_exists == "fail":
            raise TargetExistsError(
                f"{self.display_name} was written by another run while this one was; nothing "
                f"was published (run {run} can be aborted)"
            )
        if self._watermark is not None:  # before anything moves: a refused commit moves nothing
            stream, state = self._watermark
            kept = None if current is None else current.watermarks.get(stream)
            check_watermark_unmoved(kept, state, stream, self.display_name)
        old = self._old_content(current)
        taken = set(store.names(target))
        moves, new_parts = [], []
        for partition_id, rows in receipts.items():
            name, plain = self._part_name(partition_id), self._final_name(partition_id)
            qualified = f"part-{partition_id}-{run}{self._format.extension}"
            if name in staged:
                # Never reuse a name the old content uses: a reader holding the old manifest
                # must not find new rows under it.
                final = qualified if plain in taken else plain
                moves.append((FileStore.join(ledger.folder, name), FileStore.join(target, final)))
            elif qualified in taken or plain in taken:
                # A commit cut short already moved this part in (qualified first: a plain name
                # that is taken may be the old content's).
                final = qualified if qualified in taken else plain
            else:
                raise DataError(
                    f"part {name} of run {run} is missing from {store.url(ledger.folder)}"
                )
            new_parts.append(Part(final, partition_id, rows, run))
        store.move(moves)
        if self._mode == STAGED:
            parts = new_parts
        elif current is not None:
            parts = list(current.parts) + new_parts
        else:
            parts = [Part(p, None, None, None) for p in old] + new_parts
        # A replaced table forgets the watermarks into it (its rows are gone); an append keeps
        # them, and this run's moves in the same manifest that lists its parts.
        marks = dict(current.watermarks) if current is not None and self._mode != STAGED else {}
        if self._watermark is not None:
            marks[self._watermark[0]] = self._watermark[1]
        manifest = Manifest(
            self._format.name,
            self._schema,
            self._format.compression,
            parts,
            run_id=run,
            watermarks=marks,
        )
        write_manifest(store, target, manifest)
        if self._mode == STAGED:
            keep = {p.path for p in parts}
            store.remove([FileStore.join(target, p) for p in old if p not in keep])
        ledger.drop()
        self._mode = DONE

    def _old_content(self, current: Manifest | None) -> list[str]:
        """Relative paths of the files that make up the target's table now."""
        if current is not None:
            return [p.path for p in current.parts]
        if self._mode != STAGED_APPEND:
            return []  # an empty target: open() refuses to replace anything else
        from skfleet.data.files.source import FileSource

        # Exactly the files a reader of the directory reads today.
        files = FileSource(self.url, storage_options=self._store.storage_options).files
        prefix = self._store.url(self._dir.rstrip("/"))
        return [f[len(prefix) :].lstrip("/") for f in files]

    # -- watermarks of incremental runs: in the manifest --------------------------------------
    def watermark(self, stream: str) -> dict | None:
        manifest = read_manifest(self._store, self._dir)
        return None if manifest is None else manifest.watermarks.get(stream)

    def set_watermark(self, stream: str, state: dict) -> None:
        self._watermark = (stream, state)  # every run stages: the manifest publishes both

    # -- the duplicate-key check (see :mod:`~skfleet.data.files.keyruns`) ----------------------
    def track_keys(self, keys) -> None:
        self._require_open()
        self._keys = tuple(keys)

    @property
    def store(self) -> FileStore:
        return self._store

    @property
    def staging_folder(self) -> str:
        return self._ledger.folder

    def staged_key(self, partition_id: str, keys, value: int) -> str | None:
        """The key whose hash is ``value`` in the staged part of ``partition_id`` (None if that
        part was already moved in by a commit cut short)."""
        from skfleet.data.keyhash import key_with_hash

        path = FileStore.join(self.staging_folder, self._part_name(partition_id))
        if not self._store.exists(path):
            return None
        table = self._format.read(self._store, path, self._schema, list(keys))
        return key_with_hash(table, keys, value)

    def duplicate_keys(self, keys, run_tasks: RunTasks) -> DuplicateKeys:
        """Repeated keys among this run's parts, counted by merge tasks over the key runs the
        workers wrote (the client lists the runs and adds up a few counters)."""
        self._require_open()
        if self._mode == DONE:
            return DuplicateKeys(0)  # checked before that commit
        receipts = self._ledger.receipts()
        have = set(self._store.names(FileStore.join(self.staging_folder, keyruns.KEYS_DIR)))
        missing = [p for p in receipts if f"{p}.keys" not in have]
        if missing:
            raise DataError(
                f"partition {missing[0]} of run {self._run_id} in {self.display_name} has no key "
                f"run ({len(missing)} missing): it was written without the duplicate-key check; "
                "start a new run"
            )
        return keyruns.check_keys(self, keys, receipts, run_tasks)

    def abort(self) -> None:
        if self._mode in (None, DONE):
            return
        self._ledger.drop()
        if self._created:
            self._store.remove_empty_dir(self._dir)
        self._mode = None


def _format_key(fmt: FileFormat) -> str:
    """How a run's staging records its format: ``parquet``, ``csv`` or ``csv.gz``."""
    return fmt.name + (".gz" if fmt.compression == "gzip" else "")
