"""The Source/Sink conformance kit's tests: every table backend passes them (see
:mod:`skfleet.data.testing`)."""

from __future__ import annotations

import pickle
import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from skfleet.data import open_sink, open_source
from skfleet.data.testing.tables import id_table, read_ids, sorted_by_id, typed_table
from skfleet.data.testing.watermarks import WatermarkConformance
from skfleet.errors import SkfleetError, SourceNotFoundError, TargetExistsError, UsageError


class SourceSinkConformance(WatermarkConformance):
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
    def opened(self, url: str, schema: pa.Schema, if_exists: str, run_id: str) -> Any:
        """The sink at ``url``, opened for ``run_id`` (what a client does before its tasks)."""
        sink = open_sink(url)
        sink.open(schema, if_exists=if_exists, run_id=run_id)
        return sink

    def write(self, url: str, table: pa.Table, if_exists: str = "fail", parts: int = 1) -> str:
        run_id = uuid.uuid4().hex[:12]
        sink = self.opened(url, table.schema, if_exists, run_id)
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

    def assert_reads(self, url: str, expected: pa.Table) -> None:
        """What ``url`` reads back holds the rows of ``expected``, no more."""
        self.assert_same_rows(self.read(url), expected)

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
        self.assert_reads(url, table)

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
        ids = read_ids(source, parts)
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
        sink = self.opened(url, table.schema, if_exists="fail", run_id="run1")
        assert sink.write("p0", table.slice(0, 500)) == 500
        assert sink.write("p0", table.slice(0, 500)) == 0
        assert sink.write("p1", table.slice(500)) == 500
        assert sink.committed() == {"p0": 500, "p1": 500}
        sink.commit()
        self.assert_reads(url, table)

    @pytest.mark.parametrize("if_exists", ["fail", "replace"])
    def test_racing_writers_of_one_partition_write_it_once(self, new_url, if_exists):
        url = new_url()
        if if_exists == "replace":
            self.write(url, id_table(7, start=10_000))
        table = id_table(2_000)
        sink = self.opened(url, table.schema, if_exists=if_exists, run_id="racers")
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
        self.assert_reads(url, table)

    def test_resume_sees_committed_partitions(self, new_url):
        url = new_url()
        table = id_table(1_000)
        first = self.opened(url, table.schema, if_exists="replace", run_id="resumable")
        first.write("p0", table.slice(0, 400))
        # A new process picks the run up again: same run id, p0 already there.
        again = self.opened(url, table.schema, if_exists="replace", run_id="resumable")
        assert again.committed() == {"p0": 400}
        assert again.write("p0", table.slice(0, 400)) == 0
        again.write("p1", table.slice(400))
        again.commit()
        self.assert_reads(url, table)
        assert self.leftovers(url) == []

    def test_reopening_a_committed_run_changes_nothing(self, new_url):
        url = new_url()
        table = id_table(100)
        sink = self.opened(url, table.schema, if_exists="replace", run_id="once")
        sink.write("p0", table)
        sink.commit()
        again = self.opened(url, table.schema, if_exists="replace", run_id="once")
        assert again.committed() == {"p0": 100}
        assert again.write("p0", table) == 0
        # Rows of a partition the committed run never had cannot be dropped silently.
        with pytest.raises(UsageError, match="already committed"):
            again.write("p1", table)
        again.commit()
        self.assert_reads(url, table)

    def test_sink_pickles_after_open(self, new_url):
        url = new_url()
        table = id_table(100)
        sink = self.opened(url, table.schema, if_exists="fail", run_id="pickled")
        clone = pickle.loads(pickle.dumps(sink))
        assert clone.write("p0", table) == 100
        sink.commit()
        self.assert_reads(url, table)

    # -- unfinished and aborted runs ------------------------------------------------------------
    def test_unfinished_first_run_is_no_readable_output(self, new_url):
        url = new_url()
        table = id_table(10)
        sink = self.opened(url, table.schema, if_exists="fail", run_id="pending")
        sink.write("p0", table)
        # Killed here: nothing reads as a table, and a new run is not blocked by this one.
        self.assert_unreadable(url)
        self.write(url, id_table(3, start=100), if_exists="fail")
        self.assert_reads(url, id_table(3, start=100))

    def test_aborted_first_run_leaves_no_output_and_no_staging(self, new_url):
        url = new_url()
        table = id_table(10)
        sink = self.opened(url, table.schema, if_exists="fail", run_id="gone")
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
        sink = self.opened(url, original.schema, if_exists="replace", run_id="dropped")
        sink.write("p0", id_table(3, start=100))
        sink.abort()
        self.assert_reads(url, original)
        assert self.leftovers(url) == []

    # -- if_exists --------------------------------------------------------------------------------
    def test_if_exists_fail_leaves_target_untouched(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        with pytest.raises(TargetExistsError):
            self.write(url, id_table(3, start=100), if_exists="fail")
        self.assert_reads(url, original)

    def test_bad_if_exists_names_the_flag(self, new_url):
        with pytest.raises(UsageError, match=r"--if-exists 'sometimes' is not one of fail"):
            open_sink(new_url()).open(id_table(1).schema, if_exists="sometimes")

    def test_if_exists_replace(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        replacement = id_table(3, start=100)
        self.write(url, replacement, if_exists="replace")
        self.assert_reads(url, replacement)
        assert self.leftovers(url) == []

    def test_replace_is_invisible_until_commit(self, new_url):
        url = new_url()
        original = id_table(10)
        self.write(url, original)
        sink = self.opened(url, original.schema, if_exists="replace", run_id="pending")
        sink.write("p0", id_table(3, start=100))
        self.assert_reads(url, original)
        sink.abort()
        self.assert_reads(url, original)

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
            self.assert_reads(url, original)
        assert intact(), "replace deleted something the sink did not write"

    def test_if_exists_append(self, new_url):
        url = new_url()
        self.write(url, id_table(10))
        self.write(url, id_table(5, start=10), if_exists="append")
        self.assert_reads(url, id_table(15))
