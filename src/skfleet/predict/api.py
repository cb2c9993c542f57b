"""``predict``: score a table of any size with a stored model, in partitions, exactly once.

The client loads the model once (to check it and plan the output), plans the source's partitions,
records the plan as a run (:mod:`skfleet.predict.runs`), opens the sink and hands each worker a small task:
a partition description plus the model's store URI, version and content hash. A worker fetches
the artifact from the store the first time it meets that hash, keeps the model in a process-level
cache, reads its partition straight from the source, scores it and commits it to the sink; a
partition retried or resumed after it committed is a no-op. The client merges the drift reports,
checks keys for duplicates and publishes the output at the end.

An interrupted or failed run keeps what it committed: ``predict(..., resume=run_id)`` (the CLI's
``--resume``) re-opens the same staging, re-plans, checks the partition ids against the recorded
plan and runs only what is missing. A PostgreSQL source is read in one exported snapshot per client
run; a resumed run takes a fresh snapshot, so the source must not change in between.

>>> import os, tempfile, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
>>> from sklearn.linear_model import LinearRegression
>>> from skfleet.store import ModelStore
>>> d = tempfile.mkdtemp()
>>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> store = ModelStore(os.path.join(d, "models"))
>>> _ = store.save("line", LinearRegression().fit(frame, [1.0, 3.0, 5.0, 7.0]),
...                {"kind": "registered", "task": "regression", "input_columns": ["x"]})
>>> pq.write_table(pa.table({"id": [1, 2], "x": [10.0, 20.0]}), os.path.join(d, "in.parquet"))
>>> result = predict("line", os.path.join(d, "in.parquet"), os.path.join(d, "scores"),
...                  store=store.uri, key=["id"], engine="local")
>>> result.rows_in, result.rows_out, result.partitions
(2, 2, 1)
>>> from skfleet.data import open_source
>>> open_source(os.path.join(d, "scores")).read_all().to_pylist()
[{'id': 1, 'prediction': 21.0}, {'id': 2, 'prediction': 41.0}]
"""

from __future__ import annotations

import collections
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from skfleet.data import open_sink, open_source
from skfleet.data.base import IF_EXISTS_CHOICES, Partition, Sink, Source
from skfleet.engine import Engine, get_engine, parse_engine_spec
from skfleet.errors import (
    DataError,
    MissingColumnError,
    ModelNotFoundError,
    PartitionFailedError,
    SkfleetError,
    SkfleetWarning,
    SourceNotFoundError,
    TargetExistsError,
    UntrustedModelError,
    UsageError,
)
from skfleet.predict.runs import RunRecord, RunStore, check_run_id, new_run_id
from skfleet.predict.scoring import ScoringPlan, plan_scoring, score_table
from skfleet.util.progress import NullProgress, Progress
from skfleet.util.redact import redact_text, redact_url

DEFAULT_ENGINE = "dask:local"
DUPLICATE_KEY_CHOICES = ("warn", "error", "ignore")
#: Partition sizing: about this many cells (rows x columns read) per task, which is a few seconds
#: of reading + scoring + writing for typical models, within these bounds...
CELLS_PER_TASK = 5_000_000
MIN_PARTITION_ROWS = 10_000
MAX_PARTITION_ROWS = 500_000
#: ... and at least this many tasks per worker, so the load balances and the progress bar moves.
TASKS_PER_WORKER = 4
#: How often (seconds) the run record is re-written while partitions finish.
CHECKPOINT_SECONDS = 5.0
#: Models kept per worker process (by content hash).
MODEL_CACHE_SIZE = 4


class DuplicateKeyWarning(SkfleetWarning):
    """The key columns do not identify the input rows uniquely."""


class PredictInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C); what it committed is kept for ``--resume``."""

    def __init__(self, run_id: str):
        super().__init__(run_id)
        self.run_id = run_id


class PartitionTaskError(Exception):
    """Raised on a worker: names the partition so the client can say which one failed."""

    def __init__(self, partition_id: str, message: str):
        super().__init__(partition_id, message)
        self.partition_id = partition_id
        self.message = message

    def __str__(self) -> str:
        return f"partition {self.partition_id}: {self.message}"


# -- the model, as tasks carry it ------------------------------------------------------------------


@dataclass(frozen=True)
class ModelHandle:
    """Where a worker finds the model: store URI, name, version and the artifact's content hash."""

    store: str
    name: str
    version: int
    content_hash: str
    trust: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


