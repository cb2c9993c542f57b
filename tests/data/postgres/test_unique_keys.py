"""``PostgresSource.unique_keys``: True only for key columns the server keeps unique (a primary
key, a unique index it enforces on NOT NULL columns), against a real server (``pg``)."""

from __future__ import annotations

import uuid

import pytest

from skfleet.data import open_source
from skfleet.data.postgres import source as pg_source


@pytest.fixture
def table(pg):
    """A callable: ``table(columns, *statements, options="")`` creates a fresh table (``{t}``
    in the statements names it) and returns its name."""

    def make(columns: str, *statements: str, options: str = "") -> str:
        name = f"u_{uuid.uuid4().hex[:10]}"
        with pg.connect() as conn:
            conn.execute(f"CREATE TABLE {name} ({columns}) {options}")
            for statement in statements:
                conn.execute(statement.format(t=name))
        return name

    return make


def unique(pg, name: str, keys: list[str]) -> bool:
    with open_source(pg.table_url(f"public.{name}")) as src:
        return src.unique_keys(keys)


def test_a_primary_key_and_any_superset_of_it(pg, table):
    name = table("id bigint PRIMARY KEY, x double precision")
    assert unique(pg, name, ["id"]) and unique(pg, name, ["x", "id"])
    assert not unique(pg, name, ["x"])


def test_part_of_a_composite_primary_key_is_not_unique(pg, table):
    name = table("a int, b int, c int, PRIMARY KEY (a, b)")
    assert not unique(pg, name, ["a"]) and not unique(pg, name, ["b", "c"])
    assert unique(pg, name, ["b", "a"]) and unique(pg, name, ["c", "a", "b"])


def test_a_unique_index_counts_only_on_not_null_columns(pg, table):
    strict = table("id int NOT NULL, x int", "CREATE UNIQUE INDEX ON {t} (id)")
    assert unique(pg, strict, ["id"])
    # Any number of rows may hold a null in a plain unique index; the check counts nulls as equal.
    nullable = table("id int, x int", "CREATE UNIQUE INDEX ON {t} (id)")
    assert not unique(pg, nullable, ["id"])
    constraint = table("id int UNIQUE, x int")
    assert not unique(pg, constraint, ["id"])
    not_distinct = table("id int, x int", "CREATE UNIQUE INDEX ON {t} (id) NULLS NOT DISTINCT")
    assert unique(pg, not_distinct, ["id"])


@pytest.mark.parametrize(
    "index",
    [
        "CREATE INDEX ON {t} (id)",  # not unique
        "CREATE UNIQUE INDEX ON {t} (id) WHERE x > 0",  # partial
        "CREATE UNIQUE INDEX ON {t} ((id % 10))",  # an expression
        "CREATE UNIQUE INDEX ON {t} (x) INCLUDE (id)",  # id only included
    ],
)
def test_indexes_that_do_not_make_the_keys_unique(pg, table, index):
    name = table("id int NOT NULL, x int NOT NULL", index)
    assert not unique(pg, name, ["id"])


def test_no_index_and_an_invalid_one(pg, table):
    assert not unique(pg, table("id int NOT NULL"), ["id"])
    # A concurrent build that met a duplicate leaves an index marked invalid, and the rows.
    name = table("id int NOT NULL", "INSERT INTO {t} VALUES (1), (1)")
    with pg.connect() as conn, pytest.raises(Exception, match="could not create unique index"):
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY ON {name} (id)")
    assert not unique(pg, name, ["id"])


def test_views_queries_and_inheritance_parents_are_not_unique(pg, table):
    name = table("id int PRIMARY KEY")
    with pg.connect() as conn:
        conn.execute(f"CREATE VIEW v_{name} AS SELECT * FROM {name}")
        # A child's rows are read with the parent's, and the parent's key does not cover them.
        conn.execute(f"CREATE TABLE c_{name} () INHERITS ({name})")
    assert not unique(pg, f"v_{name}", ["id"])
    assert not unique(pg, name, ["id"])
    with open_source(pg.url(query=f"SELECT * FROM c_{name}")) as src:
        assert not src.unique_keys(["id"])


def test_a_partitioned_table_s_primary_key_covers_its_partitions(pg, table):
    name = table(
        "id int, day int, PRIMARY KEY (id, day)",
        "CREATE TABLE {t}_1 PARTITION OF {t} FOR VALUES FROM (0) TO (10)",
        options="PARTITION BY RANGE (day)",
    )
    assert unique(pg, name, ["id", "day"]) and not unique(pg, name, ["id"])


def test_a_numeric_key_without_precision_is_not_trusted(pg, table):
    """Read as float64, two such values can become one."""
    assert not unique(pg, table("id numeric PRIMARY KEY"), ["id"])
    assert unique(pg, table("id numeric(20, 0) PRIMARY KEY"), ["id"])


def test_one_catalog_query_per_source(pg, table, monkeypatch):
    name = table("id int PRIMARY KEY, x int")
    with open_source(pg.table_url(f"public.{name}")) as src:
        src.schema()
        assert src.unique_keys(["id"])

        def refuse(*args, **kwargs):
            raise AssertionError("a second catalog query")

        monkeypatch.setattr(pg_source, "connect_psycopg", refuse)
        assert src.unique_keys(["x", "id"]) and not src.unique_keys(["x"])


def test_an_index_s_included_columns_take_no_part(pg, table):
    name = table("id int NOT NULL, note text", "CREATE UNIQUE INDEX ON {t} (id) INCLUDE (note)")
    assert unique(pg, name, ["id"]) and not unique(pg, name, ["note"])
