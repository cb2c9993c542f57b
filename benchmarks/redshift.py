"""Redshift I/O on the Redshift *stand-in*: UNLOAD vs plain SELECTs vs pandas, COPY vs INSERTs.

**Redshift itself was not available**: this runs against the test suite's stand-in
(``tests/services/redshift.py``: a real PostgreSQL behind a Python wire proxy, with moto's S3
server on loopback). Absolute times say nothing about Redshift; the ratios say how the paths
compare when every byte crosses the same proxy and the same S3 endpoint. On a real cluster the
UNLOAD runs on every slice at once and the leader node is the bottleneck of every SELECT path,
so the gap can only widen.

read   N rows x (bigint id, 2 float8, 1 varchar)
       (a) skfleet with ``staging=``: one UNLOAD to S3 (``partitions()``), then the Parquet files
           read by a 2-process pool (each task returns its row count)
       (b) skfleet without ``staging=``: key ranges fetched with plain SELECTs, same pool
       (c) ``pandas.read_sql`` of the whole table through psycopg
write  the same rows
       (d) skfleet sink: partitions staged on S3 as Parquet and loaded with COPY (2-process pool,
           open + commit included)
       (e) batched INSERTs: multi-row ``INSERT ... VALUES`` statements of 1,000 rows through
           psycopg (on ``--insert-rows`` rows, extrapolated)

Run:  .venv/bin/python benchmarks/redshift.py [--rows 2000000] [--insert-rows 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services.*

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from skfleet.copy import copy  # noqa: E402
from skfleet.data import open_source  # noqa: E402
from skfleet.engine import get_engine  # noqa: E402
from tests.services.postgres import start_postgres  # noqa: E402
from tests.services.redshift import start_redshift  # noqa: E402
from tests.services.s3 import start_s3  # noqa: E402

PARTITION_ROWS = 250_000


def rows_table(n: int, start: int = 0) -> pa.Table:
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "x": rng.normal(size=n),
            "y": rng.uniform(size=n),
            "tag": pa.array(np.char.add("tag-", (ids % 97).astype(str))),
        }
    )


def read_partition(item) -> int:
    """Top level, for the process pool: read one partition where it runs."""
    source, partition = item
    return source.read(partition).num_rows


def warm_up(bucket: str) -> int:
    """Before timing: import the backend and make this worker's S3 client (a long-lived worker
    has both already)."""
    import skfleet.data.redshift  # noqa: F401
    from skfleet.data.files.store import FileStore

    store, path = FileStore.from_url(f"s3://{bucket}/")
    store.fs.ls(path)
    time.sleep(0.5)  # long enough that each worker takes one of the two tasks
    return 0


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def partitioned_read(url: str, pool) -> tuple[int, int, float]:
    """Rows read, partitions, and the seconds planning took (the UNLOAD, for staging=)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the slow path's warning is the point of (b)
        with open_source(url) as source:
            started = time.perf_counter()
            parts = source.partitions(PARTITION_ROWS)
            planned = time.perf_counter() - started
            items = [(source, p) for p in parts]
            rows = sum(r for _, r in pool.map_unordered(read_partition, items))
    return rows, len(parts), planned


def batched_inserts(standin, table: pa.Table, name: str, batch: int = 1_000) -> int:
    from psycopg import sql

    with standin.connect() as conn:
        conn.execute(
            f"CREATE TABLE {name} (id BIGINT, x DOUBLE PRECISION, y DOUBLE PRECISION, "
            "tag VARCHAR(65535))"
        )
        columns = [table.column(c).to_pylist() for c in table.column_names]
        rows = list(zip(*columns, strict=True))
        with conn.transaction():
            for offset in range(0, len(rows), batch):
                chunk = rows[offset : offset + batch]
                values = sql.SQL(", ").join(
                    sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, row)))
                    for row in chunk
                )
                conn.execute(
                    sql.SQL("INSERT INTO {} VALUES {}").format(sql.Identifier(name), values)
                )
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--insert-rows", type=int, default=200_000)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="skfleet-bench-redshift-")
    pg = start_postgres(base)
    s3 = start_s3()
    standin = start_redshift(pg, s3)
    pool = get_engine("processes:2")
    try:
        list(pool.map_unordered(warm_up, [s3.bucket, s3.bucket]))
        table = rows_table(args.rows)
        parquet = Path(base) / "rows.parquet"
        pq.write_table(table, parquet, row_group_size=PARTITION_ROWS)
        name = f"bench_{uuid.uuid4().hex[:6]}"
        url = standin.url(table=f"public.{name}")

        seconds, result = timed(
            lambda: copy(str(parquet), url, engine=pool, partition_rows=PARTITION_ROWS)
        )
        results = {"write_copy": (seconds, result.rows)}
        insert_table = table.slice(0, args.insert_rows)
        seconds, rows = timed(lambda: batched_inserts(standin, insert_table, f"{name}_ins"))
        results["write_insert"] = (seconds * args.rows / rows, rows)

        seconds, (rows, parts, planned) = timed(lambda: partitioned_read(url, pool))
        assert rows == args.rows, rows
        results["read_unload"] = (seconds, parts)
        unload_seconds = planned
        select_url = standin.url(table=f"public.{name}", staging=False, key="id")
        seconds, (rows, parts, _) = timed(lambda: partitioned_read(select_url, pool))
        assert rows == args.rows, rows
        results["read_select"] = (seconds, parts)

        import pandas as pd

        def read_sql() -> int:
            with standin.connect() as conn, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas prefers SQLAlchemy; psycopg works
                return len(pd.read_sql(f"SELECT * FROM public.{name}", conn))

        seconds, rows = timed(read_sql)
        assert rows == args.rows, rows
        results["read_pandas"] = (seconds, 1)
    finally:
        pool.close()
        standin.stop()
        s3.stop()
        pg.stop()

    n = args.rows
    print(f"Redshift stand-in (PostgreSQL + wire proxy + moto S3; not Redshift), {n:,} rows")
    unload = results["read_unload"][0]
    copy_s = results["write_copy"][0]
    lines = [
        ("read: UNLOAD + Parquet files, 2 processes", results["read_unload"], unload),
        ("read: plain SELECTs by key range, 2 processes", results["read_select"], unload),
        ("read: pandas.read_sql", results["read_pandas"], unload),
        ("write: Parquet on S3 + COPY, 2 processes", results["write_copy"], copy_s),
        (
            f"write: INSERT ... VALUES x1000 (on {args.insert_rows:,} rows, extrapolated)",
            results["write_insert"],
            copy_s,
        ),
    ]
    for label, (seconds, _), reference in lines:
        print(
            f"  {label:<68} {seconds:8.2f} s  {seconds / reference:6.2f}x  {n / seconds:>10,.0f} rows/s"
        )
    parts = results["read_unload"][1]
    print(
        f"  of (a): the UNLOAD {unload_seconds:.2f} s (emulated by the proxy in one Python thread; "
        f"on Redshift every slice writes at once), reading {parts} files {unload - unload_seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
