"""The client's peak memory scoring 2M and 20M rows: whole ``skfleet predict`` CLI processes.

Writes Parquet folders of generated rows (int64 ``id`` + three float64, files of 1M rows), stores
a LinearRegression on them, starts a ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 (so neither the scheduler nor a worker lives in the client), then runs, per size,

    /usr/bin/time -v skfleet predict reg@1 ROWS/ --out OUT/ --store STORE --engine tcp://... --json

and reports the client's maximum resident set size (what ``time -v`` measures: the client
process alone, its peak over the whole run, imports included), the run's partitions and wall
time, and the ratio of the peaks (target: at most 1.2).

``--pythonpath DIR`` runs the client and the workers on another checkout's ``src`` (to measure
a release before this change the same way).

Run:  .venv/bin/python benchmarks/client_memory.py [--rows 2000000,20000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tests.services.dask import start_process_cluster  # noqa: E402

FILE_ROWS = 1_000_000


def write_rows(folder: Path, rows: int) -> str:
    """``rows`` generated rows as Parquet files of :data:`FILE_ROWS` (reused if present)."""
    done = folder / "_complete"
    if done.exists():
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        x = np.random.default_rng(i).normal(size=(n, 3))
        ids = np.arange(start, start + n, dtype=np.int64)
        table = pa.table({"id": ids, "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2]})
        pq.write_table(table, folder / f"part-{i:05d}.parquet", row_group_size=250_000)
    done.touch()
    return str(folder)


#: model.json of the registered regressor on x0..x2 the benchmarks score.
REGRESSOR_META = {
    "kind": "registered",
    "task": "regression",
    "target": "y",
    "key_columns": ["id"],
    "input_columns": ["x0", "x1", "x2"],
    "label_type": "double",
}


def save_model(store_dir: Path) -> str:
    from sklearn.linear_model import LinearRegression

    from skfleet.store import ModelStore

    x = np.random.default_rng(0).normal(size=(1_000, 3))
    model = LinearRegression().fit(x, x @ [3.0, -1.0, 0.5] + 1.0)
    return str(ModelStore(str(store_dir)).save("reg", model, REGRESSOR_META))


def peak_kb(time_output: str) -> int:
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_output)
    if match is None:
        raise RuntimeError(f"no maximum resident set size in:\n{time_output[-2000:]}")
    return int(match.group(1))


def run_client(args: list[str], env: dict[str, str]) -> tuple[int, dict]:
    skfleet = str(Path(sys.executable).parent / "skfleet")
    done = subprocess.run(
        ["/usr/bin/time", "-v", skfleet, *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"skfleet predict failed:\n{done.stderr[-3000:]}")
    return peak_kb(done.stderr), json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000000,20000000")
    parser.add_argument("--keep", help="folder for the generated rows (kept between runs)")
    parser.add_argument("--pythonpath", help="run client and workers on this src folder")
    parser.add_argument("--partition-rows", type=int, default=None)
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows.split(",")]
    work = Path(args.keep or tempfile.mkdtemp(prefix="skfleet-client-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.pythonpath:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [args.pythonpath, os.environ.get("PYTHONPATH")])
        )
    env = dict(os.environ)
    scratch = Path(tempfile.mkdtemp(prefix="skfleet-client-memory-run-"))
    cluster = start_process_cluster(2, scratch)
    try:
        ref = save_model(scratch / "models")
        results = []
        for rows in sizes:
            data = write_rows(work / f"rows-{rows}", rows)
            out = scratch / f"scores-{rows}"
            cli = ["predict", ref, data, "--out", str(out), "--store", str(scratch / "models")]
            cli += ["--engine", cluster.address, "--json"]
            if args.partition_rows:
                cli += ["--partition-rows", str(args.partition_rows)]
            peak, summary = run_client(cli, env)
            results.append((rows, peak, summary))
            shutil.rmtree(out, ignore_errors=True)
            print(
                f"{rows:>12,} rows  {summary['partitions']:>5} partitions  "
                f"{summary['seconds']:7.1f} s  client peak RSS {peak / 1024:7.1f} MB",
                flush=True,
            )
        small, large = results[0], results[-1]
        print(f"ratio {large[0] // small[0]}x rows: peak RSS x{large[1] / small[1]:.3f}")
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
