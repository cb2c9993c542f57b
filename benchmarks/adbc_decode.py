"""What reading PostgreSQL costs the client, per column type: ADBC's decoding of a binary COPY.

Starts a throwaway server (``tests/services/postgres.py``) and fills one table per type with
``--rows`` rows of ``--columns`` columns of that type (plus a bigint key), then reads each whole
table through skfleet's PostgreSQL source in this process, one partition, and prints the client's
CPU seconds per million values (decoding into Arrow, the copy out of the driver) beside the wall
time of ``psql \\copy ... to /dev/null`` in binary for the same table (the server's side alone).
Median of ``--repeat`` reads after a warm one.

Run:  .venv/bin/python benchmarks/adbc_decode.py [--rows 1000000] [--columns 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services.postgres

from skfleet.data import open_source  # noqa: E402

#: type -> SQL expression of one value from the series number g (varied, no nulls).
TYPES = {
    "bigint": "g * 7 + {i}",
    "integer": "(g %% 1000000)::integer + {i}",
    "float8": "random()",
    "float4": "random()::real",
    "boolean": "random() > 0.5",
    "numeric(12,2)": "round((random() * 1e6)::numeric, 2)",
    "text (8 chars)": "substr(md5(g::text || '{i}'), 1, 8)",
    "text (32 chars)": "md5(g::text || '{i}')",
    "date": "date '2020-01-01' + (g %% 3000)",
    "timestamptz": "timestamptz '2020-01-01' + g * interval '1 second'",
}


def table_name(kind: str) -> str:
    return "t_" + "".join(c if c.isalnum() else "_" for c in kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tests.services.postgres import start_postgres

    base = Path(tempfile.mkdtemp(prefix="skfleet-bench-adbc-"))
    values = args.rows * args.columns / 1e6
    print(f"{args.rows:,} rows x {args.columns} columns per type; load {os.getloadavg()}")
    print(f"{'type':<16} {'client cpu s':>12} {'cpu s / 1M values':>18} {'read wall s':>11} "
          f"{'psql COPY wall s':>16}")  # fmt: skip
    try:
        with start_postgres(base / "pg") as pg:
            for kind, expression in TYPES.items():
                name = table_name(kind)
                sql_type = kind.split(" (")[0]
                columns = ", ".join(
                    f"({expression.format(i=i)})::{sql_type} AS c{i}" for i in range(args.columns)
                )
                with pg.connect() as conn:
                    conn.execute(f"DROP TABLE IF EXISTS {name}")
                    conn.execute(
                        f"CREATE TABLE {name} AS SELECT g::bigint AS k, {columns} "
                        "FROM generate_series(1, %s) g",
                        [args.rows],
                    )
                    conn.execute(f"VACUUM (FREEZE, ANALYZE) {name}")
                cpu, wall, server = [], [], []
                with open_source(pg.table_url(f"public.{name}")) as source:
                    (part,) = source.partitions(args.rows * 10)
                    source.read(part)  # warm: pages in the server's cache
                    for _ in range(args.repeat):
                        c0, w0 = time.process_time(), time.perf_counter()
                        table = source.read(part)
                        cpu.append(time.process_time() - c0)
                        wall.append(time.perf_counter() - w0)
                        assert table.num_rows == args.rows
                        w0 = time.perf_counter()
                        pg.psql("-c", f"\\copy {name} to '/dev/null' with (format binary)")
                        server.append(time.perf_counter() - w0)
                c = statistics.median(cpu)
                print(
                    f"{kind:<16} {c:>12.2f} {c / values:>18.3f} {statistics.median(wall):>11.2f} "
                    f"{statistics.median(server):>16.2f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
