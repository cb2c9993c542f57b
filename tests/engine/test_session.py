"""EngineSession: who starts the engine, where a lone task runs, progress, who closes it."""

from __future__ import annotations

import os

import pytest

from skfleet.engine import get_engine
from skfleet.engine.session import EngineSession
from skfleet.engine.testing import square
from skfleet.errors import UsageError
from skfleet.util.progress import Progress


class Recorder(Progress):
    def __init__(self):
        self.events: list[tuple] = []
        self.notes: list[str] = []

    def start(self, total, description=""):
        self.events.append(("start", total, description))

    def advance(self, rows=0, tasks=1):
        self.events.append(("advance", rows, tasks))

    def note(self, message):
        self.notes.append(message)

    def stop(self):
        self.events.append(("stop",))


def pid(_: object) -> int:
    return os.getpid()


def test_a_bad_spec_fails_before_anything_starts():
    with pytest.raises(UsageError, match="unknown --engine 'dask:locall'"):
        EngineSession("dask:locall")


def test_nothing_to_do_starts_nothing():
    progress = Recorder()
    with EngineSession("processes:2", progress=progress) as session:
        assert session.run(square, [], description="copy", done=3, done_rows=30) == []
        assert not session.started
    assert progress.events == [("start", 3, "copy"), ("advance", 30, 3), ("stop",)]


def test_a_single_task_runs_here_when_a_pool_would_have_to_start():
    progress = Recorder()
    with EngineSession("dask:local:2", progress=progress) as session:
        assert session.run(pid, ["one"], description="score") == [os.getpid()]
        assert not session.started and session.used_spec == "local"
    assert progress.notes == ["one partition to score: in this process, no cluster to start"]


def test_tasks_and_rows_are_counted_as_they_are_taken():
    progress = Recorder()
    taken = []
    with EngineSession("local", progress=progress) as session:
        results = session.run(
            square,
            [1, 2, 3],
            description="work",
            on_result=lambda i, r: taken.append((i, r)),
            rows=lambda r: r,
            done=1,
        )
    assert results == [1, 4, 9] and taken == [(0, 1), (1, 4), (2, 9)]
    assert progress.events == [
        ("start", 4, "work"),
        ("advance", 0, 1),
        *[("advance", r, 1) for r in (1, 4, 9)],
        ("stop",),
    ]


def test_the_session_closes_the_pool_it_started():
    with EngineSession("processes:2") as session:
        pids = set(session.run(pid, range(6), description="pids"))
        engine = session.engine
    assert os.getpid() not in pids
    with pytest.raises(RuntimeError, match="shutdown"):
        list(engine.map_unordered(square, [1, 2]))


def test_an_engine_passed_in_stays_open():
    with get_engine("processes:2") as engine:
        with EngineSession(engine) as session:
            session.run(square, range(4), description="first")
        assert session.spec == "processes:2"
        assert sorted(r for _, r in engine.map_unordered(square, [2, 3])) == [4, 9]


def test_an_exception_in_on_result_stops_the_progress_and_closes():
    progress = Recorder()

    def refuse(_: int, result: int) -> None:
        raise KeyError(result)

    with pytest.raises(KeyError), EngineSession("processes:2", progress=progress) as session:
        session.run(square, range(4), description="refused", on_result=refuse)
    assert progress.events[-1] == ("stop",)
    assert not session.started


def test_no_task_at_all_is_not_announced_as_one():
    progress = Recorder()
    with EngineSession("dask:local:2", progress=progress) as session:
        assert session.engine_for(0).spec == "local"
        assert not session.started
    assert progress.notes == []


def test_warm_up_hands_its_cluster_to_the_session_and_releases_an_unclaimed_one():
    from skfleet.engine.session import _warming, warm_up

    release = warm_up("dask:local:1")
    assert warm_up("local")() is None  # nothing to start for an in-process engine
    with EngineSession("dask:local:1") as session:
        engine = session.engine  # the cluster started in the background, taken over
        assert ("dask:local:1", None) not in _warming
        # Workers imported the scoring stack as they started, before any task.
        assert all(engine.client.run(lambda: "sklearn" in __import__("sys").modules).values())
        assert session.run(abs, [-1, -2], description=None) == [1, 2]
    release()  # claimed: the session closed it; releasing does nothing
    unclaimed = warm_up("dask:local:1", workers=1)
    unclaimed()
    assert ("dask:local:1", 1) not in _warming
