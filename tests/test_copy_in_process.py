"""``copy`` in this process runs two partitions at a time in threads: every row exactly once,
the same output as a process pool's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from skfleet.copy import copy
from skfleet.data import open_source


def table(n: int) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
            "s": pa.array([f"{v:08x}" for v in rng.integers(0, 2**31, size=n)]),
        }
    )


def read_sorted(url: str) -> pa.Table:
    with open_source(url) as source:
        return source.read_all().sort_by("id")


def test_postgres_to_parquet_in_this_process_equals_a_pool(pg, tmp_path):
    url = pg.table_url("prefetch_in")
    assert copy_in(url) == 20_000
    here, pool = str(tmp_path / "here") + "/", str(tmp_path / "pool") + "/"
    first = copy(url, here, engine="local", partition_rows=1_500)
    second = copy(url, pool, engine="processes:2", partition_rows=1_500)
    assert first.partitions == second.partitions > 5
    assert first.rows == second.rows == 20_000
    got = read_sorted(here)
    assert got["id"].to_pylist() == list(range(20_000))  # each row once
    assert got.equals(read_sorted(pool))
    # Resumed with nothing left: every partition is committed, nothing is read or written again.
    again = copy(url, here, engine="local", partition_rows=1_500, run_id=first.run_id)
    assert again.skipped_partitions == again.partitions and again.rows == 20_000
    assert again.engine == "none"


def copy_in(url: str) -> int:
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as d:
        pq.write_table(table(20_000), f"{d}/in.parquet")
        return copy(f"{d}/in.parquet", url, engine="local", if_exists="replace").rows


def test_default_engine_weighs_the_work(tmp_path):
    """A small copy on the default engine starts no pool: every partition is copied here, two
    at a time, and the result says where and why."""
    import pyarrow.parquet as pq

    pq.write_table(table(20_000), tmp_path / "in.parquet", row_group_size=2_000)
    result = copy(str(tmp_path / "in.parquet"), str(tmp_path / "out") + "/", partition_rows=4_000)
    assert result.partitions > 1 and result.rows == 20_000
    assert result.engine.startswith("local (20,000 rows: faster here than starting")
    assert read_sorted(str(tmp_path / "out") + "/").equals(table(20_000))
    pool = str(tmp_path / "pool") + "/"
    named = copy(str(tmp_path / "in.parquet"), pool, partition_rows=4_000, engine="processes:2")
    assert named.engine == "processes:2"