_models: collections.OrderedDict[str, Any] = collections.OrderedDict()
_models_lock = threading.Lock()


def remember_model(content_hash: str, model: Any) -> None:
    """Put an already loaded model in this process's cache (the in-process engine reuses it)."""
    with _models_lock:
        _models[content_hash] = model
        _models.move_to_end(content_hash)
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)


def cached_model(handle: ModelHandle) -> tuple[Any, bool]:
    """The model for ``handle``, loading it on first use in this process. Returns (model, loaded).

    The lock makes the threads of one worker wait for a single fetch instead of each fetching.
    """
    with _models_lock:
        model = _models.get(handle.content_hash)
        if model is not None:
            _models.move_to_end(handle.content_hash)
            return model, False
        from skfleet.store import ModelStore, load_artifact

        data = ModelStore(handle.store).artifact_bytes(handle.ref)
        model = load_artifact(data, handle.content_hash, trust=handle.trust)
        _models[handle.content_hash] = model
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)
        return model, True


# -- one partition, on a worker --------------------------------------------------------------------


@dataclass(frozen=True)
class PredictTask:
    """Everything one worker needs to score one partition: small and picklable (no rows, no model)."""

    model: ModelHandle
    source: Source
    sink: Sink
    partition: Partition
    plan: ScoringPlan
    duplicate_keys: str


@dataclass
class PartitionResult:
    """What a worker sends back: counts, the drift report, key hashes for the duplicate check."""

    partition_id: str
    rows_in: int = 0
    rows_written: int = 0
    drift: Any = None
    key_hashes: np.ndarray | None = None
    duplicate_example: str | None = None
    worker: str = ""
    model_loaded: bool = False
    #: Wall-clock and CPU seconds the task took on its worker (how busy the workers were).
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: A user error (bad data, ...): retrying cannot help, so it comes back as a value.
    error: SkfleetError | None = None


