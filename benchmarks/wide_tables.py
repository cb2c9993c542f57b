"""Wide tables: ``skfleet copy`` and ``skfleet train`` time per column, from 1k to 10k columns.

Writes a CSV of ROWS rows (an int64 ``id``, N float64 columns, a float target ``y``) for each width
N, then times whole CLI processes, as a user runs them (start-up and imports included):

- ``skfleet copy wide.csv --out wide.parquet --engine local``
- ``skfleet train wide.csv --target y --model ridge --key id --cv 2 --no-report --engine local``

and prints seconds, then milliseconds per column over a 10-column run of the same commands (the
fixed cost: interpreter start, imports, the store), and that figure relative to the narrowest
width. Time linear in the columns keeps the ratio near 1; the quadratic column lookups this guards
against made it grow with N (copy: 1.6 s at 500 columns, 19.6 s at 2k, still running after 300 s
at 10k).

Run:  .venv/bin/python benchmarks/wide_tables.py [--widths 1000,2000,5000,10000] [--rows 1000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

SKFLEET = [sys.executable, "-m", "skfleet"]


def write_csv(path: Path, columns: int, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, columns)).round(4)
    data = {"id": np.arange(rows, dtype=np.int64)}
    data.update({f"c{i:05d}": values[:, i] for i in range(columns)})
    data["y"] = (values[:, : min(columns, 20)].sum(axis=1) + rng.normal(size=rows)).round(4)
    pacsv.write_csv(pa.table(data), path)


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([*SKFLEET, *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"skfleet {' '.join(args)} failed:\n{done.stderr}")
    return seconds


def bench(widths: list[int], rows: int, repeat: int) -> list[tuple[int, float, float]]:
    results = []
    for width in widths:
        work = Path(tempfile.mkdtemp(prefix=f"skfleet-wide-{width}-"))
        try:
            write_csv(work / "wide.csv", width, rows)
            copies, trains = [], []
            for i in range(repeat):
                copies.append(
                    timed(["copy", "wide.csv", "--out", f"o{i}.parquet", "--engine", "local"], work)
                )
                trains.append(
                    timed(
                        ["train", "wide.csv", "--target", "y", "--model", "ridge", "--key", "id"]
                        + ["--cv", "2", "--no-report", "--engine", "local"]
                        + ["--name", f"wide{i}", "--store", "models"],
                        work,
                    )
                )
            results.append((width, min(copies), min(trains)))
            print(f"  {width:>6} columns: copy {min(copies):7.1f} s, train {min(trains):7.1f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return results


def report(results: list[tuple[int, float, float]], fixed: tuple[float, float], rows: int) -> None:
    def per_column(width: int, copy_s: float, train_s: float) -> tuple[float, float]:
        return (copy_s - fixed[0]) / width * 1e3, (train_s - fixed[1]) / width * 1e3

    base = per_column(*results[0])
    print(
        f"\n{rows:,} rows; best of the runs; ms/col = (seconds - the 10-column run's) / columns "
        f"* 1000; 10 columns: copy {fixed[0]:.1f} s, train {fixed[1]:.1f} s"
    )
    print("| columns | copy s | copy ms/col | ratio | train s | train ms/col | ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for width, copy_s, train_s in results:
        copy_pc, train_pc = per_column(width, copy_s, train_s)
        print(
            f"| {width:,} | {copy_s:.1f} | {copy_pc:.2f} | {copy_pc / base[0]:.2f}"
            f" | {train_s:.1f} | {train_pc:.2f} | {train_pc / base[1]:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1000,2000,5000,10000")
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    (_, *fixed), *results = bench([10, *widths], args.rows, args.repeat)
    report(results, tuple(fixed), args.rows)


if __name__ == "__main__":
    main()
