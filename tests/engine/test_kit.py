"""The engine kit (``skfleet.engine.testing``) against every kind of engine skfleet has."""

from __future__ import annotations

import pytest

from skfleet.engine import get_engine
from skfleet.engine.testing import ENGINE_CHECKS, joblib_where
from tests.services.dask import start_process_cluster


@pytest.fixture(scope="module")
def tcp_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes, shared by this module."""
    cluster = start_process_cluster(2, tmp_path_factory.mktemp("kit-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module", params=["local", "processes:2", "dask:local:2", "tcp"])
def engine(request):
    if request.param == "tcp":
        engine = get_engine(request.getfixturevalue("tcp_cluster").address)
    elif request.param == "dask:local:2":
        engine = request.getfixturevalue("dask_engine")
    else:
        engine = get_engine(request.param)
    yield engine
    if request.param in ("local", "processes:2", "tcp"):
        engine.close()


@pytest.mark.parametrize("check", ENGINE_CHECKS, ids=lambda check: check.__name__)
def test_engine_kit(check, engine, tmp_path):
    check(engine, tmp_path)


def test_tcp_engine_sees_every_worker(tcp_cluster):
    with get_engine(tcp_cluster.address) as engine:
        assert engine.workers == 2


def test_joblib_ignores_a_newer_client(dask_engine):
    """A second, newer client in the same process must not capture this engine's joblib work."""
    import joblib
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as other,
        Client(other),
        dask_engine.joblib_context(),
    ):
        seen = joblib.Parallel(n_jobs=2)(joblib.delayed(joblib_where)(i) for i in range(4))
    assert {where for _, where in seen} == {dask_engine.client.scheduler.address}


def test_the_kit_fails_an_engine_that_does_not_retry(tmp_path):
    """The kit can fail: an engine that ignores ``retries`` does not pass its retry check."""
    from skfleet.engine.local import InProcessEngine
    from skfleet.engine.testing import check_retries

    class NoRetries(InProcessEngine):
        def map_unordered(self, fn, items, *, retries=0):
            return super().map_unordered(fn, items, retries=0)

    with pytest.raises((AssertionError, RuntimeError)):
        check_retries(NoRetries(), tmp_path)
