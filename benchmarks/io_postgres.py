"""PostgreSQL I/O: skfleet's partitioned read/write against psql's binary COPY and pandas.

Starts its own throwaway server (``tests/services/postgres.py``, binaries from ``pgserver``), then:

read   2M rows x (bigint key, 20 float8, 2 text)
       (a) ``psql -c "\\copy t to /dev/null binary"``      the floor: raw binary COPY, no decoding
       (b) skfleet: ``partitions()`` + ``read()`` in a 2-process pool, decoded into Arrow in the
           workers (each task returns its row count; rows are not shipped back: the design has
           workers consume their own partitions); also from one process
       (c) ``pandas.read_sql`` through SQLAlchemy + psycopg
write  2M rows x (bigint, float8)
       skfleet sink (open replace -> partitions written by a 2-process pool -> commit: ANALYZE and
       swap included), also from one process, vs ``DataFrame.to_sql`` (SQLAlchemy's default path,
       on a sample, extrapolated)

Besides wall time (median of ``--repeat`` runs) it reports CPU seconds, client and server side
(the server's from /proc), which stay meaningful on a machine busy with other work.

Run:  .venv/bin/python benchmarks/io_postgres.py [--rows 2000000] [--repeat 3]
Needs sqlalchemy for the pandas baselines (``pip install sqlalchemy``, in the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services.postgres

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from skfleet.data import open_sink, open_source  # noqa: E402
from skfleet.engine import get_engine  # noqa: E402
from tests.services.postgres import start_postgres  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


# -- worker tasks (top level, so a process pool can run them) ---------------------------------------
def warm_up(_: int) -> int:
    """Run before timing: import the drivers once per worker process."""
    import adbc_driver_postgresql.dbapi  # noqa: F401

    import skfleet.data.postgres  # noqa: F401

    time.sleep(0.5)  # long enough that each worker takes one of the two tasks
    return 0


def read_partition(item) -> tuple[int, float]:
    """Read one partition into Arrow; return its row count and this task's CPU seconds."""
    source, partition = item
    cpu = time.process_time()
    rows = source.read(partition).num_rows
    return rows, time.process_time() - cpu


def write_partition(item) -> tuple[int, float]:
    """Build rows [start, stop) and write them as one partition."""
    sink, start, stop = item
    table = make_write_table(start, stop)
    cpu = time.process_time()
    rows = sink.write(f"w{start}", table)
    return rows, time.process_time() - cpu


def make_write_table(start: int, stop: int) -> pa.Table:
    key = np.arange(start, stop, dtype=np.int64)
    return pa.table({"k": key, "v": np.sin(key.astype(np.float64))})


# -- measuring ------------------------------------------------------------------------------------
def server_cpu(pg) -> float:
    """CPU seconds used so far by the postmaster and its children (live ones and reaped ones)."""
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, utime, stime, cutime, cstime = (int(fields[i]) for i in (1, 11, 12, 13, 14))
        if int(pid) == postmaster:
            total += utime + stime + cutime + cstime
        elif ppid == postmaster:
            total += utime + stime
    return total / TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Result:
    wall: float
    client_cpu: float
    server_cpu: float


