import pytest

from skfleet.engine import get_engine
from skfleet.engine.dask import DaskEngine, check_worker_versions, library_versions
from skfleet.errors import SkfleetError, UsageError
from tests.engine.tasks import always_fail, fail_once, slow_sum, square

ITEMS = list(range(23))
EXPECTED = {i: i * i for i in ITEMS}


def run(engine, fn, items, **kw):
    return dict(engine.map_unordered(fn, items, **kw))


@pytest.fixture(params=["local", "processes:2"])
def small_engine(request):
    engine = get_engine(request.param)
    yield engine
    engine.close()


def test_map_gives_every_result_once(small_engine):
    assert {i: r for i, r in run(small_engine, square, ITEMS).items()} == EXPECTED


def test_dask_map_equals_in_process(dask_engine):
    assert run(dask_engine, square, ITEMS) == run(get_engine("local"), square, ITEMS)


def test_retries_recover_a_failing_task(small_engine, tmp_path):
    items = [(str(tmp_path), i) for i in range(4)]
    assert sorted(run(small_engine, fail_once, items, retries=1).values()) == [0, 1, 2, 3]


def test_dask_retries_recover_a_failing_task(dask_engine, tmp_path):
    items = [(str(tmp_path), i) for i in range(4)]
    assert sorted(run(dask_engine, fail_once, items, retries=1).values()) == [0, 1, 2, 3]


def test_errors_propagate_after_retries(small_engine, tmp_path):
    with pytest.raises(ValueError, match="bad item"):
        run(small_engine, always_fail, [1, 2], retries=1)


def test_dask_errors_propagate(dask_engine):
    with pytest.raises(ValueError, match="bad item"):
        run(dask_engine, always_fail, [1], retries=0)


def test_separate_scheduler_and_worker_processes(process_cluster):
    with get_engine(process_cluster.address) as engine:
        assert isinstance(engine, DaskEngine)
        assert engine.workers == 2
        assert run(engine, square, ITEMS) == EXPECTED


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dask:locall", "unknown --engine"),
        ("processes:x", "worker count"),
        ("yarn", "unknown --engine"),
    ],
)
def test_bad_engine_spec_names_the_flag(spec, message):
    with pytest.raises(UsageError, match=message):
        get_engine(spec)


def test_unreachable_scheduler_is_a_one_line_error():
    from tests.services.dask import free_port

    with pytest.raises(SkfleetError, match="cannot reach Dask scheduler"):
        get_engine(f"tcp://127.0.0.1:{free_port()}")


def test_version_mismatch_names_worker_and_library():
    mine = library_versions()
    theirs = {"tcp://10.0.0.9:4000": {**mine, "sklearn": "0.1"}}
    with pytest.raises(SkfleetError, match=r"tcp://10.0.0.9:4000 has sklearn 0.1"):
        check_worker_versions(mine, theirs)


def _joblib_worker_address() -> str:
    from distributed import get_worker

    return get_worker().scheduler.address


def test_joblib_runs_on_this_engines_cluster(dask_engine):
    import joblib
    from distributed import Client, LocalCluster

    # A second, newer client in the same process must not capture this engine's joblib work.
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as other,
        Client(other),
        dask_engine.joblib_context(),
    ):
        seen = joblib.Parallel(n_jobs=2)(joblib.delayed(_joblib_worker_address)() for _ in range(4))
    assert set(seen) == {dask_engine.client.scheduler.address}


def test_shared_training_data_stays_on_every_worker(dask_engine):
    """The table shared by a run's fits is fetched once per worker, not again after a pause."""
    import time

    import joblib
    import numpy as np
    from joblib.parallel import get_active_backend

    from skfleet.train.parallel import shared_data

    data = np.arange(1_000_000, dtype=np.float64)
    with dask_engine.joblib_context(), shared_data(data):
        backend, _ = get_active_backend()
        future = backend.data_futures[id(data)]
        sums = joblib.Parallel(n_jobs=2)(joblib.delayed(slow_sum)(data) for _ in range(8))
        assert sums == [float(data.sum())] * 8
        assert len(dask_engine.client.who_has([future])[future.key]) == 2
        # Longer than the Active Memory Manager's 2 s cycle, which by default would drop a copy
        # that no queued task needs, only for the next fit on that worker to fetch it again.
        time.sleep(5)
        assert len(dask_engine.client.who_has([future])[future.key]) == 2
