"""Running a planned prediction: partition tasks on the engine, then commit or keep for
``--resume`` (the bookkeeping as results arrive is :mod:`skfleet.predict.state`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

from skfleet.data.base import Partition, Sink, Source
from skfleet.data.reach import unreachable_reason
from skfleet.data.registry import scheme_of
from skfleet.engine import Engine
from skfleet.engine.choice import STREAMS, WorkEstimate
from skfleet.engine.session import EngineSession
from skfleet.errors import (
    DataError,
    PartitionFailedError,
    SkfleetError,
    UsageError,
)
from skfleet.predict.keys import DuplicateKeyWarning, duplicate_message
from skfleet.predict.plan import DEFAULT_ENGINE, RunOptions
from skfleet.predict.quarantine import abort_quietly
from skfleet.predict.scoring import ScoringPlan
from skfleet.predict.state import RunState
from skfleet.predict.task import (
    ModelHandle,
    PartitionResult,
    PartitionTaskError,
    PredictTask,
    cached_model,
    predict_partition,
)
from skfleet.util.redact import redact_text, redact_url


class PredictInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C); what it committed is kept for ``--resume``."""

    def __init__(self, run_id: str):
        super().__init__(run_id)
        self.run_id = run_id


@dataclass
class Counts:
    rows_in: int
    rows_out: int
    skipped: int
    duplicates: int
    #: Where the partitions ran and why (``local (1,000 rows in one partition: ...)``).
    engine: str = ""