def key_hashes(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """A uint64 per row identifying its key: the value itself for one integer key without nulls
    (exact), else a 64-bit hash of all key columns. Sorted, so equal keys are neighbours, unless
    the integer keys are strictly increasing already (then they are unique as they are).

    >>> key_hashes(pa.table({"id": [3, 1, 2]}), ["id"]).tolist()
    [1, 2, 3]
    >>> len(set(key_hashes(pa.table({"a": [1, 1], "b": ["x", "y"]}), ["a", "b"]).tolist()))
    2
    """
    column = table.column(keys[0]) if len(keys) == 1 else None
    if column is not None and pa.types.is_integer(column.type) and column.null_count == 0:
        values = column.to_numpy().astype(np.int64, copy=False).view(np.uint64)
        signed = values.view(np.int64)
        if signed.size < 2 or bool(np.all(signed[1:] > signed[:-1])):
            return values  # strictly increasing (the usual row order): unique, no sort needed
    else:
        import pandas as pd

        frame = table.select(list(keys)).to_pandas()
        values = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return np.sort(values)


def count_duplicates(parts: Sequence[np.ndarray]) -> int:
    """Rows whose key another row already has, over the :func:`key_hashes` of all partitions.

    Partitions whose value ranges do not overlap (block or key ranges of a table read in key
    order: the usual case) cannot share a key, so only overlapping ones are merged and sorted;
    within one partition equal keys are neighbours already.

    >>> count_duplicates([np.array([1, 2, 3], np.uint64), np.array([4, 5], np.uint64)])
    0
    >>> count_duplicates([np.array([1, 2, 5], np.uint64), np.array([4, 5, 5], np.uint64)])
    2
    """
    spans = sorted((int(a.min()), int(a.max()), i) for i, a in enumerate(parts) if a.size)
    groups: list[list[int]] = []
    reach = -1
    for low, high, i in spans:
        if groups and low <= reach:
            groups[-1].append(i)
            reach = max(reach, high)
        else:
            groups.append([i])
            reach = high
    total = 0
    for group in groups:
        if len(group) == 1:
            merged = parts[group[0]]
        else:
            merged = np.sort(np.concatenate([parts[i] for i in group]))
        total += int(np.count_nonzero(merged[1:] == merged[:-1]))
    return total


def _duplicate_example(table: pa.Table, keys: Sequence[str]) -> str | None:
    keyed = table.select(list(keys))
    dup = np.flatnonzero(keyed.to_pandas().duplicated(keep="first").to_numpy())
    if not dup.size:
        return None
    row = keyed.slice(int(dup[0]), 1).to_pylist()[0]
    return ", ".join(f"{k}={row[k]!r}" for k in keys)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


#: User errors: the same input fails the same way on every attempt, so they are not retried.
#: Anything else (a dropped connection, a driver error, a worker bug) is retried by the engine.
_NOT_RETRIED = (
    DataError,
    MissingColumnError,
    UsageError,
    UntrustedModelError,
    ModelNotFoundError,
    SourceNotFoundError,
    TargetExistsError,
)


def predict_partition(task: PredictTask) -> PartitionResult:
    """Worker side: score one partition and commit it to the sink.

    Infrastructure errors (a dropped connection, a dead worker) raise :class:`PartitionTaskError`
    and are retried by the engine; user errors come back in ``error`` and fail the run at once.
    """
    pid = task.partition.id
    result = PartitionResult(pid, worker=_worker_name())
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        model, result.model_loaded = cached_model(task.model)
        table = task.source.read(task.partition, columns=list(task.plan.read_columns))
        result.rows_in = table.num_rows
        if task.duplicate_keys != "ignore":
            hashes = key_hashes(table, task.plan.keys)
            if hashes.size > 1 and bool(np.any(hashes[1:] == hashes[:-1])):
                result.duplicate_example = _duplicate_example(table, task.plan.keys)
                if task.duplicate_keys == "error":
                    result.error = DataError(
                        _duplicate_message(task.plan.keys, result.duplicate_example)
                    )
                    return result
            result.key_hashes = hashes
        scored = score_table(model, table, task.plan)
        result.drift = scored.drift
        result.rows_written = task.sink.write(pid, scored.table)
        result.seconds = time.perf_counter() - started
        result.cpu_seconds = time.process_time() - cpu_started
        return result
    except _NOT_RETRIED as exc:
        result.error = exc
        return result
    except Exception as exc:
        cause = str(exc) if isinstance(exc, SkfleetError) else f"{type(exc).__name__}: {exc}"
        raise PartitionTaskError(pid, redact_text(cause)) from exc


def _duplicate_message(keys: Sequence[str], example: str | None, count: int | None = None) -> str:
    what = f"key column {keys[0]!r} is" if len(keys) == 1 else f"key columns {', '.join(keys)} are"
    detail = f": {count:,} rows repeat a key" if count else ""
    eg = f" (e.g. {example})" if example else ""
    return f"{what} not unique in the input{detail}{eg}; pass --duplicate-keys warn or ignore to score anyway"


# -- the run, on the client ------------------------------------------------------------------------


@dataclass
class PredictResult:
    """The outcome of a run; ``to_dict()`` is what ``--json`` prints."""

    run_id: str
    model: str
    rows_in: int
    rows_out: int
    partitions: int
    seconds: float
    skipped_partitions: int = 0
    duplicate_keys: int = 0
    resumed: bool = False
    output: str = ""
    drift_report: Any = field(default=None, repr=False)
    #: Partitions whose drift is in the report (a partition committed just before an
    #: interruption may have lost its report with the client).
    drift_partitions: int = 0
    #: Models loaded by workers (once per worker process, keyed by content hash).
    model_loads: int = 0
    #: Sums over this run's tasks of their wall-clock and CPU seconds on the workers.
    task_seconds: float = 0.0
    task_cpu_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return round(self.rows_in / self.seconds, 1) if self.seconds > 0 else 0.0

    @property
    def drift(self) -> dict | None:
        return None if self.drift_report is None else self.drift_report.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "partitions": self.partitions,
            "skipped_partitions": self.skipped_partitions,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "duplicate_keys": self.duplicate_keys,
            "resumed": self.resumed,
            "output": self.output,
            "drift": self.drift,
            "drift_partitions": self.drift_partitions,
        }


