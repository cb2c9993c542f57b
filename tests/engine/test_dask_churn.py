"""Workers leaving and joining a ``tcp://`` cluster while clients connect and while a run goes on.

A ``dask worker`` process (its nanny and worker, the whole process group) is SIGKILLed at random
moments while ``get_engine(address)`` connects and checks the workers' library versions, and a
new worker is started in its place. Every connect either succeeds or fails with one clear line;
a copy started on such a cluster finishes with every row exactly once.
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skfleet.data import open_source
from skfleet.engine import get_engine
from skfleet.errors import SkfleetError
from tests.services.dask import start_process_cluster

CONNECTS = 25


@pytest.fixture
def churning_cluster(tmp_path):
    cluster = start_process_cluster(2, tmp_path)
    yield cluster
    cluster.stop()


def live_workers(cluster) -> list[int]:
    return [i for i, proc in enumerate(cluster.workers) if proc.poll() is None]


def kill_and_replace(cluster, rng: random.Random, delay: float) -> None:
    """After ``delay`` seconds, SIGKILL one live worker and start another in its place."""
    time.sleep(delay)
    live = live_workers(cluster)
    if live:
        cluster.kill_worker(rng.choice(live))
    cluster.add_worker()


@pytest.mark.slow
def test_connects_survive_workers_killed_while_they_check_versions(churning_cluster, tmp_path):
    rng = random.Random(6)
    outcomes = []
    for _ in range(CONNECTS):
        killer = threading.Thread(
            target=kill_and_replace, args=(churning_cluster, rng, rng.uniform(0.0, 0.6))
        )
        killer.start()
        try:
            with get_engine(churning_cluster.address) as engine:
                outcomes.append(("connected", engine.workers))
        except SkfleetError as exc:
            message = str(exc)
            assert "\n" not in message and "Traceback" not in message
            outcomes.append(("error", message))
        finally:
            killer.join()
        # Old workers are left dead; keep at most a handful of processes.
        churning_cluster.workers = [p for p in churning_cluster.workers if p.poll() is None]
    connected = [o for o in outcomes if o[0] == "connected"]
    assert len(connected) >= CONNECTS // 2, outcomes

    # A run on the churned cluster, with one more worker killed while it goes on.
    churning_cluster.wait_for_workers(2)
    ids = np.arange(40_000, dtype=np.int64)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ids, "x": ids * 0.5}), source, row_group_size=2_000)
    out = tmp_path / "out.parquet"
    import skfleet

    with get_engine(churning_cluster.address) as engine:
        killer = threading.Thread(target=kill_and_replace, args=(churning_cluster, rng, 0.5))
        killer.start()
        try:
            result = skfleet.copy(
                str(source), str(out), engine=engine, partition_rows=2_000, retries=3
            )
        finally:
            killer.join()
    assert result.rows == len(ids) and result.partitions == 20
    with open_source(str(out)) as copied_source:
        copied = copied_source.read_all().column("id").to_numpy()
    np.testing.assert_array_equal(np.sort(copied), ids)
