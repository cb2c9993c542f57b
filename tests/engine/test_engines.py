import pytest

from skfleet.engine import get_engine
from skfleet.engine.dask import check_worker_versions, library_versions
from skfleet.errors import SkfleetError, UsageError
from tests.engine.tasks import nested_pids, slow_sum


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


def test_a_tasks_own_joblib_calls_stay_in_its_worker(dask_engine):
    """joblib's Dask backend would send a fit task's inner calls (a forest's trees) back out to
    every worker; on skfleet's engine they run in the task's own process, one after another."""
    import joblib

    with dask_engine.joblib_context():
        runs = joblib.Parallel(n_jobs=2)(joblib.delayed(nested_pids)(8) for _ in range(4))
    for pid, inner in runs:
        assert inner == [pid] * 8
