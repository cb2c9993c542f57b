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

skfleet's own suite runs the kit for every scheme in :mod:`skfleet.data.registry` (built-ins and
entry points): see :func:`conformance_fixture_name`. Importing this module needs pytest; nothing
else in skfleet does.

>>> id_table(3).column_names, id_table(3, start=5)["id"].to_pylist()
(['id', 'x', 'tag'], [5, 6, 7])
>>> conformance_fixture_name("postgresql"), conformance_fixture_name("my-db+ssl")
('conformance_url_postgresql', 'conformance_url_my_db_ssl')
"""

from __future__ import annotations

import datetime as dt
import decimal
import pickle
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from skfleet.data import open_sink, open_source
from skfleet.errors import SkfleetError, SourceNotFoundError, TargetExistsError, UsageError

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


def typed_table() -> pa.Table:
    """Every type the kit round-trips, with NULLs in each column."""
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
    """``n`` rows: ``id`` from ``start``, a float and a short string column."""
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {"id": ids, "x": ids.astype(np.float64) * 0.5, "tag": pa.array((ids % 7).astype(str))}
    )


def sorted_by_id(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


class SourceSinkConformance:
    """Subclass me and provide a ``new_url`` fixture (see the module docs)."""

    lossy_types: bool = False
    partition_target_rows: int = 1_000

    # -- hooks a backend may override ------------------------------------------------------------
    def leftovers(self, url: str) -> list[str]:
        """What a finished or aborted run left behind at ``url`` (staging); [] when clean."""
        return []

    def plant_foreign(self, url: str) -> Callable[[], bool] | None:
        """Put something the sink did not write at or next to the existing target ``url``;
        return a check that it is still intact (None: this backend has nothing to plant)."""
        return None

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

    def assert_unreadable(self, url: str) -> None:
        """Nothing at ``url`` reads as a table (not even an empty one)."""
        with pytest.raises(SkfleetError):
            source = open_source(url)
            try:
                source.schema()
                source.partitions(self.partition_target_rows)
            finally:
                source.close()

    # -- round trips ----------------------------------------------------------------------------
    def test_round_trip_types(self, new_url):
        url = new_url()
        table = typed_table()
        self.write(url, table)
        got = self.read(url)
        if not self.lossy_types:
            assert got.schema.equals(table.schema, check_metadata=False), got.schema
        self.assert_same_rows(got, table)

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

    @pytest.mark.parametrize("if_exists", ["fail", "replace"])
    def test_racing_writers_of_one_partition_write_it_once(self, new_url, if_exists):
        url = new_url()
        if if_exists == "replace":
            self.write(url, id_table(7, start=10_000))
        table = id_table(2_000)
        sink = open_sink(url)
        sink.open(table.schema, if_exists=if_exists, run_id="racers")
        clones = [pickle.loads(pickle.dumps(sink)) for _ in range(4)]
        barrier = threading.Barrier(len(clones))
        results, errors = [], []

        def go(clone):
            try:
                barrier.wait(30)
                results.append(clone.write("p0", table))
            except BaseException as exc:  # surfaced below, with the others' results
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(c,)) for c in clones]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sorted(results) == [0, 0, 0, 2_000]
        assert sink.committed() == {"p0": 2_000}
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
        assert self.leftovers(url) == []

    def test_reopening_a_committed_run_changes_nothing(self, new_url):
        url = new_url()
        table = id_table(100)
        sink = open_sink(url)
        sink.open(table.schema, if_exists="replace", run_id="once")
        sink.write("p0", table)
        sink.commit()
        again = open_sink(url)
        again.open(table.schema, if_exists="replace", run_id="once")
        assert again.committed() == {"p0": 100}
        assert again.write("p0", table) == 0
        # Rows of a partition the committed run never had cannot be dropped silently.
        with pytest.raises(UsageError, match="already committed"):
            again.write("p1", table)
        again.commit()
        self.assert_same_rows(self.read(url), table)

    def test_sink_pickles_after_open(self, new_url):
        url = new_url()
        table = id_table(100)
        sink = open_sink(url)
        sink.open(table.schema, if_exists="fail", run_id="pickled")
        clone = pickle.loads(pickle.dumps(sink))
        assert clone.write("p0", table) == 100
        sink.commit()
        self.assert_same_rows(self.read(url), table)

    # -- unfinished and aborted runs ------------------------------------------------------------
    def test_unfinished_first_run_is_no_readable_output(self, new_url):
        url = new_url()
        table = id_table(10)
        sink = open_sink(url)
        sink.open(table.schema, if_exists="fail", run_id="pending")
        sink.write("p0", table)
        # Killed here: nothing reads as a table, and a new run is not blocked by this one.
        self.assert_unreadable(url)
        self.write(url, id_table(3, start=100), if_exists="fail")
        self.assert_same_rows(self.read(url), id_table(3, start=100))

    def test_aborted_first_run_leaves_no_output_and_no_staging(self, new_url):
        url = new_url()
        table = id_table(10)
        sink = open_sink(url)
        sink.open(table.schema, if_exists="fail", run_id="gone")
        sink.write("p0", table)
        sink.abort()
        self.assert_unreadable(url)
        assert self.leftovers(url) == []
        with pytest.raises(SourceNotFoundError):
            open_source(url).schema()

    def test_aborted_replace_keeps_the_old_table_and_no_staging(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        sink = open_sink(url)
        sink.open(original.schema, if_exists="replace", run_id="dropped")
        sink.write("p0", id_table(3, start=100))
        sink.abort()
        self.assert_same_rows(self.read(url), original)
        assert self.leftovers(url) == []

    # -- if_exists --------------------------------------------------------------------------------
    def test_if_exists_fail_leaves_target_untouched(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        with pytest.raises(TargetExistsError):
            self.write(url, id_table(3, start=100), if_exists="fail")
        self.assert_same_rows(self.read(url), original)

    def test_bad_if_exists_names_the_flag(self, new_url):
        with pytest.raises(UsageError, match=r"--if-exists 'sometimes' is not one of fail"):
            open_sink(new_url()).open(id_table(1).schema, if_exists="sometimes")

    def test_if_exists_replace(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        replacement = id_table(3, start=100)
        self.write(url, replacement, if_exists="replace")
        self.assert_same_rows(self.read(url), replacement)
        assert self.leftovers(url) == []

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

    def test_replace_never_deletes_what_the_sink_did_not_write(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        intact = self.plant_foreign(url)
        if intact is None:
            pytest.skip("this backend has nothing foreign to plant next to a target")
        try:
            self.write(url, id_table(3, start=100), if_exists="replace")
        except SkfleetError:
            # Refusing is fine; then the old table must still be there, whole.
            self.assert_same_rows(self.read(url), original)
        assert intact(), "replace deleted something the sink did not write"

    def test_if_exists_append(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        self.write(url, id_table(5, start=10), if_exists="append")
        self.assert_same_rows(self.read(url), id_table(15))

    # -- incremental reads and watermarks (optional: a backend without them refuses) ------------
    def test_watermark_is_stored_by_the_commit(self, new_url):
        url = new_url()
        sink = open_sink(url)
        try:
            assert sink.watermark("m src") is None
        except UsageError as exc:
            assert "--incremental" in str(exc)  # refused in one line, naming the flag
            pytest.skip("this backend keeps no watermarks")
        state = {"column": "id", "value": {"int": 9}, "rows": 10}
        sink.set_watermark("m src", state)  # before open: the sink may stage for it
        sink.open(id_table(1).schema, if_exists="fail", run_id="wm1")
        sink.write("p0", id_table(10))
        assert open_sink(url).watermark("m src") is None  # not before the rows are published
        sink.commit()
        assert open_sink(url).watermark("m src") == state
        later = {**state, "value": {"int": 14}, "rows": 15}
        sink = open_sink(url)
        sink.set_watermark("m src", later)
        sink.open(id_table(1).schema, if_exists="append", run_id="wm2")
        sink.write("p0", id_table(5, start=10))
        sink.abort()
        # An aborted run moves nothing: neither the watermark nor rows the next run would
        # score again.
        assert open_sink(url).watermark("m src") == state
        self.assert_same_rows(self.read(url), id_table(10))
        # A run that started from another watermark than the one stored now publishes nothing.
        sink = open_sink(url)
        sink.set_watermark("m src", {**later, "run_id": "wm3", "after_run": "not-wm1"})
        sink.open(id_table(1).schema, if_exists="append", run_id="wm3")
        sink.write("p0", id_table(5, start=10))
        with pytest.raises(TargetExistsError, match="moved the watermark of m src"):
            sink.commit()
        assert open_sink(url).watermark("m src") == state
        self.assert_same_rows(self.read(url), id_table(10))
        sink.abort()
        self.write(url, id_table(3), if_exists="replace")
        assert open_sink(url).watermark("m src") is None  # a replaced table forgets it

    def test_incremental_read_covers_the_range_once(self, new_url):
        url = new_url()
        self.write(url, id_table(25_000), parts=5)
        source = open_source(url)
        try:
            try:
                stats = source.watermark_stats("id", None)
            except UsageError as exc:
                assert "--incremental" in str(exc)
                pytest.skip("this backend cannot read incrementally")
            assert (stats.maximum, stats.above, stats.at_or_below, stats.nulls) == (
                24_999,
                25_000,
                0,
                0,
            )
            stats = source.watermark_stats("id", 9_999)
            assert (stats.at_or_below, stats.above) == (10_000, 15_000)
            source.restrict("id", 9_999, 19_999)
            parts = source.partitions(3_000)
            # The range's column is read for the filter even when not asked for.
            assert sum(source.read(p, columns=["x"]).num_rows for p in parts) == 10_000
            got = np.concatenate([source.read(p, columns=["id"])["id"].to_numpy() for p in parts])
            assert np.array_equal(np.sort(got), np.arange(10_000, 20_000))
            assert [p.id for p in source.partitions(3_000)] == [p.id for p in parts]
        finally:
            source.close()
