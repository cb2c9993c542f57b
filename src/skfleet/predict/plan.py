"""Planning a run: its options, partition sizing, and the checks that make ``--resume`` safe."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from skfleet.data.base import Partition, check_if_exists
from skfleet.engine import Engine
from skfleet.errors import (
    SkfleetError,
    UsageError,
)
from skfleet.predict.runs import RunRecord, RunStore, check_run_id
from skfleet.util.choices import DEFAULT_ENGINE, DUPLICATE_KEY_CHOICES
from skfleet.util.redact import redact_url

#: Partition sizing: about this many cells (rows x columns read) per task, which is a few seconds
#: of reading + scoring + writing for typical models, within these bounds...
CELLS_PER_TASK = 5_000_000


MIN_PARTITION_ROWS = 10_000


MAX_PARTITION_ROWS = 500_000


#: ... and at least this many tasks per worker, so the load balances and the progress bar moves.
TASKS_PER_WORKER = 4


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


#: A job reading fewer cells (rows x columns read) than this does not start a local cluster in the
#: background: about a second of reading and scoring for a linear model, several times less than
#: the cluster's start-up. Its partitions run here unless the first ones, measured, say a pool
#: would finish the rest sooner (:mod:`skfleet.engine.choice`); then the pool starts only then.
WARM_UP_CELLS = 10_000_000


def worth_warming(partitions: Sequence[Partition], columns: int) -> bool:
    """Whether to start a local pool in the background for these partitions, before any runs.

    >>> worth_warming([Partition("a", 1_000)], 20)  # one partition: it runs here
    False
    >>> worth_warming([Partition(str(i), 50_000) for i in range(4)], 20)
    False
    >>> worth_warming([Partition(str(i), 200_000) for i in range(10)], 23)
    True
    """
    cells = sum(max(0, p.rows_estimate) for p in partitions) * max(1, columns)
    return len(partitions) > 1 and cells >= WARM_UP_CELLS


def workers_hint(engine: str | Engine | None, workers: int | None) -> int:
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


def check_choice(flag: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UsageError(f"{flag} must be one of {', '.join(choices)}, not {value!r}")


def resolve_resume(runs: RunStore, resume: str | bool, dst: str) -> RunRecord:
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
    #: ``--bad-rows`` mode (None: not given; a new run then uses ``error``).
    bad_rows: str | None = None

    def check(self) -> RunOptions:
        check_choice("--duplicate-keys", self.duplicate_keys, DUPLICATE_KEY_CHOICES)
        if self.if_exists is not None:
            check_if_exists(self.if_exists)
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
            ("bad_rows", "--bad-rows"),
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


def resumed_model(record: RunRecord, model_store: Any, model: str) -> str:
    """The exact version the run used, provided the user names the same model."""
    wanted = model_store.resolve(model)
    if wanted.name != record.model["name"]:
        raise UsageError(
            f"--resume: run {record.run_id} scored with model {record.model['name']}, "
            f"not {wanted.name}"
        )
    return f"{record.model['name']}@{record.model['version']}"


def check_same_plan(record: RunRecord, partitions: list[Partition], source_name: str) -> None:
    ids = [p.id for p in partitions]
    if ids != record.plan_ids:
        raise SkfleetError(
            f"--resume: {source_name} now splits into other partitions than run "
            f"{record.run_id} recorded ({len(ids)} vs {len(record.plan_ids)}); the source "
            "changed, so resuming could duplicate or lose rows: start a new run"
        )


def check_unique_ids(partitions: list[Partition], source_name: str) -> None:
    ids = [p.id for p in partitions]
    if len(set(ids)) != len(ids):
        raise SkfleetError(f"{source_name} planned duplicate partition ids")
