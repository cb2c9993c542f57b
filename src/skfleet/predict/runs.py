"""Run records: what a prediction run planned, how far it got, and what it found.

A record is one JSON file, ``<runs folder>/<run_id>.json`` (by default the model store's
``_runs/`` folder; ``_runs`` cannot be a model name, so it never shows up as one). It is written at
the start of a run with the partition plan, re-written now and then as partitions finish, and
closed with the result. ``--resume`` reads it back to re-open the same staging, check the plan and
skip what is committed.

What is stored is redacted: the source and sink URLs with passwords masked. The real source URL
is never stored, so a resumed run needs the user to pass it again.

>>> store = RunStore("memory://doc-runs/_runs")
>>> record = RunRecord.new("r1", model={"name": "m", "version": 1}, source="in.parquet",
...                        sink="postgresql://u:pw@h/db?table=t", options={}, plan=[])
>>> record.sink
'postgresql://u:***@h/db?table=t'
>>> store.save(record)
>>> store.load("r1").status
'running'
>>> store.latest_unfinished("postgresql://u:other@h/db?table=t").run_id
'r1'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from skfleet.errors import SkfleetError, UsageError
from skfleet.store.fs import is_local, open_store_fs
from skfleet.util.atomic import atomic_write
from skfleet.util.redact import redact_text, redact_url

RUNS_FOLDER = "_runs"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
#: A run in one of these states can be resumed.
UNFINISHED = ("running", "interrupted", "failed")


def new_run_id() -> str:
    """A fresh run id: short, sortable by time, safe as a file and table name."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}".lower()


def check_run_id(run_id: str) -> str:
    """Run ids name files and staging tables: keep them to a safe alphabet.

    >>> check_run_id("20250101t000000-ab12cd34")
    '20250101t000000-ab12cd34'
    >>> check_run_id("../x")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: run id '../x' is not valid: use letters, digits, '_' or '-' (at most 64)
    """
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise UsageError(
            f"run id {run_id!r} is not valid: use letters, digits, '_' or '-' (at most 64)"
        )
    return run_id


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RunRecord:
    """The stored state of one run (JSON-safe fields only)."""

    run_id: str
    status: str
    created_at: str
    updated_at: str
    model: dict[str, Any]
    source: str
    sink: str
    options: dict[str, Any]
    #: ``[{"id": ..., "rows_estimate": ...}]``: partition ids identify the output parts and ledger
    #: rows. Specs are not kept: they hold snapshot ids that die with the client.
    plan: list[dict[str, Any]]
    partitions_done: int = 0
    rows_done: int = 0
    #: Merged DriftReport (``to_dict()``) over ``drift_partitions``.
    drift: dict[str, Any] | None = None
    drift_partitions: list[str] = field(default_factory=list)
    #: Merged profile of the rows scored (``RowProfile.to_dict()``) over ``profile_partitions``,
    #: which ``skfleet models drift`` compares with the training profile.
    profile: dict[str, Any] | None = None
    profile_partitions: list[str] = field(default_factory=list)
    #: Values the feature contract refused, per reason, over the partitions done so far.
    bad_rows: dict[str, int] = field(default_factory=dict)
    attempts: int = 1
    error: str | None = None
    result: dict[str, Any] | None = None

    @classmethod
    def new(
        cls,
        run_id: str,
        *,
        model: dict[str, Any],
        source: str,
        sink: str,
        options: dict[str, Any],
        plan: list[dict[str, Any]],
    ) -> RunRecord:
        now = _now()
        return cls(
            run_id=check_run_id(run_id),
            status="running",
            created_at=now,
            updated_at=now,
            model=model,
            source=redact_url(source),
            sink=redact_url(sink),
            options=options,
            plan=plan,
        )

    @property
    def plan_ids(self) -> list[str]:
        return [p["id"] for p in self.plan]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class RunStore:
    """Run records under one folder or URL (local disk, ``s3://``, any fsspec filesystem)."""

    def __init__(self, uri: str | os.PathLike):
        self.uri = os.fspath(uri)
        self.fs, self.root = open_store_fs(self.uri)
        self.local = is_local(self.fs)
        self.display = redact_url(self.uri)

    def __repr__(self) -> str:
        return f"RunStore({self.display!r})"

    @classmethod
    def for_model_store(cls, store_uri: str) -> RunStore:
        """The ``_runs`` folder inside a model store."""
        return cls(store_uri.rstrip("/") + "/" + RUNS_FOLDER)

    def _path(self, run_id: str) -> str:
        return f"{self.root}/{check_run_id(run_id)}.json"

    def save(self, record: RunRecord) -> None:
        """Write ``record`` in one step (temp file + rename locally, one PUT on object stores)."""
        record.updated_at = _now()
        # Everything is redacted again on the way out: a driver error in ``error`` may quote a URL.
        text = redact_text(json.dumps(record.to_dict(), indent=2, default=str, allow_nan=False))
        path = self._path(record.run_id)
        try:
            if self.local:
                os.makedirs(self.root, exist_ok=True)
            atomic_write(self.fs, path, (text + "\n").encode("utf-8"))
        except OSError as exc:
            raise SkfleetError(
                f"cannot write run record to {self.display}: {exc.strerror or exc}"
            ) from exc

    def load(self, run_id: str) -> RunRecord:
        path = self._path(run_id)
        self.fs.invalidate_cache()
        try:
            data = json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            raise UsageError(f"--resume: no run {run_id!r} in {self.display}") from None
        except (OSError, ValueError) as exc:
            raise SkfleetError(
                f"run record {run_id} in {self.display} cannot be read: {exc}"
            ) from exc
        return RunRecord.from_dict(data)

    def delete(self, run_id: str) -> None:
        """Forget a run that never wrote anything."""
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm_file(self._path(run_id))

    def records(self) -> list[RunRecord]:
        """Every readable record, oldest first."""
        self.fs.invalidate_cache()
        try:
            paths = self.fs.glob(f"{self.root}/*.json")
        except (FileNotFoundError, OSError):
            return []
        out = []
        for path in paths:
            try:
                out.append(RunRecord.from_dict(json.loads(self.fs.cat_file(path))))
            except (OSError, ValueError, TypeError):
                continue  # a half-written or foreign file is not a run
        return sorted(out, key=lambda r: (r.created_at, r.run_id))

    def latest_unfinished(self, sink_url: str) -> RunRecord | None:
        """The most recent run writing to ``sink_url`` that has not committed (None if none)."""
        target = _without_password(sink_url)
        found = [
            r
            for r in self.records()
            if r.status in UNFINISHED and _without_password(r.sink) == target
        ]
        return found[-1] if found else None


def _without_password(url: str) -> str:
    # Stored URLs are redacted; compare them with the user's URL redacted the same way.
    return redact_url(url)
