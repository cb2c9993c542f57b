"""The engine kit: what every engine must do, as checks any engine (built-in or new) is run through.

Each check takes a started :class:`~skfleet.engine.Engine` and a scratch folder that the engine's
workers can write (tasks count their attempts there, across processes), and raises
``AssertionError`` naming what the engine got wrong. The suite runs every check against
``local``, ``processes:2``, ``dask:local:2`` and a ``tcp://`` cluster of ``dask worker``
processes; a new engine runs them the same way::

    import pytest
    from skfleet.engine.testing import ENGINE_CHECKS

    @pytest.mark.parametrize("check", ENGINE_CHECKS, ids=lambda c: c.__name__)
    def test_my_engine(check, my_engine, tmp_path):
        check(my_engine, tmp_path)

The task functions are here, not in a test module, so that any worker that has skfleet installed
can import them.

>>> from skfleet.engine import get_engine
>>> import tempfile
>>> with get_engine("local") as engine:
...     check_engine(engine, tempfile.mkdtemp())
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skfleet.engine.base import Engine
from skfleet.errors import DataError

#: Enough items that a pool of a few workers finishes them out of order.
ITEMS = 23


# -- tasks (module level: workers import them by name) --------------------------------------------


def square(x: int) -> int:
    return x * x


def _attempt(folder: str, x: int) -> int:
    """Record one attempt at item ``x``; returns how many attempts there were, this one included."""
    Path(folder, f"{x}-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return attempts(folder, x)


def attempts(folder: str | os.PathLike, x: int) -> int:
    """How many attempts tasks made at item ``x`` (in every process)."""
    return sum(1 for p in Path(folder).iterdir() if p.name.split("-", 1)[0] == str(x))


def fail_once(item: tuple[str, int]) -> int:
    """Fail the first attempt at an item, succeed on the next."""
    folder, x = item
    if _attempt(folder, x) == 1:
        raise RuntimeError(f"first attempt at {x}")
    return x


def always_fail(item: tuple[str, int]) -> int:
    """Fail every attempt, with an exception that is not a user error (so it is retried)."""
    folder, x = item
    _attempt(folder, x)
    raise ValueError(f"bad item {x}")


def user_error(item: tuple[str, int]) -> int:
    """Raise a user error (the same input fails the same way: retrying cannot help)."""
    folder, x = item
    _attempt(folder, x)
    raise DataError(f"column 'x' of item {x} is not a number")


def joblib_where(x: int) -> tuple[int, str]:
    """``x * x`` and where it ran: the Dask scheduler of the worker, or ``pid:N``."""
    try:
        from distributed import get_worker

        return x * x, get_worker().scheduler.address
    except (ImportError, ValueError):
        return x * x, f"pid:{os.getpid()}"


# -- checks ---------------------------------------------------------------------------------------


def _scratch(folder: str | os.PathLike, name: str) -> str:
    path = Path(folder, f"{name}-{uuid.uuid4().hex[:8]}")
    path.mkdir(parents=True)
    return str(path)


def check_results_and_ordering(engine: Engine, folder: str | os.PathLike) -> None:
    """Every item's result once, under its own index; a session returns them in item order."""
    from skfleet.engine.session import EngineSession

    seen = list(engine.map_unordered(square, range(ITEMS)))
    indices = [i for i, _ in seen]
    assert sorted(indices) == list(range(ITEMS)), f"{engine.spec}: indices {indices}"
    assert all(r == i * i for i, r in seen), f"{engine.spec}: results {seen}"
    assert list(engine.map_unordered(square, [])) == [], f"{engine.spec}: no items, no results"
    with EngineSession(engine) as session:
        ordered = session.run(square, range(ITEMS), description="square")
    assert ordered == [i * i for i in range(ITEMS)], f"{engine.spec}: session order {ordered}"
    assert engine.workers >= 1, f"{engine.spec}: workers {engine.workers}"


def check_retries(engine: Engine, folder: str | os.PathLike) -> None:
    """A failing task is retried ``retries`` times; past that its own exception reaches the
    client, after exactly ``retries + 1`` attempts."""
    work = _scratch(folder, "retries")
    items = [(work, i) for i in range(4)]
    recovered = dict(engine.map_unordered(fail_once, items, retries=1))
    assert sorted(recovered.values()) == [0, 1, 2, 3], f"{engine.spec}: {recovered}"
    assert [attempts(work, i) for i in range(4)] == [2] * 4, f"{engine.spec}: attempts"
    work = _scratch(folder, "fails")
    try:
        list(engine.map_unordered(always_fail, [(work, 7)], retries=2))
    except ValueError as exc:
        assert "bad item 7" in str(exc), f"{engine.spec}: {exc!r}"
    else:
        raise AssertionError(f"{engine.spec}: a task that always fails gave a result")
    assert attempts(work, 7) == 3, f"{engine.spec}: {attempts(work, 7)} attempts, not 3"


def check_user_errors_as_values(engine: Engine, folder: str | os.PathLike) -> None:
    """Run through a session, a task's user error reaches the client as that error, tried once."""
    from skfleet.engine.session import EngineSession

    work = _scratch(folder, "user")
    with EngineSession(engine) as session:
        try:
            session.run(user_error, [(work, 1), (work, 2)], description="check", retries=2)
        except DataError as exc:
            assert str(exc).startswith("column 'x' of item "), f"{engine.spec}: {exc!r}"
        else:
            raise AssertionError(f"{engine.spec}: a task's DataError did not reach the client")
    tried = [attempts(work, i) for i in (1, 2)]
    assert max(tried) == 1, f"{engine.spec}: a user error was retried (attempts {tried})"


def check_joblib_context(engine: Engine, folder: str | os.PathLike) -> None:
    """joblib (scikit-learn's ``n_jobs``) runs inside ``joblib_context``, in order; on a Dask
    engine, on this engine's own cluster (not on the process's newest client's)."""
    import joblib

    with engine.joblib_context():
        out = joblib.Parallel(n_jobs=2)(joblib.delayed(joblib_where)(i) for i in range(8))
    assert [r for r, _ in out] == [i * i for i in range(8)], f"{engine.spec}: {out}"
    client = getattr(engine, "client", None)
    if client is not None:
        where = {w for _, w in out}
        assert where == {client.scheduler.address}, f"{engine.spec}: joblib ran on {where}"


ENGINE_CHECKS: tuple[Callable[[Engine, Any], None], ...] = (
    check_results_and_ordering,
    check_retries,
    check_user_errors_as_values,
    check_joblib_context,
)


def check_engine(engine: Engine, folder: str | os.PathLike) -> None:
    """Run every check of the kit on ``engine``."""
    for check in ENGINE_CHECKS:
        check(engine, folder)
