"""Choosing between this process and a pool from the work itself (``EngineSession(choose=True)``).

Real pools: a ``processes:2`` pool is started when the measured work says it pays, and the tasks
it runs are seen to run in other processes.
"""

from __future__ import annotations

import os

import pytest

from skfleet.engine import choice
from skfleet.engine.choice import WorkEstimate, pool_pays
from skfleet.engine.session import EngineSession
from tests.engine.tasks import timed_rows

WORK = WorkEstimate(rows=lambda rows: rows, measured=lambda result: (result[0], result[1]))


def test_small_work_stays_in_this_process():
    with EngineSession("processes:2", choose=True) as session:
        results = session.run(timed_rows, [1_000] * 5, description=None, work=WORK)
        assert not session.started  # no pool was started at all
    assert [r[0] for r in results] == [1_000] * 5
    assert {r[2] for r in results} == {os.getpid()}
    assert session.choice == "local (5,000 rows: faster here than starting 2 workers)"


def test_large_work_goes_to_the_pool_after_the_first_task(monkeypatch):
    # 6 x 0.4 s of work: with a pool that is up at once (start-up 0 s), the 5 tasks left finish
    # sooner on 2 workers than here.
    monkeypatch.setattr(choice, "POOL_START_SECONDS", 0.0)
    monkeypatch.setattr("skfleet.engine.session.POOL_START_SECONDS", 0.0)
    with EngineSession("processes:2", choose=True) as session:
        results = session.run(timed_rows, [20_000] * 6, description=None, work=WORK)
        assert session.started
    assert [r[0] for r in results] == [20_000] * 6  # every task once, in the items' order
    assert results[0][2] == os.getpid()
    assert os.getpid() not in {r[2] for r in results[1:]}
    assert session.choice == "processes:2 (1 of 6 partitions in this process while it started)"


def test_without_choose_the_pool_is_used_as_given():
    with EngineSession("processes:2") as session:
        results = session.run(timed_rows, [10] * 2, description=None, work=WORK)
    assert os.getpid() not in {r[2] for r in results}
    assert session.choice is None and session.used_spec == "processes:2"


@pytest.mark.parametrize(
    "rows_left, per_row, start_left, expected",
    [
        (1_000, 1e-5, 5.0, False),  # 0.01 s here against seconds of start-up
        (10_000_000, 1e-5, 5.0, True),  # 100 s here, 5 + 0.5 + 50 s there
        (200_000, 1e-5, 0.0, True),  # 2 s here, 0.5 + 1 s on a pool that is up
        (50_000, 1e-5, 0.0, False),  # 0.5 s here, 0.5 + 0.25 s there
    ],
)
def test_pool_pays(rows_left, per_row, start_left, expected):
    assert pool_pays(rows_left, per_row, 2, start_left) is expected


def test_tasks_here_run_two_at_a_time_each_on_its_own_copy():
    """With ``streams=2`` the work here runs in two threads at once (reads and numpy release the
    GIL), and each task gets its own pickled copy of its item, as a pool worker would: the
    caller's objects are not shared between threads."""
    from tests.engine.tasks import interval

    items = [{"n": i} for i in range(4)]
    work = WorkEstimate(rows=lambda item: 1, measured=lambda result: (1, 0.3), streams=2)
    with EngineSession("processes:2", choose=True) as session:
        results = session.run(interval, items, description=None, work=work)
        assert not session.started
    assert all("taken" not in item for item in items)  # the tasks marked copies, not these
    assert len({r[2] for r in results}) == 2  # two threads
    first, second = sorted(results)[:2]
    assert second[0] < first[1]  # the second began before the first ended
    assert {r[3] for r in results}.isdisjoint(id(item) for item in items)
