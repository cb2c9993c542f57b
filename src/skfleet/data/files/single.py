"""Write a table as one file (``scores.csv``, ``scores.parquet``), each partition exactly once.

``--out scores.csv`` means a file a user can open with ``pandas.read_csv``, not a folder of
parts. The run works as :class:`~skfleet.data.files.sink.FileSink`'s does (workers stage one part
per partition, exactly once, with receipts), only its staging sits *beside* the file, hidden::

    out/
      scores.csv                              the table, written whole at commit
      .scores.csv.skfleet.json                which run wrote it (and its partitions)
      .scores.csv.skfleet-staging-<run>/      a run until it commits

:meth:`SingleFileSink.commit` streams the staged parts together in partition order into a
temporary file (after the old file's rows when appending; Parquet parts byte for byte under one
new footer, without decoding them), hashing the bytes as they go; writes the record; then
publishes the file in one atomic step (:func:`skfleet.util.atomic.atomic_write`: a rename on
disk, the completion of one upload on S3), then drops the staging. A reader sees the old file or
the new one. The record is written before the file is published and names its size and digest,
so a run resumed after a commit cut short can tell whether the file is already its own (and an
append is never applied twice).

The client holds a bounded chunk of the file at a time (one decoded part when the parts must be
decoded: CSV, or an old file written by another program), but every byte of the table passes
through it once at commit: for large outputs end ``--out`` in ``/`` to get a folder of parts.

>>> import tempfile, pyarrow as pa, pandas as pd
>>> target = tempfile.mkdtemp() + "/scores.csv"
>>> sink = SingleFileSink(target)
>>> sink.open(pa.schema([("id", pa.int64())]), run_id="r1")
>>> sink.write("p1", pa.table({"id": [3]})), sink.write("p0", pa.table({"id": [1, 2]}))
(1, 2)
>>> sink.commit()
>>> pd.read_csv(target)["id"].tolist()
[1, 2, 3]
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

import pyarrow as pa

from skfleet.data.base import (
    IfExists,
    check_if_exists,
    check_unique_columns,
    check_watermark_unmoved,
    checked_run_id,
)
from skfleet.data.files.formats import FileFormat, format_of_name
from skfleet.data.files.ledger import RunLedger
from skfleet.data.files.parquet_format import COPY_BYTES, ParquetFormat, write_joined
from skfleet.data.files.sink import DONE, STAGED, STAGED_APPEND, FileSink, _format_key
from skfleet.data.files.store import FileStore, is_glob
from skfleet.data.files.target import check_appendable
from skfleet.errors import DataError, TargetExistsError, UsageError

RECORD_SUFFIX = ".skfleet.json"
STAGING_INFIX = ".skfleet-staging-"


def names_one_file(url: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether ``url`` asks for one file: a data suffix, no trailing ``/``, and not an existing
    directory (a folder written by an earlier skfleet stays a folder).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> names_one_file(d + "/s.csv"), names_one_file(d + "/s.csv/"), names_one_file(d + "/s")
    (True, False, False)
    """
    if url.rstrip().endswith("/"):
        return False
    store, path = FileStore.from_url(url, storage_options)
    if is_glob(path) or not format_of_name(posixpath.basename(path)):
        return False
    return store.kind(path) != "directory"


