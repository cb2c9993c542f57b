"""The conformance fixtures: one per URL scheme in the data registry.

``tests/data/test_conformance.py`` runs the kit (:mod:`skfleet.data.testing`) once for every scheme
:func:`skfleet.data.registry.registered_schemes` lists, built-ins and entry points alike, and
fails for a scheme that has no fixture here. To plug a backend in, add a fixture named
``conformance_url_<scheme>`` (:func:`~skfleet.data.testing.conformance_fixture_name`) to this file,
or to a plugin module named in ``tests/conftest.py``'s ``pytest_plugins``. It returns a callable
giving a fresh, not-yet-existing table URL per call, or a
:class:`~skfleet.data.testing.ConformanceTarget` that also says whether types are lossy, what a run
leaves behind (``leftovers``) and how to plant something the sink did not write
(``plant_foreign``).
"""

from __future__ import annotations

import itertools
import uuid

import pytest

from skfleet.data.files.store import FileStore
from skfleet.data.testing import ConformanceTarget


def file_leftovers(url: str) -> list[str]:
    """Bookkeeping a files run may leave: staging folders and temp files, anywhere below."""
    store, path = FileStore.from_url(url)
    if store.kind(path) != "directory":
        return []
    base = path.rstrip("/")
    found = store.fs.find(path, withdirs=True)
    relative = [p[len(base) :].lstrip("/") for p in found]
    return sorted(r for r in relative if any(s.startswith((".", "_staging")) for s in r.split("/")))


def plant_foreign_file(url: str):
    """A file and a sub-folder skfleet did not write, inside the target directory."""
    store, path = FileStore.from_url(url)
    planted = [FileStore.join(path, "notes.txt"), FileStore.join(path, "sub", "x.csv")]
    store.makedirs(FileStore.join(path, "sub"))
    for name in planted:
        store.put(name, b"a\n1\n")
    return lambda: all(store.cat(name) == b"a\n1\n" for name in planted)


def _file_target(new_url) -> ConformanceTarget:
    return ConformanceTarget(new_url, leftovers=file_leftovers, plant_foreign=plant_foreign_file)


@pytest.fixture
def conformance_url_file(tmp_path):
    counter = itertools.count()
    return _file_target(lambda: str(tmp_path / f"table{next(counter)}"))


@pytest.fixture
def conformance_url_s3(s3):
    return _file_target(s3.new_prefix)


def _pg_target(pg, new_url) -> ConformanceTarget:
    from psycopg import sql

    def key(url: str) -> str:
        name = url.rsplit("table=", 1)[1].split("&")[0].split(".", 1)[1]
        return sql.Identifier("public", name).as_string(None)

    def leftovers(url: str) -> list[str]:
        with pg.connect() as conn:
            if conn.execute("SELECT to_regclass('skfleet.skfleet_runs')").fetchone()[0] is None:
                return []
            stages = conn.execute(
                "SELECT stage FROM skfleet.skfleet_runs WHERE target = %s AND stage IS NOT NULL",
                [key(url)],
            ).fetchall()
            return [
                s
                for (s,) in stages
                if conn.execute("SELECT to_regclass(%s)", [f"public.{s}"]).fetchone()[0]
            ]

    def plant_foreign(url: str):
        view = f"v_{uuid.uuid4().hex[:10]}"
        with pg.connect() as conn:
            conn.execute(f"CREATE VIEW {view} AS SELECT id FROM {key(url)}")

        def intact() -> bool:
            with pg.connect() as conn:
                return conn.execute("SELECT to_regclass(%s)", [view]).fetchone()[0] is not None

        return intact

    return ConformanceTarget(new_url, leftovers=leftovers, plant_foreign=plant_foreign)


@pytest.fixture
def conformance_url_postgresql(pg, pg_new_table_url):
    return _pg_target(pg, pg_new_table_url)


@pytest.fixture
def conformance_url_postgres(pg, pg_new_table_url):
    """The ``postgres://`` spelling of the same backend: URLs with that scheme."""
    return _pg_target(pg, lambda: "postgres://" + pg_new_table_url().split("://", 1)[1])
