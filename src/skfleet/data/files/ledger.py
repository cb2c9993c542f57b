"""The bookkeeping of one run of :class:`~skfleet.data.files.sink.FileSink`: its staging folder.

Everything a run writes before it commits lives in ``<target>/_staging-<run>/``, hidden from
every reader (names starting with ``_`` are never data)::

    _staging-<run>/
      _run.json                  how the run was opened: format, compression, if_exists
      part-<partition>.<ext>     the staged parts, each appearing whole under its final name
      _rows/<rows>-<partition>   receipts: which partitions are done, with their row counts

A staged part *is* the record that its partition is done (it is written with an exclusive
atomic put, so two racing writers agree on one winner); a receipt follows it so that
:meth:`RunLedger.receipts` is one listing, and a missing receipt is rebuilt from the part. A
killed run leaves only this folder: no readable output, nothing that blocks a new run, and all
that ``--resume`` (``open`` with the same run id) needs.

>>> import tempfile
>>> from skfleet.data.files.store import FileStore
>>> store, target = FileStore.from_url(tempfile.mkdtemp())
>>> ledger = RunLedger(store, target, "r1")
>>> ledger.start({"format": "csv"})
>>> ledger.put_receipt("p0", 3); ledger.receipts(), ledger.info()["format"]
({'p0': 3}, 'csv')
>>> RunLedger.unfinished_runs(store, target)
['r1']
"""

from __future__ import annotations

import json
import re
from typing import Any

from skfleet.data.files.store import FileStore
from skfleet.errors import DataError

STAGING_PREFIX = "_staging-"
RUN_INFO = "_run.json"
_RECEIPT = re.compile(r"^(\d+)-(.+)$")


class RunLedger:
    """The staging folder of run ``run_id`` under ``target`` (see the module docs)."""

    def __init__(self, store: FileStore, target: str, run_id: str, folder: str | None = None):
        self.store, self.target, self.run_id = store, target, run_id
        # A single-file target stages beside the file, not inside it (see single.py).
        self._folder = folder

    @property
    def folder(self) -> str:
        if self._folder is not None:
            return self._folder
        return FileStore.join(self.target, f"{STAGING_PREFIX}{self.run_id}")

    @property
    def _receipts_dir(self) -> str:
        return FileStore.join(self.folder, "_rows")

    @staticmethod
    def unfinished_runs(store: FileStore, target: str) -> list[str]:
        """Run ids that have a staging folder under ``target``."""
        names = store.names(target)
        return [n[len(STAGING_PREFIX) :] for n in names if n.startswith(STAGING_PREFIX)]

    # -- the run -----------------------------------------------------------------------------
    def start(self, info: dict[str, Any]) -> None:
        """Create the staging folder and record how the run was opened (a resume checks it)."""
        self.store.makedirs(self.folder)
        self.store.put(FileStore.join(self.folder, RUN_INFO), json.dumps(info).encode())

    def info(self) -> dict[str, Any] | None:
        """What :meth:`start` recorded, or None when this run has no staging."""
        path = FileStore.join(self.folder, RUN_INFO)
        data = self.store.cat(path)
        if data is None:
            return None
        try:
            return dict(json.loads(data))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{self.store.url(path)} is not a skfleet run record: {exc}") from None

    def drop(self) -> None:
        """Delete the staging folder and everything in it."""
        self.store.remove_tree(self.folder)

    # -- receipts ------------------------------------------------------------------------------
    def put_receipt(self, partition_id: str, rows: int) -> None:
        self.store.makedirs(self._receipts_dir)
        self.store.put(FileStore.join(self._receipts_dir, f"{rows}-{partition_id}"), b"")

    def receipts(self) -> dict[str, int]:
        """Partition id -> rows for every partition this run has finished."""
        out = {}
        for name in self.store.names(self._receipts_dir):
            match = _RECEIPT.match(name)
            if match:
                out[match[2]] = int(match[1])
        return dict(sorted(out.items()))

    def ensure_receipt(self, partition_id: str, count_rows) -> None:
        """A worker may have died between its part and its receipt: rebuild it from the part
        (``count_rows()`` counts the part's rows)."""
        if partition_id not in self.receipts():
            self.put_receipt(partition_id, count_rows())
