"""The worker side of a prediction: the task it receives, its model cache, and scoring one partition.

A task carries the store URI, model ref and content hash, never the model: each worker process
keeps a small cache ``{content hash: model}`` and fetches and verifies the artifact once.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from skfleet.data.base import Partition, Sink, Source
from skfleet.data.keyhash import key_hashes, repeats
from skfleet.engine.session import USER_ERRORS
from skfleet.engine.shared import SharedRef
from skfleet.errors import DataError, SkfleetError
from skfleet.predict.keys import duplicate_example, duplicate_message
from skfleet.predict.quarantine import add_counts, quarantine_rows
from skfleet.predict.scoring import ScoringPlan, score_table
from skfleet.util.read_ahead import read_ahead
from skfleet.util.redact import redact_text

#: Models kept per worker process (by content hash).
MODEL_CACHE_SIZE = 4


class PartitionTaskError(Exception):
    """Raised on a worker: names the partition so the client can say which one failed."""

    def __init__(self, partition_id: str, message: str):
        super().__init__(partition_id, message)
        self.partition_id = partition_id
        self.message = message

    def __str__(self) -> str:
        return f"partition {self.partition_id}: {self.message}"


@dataclass(frozen=True)
class ModelHandle:
    """Where a worker finds the model: store URI, name, version and the artifact's content hash.

    ``artifact`` is set when the workers cannot read the store (a folder on the client, workers
    on other machines): the bytes were put on every worker once (:meth:`Engine.share
    <skfleet.engine.base.Engine.share>`) and the handle refers to them.
    """

    store: str
    name: str
    version: int
    content_hash: str
    trust: bool = False
    artifact: SharedRef | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


#: content hash -> (model, whether it was loaded with ``trust=True``). A model loaded with trust is
#: served again only to a caller that also passes trust: trust is given per run, not per process.
_models: collections.OrderedDict[str, tuple[Any, bool]] = collections.OrderedDict()


_models_lock = threading.Lock()


def _keep(content_hash: str, model: Any, trusted: bool) -> None:
    _models[content_hash] = (model, trusted)
    _models.move_to_end(content_hash)
    while len(_models) > MODEL_CACHE_SIZE:
        _models.popitem(last=False)


def remember_model(content_hash: str, model: Any, trusted: bool = False) -> None:
    """Put an already loaded model in this process's cache (the in-process engine reuses it).

    ``trusted``: it was loaded with ``trust=True`` (its file names things outside the lists).
    """
    with _models_lock:
        _keep(content_hash, model, trusted)


def cached_by_hash(content_hash: str, trust: bool = False) -> Any:
    """The model this process already holds for ``content_hash``, or None (also when it was
    loaded with trust and ``trust`` is not given now)."""
    with _models_lock:
        entry = _models.get(content_hash)
    if entry is None or (entry[1] and not trust):
        return None
    return entry[0]


def cached_model(handle: ModelHandle) -> tuple[Any, bool]:
    """The model for ``handle``, loading it on first use in this process. Returns (model, loaded).

    The lock makes the threads of one worker wait for a single fetch instead of each fetching.
    """
    with _models_lock:
        entry = _models.get(handle.content_hash)
        if entry is not None and (handle.trust or not entry[1]):
            _models.move_to_end(handle.content_hash)
            return entry[0], False
        from skfleet.store import ModelStore, load_artifact

        if handle.artifact is not None:
            data = handle.artifact.fetch()
        else:
            data = ModelStore(handle.store).artifact_bytes(handle.ref)
        # Verified against the hash the client read from model.json, whichever way it came, and
        # judged without trust unless this run gives it.
        model = load_artifact(data, handle.content_hash, trust=handle.trust)
        _keep(handle.content_hash, model, handle.trust)
        return model, True


@dataclass(frozen=True)
class PredictTask:
    """Everything one worker needs to score one partition: small and picklable (no rows, no model)."""

    model: ModelHandle
    source: Source
    sink: Sink
    partition: Partition
    plan: ScoringPlan
    duplicate_keys: str
    #: ``--bad-rows`` mode (``error``, ``skip``, ``quarantine``) and, for ``quarantine``, the
    #: second sink the refused values go to, and the run id written with them.
    bad_rows: str = "error"
    quarantine: Sink | None = None
    run_id: str = ""


@dataclass
class PartitionResult:
    """What a worker sends back: a few counters, the drift report (fixed size: counts per column)
    and one repeated key if its partition has any. Nothing per row: the client's memory must not
    grow with the table (the sink counts repeats across partitions)."""

    partition_id: str
    rows_in: int = 0
    rows_written: int = 0
    drift: Any = None
    #: The rows read, counted in the bins of the training profile
    #: (:class:`~skfleet.features.run_profile.RowProfile`; None: the model has no profile).
    profile: Any = None
    duplicate_example: str | None = None
    worker: str = ""
    model_loaded: bool = False
    #: Wall-clock and CPU seconds the task took on its worker (how busy the workers were).
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: Values refused by the feature contract, per reason (``--bad-rows skip|quarantine``).
    bad_rows: dict[str, int] = field(default_factory=dict)
    #: A user error (bad data, ...): retrying cannot help, so it comes back as a value.
    error: SkfleetError | None = None


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def predict_partition(task: PredictTask) -> PartitionResult:
    """Worker side: score one partition and commit it to the sink.

    The partition streams: its batches are read a little ahead in a thread while earlier ones are
    scored and written (:func:`~skfleet.util.read_ahead.read_ahead`), into a sink that takes
    rows as they come where it can (:meth:`~skfleet.data.base.Sink.write_stream`); the
    partition still commits whole or not at all. Infrastructure errors (a dropped connection, a
    dead worker) raise :class:`PartitionTaskError` and are retried by the engine; user errors
    come back in ``error`` and fail the run at once.
    """
    pid = task.partition.id
    result = PartitionResult(pid, worker=_worker_name())
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        scoring = _PartitionScoring(task, result)
        columns = list(task.plan.read_columns)
        batches = task.source.iter_batches(task.partition, columns, STREAM_BATCH_ROWS)
        with read_ahead(batches) as incoming:
            result.rows_written = task.sink.write_stream(
                pid, task.plan.schema, scoring.scored(incoming), before_commit=scoring.finish
            )
        result.seconds = time.perf_counter() - started
        result.cpu_seconds = time.process_time() - cpu_started
        return result
    except USER_ERRORS as exc:
        result.error = exc
        return result
    except Exception as exc:
        cause = str(exc) if isinstance(exc, SkfleetError) else f"{type(exc).__name__}: {exc}"
        raise PartitionTaskError(pid, redact_text(cause)) from exc


def merge_drift(total: Any, part: Any) -> Any:
    """Two drift reports (either may be None: no contract) added up.

    >>> merge_drift(None, None) is None
    True
    """
    if part is None:
        return total
    if total is None:
        return part
    merged = total.merge(part)
    return total if merged is None else merged


#: Rows scored at a time within a partition: small enough that reading, scoring and writing
#: overlap, large enough that the cost of a call per batch does not show.
STREAM_BATCH_ROWS = 65_536


class _PartitionScoring:
    """One partition's batches scored as they arrive, and what the partition's result needs of
    all of them: rows, drift and profile (added up), the rows refused (and their quarantine
    rows), and its key columns for the repeat check before the commit."""

    def __init__(self, task: PredictTask, result: PartitionResult):
        self.task, self.result = task, result
        self.checking = task.duplicate_keys != "ignore"
        self.keys: list[pa.Table] = []
        self.quarantined: list[pa.Table] = []

    def scored(self, incoming):
        task, result, plan = self.task, self.result, self.task.plan
        model = None
        for batch in incoming:
            table = pa.Table.from_batches([batch])
            if model is None:  # after the first read: in this process it loads meanwhile
                model, result.model_loaded = cached_model(task.model)
            result.rows_in += table.num_rows
            if self.checking:
                self.keys.append(table.select(list(plan.keys)))
            scored = score_table(model, table, plan, bad_rows=task.bad_rows)
            result.drift = merge_drift(result.drift, scored.drift)
            if plan.profile_bins is not None:
                from skfleet.features.run_profile import profile_rows

                profile = profile_rows(table, plan.profile_bins)
                result.profile = (
                    profile if result.profile is None else result.profile.merge(profile)
                )
            if scored.bad is not None:
                result.bad_rows = add_counts(result.bad_rows, scored.bad.counts())
                if task.quarantine is not None:
                    rows = quarantine_rows(
                        table, scored.bad, plan.keys, task.run_id, result.partition_id
                    )
                    self.quarantined.append(rows)
            yield from scored.table.to_batches()

    def finish(self, rows: int) -> None:
        """Before the partition commits: its keys checked for repeats (within it; the sink
        counts across partitions at the end), then its refused values quarantined (a retry
        after a kill in between must still find, or write, them)."""
        task, result, keys = self.task, self.result, self.task.plan.keys
        if self.keys:
            read = pa.concat_tables(self.keys)
            if repeats(key_hashes(read, keys)):
                result.duplicate_example = duplicate_example(read, keys)
                if task.duplicate_keys == "error":
                    raise DataError(duplicate_message(keys, result.duplicate_example))
        if self.quarantined:
            task.quarantine.write(result.partition_id, pa.concat_tables(self.quarantined))
