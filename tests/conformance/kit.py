"""Abstract tests that every Source/Sink pair passes.

A backend's test module subclasses :class:`SourceSinkConformance` and provides one fixture,
``new_url``: a callable returning the URL of a fresh, not-yet-existing table location each time it is
called. Everything else (types, partitions, exactly-once, if_exists) is tested here, once, for all
backends — the way fsspec's ``fsspec/tests/abstract`` works.

Backends whose format cannot hold a type exactly (CSV has no decimal or timezone type) set
``lossy_types`` and the round trip compares values after casting back to the written schema.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from skfleet.data import open_sink, open_source
from skfleet.errors import SkfleetError, TargetExistsError


def typed_table() -> pa.Table:
    """Every type the issue names, with NULLs in each column."""
    utc = dt.UTC
    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "small": pa.array([7, None, -3, 0], pa.int32()),
            "ratio": pa.array([0.5, None, -1.25e-7, 3.0e12], pa.float64()),
            "flag": pa.array([True, False, None, True], pa.bool_()),
            "at": pa.array(
                [
                    dt.datetime(2013, 1, 1, 5, 15, tzinfo=utc),
                    None,
                    dt.datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=utc),
                    dt.datetime(2030, 6, 1, tzinfo=utc),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "amount": pa.array(
                [
                    decimal.Decimal("12.34"),
                    decimal.Decimal("-0.01"),
                    None,
                    decimal.Decimal("99999999.99"),
                ],
                pa.decimal128(10, 2),
            ),
            "label": pa.array(
                ["plain", "quote \" and ' and , comma", None, "ünïcødé ✈ 東京\ttab"], pa.string()
            ),
        }
    )


def id_table(n: int, start: int = 0) -> pa.Table:
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {"id": ids, "x": ids.astype(np.float64) * 0.5, "tag": pa.array((ids % 7).astype(str))}
    )


def sorted_by_id(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


class SourceSinkConformance:
    """Subclass me and provide a ``new_url`` fixture."""

    lossy_types: bool = False
    partition_target_rows: int = 1_000

    # -- helpers --------------------------------------------------------------------------------
    def write(self, url: str, table: pa.Table, if_exists: str = "fail", parts: int = 1) -> str:
        sink = open_sink(url)
        run_id = uuid.uuid4().hex[:12]
        sink.open(table.schema, if_exists=if_exists, run_id=run_id)
        step = max(1, -(-table.num_rows // parts))
        for i, offset in enumerate(range(0, max(table.num_rows, 1), step)):
            sink.write(f"p{i:05d}", table.slice(offset, step))
        sink.commit()
        return run_id

    def read(self, url: str, target_rows: int | None = None) -> pa.Table:
        source = open_source(url)
        try:
            parts = source.partitions(target_rows or self.partition_target_rows)
            tables = [source.read(p) for p in parts]
            return pa.concat_tables(tables) if tables else source.schema().empty_table()
        finally:
            source.close()

    def assert_same_rows(self, got: pa.Table, expected: pa.Table) -> None:
        assert got.num_rows == expected.num_rows
        got = got.select(expected.column_names)
        if self.lossy_types:
            got = got.cast(expected.schema)
        assert sorted_by_id(got).equals(sorted_by_id(expected)), (
            sorted_by_id(got).to_pylist()[:5],
            sorted_by_id(expected).to_pylist()[:5],
        )

    # -- round trips ----------------------------------------------------------------------------
    def test_round_trip_types(self, new_url):
        url = new_url()
        table = typed_table()
        self.write(url, table)
        self.assert_same_rows(self.read(url), table)

    def test_schema_matches_written(self, new_url):
        url = new_url()
        table = typed_table()
        self.write(url, table)
        schema = open_source(url).schema()
        assert schema.names[: len(table.column_names)] == table.column_names

    def test_empty_table(self, new_url):
        url = new_url()
        table = id_table(0)
        self.write(url, table)
        got = self.read(url)
        assert got.num_rows == 0
        assert got.column_names == table.column_names

    def test_one_row(self, new_url):
        url = new_url()
        table = id_table(1, start=41)
        self.write(url, table)
        self.assert_same_rows(self.read(url), table)

    @pytest.mark.slow
    def test_million_rows(self, new_url):
        url = new_url()
        table = id_table(1_000_000)
        self.write(url, table, parts=8)
        got = self.read(url, target_rows=200_000)
        assert got.num_rows == 1_000_000
        assert pc.sum(got["id"]).as_py() == sum(range(1_000_000))
        self.assert_same_rows(got, table)

    # -- partitions -----------------------------------------------------------------------------
    def test_partitions_cover_every_row_once(self, new_url):
        url = new_url()
        table = id_table(25_000)
        self.write(url, table, parts=5)
        source = open_source(url)
        parts = source.partitions(3_000)
        assert len(parts) > 1
        assert len({p.id for p in parts}) == len(parts)
        ids = np.concatenate([source.read(p, columns=["id"])["id"].to_numpy() for p in parts])
        source.close()
        assert len(ids) == 25_000
        assert np.array_equal(np.sort(ids), np.arange(25_000))

    def test_partitions_pickle(self, new_url):
        import pickle

        url = new_url()
        self.write(url, id_table(5_000), parts=2)
        source = open_source(url)
        parts = source.partitions(1_000)
        clone_source, clone_parts = pickle.loads(pickle.dumps((source, parts)))
        total = sum(clone_source.read(p).num_rows for p in clone_parts)
        source.close()
        assert total == 5_000

    def test_read_unknown_column_names_it(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        source = open_source(url)
        part = source.partitions(1_000)[0]
        with pytest.raises(SkfleetError, match="no_such_column"):
            source.read(part, columns=["id", "no_such_column"])

    def test_iter_batches(self, new_url):
        url = new_url()
        self.write(url, id_table(10_000))
        source = open_source(url)
        rows = 0
        for part in source.partitions(100_000):
            for batch in source.iter_batches(part, batch_rows=1_000):
                assert batch.num_rows <= 1_000
                rows += batch.num_rows
        assert rows == 10_000

    # -- exactly once -----------------------------------------------------------------------------
    def test_writing_a_partition_twice_duplicates_nothing(self, new_url):
        url = new_url()
        table = id_table(1_000)
        sink = open_sink(url)
        sink.open(table.schema, if_exists="fail", run_id="run1")
        assert sink.write("p0", table.slice(0, 500)) == 500
        assert sink.write("p0", table.slice(0, 500)) == 0
        assert sink.write("p1", table.slice(500)) == 500
        assert sink.committed() == {"p0": 500, "p1": 500}
        sink.commit()
        self.assert_same_rows(self.read(url), table)

    def test_resume_sees_committed_partitions(self, new_url):
        url = new_url()
        table = id_table(1_000)
        first = open_sink(url)
        first.open(table.schema, if_exists="replace", run_id="resumable")
        first.write("p0", table.slice(0, 400))
        # A new process picks the run up again: same run id, p0 already there.
        again = open_sink(url)
        again.open(table.schema, if_exists="replace", run_id="resumable")
        assert again.committed() == {"p0": 400}
        assert again.write("p0", table.slice(0, 400)) == 0
        again.write("p1", table.slice(400))
        again.commit()
        self.assert_same_rows(self.read(url), table)

    def test_sink_pickles_after_open(self, new_url):
        import pickle

        url = new_url()
        table = id_table(100)
        sink = open_sink(url)
        sink.open(table.schema, if_exists="fail", run_id="pickled")
        clone = pickle.loads(pickle.dumps(sink))
        assert clone.write("p0", table) == 100
        sink.commit()
        self.assert_same_rows(self.read(url), table)

    # -- if_exists --------------------------------------------------------------------------------
    def test_if_exists_fail_leaves_target_untouched(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        with pytest.raises(TargetExistsError):
            self.write(url, id_table(3, start=100), if_exists="fail")
        self.assert_same_rows(self.read(url), original)

    def test_if_exists_replace(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        replacement = id_table(3, start=100)
        self.write(url, replacement, if_exists="replace")
        self.assert_same_rows(self.read(url), replacement)

    def test_replace_is_invisible_until_commit(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        sink = open_sink(url)
        sink.open(original.schema, if_exists="replace", run_id="pending")
        sink.write("p0", id_table(3, start=100))
        self.assert_same_rows(self.read(url), original)
        sink.abort()
        self.assert_same_rows(self.read(url), original)

    def test_if_exists_append(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        self.write(url, id_table(5, start=10), if_exists="append")
        self.assert_same_rows(self.read(url), id_table(15))
