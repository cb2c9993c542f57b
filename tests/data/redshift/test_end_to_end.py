"""The original scenario end to end on the Redshift stand-in (``examples/redshift_end_to_end.py``).

Train from a Redshift table, score a bigger one on a Dask cluster of separate worker processes
through UNLOAD, write the scores back through COPY, exactly once, with a worker killed while it
is writing. **The stand-in is not Redshift** (see ``tests/services/redshift.py``): a real
PostgreSQL behind a Redshift-like wire proxy, with moto's S3.

How the kill lands mid-write, deterministically: once the run has created its staging table, the
test locks that table from a direct connection, so the first worker to get the ledger lock waits
inside its COPY transaction and the other waits for the ledger lock. Worker 0 is then killed
(its backend's transaction dies with its connection), the lock released; the lost partition is
scored again on the surviving worker and must land exactly once.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from skfleet.copy import copy
from skfleet.data import open_source

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "redshift_end_to_end.py"


def load_example():
    spec = importlib.util.spec_from_file_location("redshift_end_to_end", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flights(n: int, seed: int, start: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    delay = rng.normal(10, 30, n)
    distance = rng.uniform(100, 3000, n)
    carrier = rng.choice(["UA", "AA", "B6", "DL"], n)
    late = (delay + rng.normal(0, 10, n) + (carrier == "B6") * 15 > 20).astype(np.int64)
    return pa.table(
        {
            "id": np.arange(start, start + n, dtype=np.int64),
            "dep_delay": delay,
            "distance": distance,
            "carrier": pa.array(carrier),
            "late": late,
        }
    )


def load(redshift, tmp_path, table: pa.Table, name: str) -> str:
    import pyarrow.parquet as pq

    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    url = redshift.url(table=f"public.{name}")
    copy(str(path), url, engine="local", partition_rows=100_000)
    return url


def wait_until(check, timeout: float = 120, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_train_score_write_back_with_a_worker_killed(redshift, s3, tmp_path, process_cluster):
    example = load_example()
    suffix = uuid.uuid4().hex[:6]
    train_url = load(redshift, tmp_path, flights(4_000, seed=1), f"flights_train_{suffix}")
    score_rows = flights(60_000, seed=2, start=1_000_000)
    score_url = load(redshift, tmp_path, score_rows, f"flights_{suffix}")
    out_name = f"flight_scores_{suffix}"
    out_url = redshift.url(table=f"public.{out_name}")
    store = str(tmp_path / "models")
    outcome: dict = {}

    def scoring() -> None:
        try:
            outcome["result"] = example.run(
                train_url, score_url, out_url, store=store, engine=process_cluster.address
            )
        except BaseException as exc:  # surfaced by the assertions below
            outcome["error"] = exc

    def stage_table():
        with redshift.direct() as conn:
            row = conn.execute(
                "SELECT stage FROM skfleet_runs WHERE target = %s AND state = 'open'",
                [f'"public"."{out_name}"'],
            ).fetchone()
        return None if row is None else row[0]

    def blocked() -> int:
        with redshift.direct() as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()[0]

    thread = threading.Thread(target=scoring)
    thread.start()
    holder = redshift.direct()
    try:
        wait_until(lambda: stage_table() is not None or not thread.is_alive(), what="the run")
        stage = stage_table()
        assert stage is not None, outcome.get("error")
        holder.autocommit = False
        holder.execute(f"LOCK TABLE public.{stage} IN ACCESS EXCLUSIVE MODE")
        wait_until(
            lambda: blocked() >= 2 or not thread.is_alive(),
            what="both workers waiting inside their writes",
        )
        assert thread.is_alive(), outcome.get("error")
        # The ledger is locked by the writer waiting in its COPY: count what was committed
        # before the kill once the run is over.
        killed_at = dt.datetime.now(dt.UTC)
        process_cluster.kill_worker(0)
        time.sleep(0.5)
        holder.rollback()
    finally:
        holder.close()
        thread.join(300)
    assert "error" not in outcome, outcome.get("error")
    with redshift.direct() as conn:
        committed = conn.execute(
            "SELECT count(*) FROM skfleet_ledger WHERE target = %s AND committed_at < %s",
            [f'"public"."{out_name}"', killed_at],
        ).fetchone()[0]
    trained, scored = outcome["result"]
    assert committed < scored.partitions, "the run finished before the worker was killed"
    assert scored.partitions >= 4 and scored.rows_in == scored.rows_out == 60_000

    with open_source(out_url) as source:
        got = source.read_all().sort_by("id")
    assert got.num_rows == 60_000
    assert got["id"].to_pylist() == score_rows["id"].to_pylist()  # every row once
    # The same model scoring the same rows in this process gives the same answers.
    from skfleet.store import load_model

    model = load_model(trained.name, store=store).model
    expected = model.predict(score_rows.to_pandas())
    np.testing.assert_array_equal(got["prediction"].to_numpy(), np.asarray(expected))
    assert float(np.mean(got["prediction"].to_numpy() == score_rows["late"].to_numpy())) > 0.6
    with redshift.direct() as conn:  # no staging tables or staged objects are left behind
        left = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE '_skfleet_stage_%%' AND relname = %s",
            [stage],
        ).fetchone()[0]
    assert left == 0
