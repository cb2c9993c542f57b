"""Engines: where tasks run. ``get_engine(spec)`` turns an ``--engine`` value into one.

========================  ======================================================
``local``                 this process, sequentially (debugging, tests)
``processes[:N]``         a local process pool
``dask:local[:N]``        a Dask LocalCluster with N single-threaded workers
``tcp://HOST:PORT``       a running Dask scheduler (``tls://`` too)
========================  ======================================================

>>> engine = get_engine("local")
>>> engine.spec, engine.workers
('local', 1)
"""

from __future__ import annotations

from skfleet.engine.base import Engine
from skfleet.errors import UsageError

ENGINE_HELP = "local | processes[:N] | dask:local[:N] | tcp://HOST:PORT"


def _count(spec: str, text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--engine {spec!r}: worker count must be a positive integer")
    return int(text)


def parse_engine_spec(spec: str | None) -> tuple[str, str | None, int | None]:
    """Check an ``--engine`` value without starting anything: ``(kind, address, workers)``.

    Jobs call this before touching any data, so a typo in the flag is reported as such.

    >>> parse_engine_spec("dask:local:2"), parse_engine_spec("tcp://10.0.0.5:8786")
    (('dask', None, 2), ('dask', 'tcp://10.0.0.5:8786', None))
    """
    spec = spec or "local"
    if spec == "local":
        return "local", None, None
    if spec == "processes" or spec.startswith("processes:"):
        return "processes", None, _count(spec, spec.partition(":")[2])
    if spec == "dask:local" or spec.startswith("dask:local:"):
        return "dask", None, _count(spec, spec[len("dask:local:") :])
    if spec.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        return "dask", spec, None
    raise UsageError(f"unknown --engine {spec!r} (expected {ENGINE_HELP})")


def get_engine(spec: str | Engine | None = None, n_workers: int | None = None) -> Engine:
    """Build the engine that ``spec`` names (an Engine passes through unchanged)."""
    if isinstance(spec, Engine):
        return spec
    kind, address, count = parse_engine_spec(spec)
    if kind == "local":
        from skfleet.engine.local import InProcessEngine

        return InProcessEngine()
    if kind == "processes":
        from skfleet.engine.local import ProcessPoolEngine

        return ProcessPoolEngine(n_workers or count)
    from skfleet.engine.dask import DaskEngine

    return DaskEngine(address, n_workers or count)


__all__ = ["ENGINE_HELP", "Engine", "get_engine", "parse_engine_spec"]