def measure(pg, fn, repeat: int, rows: int) -> Result:
    """Median wall time and CPU of ``fn() -> (rows, cpu seconds spent in pool workers)``."""
    runs = []
    for _ in range(repeat):
        server0, own0, kids0 = server_cpu(pg), time.process_time(), children_cpu()
        t0 = time.perf_counter()
        got, worker_cpu = fn()
        wall = time.perf_counter() - t0
        client = time.process_time() - own0 + children_cpu() - kids0 + worker_cpu
        runs.append(Result(wall, client, server_cpu(pg) - server0))
        assert got == rows, (got, rows)
    runs.sort(key=lambda r: r.wall)
    return runs[len(runs) // 2]


# -- reads ----------------------------------------------------------------------------------------
def create_read_table(pg, rows: int) -> None:
    floats = ", ".join(f"random() AS f{i:02d}" for i in range(20))
    with pg.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute(
            f"CREATE TABLE t AS SELECT g::bigint AS k, {floats}, "
            "md5(g::text) AS s1, 'category_' || (g %% 97) AS s2 FROM generate_series(1, %s) g",
            [rows],
        )
        # Hint bits and visibility map set once, so no timed run pays for them.
        conn.execute("VACUUM (FREEZE, ANALYZE) t")


def bench_reads(pg, rows: int, repeat: int, target_rows: int) -> dict[str, Result]:
    url = pg.table_url("public.t")
    results: dict[str, Result] = {}

    def psql_copy():
        pg.psql("-c", "\\copy t to '/dev/null' with (format binary)")
        return rows, 0.0  # psql's CPU is counted as a child process

    results["psql binary COPY"] = measure(pg, psql_copy, repeat, rows)

    with get_engine("processes:2") as engine:
        list(engine.map_unordered(warm_up, [0, 1]))  # workers started before timing

        def skfleet_read():
            with open_source(url) as source:
                items = [(source, p) for p in source.partitions(target_rows)]
                done = [result for _, result in engine.map_unordered(read_partition, items)]
            return sum(n for n, _ in done), sum(c for _, c in done)

        results["skfleet read (2 processes)"] = measure(pg, skfleet_read, repeat, rows)

    def skfleet_read_one_process():
        with open_source(url) as source:
            return sum(source.read(p).num_rows for p in source.partitions(target_rows)), 0.0

    results["skfleet read (1 process)"] = measure(pg, skfleet_read_one_process, repeat, rows)

    try:
        import pandas as pd
        import sqlalchemy
    except ImportError:
        print("sqlalchemy not installed: skipping pandas.read_sql", file=sys.stderr)
        return results
    engine = sqlalchemy.create_engine(pg.url().replace("postgresql://", "postgresql+psycopg://"))

    def pandas_read():
        with engine.connect() as conn:
            return len(pd.read_sql("SELECT * FROM t", conn)), 0.0

    results["pandas.read_sql"] = measure(pg, pandas_read, repeat, rows)
    engine.dispose()
    return results


# -- writes ---------------------------------------------------------------------------------------
def bench_writes(pg, rows: int, repeat: int, part_rows: int, sample: int) -> dict[str, Result]:
    schema = make_write_table(0, 1).schema
    url = pg.table_url("public.w")
    results: dict[str, Result] = {}
    bounds = [(a, min(a + part_rows, rows)) for a in range(0, rows, part_rows)]
    run = iter(range(1_000_000))

    with get_engine("processes:2") as engine:
        list(engine.map_unordered(warm_up, [0, 1]))

        def skfleet_parallel():
            sink = open_sink(url)
            sink.open(schema, if_exists="replace", run_id=f"bench{next(run)}")
            items = [(sink, a, b) for a, b in bounds]
            done = [result for _, result in engine.map_unordered(write_partition, items)]
            sink.commit()
            return sum(n for n, _ in done), sum(c for _, c in done)

        results["skfleet sink (2 processes)"] = measure(pg, skfleet_parallel, repeat, rows)

    tables = [make_write_table(a, b) for a, b in bounds]  # built outside the timing

    def skfleet_one_process():
        sink = open_sink(url)
        sink.open(schema, if_exists="replace", run_id=f"bench{next(run)}")
        n = sum(sink.write(f"w{i}", t) for i, t in enumerate(tables))
        sink.commit()
        return n, 0.0

    results["skfleet sink (1 process)"] = measure(pg, skfleet_one_process, repeat, rows)

    try:
        import sqlalchemy
    except ImportError:
        print("sqlalchemy not installed: skipping DataFrame.to_sql", file=sys.stderr)
        return results
    engine = sqlalchemy.create_engine(pg.url().replace("postgresql://", "postgresql+psycopg://"))
    frame = make_write_table(0, sample).to_pandas()

    def pandas_write():
        frame.to_sql("w_pandas", engine, if_exists="replace", index=False, chunksize=50_000)
        return sample, 0.0

    got = measure(pg, pandas_write, repeat, sample)
    scale = rows / sample
    name = f"DataFrame.to_sql ({sample:,} rows, x{scale:g})"
    results[name] = Result(got.wall * scale, got.client_cpu * scale, got.server_cpu * scale)
    engine.dispose()
    return results


def report(title: str, results: dict[str, Result], rows: int, base: str | None) -> None:
    print(f"\n{title}")
    print(
        f"  {'':<40} {'wall s':>7} {'ratio':>6} {'Mrows/s':>8} {'client cpu':>10} {'server cpu':>10}"
    )
    floor = results[base].wall if base else None
    for name, r in results.items():
        ratio = f"{r.wall / floor:5.2f}x" if floor else ""
        print(
            f"  {name:<40} {r.wall:7.2f} {ratio:>6} {rows / r.wall / 1e6:8.2f} "
            f"{r.client_cpu:10.2f} {r.server_cpu:10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target-rows", type=int, default=250_000, help="rows per read partition")
    parser.add_argument("--write-part-rows", type=int, default=250_000)
    parser.add_argument("--to-sql-sample", type=int, default=200_000)
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="skfleet-bench-pg-")
    try:
        with start_postgres(base) as pg:
            create_read_table(pg, args.rows)
            reads = bench_reads(pg, args.rows, args.repeat, args.target_rows)
            writes = bench_writes(
                pg, args.rows, args.repeat, args.write_part_rows, args.to_sql_sample
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} cores, load average {load:.1f}, python {sys.version.split()[0]}")
    report(f"read {args.rows:,} rows x 23 columns", reads, args.rows, "psql binary COPY")
    if "pandas.read_sql" in reads:
        ratio = reads["pandas.read_sql"].wall / reads["skfleet read (2 processes)"].wall
        print(f"  pandas.read_sql / skfleet (2 processes): {ratio:.1f}x")
    report(f"write {args.rows:,} rows x (bigint, float8)", writes, args.rows, None)
    pandas_key = next((k for k in writes if k.startswith("DataFrame.to_sql")), None)
    if pandas_key:
        ratio = writes[pandas_key].wall / writes["skfleet sink (2 processes)"].wall
        print(f"  DataFrame.to_sql / skfleet (2 processes): {ratio:.1f}x")


if __name__ == "__main__":
    main()
