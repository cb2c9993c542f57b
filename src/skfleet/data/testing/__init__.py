"""The Source/Sink conformance kit: the tests every table backend passes, shipped with skfleet.

A backend's test module subclasses :class:`SourceSinkConformance` and provides one pytest fixture,
``new_url``: a callable returning the URL of a fresh, not-yet-existing table location each time it
is called. Everything else (round trips of every type, partitions, exactly-once writes, racing
writers, resume, abort, ``if_exists``) is tested here, once, for all backends -- the way fsspec's
``fsspec/tests/abstract`` works. A third-party backend runs the same kit::

    import pytest
    from skfleet.data.testing import SourceSinkConformance

    class TestMyBackend(SourceSinkConformance):
        @pytest.fixture
        def new_url(self, my_server):
            return my_server.new_table_url

Backends whose format cannot hold a type exactly set ``lossy_types = True``: round trips then
compare values after casting what was read back to the written schema. A backend may also say
what a run leaves behind (:meth:`SourceSinkConformance.leftovers`: staging tables, staging
folders) and plant something it did not write next to a target
(:meth:`SourceSinkConformance.plant_foreign`), so the kit can check that ``abort`` cleans up and
that ``replace`` never deletes what the sink did not write.

The tests are in :mod:`~skfleet.data.testing.kit`, the optional incremental ones in
:mod:`~skfleet.data.testing.watermarks`, the tables they write in
:mod:`~skfleet.data.testing.tables`. skfleet's own suite runs the kit for every scheme in
:mod:`skfleet.data.registry` (built-ins and entry points): see :func:`conformance_fixture_name`.
Importing this package needs pytest; nothing else in skfleet does.

>>> id_table(3).column_names, id_table(3, start=5)["id"].to_pylist()
(['id', 'x', 'tag'], [5, 6, 7])
>>> conformance_fixture_name("postgresql"), conformance_fixture_name("my-db+ssl")
('conformance_url_postgresql', 'conformance_url_my_db_ssl')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from skfleet.data.testing.kit import SourceSinkConformance
from skfleet.data.testing.tables import id_table, typed_table

__all__ = [
    "ConformanceTarget",
    "SourceSinkConformance",
    "conformance_fixture_name",
    "id_table",
    "typed_table",
]


def conformance_fixture_name(scheme: str) -> str:
    """The fixture that gives conformance URLs for ``scheme`` (one per registered scheme)."""
    return "conformance_url_" + re.sub(r"[^0-9a-zA-Z_]", "_", scheme.lower())


@dataclass
class ConformanceTarget:
    """What a ``conformance_url_<scheme>`` fixture may return instead of a bare callable.

    ``new_url()`` gives a fresh, not-yet-existing table URL; ``leftovers(url)`` names what a run
    left behind (staging), [] when clean; ``plant_foreign(url)`` puts something the sink did not
    write at or next to an existing target and returns a check that it is still intact.
    """

    new_url: Callable[[], str]
    lossy_types: bool = False
    leftovers: Callable[[str], list[str]] | None = None
    plant_foreign: Callable[[str], Callable[[], bool]] | None = None

    def __call__(self) -> str:
        return self.new_url()
