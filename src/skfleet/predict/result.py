"""What a prediction run returns: :class:`PredictResult`, whose ``to_dict()`` is ``--json``.

>>> result = PredictResult("r1", "line@1", rows_in=10, rows_out=10, partitions=1, seconds=2.0)
>>> result.rows_per_second, result.to_dict()["drift"]
(5.0, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    #: ``--incremental``: the range scored and the watermark after the run (None otherwise).
    incremental: dict | None = None
    #: ``--bad-rows skip|quarantine``: values the feature contract refused, per reason, and
    #: where they were quarantined (password masked; None: not quarantined).
    bad_rows: dict[str, int] = field(default_factory=dict)
    quarantine: str | None = None
    #: Where the partitions ran and why: ``local (1,000 rows in one partition: ...)``,
    #: ``dask:local:2 (1 of 10 partitions in this process while it started)``, ``tcp://...``.
    engine: str = ""

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
            "incremental": self.incremental,
            "bad_rows": dict(self.bad_rows),
            "quarantine": self.quarantine,
            "engine": self.engine,
        }