def default_partition_rows(rows_estimate: int, columns: int, workers: int) -> int:
    """Rows per partition: tasks of a few seconds, at least a few tasks per worker, and a number
    of partitions that is a multiple of the number of workers, so that no worker sits idle
    through the last round while another scores the one partition left.

    >>> default_partition_rows(2_000_000, 23, 2)  # 10 partitions of 200k, not 9 of 217k
    200000
    >>> default_partition_rows(100_000, 5, 2)
    12500
    >>> default_partition_rows(1_000, 5, 8)
    10000
    """
    workers = max(1, workers)
    rows = max(rows_estimate, 1)
    by_cost = CELLS_PER_TASK // max(1, columns)
    by_balance = math.ceil(rows / (workers * TASKS_PER_WORKER))
    size = max(MIN_PARTITION_ROWS, min(MAX_PARTITION_ROWS, by_cost, by_balance))
    parts = math.ceil(rows / size)
    if parts > 1:
        parts = math.ceil(parts / workers) * workers
    return max(MIN_PARTITION_ROWS, math.ceil(rows / parts))


def _workers_hint(engine: str | Engine | None, workers: int | None) -> int:
    """How many workers the engine will have, without starting it (for partition sizing)."""
    if isinstance(engine, Engine):
        return engine.workers
    if workers:
        return workers
    spec = engine or DEFAULT_ENGINE
    tail = spec.rpartition(":")[2]
    if spec == "local":
        return 1
    if spec.startswith(("processes", "dask:local")) and tail.isdigit():
        return int(tail)
    if spec.startswith(("processes", "dask:local")):
        return os.cpu_count() or 1
    return 8  # a remote cluster of unknown size: plan for a few machines


def _merge_drift(total: Any, part: Any) -> Any:
    if part is None:
        return total
    if total is None:
        return part
    merged = total.merge(part)
    return total if merged is None else merged


def _drift_from_dict(data: dict | None) -> Any:
    if not data:
        return None
    from skfleet.features import DriftReport

    return DriftReport.from_dict(data)


def _load_model(model_store: Any, model: str, trust: bool) -> Any:
    """Load ``model`` on the client, reusing this process's cache when the hash matches.

    A repeated run in one process (a notebook, a benchmark) skips deserialising again; a model
    with types outside the trusted list always goes through the full load so that ``trust`` is
    checked every time.
    """
    from skfleet.store import LoadedModel
    from skfleet.store.metadata import check_library_versions

    ref = model_store.resolve(model)
    meta = model_store.metadata(ref)
    artifact = meta.get("artifact") or {}
    digest = artifact.get("sha256")
    with _models_lock:
        cached = _models.get(digest) if isinstance(digest, str) else None
    if cached is not None and (trust or not artifact.get("untrusted_types")):
        check_library_versions(meta, "warn", label=f"model {ref}")
        return LoadedModel(model=cached, metadata=meta, ref=ref, content_hash=digest)
    return model_store.load(ref, trust=trust)


