"""Real faults across hosts, in the middle of ``skfleet predict`` PostgreSQL -> PostgreSQL: a
worker host killed, a worker's link cut in the middle of its write, the scheduler restarted, the
database host restarted. Each ends with every row exactly once, equal to in-process scoring, and
the time from the fault to the finished output measured and bounded.

Every run writes through a :class:`~tests.cluster.workload.WriteGate`: the faults strike while
each worker is provably inside a write transaction, whatever the speed of the machine.
"""

from __future__ import annotations

import time

import pytest

from tests.cluster.testbed import HOSTS
from tests.cluster.workload import (
    WriteGate,
    assert_same_rows,
    load_rows,
    new_table,
    predict_args,
    train,
    wait_until,
)

pytestmark = pytest.mark.slow

ROWS = 4_000
PARTITION_ROWS = "500"
#: Recovery bounds (seconds from the fault to the finished output). Dask declares a silent worker
#: dead after its TCP timeout (distributed.comm.timeouts.tcp, 30 s); the rest is client start-up
#: and the retried partitions, on a loaded two-core machine.
KILLED_WORKER_BOUND = 60
CUT_LINK_BOUND = 90
RESTART_BOUND = 120


@pytest.fixture(scope="module")
def scored(testbed):
    """Input rows, a model, and the client's in-process scores of the rows (the reference)."""
    urls = load_rows(testbed, ROWS, s3=False)
    model = train(testbed, urls["pg"])
    reference = new_table("reference")
    # The same partitions as the cluster runs: scores are then equal to the last bit (BLAS sums a
    # batch in blocks, so another batch size may differ in the last digit).
    args = predict_args(model, urls["pg"], testbed.pg.url(reference), "--engine", "local")
    args += ["--partition-rows", PARTITION_ROWS]
    done = testbed.skfleet(*args)
    assert done.returncode == 0, done.stderr
    return urls["pg"], model, reference


def _gated_run(bed, scored, log: str):
    """Start a cluster run appending to a new table behind a closed gate; wait until both
    workers are inside a write transaction. Returns (table, gate, client process, arguments)."""
    source, model, reference = scored
    table = new_table("scores")
    bed.sql(f"CREATE TABLE {table} (LIKE {reference})")
    gate = WriteGate(bed, table)
    args = predict_args(model, source, bed.pg.url(table), "--if-exists", "append")
    args += ["--partition-rows", PARTITION_ROWS, "--engine", bed.scheduler_address]
    proc = bed.spawn_skfleet(*args, log=log)
    workers = sorted(HOSTS[w] for w in bed.worker_names)
    wait_until(
        lambda: gate.waiting() == workers,
        180,
        "both workers to wait at the gate",
        detail=lambda: f"waiting: {gate.waiting()}\n{bed.logs()}",
    )
    return table, gate, proc, args


def _finish(proc, timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except Exception:
        proc.kill()
        raise


def test_worker_host_killed(healed_testbed, scored):
    bed = healed_testbed
    table, gate, proc, _ = _gated_run(bed, scored, "killed")
    started = time.monotonic()
    bed.kill_host("worker1")
    gate.open()
    assert _finish(proc, KILLED_WORKER_BOUND + 60) == 0, bed.log("client", "killed")
    recovery = time.monotonic() - started
    assert_same_rows(bed, bed.pg.url(table), bed.pg.url(scored[2]), ROWS)
    print(f"worker host killed: output complete {recovery:.1f}s after the kill")
    assert recovery < KILLED_WORKER_BOUND, f"{recovery:.1f}s"


def test_worker_link_cut_mid_write(healed_testbed, scored):
    """worker1's cable is pulled while its write transaction is open; its partition is redone by
    worker2, which must neither wait long on the cut-off transaction's ledger row nor see it commit
    a second copy once the cable is back."""
    bed = healed_testbed
    table, gate, proc, _ = _gated_run(bed, scored, "cut")
    bed.cut("worker1")
    started = time.monotonic()
    gate.open()  # worker1's backend now holds its ledger row and waits for COPY data in vain
    code = _finish(proc, CUT_LINK_BOUND + 120)
    recovery = time.monotonic() - started
    bed.restore("worker1")
    assert code == 0, bed.log("client", "cut")
    # The cut-off transaction is gone (rolled back) and cannot come back to commit.
    worker1 = HOSTS["worker1"]
    query = f"SELECT count(*) FROM pg_stat_activity WHERE client_addr = '{worker1}'"
    wait_until(lambda: bed.sql(query) == [["0"]], 60, "worker1's cut-off backend to end")
    assert_same_rows(bed, bed.pg.url(table), bed.pg.url(scored[2]), ROWS)
    print(f"link cut mid-write: output complete {recovery:.1f}s after the cut")
    assert recovery < CUT_LINK_BOUND, f"{recovery:.1f}s"


#: What the client said when its scheduler went away (test_scheduler_restarted_then_resumed),
#: for the test of the message, which otherwise makes its own run.
_SCHEDULER_LOST: dict[str, object] = {}


def _run_through_scheduler_restart(bed, scored):
    """A gated run whose scheduler is restarted mid-write; (exit status, client output, args)."""
    table, gate, proc, args = _gated_run(bed, scored, "scheduler")
    started = time.monotonic()
    bed.restart_scheduler()
    gate.open()
    code = _finish(proc, RESTART_BOUND)
    _SCHEDULER_LOST.update(code=code, said=bed.log("client", "scheduler"))
    return table, args, started


def test_scheduler_restarted_then_resumed(healed_testbed, scored):
    bed = healed_testbed
    table, args, started = _run_through_scheduler_restart(bed, scored)
    assert _SCHEDULER_LOST["code"] != 0, _SCHEDULER_LOST["said"]
    bed.heal()  # a supervisor (systemd, Kubernetes) restarts workers that exited with it
    done = bed.skfleet(*args, "--resume")
    recovery = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "resuming run" in done.stderr
    assert_same_rows(bed, bed.pg.url(table), bed.pg.url(scored[2]), ROWS)
    print(f"scheduler restarted: output complete (--resume) {recovery:.1f}s after the restart")
    assert recovery < RESTART_BOUND, f"{recovery:.1f}s"


def test_scheduler_restarted_client_says_so_in_one_line(healed_testbed, scored):
    if not _SCHEDULER_LOST:
        _run_through_scheduler_restart(healed_testbed, scored)
    code, said = _SCHEDULER_LOST["code"], str(_SCHEDULER_LOST["said"])
    assert "Traceback" not in said, said
    errors = [line for line in said.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "--resume" in errors[0], said


def test_database_host_restarted(healed_testbed, scored):
    bed = healed_testbed
    table, gate, proc, args = _gated_run(bed, scored, "database")
    started = time.monotonic()
    bed.restart_postgres(down_seconds=2)
    gate.open()  # already gone with the database host; nothing to commit
    code = _finish(proc, RESTART_BOUND)
    said = bed.log("client", "database")
    if code != 0:  # the run could not ride it out: it says how to finish
        errors = [line for line in said.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "--resume" in errors[0], said
        done = bed.skfleet(*args, "--resume")
        assert done.returncode == 0, done.stderr
    recovery = time.monotonic() - started
    assert_same_rows(bed, bed.pg.url(table), bed.pg.url(scored[2]), ROWS)
    how = "by itself" if code == 0 else "with --resume"
    print(f"database host restarted: output complete {how} {recovery:.1f}s after the kill")
    assert recovery < RESTART_BOUND, f"{recovery:.1f}s"
