"""A prediction run's bookkeeping on the client as partition results arrive: the run record's
checkpoints, the merged drift report and training-profile counts, and the run's counters.

>>> from skfleet.predict.runs import RunRecord, RunStore
>>> from skfleet.util.progress import NullProgress
>>> import tempfile
>>> runs = RunStore(tempfile.mkdtemp())
>>> record = RunRecord.new("r1", model={"name": "m"}, source="in.parquet", sink="out/",
...                        options={}, plan=[{"id": "p0", "rows_estimate": 10}])
>>> state = RunState(record, runs, NullProgress())
>>> state.save("running")
>>> runs.load("r1").status, state.rows_read
('running', 0)
"""

from __future__ import annotations

import time
from typing import Any

from skfleet.predict.quarantine import add_counts
from skfleet.predict.runs import RunRecord, RunStore
from skfleet.predict.task import PartitionResult, merge_drift
from skfleet.util.progress import Progress
from skfleet.util.redact import redact_text

#: How often (seconds) the run record is re-written while partitions finish.
CHECKPOINT_SECONDS = 5.0


def _drift_from_dict(data: dict | None) -> Any:
    if not data:
        return None
    from skfleet.features import DriftReport

    return DriftReport.from_dict(data)


def _profile_from_dict(data: dict | None) -> Any:
    if not data:
        return None
    from skfleet.features.run_profile import RowProfile

    return RowProfile.from_dict(data)


class RunState:
    """Bookkeeping of one client run as results arrive: record checkpoints, merged drift, counters.

    Its size does not grow with the rows (the drift report is counts per column) and grows with
    the partitions only through the record's plan and the ids of partitions whose drift is in.
    """

    def __init__(self, record: RunRecord, runs: RunStore, progress: Progress):
        self.record = record
        self.bad_rows = dict(record.bad_rows)
        self.runs = runs
        self.progress = progress
        self.drift = _drift_from_dict(record.drift)
        self.drift_ids = set(record.drift_partitions)
        self.profile = _profile_from_dict(record.profile)
        self.profile_ids = set(record.profile_partitions)
        self.example: str | None = None  # a key repeated within a partition, if any
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
        if result.bad_rows:
            self.bad_rows = add_counts(self.bad_rows, result.bad_rows)
        if result.duplicate_example and self.example is None:
            self.example = result.duplicate_example
        if result.drift is not None and result.partition_id not in self.drift_ids:
            self.drift = merge_drift(self.drift, result.drift)
            self.drift_ids.add(result.partition_id)
        # Once per partition id: a partition retried or resumed after its result came in is
        # counted once.
        if result.profile is not None and result.partition_id not in self.profile_ids:
            merged = result.profile if self.profile is None else self.profile.merge(result.profile)
            self.profile = merged
            self.profile_ids.add(result.partition_id)
        self.record.partitions_done += 1
        self.record.rows_done += result.rows_in
        if time.monotonic() - self._last_save > CHECKPOINT_SECONDS:
            self.save()

    def save(self, status: str | None = None, error: str | None = None) -> None:
        if status is not None:
            self.record.status = status
        if error is not None:
            self.record.error = redact_text(error)
        self.record.drift = None if self.drift is None else self.drift.to_dict()
        self.record.drift_partitions = sorted(self.drift_ids)
        self.record.profile = None if self.profile is None else self.profile.to_dict()
        self.record.profile_partitions = sorted(self.profile_ids)
        self.record.bad_rows = dict(self.bad_rows)
        self.runs.save(self.record)
        self._last_save = time.monotonic()
