"""Bytes shared with every worker once (``Engine.share``), as models are for workers elsewhere."""

from __future__ import annotations

import hashlib
import os

from skfleet.engine import dask as dask_engine
from skfleet.engine import get_engine
from skfleet.engine.shared import SharedRef


def _digest_on_worker(ref: SharedRef) -> tuple[str, int]:
    return hashlib.sha256(ref.fetch()).hexdigest(), os.getpid()


def test_in_process_engines_keep_the_bytes_in_the_handle():
    ref = get_engine("local").share(b"model bytes")
    assert ref.fetch() == b"model bytes" and ref.size == 11


def test_dask_workers_get_the_bytes_once_and_tasks_carry_only_a_key(process_cluster):
    data = os.urandom(3_000_000)
    engine = get_engine(process_cluster.address)
    try:
        ref = engine.share(data)
        assert ref.data is None and ref.size == len(data)
        # Every worker holds them after the broadcast: no task needs to fetch.
        held = engine.client.run(lambda dask_worker: ref.key in dask_worker.data)
        assert sorted(held.values()) == [True, True]
        # A worker that joins later gets them as a dependency of the first task it runs.
        before = set(held)
        process_cluster.add_worker()
        process_cluster.wait_for_workers(3)
        (newcomer,) = set(engine.client.scheduler_info()["workers"]) - before
        assert not engine.client.run(lambda dask_worker: ref.key in dask_worker.data)[newcomer]
        on_newcomer = engine.client.submit(
            dask_engine._with_shared,
            _digest_on_worker,
            ref,
            shared=engine._shared,
            workers=[newcomer],
            pure=False,
        )
        assert on_newcomer.result(timeout=60)[0] == hashlib.sha256(data).hexdigest()
        results = [r for _, r in engine.map_unordered(_digest_on_worker, [ref] * 12)]
        assert {digest for digest, _ in results} == {hashlib.sha256(data).hexdigest()}
    finally:
        engine.close()
