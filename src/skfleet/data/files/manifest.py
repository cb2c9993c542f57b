"""``_manifest.json``: what a directory written by :class:`~skfleet.data.files.sink.FileSink` holds.

The manifest is written last, in one atomic step, when a run commits. It lists the committed part
files (relative paths, partition ids, row counts, the run that wrote each), the format and the
exact Arrow schema (so CSV columns read back as the decimal or timezone-aware types that were
written). Readers of a directory that has a manifest read exactly the parts it lists and nothing
else: half-written runs, staging folders and stray files are invisible.

A run that has not committed has no manifest of its own: its parts wait in its staging folder
(:mod:`~skfleet.data.files.ledger`), so an unfinished first run leaves no readable table.

>>> import pyarrow as pa
>>> m = Manifest("csv", pa.schema([("id", pa.int64())]), parts=[Part("part-p0.csv", "p0", 3, "r1")])
>>> again = Manifest.from_json(m.to_json(), "demo")
>>> again.schema.equals(m.schema), again.parts[0].rows, again.rows
(True, 3, 3)
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from skfleet.data.files.store import FileStore
from skfleet.errors import DataError

MANIFEST_NAME = "_manifest.json"
VERSION = 1


@dataclass(frozen=True)
class Part:
    """One committed file: ``path`` relative to the directory; ``rows`` None if unknown."""

    path: str
    partition: str | None
    rows: int | None
    run_id: str | None


@dataclass
class Manifest:
    format: str
    schema: pa.Schema
    compression: str | None = None
    parts: list[Part] = field(default_factory=list)
    #: The last run that committed into this directory.
    run_id: str | None = None
    #: Watermarks of incremental runs, by stream (model and source): written with the parts.
    watermarks: dict = field(default_factory=dict)

    @property
    def rows(self) -> int | None:
        counts = [p.rows for p in self.parts]
        return None if any(c is None for c in counts) else sum(counts)

    def to_json(self) -> bytes:
        doc = {
            "skfleet_manifest": VERSION,
            "format": self.format,
            "compression": self.compression,
            "rows": self.rows,
            "run_id": self.run_id,
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            # Human-readable columns, then the exact schema the readers use.
            "columns": [{"name": f.name, "type": str(f.type)} for f in self.schema],
            "arrow_schema": base64.b64encode(self.schema.serialize().to_pybytes()).decode(),
            "parts": [asdict(p) for p in self.parts],
            "watermarks": self.watermarks,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            doc = json.loads(data)
            schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(doc["arrow_schema"])))
            return cls(
                format=doc["format"],
                schema=schema,
                compression=doc.get("compression"),
                parts=[Part(**p) for p in doc["parts"]],
                run_id=doc.get("run_id"),
                watermarks=dict(doc.get("watermarks") or {}),
            )
        except (ValueError, KeyError, TypeError, pa.ArrowInvalid) as exc:
            raise DataError(f"{where} is not a valid skfleet manifest: {exc}") from None


def manifest_path(directory: str) -> str:
    return FileStore.join(directory, MANIFEST_NAME)


def read_manifest(store: FileStore, directory: str) -> Manifest | None:
    """The manifest of ``directory``, or None if it has none."""
    path = manifest_path(directory)
    data = store.cat(path)
    return None if data is None else Manifest.from_json(data, store.url(path))


def write_manifest(store: FileStore, directory: str, manifest: Manifest) -> None:
    """Replace the manifest of ``directory`` in one atomic step."""
    store.put(manifest_path(directory), manifest.to_json())