@dataclass
class Execution:
    """Runs the partitions that are not committed yet, then checks and publishes the output.

    Failures keep the committed partitions for ``--resume`` (the record says why the run
    stopped); only a user error found at the end (duplicate keys) drops the staged output.
    The check across partitions runs in the sink's backend, on the run's engine, before the
    commit (:meth:`~skfleet.data.base.Sink.duplicate_keys`).
    """

    state: RunState
    src: Source
    sink: Sink
    partitions: list[Partition]
    handle: ModelHandle
    plan: ScoringPlan
    options: RunOptions
    engine: str | Engine | None
    workers: int | None
    #: Where ``--bad-rows quarantine`` writes the refused values (opened with the run's id).
    quarantine: Sink | None = None

    def execute(self) -> Counts:
        state, sink = self.state, self.sink
        run_id = state.record.run_id
        try:
            done = sink.committed()
            todo = [p for p in self.partitions if p.id not in done]
            self._announce(len(todo))
            mode = self._duplicate_keys()
            if mode != "ignore":
                sink.track_keys(self.plan.keys)  # before the tasks: they carry the sink
            session = EngineSession(
                self.engine,
                default=DEFAULT_ENGINE,
                workers=self.workers,
                progress=state.progress,
                # The default engine weighs the work (a small job runs here, see
                # skfleet.engine.choice); one the user sized (dask:local:2, processes) is used.
                choose=self.engine in (None, DEFAULT_ENGINE),
            )
            with session:
                self._run(session, todo, mode)
                engine = session.choice or session.used_spec
                rows_out = self._committed_rows()
                duplicates = self._check_duplicates(session) if mode != "ignore" else 0
            if self.quarantine is not None:
                # First: once the scores are published the run is done, and its quarantine
                # must be there by then.
                self.quarantine.commit()
            sink.commit()
        except _InputError as exc:
            sink.abort()
            abort_quietly(self.quarantine)
            state.save("aborted", str(exc.error))
            raise exc.error from None
        except KeyboardInterrupt:
            state.save("interrupted", "interrupted")
            raise PredictInterrupted(run_id) from None
        except SkfleetError as exc:
            # A partition or the engine failing says "finish with --resume": keep the run.
            self._failed(str(exc), resumable=isinstance(exc, PartitionFailedError))
            raise
        except BaseException as exc:
            self._failed(f"{type(exc).__name__}: {exc}", resumable=True)
            raise
        ids = [p.id for p in self.partitions]
        rows_in = state.rows_read + sum(done.get(p, 0) for p in ids)
        return Counts(rows_in, rows_out, len(self.partitions) - len(todo), duplicates, engine)

    def _failed(self, reason: str, resumable: bool) -> None:
        """Record a failed run for ``--resume``, or, when a first run fails on the input before
        it committed anything (a version mismatch at connect, a model the workers refuse, bad
        data in the first partition), leave no trace: no staging, no run record, the output as
        it was."""
        state = self.state
        try:
            started = resumable or state.record.attempts > 1 or bool(self.sink.committed())
        except Exception:  # the sink cannot even say: keep everything for --resume
            started = True
        if started:
            state.save("failed", reason)
            return
        try:
            self.sink.abort()
        except Exception:
            state.save("failed", reason)
            return
        abort_quietly(self.quarantine)
        state.runs.delete(state.record.run_id)

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

    def _duplicate_keys(self) -> str:
        """The ``--duplicate-keys`` mode the checks run with: the user's, or ``ignore`` when the
        source guarantees the keys are unique (each source row is in one partition, so the output
        cannot repeat a key and the checks would only cost time). The run record keeps the
        user's; a resumed run asks the source again."""
        mode, keys = self.options.duplicate_keys, self.plan.keys
        if mode == "ignore" or not self.src.unique_keys(keys):
            return mode
        self.state.progress.note(
            f"keys ({', '.join(keys)}) are unique in the source (its primary key or a unique "
            "index): not checked again"
        )
        return "ignore"

    def _run(self, session: EngineSession, todo: list[Partition], duplicate_keys: str) -> None:
        state, total = self.state, len(self.partitions)
        retries = self.options.retries

        def take(_: int, result: PartitionResult) -> None:
            if result.error is not None:
                if isinstance(result.error, DataError) and result.duplicate_example:
                    raise _InputError(result.error)
                raise _named(result.error, result.partition_id)
            state.add(result)
            # Merged: the session keeps every result until the run ends, not its report.
            result.drift = result.profile = None

        handle = self._handle_for(session.engine_for(len(todo), "predict"))
        tasks = [
            PredictTask(
                handle,
                self.src,
                self.sink,
                p,
                self.plan,
                duplicate_keys,
                bad_rows=self.options.bad_rows or "error",
                quarantine=self.quarantine,
                run_id=state.record.run_id,
            )
            for p in todo
        ]
        try:
            session.run(
                predict_partition,
                tasks,
                description="predict",
                retries=retries,
                on_result=take,
                rows=lambda result: result.rows_in,
                done=total - len(todo),
                # Weighed from the partitions scored here, the model loaded first (a one-off).
                work=WorkEstimate(
                    rows=lambda task: task.partition.rows_estimate,
                    measured=lambda result: (result.rows_in, result.seconds),
                    prepare=lambda: cached_model(handle),
                    streams=STREAMS,
                ),
            )
        except PartitionTaskError as exc:
            raise PartitionFailedError(
                f"partition {exc.partition_id} failed after {retries + 1} attempt(s): "
                f"{exc.message}; committed partitions are kept: finish with "
                f"--resume {state.record.run_id}"
            ) from None
        except _engine_failures() as exc:
            # The pool itself broke (workers killed again and again, a lost scheduler).
            raise PartitionFailedError(
                f"the {session.used_spec} engine failed: {type(exc).__name__}: "
                f"{redact_text(str(exc))}; committed partitions are kept: finish with "
                f"--resume {state.record.run_id}"
            ) from exc

    def _handle_for(self, pool: Engine) -> ModelHandle:
        """The model handle the workers of ``pool`` can use, after checking they can reach the
        data. Workers elsewhere cannot read a model store that is a folder here: its artifact is
        put on each of them once, and the tasks refer to it."""
        if pool.on_this_machine:
            return self.handle
        for role, url in (("source", self.src.url), ("output", self.sink.url)):
            reason = unreachable_reason(url)
            if reason is not None:
                raise _InputError(
                    UsageError(
                        f"the {role} {redact_url(url)} cannot be used by the workers of "
                        f"{pool.spec}, which run on other machines: {reason}"
                    )
                )
        if scheme_of(self.handle.store) != "file":
            return self.handle  # s3://...: the workers read it themselves
        from skfleet.store import ModelStore

        data = ModelStore(self.handle.store).artifact_bytes(self.handle.ref)
        return replace(self.handle, artifact=pool.share(data))

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

    def _check_duplicates(self, session: EngineSession) -> int:
        """Repeated keys over the whole run, counted by the sink where its rows are; the client
        gets a count and an example. ``error`` fails the run (the staging is dropped)."""
        keys, retries = self.plan.keys, self.options.retries

        def run_tasks(fn, items):
            return session.run(fn, items, description="check keys", retries=retries)

        found = self.sink.duplicate_keys(keys, run_tasks)
        if found is None:
            # A backend that cannot count across partitions: each partition was checked alone.
            if self.state.example is None:
                warnings.warn(
                    f"{self.sink.display_name} cannot check keys across partitions; each "
                    "partition was checked by itself",
                    DuplicateKeyWarning,
                    stacklevel=4,
                )
                return 0
            message = duplicate_message(keys, self.state.example)
        elif not found.rows:
            return 0
        else:
            message = duplicate_message(keys, found.example or self.state.example, found.rows)
        if self.options.duplicate_keys == "error":
            raise _InputError(DataError(message))
        warnings.warn(message.split("; pass")[0], DuplicateKeyWarning, stacklevel=4)
        return 0 if found is None else found.rows


def _engine_failures() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the engine broke rather than a partition failing."""
    from concurrent.futures import CancelledError
    from concurrent.futures.process import BrokenProcessPool

    # CancelledError: a Dask client that loses its scheduler cancels every pending future
    # (FutureCancelledError, "scheduler-connection-lost"); no partition failed, the engine did.
    found: list[type[BaseException]] = [
        BrokenProcessPool,
        CancelledError,
        TimeoutError,
        ConnectionError,
    ]
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
