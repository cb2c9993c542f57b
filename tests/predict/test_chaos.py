"""Workers killed and started at random moments of ``predict`` runs on a ``tcp://`` cluster.

Each run connects to the scheduler anew, scores 12 partitions and commits. While it goes on, a
thread SIGKILLs a random live ``dask worker`` (nanny and worker, the whole process group) at a
random moment, once or twice, and starts a new worker in its place: the moment falls at connect
(the client checking the workers), during scoring, or at commit. Every run must complete, with
every row exactly once and the scores of the model, into Parquet and into PostgreSQL.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import numpy as np
import pytest

from skfleet.predict.api import predict
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import Sleepy, make_rows, save_custom, write_parquet_dir
from tests.services.dask import start_process_cluster

RUNS = 6
PARTITION_ROWS = 500  # 12 partitions of the 6,000 rows


@pytest.fixture
def cluster(tmp_path):
    cluster = start_process_cluster(2, tmp_path)
    yield cluster
    cluster.stop()


def _kill_and_replace(cluster, rng: random.Random, delays: list[float], log: list) -> None:
    started = time.monotonic()
    for delay in delays:
        time.sleep(max(0.0, delay - (time.monotonic() - started)))
        live = [i for i, proc in enumerate(cluster.workers) if proc.poll() is None]
        if live:
            victim = rng.choice(live)
            cluster.kill_worker(victim)
            log.append((round(time.monotonic() - started, 2), victim))
        cluster.add_worker()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_runs_complete_with_every_row_once_while_workers_die(tmp_path, store, pg, cluster):
    rows = make_rows(ROWS, seed=9)
    src = write_parquet_dir(tmp_path / "in", rows, files=3, row_group_size=PARTITION_ROWS)
    ref = save_custom(store, Sleepy(delay=0.1), "sleepy")
    expected = rows["x0"].to_numpy() * 2.0

    def run(out: str):
        return predict(
            ref,
            src,
            out,
            store=store.uri,
            engine=cluster.address,
            trust=True,
            partition_rows=PARTITION_ROWS,
            retries=4,
        )

    # How long an undisturbed run takes: the kills are spread over that span (and a little past
    # it, so some land while the client commits or after the run is done).
    started = time.monotonic()
    run(str(tmp_path / "calm"))
    span = time.monotonic() - started

    rng = random.Random(12)
    history = []
    for i in range(RUNS):
        out = (
            pg.table_url(f"public.chaos_{uuid.uuid4().hex[:8]}")
            if i % 3 == 2
            else str(tmp_path / f"scores-{i}")
        )
        delays = sorted(rng.uniform(0.0, span * 1.2) for _ in range(rng.choice((1, 2))))
        kills: list = []
        killer = threading.Thread(target=_kill_and_replace, args=(cluster, rng, delays, kills))
        killer.start()
        try:
            result = run(out)
        finally:
            killer.join()
            # Keep only live processes; the next run meets the replacements as they come up.
            cluster.workers = [p for p in cluster.workers if p.poll() is None]
        history.append((i, out.split("?")[0][-20:], kills))
        assert result.rows_in == result.rows_out == ROWS and result.partitions == 12, history
        got = read_sorted(out)
        assert got["id"].to_pylist() == rows["id"].to_pylist(), history  # each row once
        np.testing.assert_array_equal(got["prediction"].to_numpy(), expected)
    assert sum(len(k) for _, _, k in history) >= RUNS, history
