"""``predict``: score a table of any size with a stored model, in partitions, exactly once.

The client checks the model and plans the output from its ``model.json`` alone (no scikit-learn
import, see :func:`_plan_model`), plans the source's partitions, records the plan as a run
(:mod:`skfleet.predict.runs`), opens the sink and hands each worker a small task: a partition
description plus the model's store URI, version and content hash. A worker fetches
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

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skfleet.data import open_sink, open_source
from skfleet.data.base import Sink
from skfleet.engine import Engine, parse_engine_spec
from skfleet.engine.choice import pool_can_pay
from skfleet.engine.session import warm_up, warm_workers
from skfleet.errors import SkfleetError, UntrustedModelError, UsageError
from skfleet.predict.execution import Execution
from skfleet.predict.frame import is_in_memory, score_frame
from skfleet.predict.incremental import check_options as check_incremental
from skfleet.predict.incremental import if_exists_for as incremental_if_exists
from skfleet.predict.incremental import prepare as prepare_incremental
from skfleet.predict.plan import (
    DEFAULT_ENGINE,
    RunOptions,
    check_same_plan,
    check_unique_ids,
    default_partition_rows,
    resolve_resume,
    resumed_model,
    workers_hint,
    worth_warming,
)
from skfleet.predict.quarantine import abort_quietly, check_bad_rows, open_for_run, resolve_url
from skfleet.predict.result import PredictResult
from skfleet.predict.runs import RunRecord, RunStore, new_run_id
from skfleet.predict.scoring import ScoringPlan, plan_scoring
from skfleet.predict.state import RunState
from skfleet.predict.task import ModelHandle, cached_by_hash, remember_model
from skfleet.util.progress import NullProgress, Progress
from skfleet.util.redact import redact_url


@dataclass(frozen=True)
class _PlannedModel:
    """The model as the client knows it: ``model.json``, and the estimator only when this process
    already holds it or had to load it (a ``model.json`` from before the interface was recorded)."""

    ref: Any
    metadata: dict
    content_hash: str
    model: Any = None


def _plan_model(model_store: Any, model: str, trust: bool) -> _PlannedModel:
    """Check ``model`` from its ``model.json`` without loading it (nor importing scikit-learn).

    The client plans from the recorded interface (inputs, classes, label type, predict_proba);
    whichever process scores, in-process or a worker, loads the artifact once, checks it against
    ``content_hash`` and judges every name in it (:func:`~skfleet.store.load_artifact`). A model
    whose ``model.json`` lists types outside the trusted list is refused here already, in one
    line, before anything is written. A repeated run in one process reuses the model it holds.
    """
    from skfleet.store.metadata import check_library_versions, recorded_interface

    ref = model_store.resolve(model)
    meta = model_store.metadata(ref)
    artifact = meta.get("artifact") or {}
    digest = artifact.get("sha256")
    if not isinstance(digest, str):
        raise SkfleetError(
            f"model.json of {ref} in store {model_store.display} has no artifact hash"
        )
    untrusted = artifact.get("untrusted_types")
    if untrusted and not trust:
        raise UntrustedModelError(
            f"model {ref} refers to {untrusted[0]!r}, outside the trusted types "
            "(pass --trust / trust=True only for files you wrote)"
        )
    check_library_versions(meta, "warn", label=f"model {ref}")
    held = cached_by_hash(digest, trust)
    if held is None and recorded_interface(meta) is None:
        held = model_store.load(ref, trust=trust).model
        remember_model(digest, held, trust)
    return _PlannedModel(ref, meta, digest, held)


def predict(
    model: Any,
    source: Any,
    out: str | None = None,
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
    incremental: str | None = None,
    rescore_all: bool = False,
    bad_rows: str | None = None,
) -> PredictResult:
    """Score the table at ``source`` with the stored ``model`` (``NAME`` or ``NAME@V``) into ``out``.

    ``key`` names the columns copied to the output (default: the model's ``key_columns``);
    ``columns`` picks output columns among ``prediction`` and ``proba_<class>``; ``resume`` is a
    run id, or True for the latest unfinished run writing to ``out``; ``duplicate_keys`` is
    ``warn``, ``error`` or ``ignore``. ``runs`` is the folder of run records (default:
    ``<store>/_runs``). ``incremental`` names a column that only grows: the run scores only
    rows above the watermark the output keeps for this model and source, and moves it at commit
    (:mod:`skfleet.predict.incremental`); ``rescore_all`` scores every row again into a replaced
    output. ``bad_rows`` is ``error`` (default), ``skip``, ``quarantine`` or ``quarantine=URL``:
    what a row the feature contract cannot encode does (:mod:`skfleet.predict.quarantine`).

    In a notebook: ``predict(model, frame)`` with a pandas DataFrame or pyarrow Table and no
    ``out`` scores it in this process and returns a DataFrame of the output columns, indexed like
    ``frame`` (``model`` may also be what :func:`skfleet.load` returned).
    """
    from skfleet.store import LoadedModel, ModelStore

    if is_in_memory(source) or isinstance(model, LoadedModel):
        if out is not None or isinstance(source, str):
            raise UsageError(
                "predict(model, table) scores a DataFrame or Arrow table in memory and returns "
                "the scores; to write them, pass the model's name, a source URL and out="
            )
        loaded = model if isinstance(model, LoadedModel) else ModelStore(store).load(model, trust)
        return score_frame(loaded, source, key=key, columns=columns)
    if out is None:
        raise UsageError("predict: out= is required when the source is a URL")

    started = time.perf_counter()
    progress = progress or NullProgress()
    keys = [key] if isinstance(key, str) else (list(key) if key else None)
    options = RunOptions(
        keys, list(columns) if columns else None, if_exists, partition_rows, duplicate_keys, retries
    ).check()
    check_incremental(incremental, rescore_all, if_exists)
    bad_mode, quarantine_url = check_bad_rows(bad_rows)
    options.bad_rows = None if bad_rows is None else bad_mode
    model_store = ModelStore(store)
    run_store = RunStore(runs) if runs else RunStore.for_model_store(model_store.uri)
    record = resolve_resume(run_store, resume, out) if resume else None
    if record is not None:
        model = resumed_model(record, model_store, model)
        options = options.resuming(record)
        if redact_url(source) != record.source:
            raise UsageError(
                f"--resume: run {record.run_id} read {record.source}, not {redact_url(source)}"
            )
    given_if_exists = options.if_exists
    options.if_exists = options.if_exists or "fail"
    options.bad_rows = options.bad_rows or "error"
    quarantine_url = resolve_url(
        options.bad_rows, quarantine_url, out, record.options if record else None
    )

    loaded = _plan_model(model_store, model, trust)
    if record is not None and loaded.content_hash != record.model["content_hash"]:
        raise SkfleetError(
            f"--resume: model {loaded.ref} in {model_store.display} changed since run {record.run_id}"
        )
    handle = ModelHandle(
        # An absolute path: workers may run in another directory.
        model_store.root if model_store.local else model_store.uri,
        loaded.ref.name,
        loaded.ref.version,
        loaded.content_hash,
        trust,
    )
    with contextlib.ExitStack() as stack:
        # A running cluster (tcp://) is connected to while the run is planned, and its partitions
        # are sized for the workers it has (an unknown cluster is planned for 8).
        running = isinstance(engine, str) and parse_engine_spec(engine)[1] is not None
        if running:
            stack.callback(warm_up(engine, workers))
        src = stack.enter_context(open_source(source, **(source_options or {})))
        plan = plan_scoring(
            loaded.model,
            loaded.metadata,
            src.schema(),
            keys=options.keys,
            columns=options.columns,
            model_name=f"model {loaded.ref}",
            source_name=src.display_name,
        )
        model_info = {
            "name": loaded.ref.name,
            "version": loaded.ref.version,
            "content_hash": loaded.content_hash,
            "store": model_store.display,
        }
        rng = sink = None
        # A resumed run's range ({} when it was not incremental), None for a new run.
        recorded = (record.options.get("incremental") or {}) if record is not None else None
        if incremental or recorded:
            sink = open_sink(out, **(sink_options or {}))
            rng = prepare_incremental(
                src,
                sink,
                incremental,
                model_info,
                source,
                rescore_all=rescore_all,
                runs=run_store,
                out=out,
                recorded=recorded,
            )
            if rng.empty:  # nothing new: no run, no cluster, nothing written
                return PredictResult(
                    "",
                    str(loaded.ref),
                    0,
                    0,
                    0,
                    round(time.perf_counter() - started, 3),
                    output=redact_url(out),
                    incremental=rng.summary(),
                )
            if record is None:
                options.if_exists = incremental_if_exists(rng, given_if_exists)
        if options.partition_rows is None:
            options.partition_rows = default_partition_rows(
                rng.new_rows if rng else src.count_estimate(),
                len(plan.read_columns),
                (running and warm_workers(engine, workers)) or workers_hint(engine, workers),
            )
        partitions = src.partitions(options.partition_rows)
        # The default engine may keep the work here; on a machine whose pool is no faster than
        # this process's threads it always does, and a pool starting beside it only competes.
        chosen = engine in (None, DEFAULT_ENGINE)
        useful = not chosen or pool_can_pay(workers_hint(engine, workers))
        if not running and useful and worth_warming(partitions, len(plan.read_columns)):
            # Much to do: a local cluster starts (its workers importing scikit-learn) while the
            # run is recorded and the sink opens (a small job runs in this process, no cluster).
            stack.callback(warm_up(DEFAULT_ENGINE if engine is None else engine, workers))
        if record is None:
            options.keys = list(plan.keys)
            record = RunRecord.new(
                new_run_id(),
                model=model_info,
                source=source,
                sink=out,
                options={
                    **options.to_record(),
                    "engine": _engine_label(engine),
                    "incremental": rng.to_record() if rng else None,
                    "quarantine": redact_url(quarantine_url) if quarantine_url else None,
                },
                plan=[{"id": p.id, "rows_estimate": p.rows_estimate} for p in partitions],
            )
        else:
            check_same_plan(record, partitions, src.display_name)
            record.attempts += 1
            record.status, record.error = "running", None
        check_unique_ids(partitions, src.display_name)
        run_store.save(record)
        state = RunState(record, run_store, progress)
        quarantine = None
        if quarantine_url is not None:  # first: an unwritable quarantine fails before any output
            quarantine = open_for_run(quarantine_url, state, options.if_exists)
        if rng is not None:  # stored by the commit that publishes the run's rows
            sink.set_watermark(rng.stream, rng.watermark_state(record.model, record.run_id))
        try:
            sink = _open_sink(out, sink_options, plan, options, state, sink)
        except BaseException:
            if record.attempts == 1:
                abort_quietly(quarantine)
            raise
        run = Execution(
            state, src, sink, partitions, handle, plan, options, engine, workers, quarantine
        )
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
            incremental=rng.summary() if rng else None,
            bad_rows=dict(state.bad_rows),
            quarantine=redact_url(quarantine_url) if quarantine_url else None,
            engine=redact_url(counts.engine),
        )
        record.result = result.to_dict()
        state.save("committed")
        return result


def _engine_label(engine: str | Engine | None) -> str:
    return redact_url(engine if isinstance(engine, str) else getattr(engine, "spec", "local"))


def _open_sink(
    out: str,
    sink_options: dict | None,
    plan: ScoringPlan,
    options: RunOptions,
    state: RunState,
    sink: Sink | None = None,
) -> Sink:
    """Open (or, resuming, re-open) the output. A new run that cannot open it leaves no trace."""
    record = state.record
    try:
        sink = sink or open_sink(out, **(sink_options or {}))
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