def _check_choice(flag: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UsageError(f"{flag} must be one of {', '.join(choices)}, not {value!r}")


class _Run:
    """Bookkeeping of one client run: record checkpoints, drift and key hashes as results arrive."""

    def __init__(self, record: RunRecord, runs: RunStore, progress: Progress):
        self.record = record
        self.runs = runs
        self.progress = progress
        self.drift = _drift_from_dict(record.drift)
        self.drift_ids = set(record.drift_partitions)
        self.hashes: list[np.ndarray] = []
        self.examples: list[str] = []
        self.rows_read = 0
        self.model_loads = 0
        self.task_seconds = 0.0
        self.task_cpu_seconds = 0.0
        self._last_save = time.monotonic()

    def add(self, result: PartitionResult) -> None:
        self.rows_read += result.rows_in
        self.model_loads += int(result.model_loaded)
        self.task_seconds += result.seconds
        self.task_cpu_seconds += result.cpu_seconds
        if result.key_hashes is not None:
            self.hashes.append(result.key_hashes)
        if result.duplicate_example:
            self.examples.append(result.duplicate_example)
        if result.drift is not None and result.partition_id not in self.drift_ids:
            self.drift = _merge_drift(self.drift, result.drift)
            self.drift_ids.add(result.partition_id)
        self.record.partitions_done += 1
        self.record.rows_done += result.rows_in
        self.progress.advance(rows=result.rows_in)
        if time.monotonic() - self._last_save > CHECKPOINT_SECONDS:
            self.save()

    def save(self, status: str | None = None, error: str | None = None) -> None:
        if status is not None:
            self.record.status = status
        if error is not None:
            self.record.error = redact_text(error)
        self.record.drift = None if self.drift is None else self.drift.to_dict()
        self.record.drift_partitions = sorted(self.drift_ids)
        self.runs.save(self.record)
        self._last_save = time.monotonic()

    def duplicate_rows(self) -> int:
        return count_duplicates(self.hashes)


def _resolve_resume(runs: RunStore, resume: str | bool, dst: str) -> RunRecord:
    if resume is True or resume == "latest":
        record = runs.latest_unfinished(dst)
        if record is None:
            raise UsageError(
                f"--resume: no unfinished run writing to {redact_url(dst)} in {runs.display}"
            )
        return record
    record = runs.load(check_run_id(str(resume)))
    if redact_url(dst) != record.sink:
        raise UsageError(
            f"--resume: run {record.run_id} wrote to {record.sink}, not {redact_url(dst)}"
        )
    if record.status == "committed":
        raise UsageError(f"--resume: run {record.run_id} is already committed")
    if record.status == "aborted":
        raise UsageError(f"--resume: run {record.run_id} was aborted; start a new run")
    return record


@dataclass
class RunOptions:
    """The options that shape a run's output and its partition plan (a resumed run keeps them)."""

    keys: list[str] | None = None
    columns: list[str] | None = None
    if_exists: str | None = None
    partition_rows: int | None = None
    duplicate_keys: str = "warn"
    retries: int = 2

    def check(self) -> RunOptions:
        _check_choice("--duplicate-keys", self.duplicate_keys, DUPLICATE_KEY_CHOICES)
        if self.if_exists is not None:
            _check_choice("--if-exists", self.if_exists, IF_EXISTS_CHOICES)
        if self.partition_rows is not None and self.partition_rows < 1:
            raise UsageError(f"--partition-rows must be positive, not {self.partition_rows}")
        if self.retries < 0:
            raise UsageError(f"--retries must be 0 or more, not {self.retries}")
        return self

    def resuming(self, record: RunRecord) -> RunOptions:
        """The recorded options; one given again with another value is an error, not a mix."""
        recorded = record.options
        merged = {}
        for name, flag in [
            ("keys", "--key"),
            ("columns", "--columns"),
            ("if_exists", "--if-exists"),
            ("partition_rows", "--partition-rows"),
        ]:
            given, kept = getattr(self, name), recorded.get(name)
            if given is not None and given != kept:
                raise UsageError(
                    f"--resume: run {record.run_id} used {flag} {kept!r}; "
                    f"resume it with the same, not {given!r}"
                )
            merged[name] = kept
        duplicate_keys = recorded.get("duplicate_keys", self.duplicate_keys)
        return RunOptions(**merged, duplicate_keys=duplicate_keys, retries=self.retries)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def predict(
    model: str,
    source: str,
    out: str,
    *,
    store: str | None = None,
    key: Sequence[str] | str | None = None,
    columns: Sequence[str] | None = None,
    if_exists: str | None = None,
    engine: str | Engine | None = DEFAULT_ENGINE,
    workers: int | None = None,
    partition_rows: int | None = None,
    resume: str | bool | None = None,
    retries: int = 2,
    duplicate_keys: str = "warn",
    trust: bool = False,
    runs: str | None = None,
    source_options: dict[str, Any] | None = None,
    sink_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> PredictResult:
    """Score the table at ``source`` with the stored ``model`` (``NAME`` or ``NAME@V``) into ``out``.

    ``key`` names the columns copied to the output (default: the model's ``key_columns``);
    ``columns`` picks output columns among ``prediction`` and ``proba_<class>``; ``resume`` is a
    run id, or True for the latest unfinished run writing to ``out``; ``duplicate_keys`` is
    ``warn``, ``error`` or ``ignore``. ``runs`` is the folder of run records (default:
    ``<store>/_runs``).
    """
    from skfleet.store import ModelStore

    started = time.perf_counter()
    progress = progress or NullProgress()
    keys = [key] if isinstance(key, str) else (list(key) if key else None)
    options = RunOptions(
        keys, list(columns) if columns else None, if_exists, partition_rows, duplicate_keys, retries
    ).check()
    model_store = ModelStore(store)
    run_store = RunStore(runs) if runs else RunStore.for_model_store(model_store.uri)
    record = _resolve_resume(run_store, resume, out) if resume else None
    if record is not None:
        model = _resumed_model(record, model_store, model)
        options = options.resuming(record)
        if redact_url(source) != record.source:
            raise UsageError(
                f"--resume: run {record.run_id} read {record.source}, not {redact_url(source)}"
            )
    options.if_exists = options.if_exists or "fail"

    loaded = _load_model(model_store, model, trust)
    if record is not None and loaded.content_hash != record.model["content_hash"]:
        raise SkfleetError(
            f"--resume: model {loaded.ref} in {model_store.display} changed since run {record.run_id}"
        )
    remember_model(loaded.content_hash, loaded.model)
    handle = ModelHandle(
        # An absolute path: workers may run in another directory.
        model_store.root if model_store.local else model_store.uri,
        loaded.ref.name,
        loaded.ref.version,
        loaded.content_hash,
        trust,
    )
    with open_source(source, **(source_options or {})) as src:
        plan = plan_scoring(
            loaded.model,
            loaded.metadata,
            src.schema(),
            keys=options.keys,
            columns=options.columns,
            model_name=f"model {loaded.ref}",
            source_name=src.display_name,
        )
        if options.partition_rows is None:
            options.partition_rows = default_partition_rows(
                src.count_estimate(), len(plan.read_columns), _workers_hint(engine, workers)
            )
        partitions = src.partitions(options.partition_rows)
        if record is None:
            options.keys = list(plan.keys)
            record = RunRecord.new(
                new_run_id(),
                model={
                    "name": loaded.ref.name,
                    "version": loaded.ref.version,
                    "content_hash": loaded.content_hash,
                    "store": model_store.display,
                },
                source=source,
                sink=out,
                options={**options.to_record(), "engine": _engine_label(engine)},
                plan=[{"id": p.id, "rows_estimate": p.rows_estimate} for p in partitions],
            )
        else:
            _check_same_plan(record, partitions, src.display_name)
            record.attempts += 1
            record.status, record.error = "running", None
        _check_unique_ids(partitions, src.display_name)
        run_store.save(record)
        state = _Run(record, run_store, progress)
        sink = _open_sink(out, sink_options, plan, options, state)
        run = _Execution(state, src, sink, partitions, handle, plan, options, engine, workers)
        counts = run.execute()
        result = PredictResult(
            run_id=record.run_id,
            model=str(loaded.ref),
            rows_in=counts.rows_in,
            rows_out=counts.rows_out,
            partitions=len(partitions),
            seconds=round(time.perf_counter() - started, 3),
            skipped_partitions=counts.skipped,
            duplicate_keys=counts.duplicates,
            resumed=record.attempts > 1,
            output=redact_url(out),
            drift_report=state.drift,
            drift_partitions=len(state.drift_ids),
            model_loads=state.model_loads,
            task_seconds=round(state.task_seconds, 3),
            task_cpu_seconds=round(state.task_cpu_seconds, 3),
        )
        record.result = result.to_dict()
        state.save("committed")
        return result


def engine_for(engine: str | Engine | None, partitions: int) -> str | Engine | None:
    """The engine that scores ``partitions`` partitions. A pool this run would start on this
    machine (``dask:local``, ``processes``) cannot score a single partition any faster than this
    process, and starting one costs seconds (every worker imports scikit-learn), so a single
    partition runs in-process. A running cluster (``tcp://...``) is always used: its workers may
    reach data this machine cannot.

    >>> engine_for("dask:local", 1), engine_for("dask:local:4", 3), engine_for("tcp://h:8786", 1)
    ('local', 'dask:local:4', 'tcp://h:8786')
    """
    if partitions > 1 or isinstance(engine, Engine):
        return engine
    _, address, _ = parse_engine_spec(engine or DEFAULT_ENGINE)
    return "local" if address is None else engine


def _engine_label(engine: str | Engine | None) -> str:
    return redact_url(engine if isinstance(engine, str) else getattr(engine, "spec", "local"))


def _resumed_model(record: RunRecord, model_store: Any, model: str) -> str:
    """The exact version the run used, provided the user names the same model."""
    wanted = model_store.resolve(model)
    if wanted.name != record.model["name"]:
        raise UsageError(
            f"--resume: run {record.run_id} scored with model {record.model['name']}, "
            f"not {wanted.name}"
        )
    return f"{record.model['name']}@{record.model['version']}"


def _check_same_plan(record: RunRecord, partitions: list[Partition], source_name: str) -> None:
    ids = [p.id for p in partitions]
    if ids != record.plan_ids:
        raise SkfleetError(
            f"--resume: {source_name} now splits into other partitions than run "
            f"{record.run_id} recorded ({len(ids)} vs {len(record.plan_ids)}); the source "
            "changed, so resuming could duplicate or lose rows: start a new run"
        )


def _check_unique_ids(partitions: list[Partition], source_name: str) -> None:
    ids = [p.id for p in partitions]
    if len(set(ids)) != len(ids):
        raise SkfleetError(f"{source_name} planned duplicate partition ids")


def _open_sink(
    out: str, sink_options: dict | None, plan: ScoringPlan, options: RunOptions, state: _Run
) -> Sink:
    """Open (or, resuming, re-open) the output. A new run that cannot open it leaves no trace."""
    record = state.record
    try:
        sink = open_sink(out, **(sink_options or {}))
        try:
            sink.open(plan.schema, if_exists=options.if_exists, run_id=record.run_id)
        except OSError as exc:  # a backend that let a filesystem error through
            reason = exc.strerror or type(exc).__name__
            raise SkfleetError(f"cannot write {sink.display_name}: {reason}") from exc
    except BaseException as exc:
        if record.attempts > 1:
            state.save("failed", str(exc))
        else:  # nothing was written: the run never started
            state.runs.delete(record.run_id)
        raise
    return sink


@dataclass
class _Counts:
    rows_in: int
    rows_out: int
    skipped: int
    duplicates: int


@dataclass
class _Execution:
    """Runs the partitions that are not committed yet, then checks and publishes the output.

    Failures keep the committed partitions for ``--resume`` (the record says why the run
    stopped); only a user error found at the end (duplicate keys) drops the staged output.
    """

    state: _Run
    src: Source
    sink: Sink
    partitions: list[Partition]
    handle: ModelHandle
    plan: ScoringPlan
    options: RunOptions
    engine: str | Engine | None
    workers: int | None

    def execute(self) -> _Counts:
        state, sink = self.state, self.sink
        run_id = state.record.run_id
        try:
            done = sink.committed()
            todo = [p for p in self.partitions if p.id not in done]
            self._announce(len(todo))
            self._run(todo)
            rows_out = self._committed_rows()
            duplicates = self._check_duplicates()
            sink.commit()
        except _InputError as exc:
            sink.abort()
            state.save("aborted", str(exc.error))
            raise exc.error from None
        except KeyboardInterrupt:
            state.save("interrupted", "interrupted")
            raise PredictInterrupted(run_id) from None
        except SkfleetError as exc:
            state.save("failed", str(exc))
            raise
        except BaseException as exc:
            state.save("failed", f"{type(exc).__name__}: {exc}")
            raise
        ids = [p.id for p in self.partitions]
        rows_in = state.rows_read + sum(done.get(p, 0) for p in ids)
        return _Counts(rows_in, rows_out, len(self.partitions) - len(todo), duplicates)

    def _announce(self, todo: int) -> None:
        total, run_id = len(self.partitions), self.state.record.run_id
        if self.state.record.attempts > 1:
            self.state.progress.note(
                f"resuming run {run_id}: {total - todo} of {total} partitions already committed; "
                "the rest read the source as it is now (a new snapshot for PostgreSQL), so it "
                "must not have changed since the run started"
            )
        else:
            self.state.progress.note(f"run {run_id}: {total} partitions")

    def _run(self, todo: list[Partition]) -> None:
        state, total = self.state, len(self.partitions)
        progress = state.progress
        progress.start(total=total, description="predict")
        progress.advance(rows=0, tasks=total - len(todo))
        owned = not isinstance(self.engine, Engine)
        pool = None
        try:
            if not todo:
                return
            spec = engine_for(self.engine, len(todo))
            if spec != self.engine:
                progress.note("one partition to score: in this process, no cluster to start")
            pool = get_engine(spec, self.workers)
            if pool.dashboard_link:
                progress.note(f"dashboard: {pool.dashboard_link}")
            tasks = [
                PredictTask(
                    self.handle, self.src, self.sink, p, self.plan, self.options.duplicate_keys
                )
                for p in todo
            ]
            retries = self.options.retries
            try:
                for _, result in pool.map_unordered(predict_partition, tasks, retries=retries):
                    if result.error is not None:
                        if isinstance(result.error, DataError) and result.duplicate_example:
                            raise _InputError(result.error)
                        raise _named(result.error, result.partition_id)
                    state.add(result)
            except PartitionTaskError as exc:
                raise PartitionFailedError(
                    f"partition {exc.partition_id} failed after {retries + 1} attempt(s): "
                    f"{exc.message}; committed partitions are kept: finish with "
                    f"--resume {state.record.run_id}"
                ) from None
            except _engine_failures() as exc:
                # The pool itself broke (workers killed again and again, a lost scheduler).
                raise PartitionFailedError(
                    f"the {pool.spec} engine failed: {type(exc).__name__}: "
                    f"{redact_text(str(exc))}; committed partitions are kept: finish with "
                    f"--resume {state.record.run_id}"
                ) from exc
        finally:
            progress.stop()
            if owned and pool is not None:
                pool.close()

    def _committed_rows(self) -> int:
        committed = self.sink.committed()
        missing = [p.id for p in self.partitions if p.id not in committed]
        if missing:
            run_id = self.state.record.run_id
            raise SkfleetError(
                f"run {run_id}: partition {missing[0]} is not committed after the run "
                f"({len(missing)} missing); resume with --resume {run_id}"
            )
        return sum(committed[p.id] for p in self.partitions)

    def _check_duplicates(self) -> int:
        duplicates = self.state.duplicate_rows()
        if duplicates:
            example = (self.state.examples or [None])[0]
            message = _duplicate_message(self.plan.keys, example, duplicates)
            if self.options.duplicate_keys == "error":
                raise _InputError(DataError(message))
            warnings.warn(message.split("; pass")[0], DuplicateKeyWarning, stacklevel=4)
        return duplicates


def _engine_failures() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the engine broke rather than a partition failing."""
    from concurrent.futures.process import BrokenProcessPool

    found: list[type[BaseException]] = [BrokenProcessPool, TimeoutError, ConnectionError]
    try:
        from distributed import TimeoutError as DaskTimeoutError
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        found += [KilledWorker, CommClosedError, DaskTimeoutError]
    except ImportError:
        pass
    return tuple(found)


def _named(error: SkfleetError, partition_id: str) -> SkfleetError:
    """The same kind of error, its message prefixed with the partition it happened in."""
    try:
        return type(error)(f"partition {partition_id}: {error}")
    except Exception:  # a subclass with another constructor
        return SkfleetError(f"partition {partition_id}: {error}")


class _InputError(Exception):
    """Carries a user error found after the partitions ran, for which the staging is dropped."""

    def __init__(self, error: SkfleetError):
        super().__init__(str(error))
        self.error = error