class SingleFileSink(FileSink):
    """One CSV or Parquet file, committed whole (see the module docs)."""

    def __init__(self, url: str, **options: Any):
        super().__init__(url, **options)
        self._parent, self._name = posixpath.split(self._dir)
        self._done: dict[str, int] = {}

    @property
    def _ledger(self) -> RunLedger:
        folder = FileStore.join(self._parent, f".{self._name}{STAGING_INFIX}{self._run_id}")
        return RunLedger(self._store, self._parent, self._run_id, folder=folder)

    @property
    def _record_path(self) -> str:
        return FileStore.join(self._parent, f".{self._name}{RECORD_SUFFIX}")

    def _record_of(self, run_id: str) -> dict[str, Any] | None:
        """The record, if run ``run_id`` wrote the file that is there now."""
        data = self._store.cat(self._record_path)
        try:
            record = json.loads(data) if data is not None else None
        except ValueError:
            return None  # not ours to judge; the file is simply not this run's
        if not isinstance(record, dict) or record.get("run_id") != run_id:
            return None
        if not self._store.exists(self._dir) or self._store.size(self._dir) != record.get("size"):
            return None
        if self._sha256(self._dir) != record.get("sha256"):
            return None
        return record

    def _sha256(self, path: str) -> str:
        """The hex SHA-256 of ``path``, read a bounded chunk at a time."""
        digest, size = hashlib.sha256(), self._store.size(path)
        for offset in range(0, size, COPY_BYTES):
            digest.update(self._store.read_range(path, offset, min(offset + COPY_BYTES, size)))
        return digest.hexdigest()

    # -- watermarks of incremental runs: in the record -----------------------------------------
    def _watermarks(self) -> dict[str, Any]:
        """The watermarks that hold for the file there now: the record's, if the file is the
        one it names; else (a commit cut short between record and file) the ones before it."""
        data = self._store.cat(self._record_path)
        try:
            record = json.loads(data) if data is not None else None
        except ValueError:
            return {}
        if not isinstance(record, dict):
            return {}
        matches = self._record_of(record.get("run_id")) is not None
        return dict(record.get("watermarks" if matches else "watermarks_before") or {})

    def watermark(self, stream: str) -> dict | None:
        return self._watermarks().get(stream)

    # -- open -----------------------------------------------------------------------------------
    def open(
        self, schema: pa.Schema, if_exists: IfExists = "fail", run_id: str | None = None
    ) -> None:
        check_if_exists(if_exists)
        self._mode = None
        run_id = checked_run_id(run_id, new_length=12)
        kind = self._store.kind(self._dir)
        if kind == "directory":
            raise UsageError(
                f"{self.display_name} is a directory; end the name in / to write parts into it"
            )
        check_unique_columns(schema.names, f"the table written to {self.display_name}")
        fmt = self._resolve_format(None)
        fmt.check_writable(schema)
        self._format, self._schema, self._run_id = fmt, schema, run_id
        self._if_exists, self._created = if_exists, False

        record = self._record_of(run_id) if kind == "file" else None
        if record is not None:
            # Committed; a staging folder still there is that commit's last step, cut short.
            self._ledger.drop()
            self._mode, self._done = DONE, dict(record.get("parts", {}))
            return
        info = self._ledger.info()
        if info is not None:
            self._resume(info, fmt, if_exists)
            return
        if kind == "file":
            if if_exists == "fail":
                raise TargetExistsError(
                    f"{self.display_name} already exists; pass --if-exists replace or append"
                )
            if if_exists == "append":
                check_appendable(self, None, fmt, schema)
        self._mode = STAGED_APPEND if if_exists == "append" and kind == "file" else STAGED
        self._ledger.start({"format": _format_key(fmt), "if_exists": if_exists, "mode": self._mode})

    # -- bookkeeping ----------------------------------------------------------------------------
    def committed(self) -> dict[str, int]:
        self._require_open()
        return dict(self._done) if self._mode == DONE else self._ledger.receipts()

    def commit(self) -> None:
        self._require_open()
        if self._mode == DONE:
            return
        store, ledger, run, fmt = self._store, self._ledger, self._run_id, self._format
        if self._record_of(run) is not None:  # a commit cut short after writing the file
            self._finish(ledger)
            return
        receipts = ledger.receipts()
        staged = set(store.names(ledger.folder))
        kind = store.kind(self._dir)
        if kind == "file" and self._if_exists == "fail":
            raise TargetExistsError(
                f"{self.display_name} was written by another run while this one was; nothing "
                f"was published (run {run} can be aborted)"
            )
        paths = [self._dir] if self._mode == STAGED_APPEND and kind == "file" else []
        for partition_id in receipts:
            name = self._part_name(partition_id)
            if name not in staged:
                raise DataError(
                    f"part {name} of run {run} is missing from {store.url(ledger.folder)}"
                )
            paths.append(FileStore.join(ledger.folder, name))
        before = self._watermarks() if kind == "file" else {}
        if self._watermark is not None:
            stream, state = self._watermark
            check_watermark_unmoved(before.get(stream), state, stream, self.display_name)
        marks = dict(before) if self._mode == STAGED_APPEND else {}  # replaced: rows are gone
        if self._watermark is not None:
            marks[self._watermark[0]] = self._watermark[1]

        def write(handle) -> None:
            out = _Digesting(handle)
            self._write_joined(fmt, paths, out)
            record = {
                "run_id": run,
                "size": out.size,
                "sha256": out.digest.hexdigest(),
                "parts": receipts,
                "watermarks": marks,
                "watermarks_before": before,
            }
            # The record first, once the file's bytes are written and before they are published
            # under its name: a resume that finds it matching the file knows the file is this
            # run's; one that finds it not matching recomposes from the same staged parts.
            store.put(self._record_path, json.dumps(record).encode())

        store.makedirs(self._parent)
        store.put(self._dir, write)
        self._done = receipts
        self._finish(ledger)

    def _write_joined(self, fmt: FileFormat, paths: list[str], out) -> None:
        """Write the file holding ``paths`` one after another into ``out``: Parquet parts laid
        end to end with one footer, their pages as the workers encoded them
        (:func:`write_joined`); else (CSV, or Parquet written otherwise, such as an old file
        being appended to) decoded and written, one part at a time."""
        if isinstance(fmt, ParquetFormat) and paths and write_joined(self._store, paths, out):
            return
        names, meta = self._schema.names, self._schema.metadata
        tables = (
            fmt.read(self._store, path, self._schema, names).replace_schema_metadata(meta)
            for path in paths
        )
        fmt.write_parts_to(self._schema, tables if paths else [self._schema.empty_table()], out)

    def _finish(self, ledger: RunLedger) -> None:
        if not self._done:
            self._done = dict((self._record_of(self._run_id) or {}).get("parts", {}))
        ledger.drop()
        self._mode = DONE

    def abort(self) -> None:
        if self._mode in (None, DONE):
            return
        self._ledger.drop()
        self._mode = None


class _Digesting:
    """A binary file that passes writes on to ``handle``, counting and hashing them."""

    closed = False  # pyarrow checks it before writing into a Python file

    def __init__(self, handle):
        self._handle, self.size, self.digest = handle, 0, hashlib.sha256()

    def write(self, data) -> int:
        view = memoryview(data)
        self._handle.write(view)
        self.digest.update(view)
        self.size += view.nbytes
        return view.nbytes

    def flush(self) -> None:
        self._handle.flush()
