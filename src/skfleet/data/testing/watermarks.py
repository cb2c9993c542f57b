"""The conformance kit's optional part: incremental reads and watermarks (a backend without them
refuses in one line naming ``--incremental``, and these tests skip)."""

from __future__ import annotations

import numpy as np
import pytest

from skfleet.data import open_sink, open_source
from skfleet.data.testing.tables import id_table, read_ids
from skfleet.errors import TargetExistsError, UsageError


class WatermarkConformance:
    """Mixed into :class:`~skfleet.data.testing.SourceSinkConformance`; uses its helpers."""

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
        self.assert_reads(url, id_table(10))
        # A run that started from another watermark than the one stored now publishes nothing.
        sink = open_sink(url)
        sink.set_watermark("m src", {**later, "run_id": "wm3", "after_run": "not-wm1"})
        sink.open(id_table(1).schema, if_exists="append", run_id="wm3")
        sink.write("p0", id_table(5, start=10))
        with pytest.raises(TargetExistsError, match="moved the watermark of m src"):
            sink.commit()
        assert open_sink(url).watermark("m src") == state
        self.assert_reads(url, id_table(10))
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
            got = read_ids(source, parts)
            assert np.array_equal(np.sort(got), np.arange(10_000, 20_000))
            assert [p.id for p in source.partitions(3_000)] == [p.id for p in parts]
        finally:
            source.close()
