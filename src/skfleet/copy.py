"""``copy``: move a table from any source to any sink in parallel partitions, exactly once.

The client plans partitions and opens the sink; workers each read one partition straight from the
source and write it to the sink (a retried partition is a no-op thanks to the sink's ledger); the
client commits at the end. Nothing but partition descriptions crosses the wire.

On the default engine the work chooses where it runs (:mod:`skfleet.engine.choice`): partitions
are copied here, two at a time in threads (two reads from the source and two writes side by side:
the drivers, Arrow and the Parquet writer release the GIL), and the rest goes to a process pool
only when the pool would finish it sooner. The two streams already keep two cores busy, so a pool
of N workers counts as N / 2 times this process: on two cores a pool never pays, since starting
it costs seconds and its workers only share the same cores. ``--engine local`` copies two at a
time here too.

>>> import os, tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> d = tempfile.mkdtemp()
>>> pq.write_table(pa.table({"id": list(range(10))}), os.path.join(d, "in.parquet"))
>>> result = copy(os.path.join(d, "in.parquet"), os.path.join(d, "out.csv"), engine="local")
>>> result.rows, result.partitions
(10, 1)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from skfleet.data import open_sink, open_source
from skfleet.data.base import Partition, Sink, Source, check_if_exists
from skfleet.engine import Engine
from skfleet.engine.choice import STREAMS, WorkEstimate
from skfleet.engine.session import EngineSession
from skfleet.errors import UsageError
from skfleet.util.api_module import make_callable
from skfleet.util.choices import COPY_PARTITION_ROWS as DEFAULT_PARTITION_ROWS
from skfleet.util.progress import Progress


@dataclass(frozen=True)
class CopyTask:
    """Everything one worker needs to copy one partition: small and picklable."""

    source: Source
    sink: Sink
    partition: Partition
    schema: pa.Schema


#: The engine when the caller names none: a process pool, which the work may decline (above).
DEFAULT_ENGINE = "processes"


@dataclass
class CopyResult:
    rows: int
    partitions: int
    seconds: float
    run_id: str
    skipped_partitions: int = 0
    #: Where the partitions ran, and on the default engine why (``local (...)``, ``processes:4``;
    #: ``none`` when a resumed run had nothing left to copy).
    engine: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Give ``table`` exactly ``schema`` (column order and types), as the sink was opened with."""
    if table.schema.equals(schema):
        return table
    return table.select(schema.names).cast(schema)


def _read(task: CopyTask) -> pa.Table:
    return conform(task.source.read(task.partition), task.schema)


def copy_partition(task: CopyTask) -> tuple[str, int, int, float]:
    """Worker side: read one partition and commit it. Returns (partition id, rows read, rows
    written, seconds)."""
    started = time.perf_counter()
    table = _read(task)
    written = task.sink.write(task.partition.id, table)
    return task.partition.id, table.num_rows, written, time.perf_counter() - started


def copy(
    src: str,
    dst: str,
    *,
    if_exists: str = "fail",
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    engine: str | Engine | None = DEFAULT_ENGINE,
    source_options: dict[str, Any] | None = None,
    sink_options: dict[str, Any] | None = None,
    run_id: str | None = None,
    retries: int = 2,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy the table at ``src`` to ``dst`` (any two data URLs)."""
    check_if_exists(if_exists)
    if partition_rows < 1:
        raise UsageError(f"--partition-rows must be positive, not {partition_rows}")
    # The default engine weighs the work (see the module docs); one the user named is used.
    choose = engine is None or engine == DEFAULT_ENGINE
    session = EngineSession(engine, default=DEFAULT_ENGINE, progress=progress, choose=choose)
    started = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex[:16]
    with open_source(src, **(source_options or {})) as source, session:
        schema = source.schema()
        partitions = source.partitions(partition_rows)
        sink = open_sink(dst, **(sink_options or {}))
        sink.open(schema, if_exists=if_exists, run_id=run_id)
        try:
            done = sink.committed()
            todo = [p for p in partitions if p.id not in done]
            skipped_rows = sum(done.get(p.id, 0) for p in partitions)
            tasks = [CopyTask(source, sink, p, schema) for p in todo]
            copied = session.run(
                copy_partition,
                tasks,
                description="copy",
                retries=retries,
                rows=lambda result: result[1],
                done=len(partitions) - len(todo),
                done_rows=skipped_rows,
                threads=STREAMS,
                work=WorkEstimate(
                    rows=lambda task: task.partition.rows_estimate,
                    measured=lambda result: (result[1], result[3]),
                    streams=STREAMS,
                ),
            )
            rows = skipped_rows + sum(result[1] for result in copied)
            # Resumed with every partition committed: nothing ran anywhere.
            used = (session.choice or session.used_spec) if tasks else "none"
            sink.commit()
        except BaseException:
            sink.abort()
            raise
    return CopyResult(
        rows=rows,
        partitions=len(partitions),
        seconds=round(time.perf_counter() - started, 3),
        run_id=run_id,
        skipped_partitions=len(partitions) - len(todo),
        engine=used,
    )


# ``skfleet.copy(...)``: the module is the function (see skfleet.util.api_module).
make_callable(__name__, f"{__name__}:copy")
