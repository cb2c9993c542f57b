"""Weak scaling from measurements: what a partition costs the scheduler and the client, what a row
costs a worker, and from them the wall time of 1B rows on 100 and 1,000 workers.

On a ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1:

1. **scheduler and client per task, bare**: ``DaskEngine.map_unordered`` (the engine skfleet's
   commands use) over many no-op tasks; CPU seconds of the scheduler process (``/proc/PID/stat``,
   user + system) and of this client process, per task.
2. **scheduler and client per partition, in a real run**: ``skfleet predict`` CLI processes
   (``/usr/bin/time -v``) over Parquet folders of P1 and P2 one-file partitions of 100 rows into a
   Parquet output (duplicate-key check on). The slope between them is the cost of one more
   partition: for the client, planning (listing, a footer read), the task, its result, run
   record checkpoints, the commit's move of the part and the key check; for the scheduler, all it
   does for the run's tasks (predict and merge). The intercept is the start-up.
3. **a worker per row**: ``skfleet.predict`` (Python API) of a Parquet folder on the two workers,
   read + score + write + key run: rows / busy seconds of a worker (wall, and CPU).

4. **the key check** (file output) in this process: CPU per row of writing the key runs, and
   rows per CPU-second of one merge task.

Then wall(rows, W) = max(waves * (partition_rows / r_worker + c_task), P * c_scheduler,
P * c_client) + key check + start-up, with waves = ceil(P / W), for partitions of 100k, 1M and
10M rows on W = 100 and 1,000 workers, naming the term that limits.

Run:  .venv/bin/python benchmarks/weak_scaling.py [--tasks 5000] [--partitions 200,2000]
      [--rows 2000000] [--model linear|hgb]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from client_memory import REGRESSOR_META, write_rows  # noqa: E402

from tests.services.dask import start_process_cluster  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
BILLION = 1_000_000_000


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def noop(x):
    return x


def save_model(store_dir: Path, kind: str) -> str:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from skfleet.store import ModelStore

    x = pd.DataFrame(np.random.default_rng(0).normal(size=(20_000, 3)), columns=["x0", "x1", "x2"])
    y = x["x0"] * 3 - x["x1"] + np.sin(x["x2"])
    model = LinearRegression() if kind == "linear" else HistGradientBoostingRegressor()
    return str(ModelStore(str(store_dir)).save(kind, model.fit(x, y), REGRESSOR_META))


def bare_tasks(address: str, scheduler_pid: int, tasks: int) -> tuple[float, float, float]:
    """(scheduler CPU s, client CPU s, wall s) per no-op task through the engine."""
    from skfleet.engine.dask import DaskEngine

    engine = DaskEngine(address)
    try:
        list(engine.map_unordered(noop, range(200)))  # warm: connections, function cache
        sched0, client0, wall0 = cpu_seconds(scheduler_pid), time.process_time(), time.time()
        for _ in engine.map_unordered(noop, range(tasks)):
            pass
        sched = cpu_seconds(scheduler_pid) - sched0
        client, wall = time.process_time() - client0, time.time() - wall0
    finally:
        engine.close()
    return sched / tasks, client / tasks, wall / tasks


def tiny_partitions(folder: Path, partitions: int) -> str:
    if folder.exists():
        return str(folder)
    folder.mkdir(parents=True)
    for i in range(partitions):
        ids = np.arange(i * 100, i * 100 + 100, dtype=np.int64)
        x = np.random.default_rng(i).normal(size=(100, 3))
        table = pa.table({"id": ids, "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2]})
        pq.write_table(table, folder / f"part-{i:05d}.parquet")
    return str(folder)


def timed_cli(args: list[str]) -> dict[str, float]:
    skfleet = str(Path(sys.executable).parent / "skfleet")
    done = subprocess.run(["/usr/bin/time", "-v", skfleet, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"skfleet failed:\n{done.stderr[-3000:]}")
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", done.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr)
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return {"cpu": user + system, "wall": seconds}


def per_partition(cluster, work: Path, store: Path, ref: str, sizes: list[int]) -> dict:
    """Client and scheduler cost of one more partition in a real ``skfleet predict`` run."""
    runs = {}
    # A first run warms the workers (imports, the model cache), as in a long-lived cluster.
    for n in [sizes[0], *sizes]:
        data = tiny_partitions(work / f"tiny-{n}", n)
        out = work / f"tiny-out-{n}"
        sched0 = cpu_seconds(cluster.scheduler.pid)
        args = ["predict", ref, data, "--out", str(out), "--store", str(store)]
        got = timed_cli([*args, "--engine", cluster.address, "--partition-rows", "100"])
        got["scheduler"] = cpu_seconds(cluster.scheduler.pid) - sched0
        runs[n] = got
        shutil.rmtree(out, ignore_errors=True)
        print(
            f"  {n:>6} partitions: client {got['cpu']:6.2f} CPU-s, wall {got['wall']:6.2f} s, "
            f"scheduler {got['scheduler']:6.2f} CPU-s",
            flush=True,
        )
    low, high = sizes[0], sizes[-1]
    slope = {k: (runs[high][k] - runs[low][k]) / (high - low) for k in ("cpu", "wall", "scheduler")}
    startup = {k: runs[low][k] - slope[k] * low for k in ("cpu", "wall")}
    return {"slope": slope, "startup": startup}


def per_row(address: str, store: Path, ref: str, data: str) -> dict:
    from skfleet.engine.dask import DaskEngine
    from skfleet.predict.api import predict

    engine = DaskEngine(address)
    try:
        out = str(Path(tempfile.mkdtemp(prefix="skfleet-ws-rows-")) / "scores")
        predict(ref, data, out + "-warm", store=str(store), engine=engine)  # models cached
        result = predict(ref, data, out, store=str(store), engine=engine)
    finally:
        engine.close()
    shutil.rmtree(Path(out).parent, ignore_errors=True)
    return {
        "rows": result.rows_in,
        "partitions": result.partitions,
        "wall": result.seconds,
        "rows_per_busy_second": result.rows_in / result.task_seconds,
        "rows_per_cpu_second": result.rows_in / result.task_cpu_seconds,
    }


def merge_rate(data: str, partitions: int = 20) -> dict:
    """The file sink's key check by itself, in this process: key runs written per row, and rows
    merged per second by one merge task (reading every run's range, sorting, counting)."""
    from skfleet.data import open_source
    from skfleet.data.files import keyruns
    from skfleet.data.files.sink import FileSink

    source = open_source(data)
    ids = source.read_all(columns=["id"])
    target = Path(tempfile.mkdtemp(prefix="skfleet-ws-keys-")) / "out"
    sink = FileSink(str(target))
    sink.open(ids.schema, run_id="bench")
    sink.track_keys(["id"])
    step = -(-ids.num_rows // partitions)
    started = time.process_time()
    for i in range(partitions):
        sink.write(f"p{i:04d}", ids.slice(i * step, step))
    written = time.process_time() - started
    keyruns_cpu = time.process_time()
    found = keyruns.check_keys(
        sink, ["id"], sink.committed(), lambda fn, items: [fn(item) for item in items]
    )
    merged = time.process_time() - keyruns_cpu
    sink.abort()
    shutil.rmtree(target.parent, ignore_errors=True)
    assert found.rows == 0
    return {
        "rows": ids.num_rows,
        "write_cpu": written,
        "merge_rows_per_cpu_second": ids.num_rows / merged,
    }


def model(rows: int, workers: int, partition_rows: int, r_worker: float, costs: dict) -> str:
    partitions = -(-rows // partition_rows)
    waves = -(-partitions // workers)  # a worker's partitions run one after another
    terms = {
        "workers": waves * (partition_rows / r_worker + costs["worker_task"]),
        "scheduler": partitions * costs["scheduler"],
        "client": partitions * costs["client"],
    }
    limit = max(terms, key=terms.get)
    check = rows / min(workers, keyruns_tasks(rows)) / costs["merge_rate"]
    wall = terms[limit] + check + costs["startup"]
    shown = ", ".join(f"{k} {v:,.0f} s" for k, v in terms.items())
    return (
        f"W={workers:>5,}  partitions of {partition_rows:>10,} rows ({partitions:>6,}): "
        f"{shown}; + key check {check:,.0f} s; wall ~ {wall:,.0f} s ({wall / 60:,.1f} min), "
        f"limited by {limit}"
    )


def keyruns_tasks(rows: int) -> int:
    from skfleet.data.files import keyruns
    from skfleet.data.keyhash import BUCKETS

    return min(BUCKETS, -(-rows // keyruns.HASHES_PER_TASK))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5_000)
    parser.add_argument("--partitions", default="200,2000")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--model", choices=("linear", "hgb"), default="linear")
    parser.add_argument("--keep", help="folder for the generated rows (kept between runs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="skfleet-weak-scaling-"))
    keep = Path(args.keep) if args.keep else work
    cluster = start_process_cluster(2, work)
    try:
        ref = save_model(work / "models", args.model)
        s_task, c_task, w_task = bare_tasks(cluster.address, cluster.scheduler.pid, args.tasks)
        print(
            f"1. bare tasks ({args.tasks:,}): scheduler {s_task * 1e3:.2f} CPU-ms/task, "
            f"client {c_task * 1e3:.2f} CPU-ms/task, wall {w_task * 1e3:.2f} ms/task",
            flush=True,
        )
        print("2. skfleet predict, one-file partitions of 100 rows:", flush=True)
        sizes = [int(n) for n in args.partitions.split(",")]
        run = per_partition(cluster, work, work / "models", ref, sizes)
        slope, startup = run["slope"], run["startup"]
        print(
            f"   per partition: client {slope['cpu'] * 1e3:.1f} CPU-ms, scheduler "
            f"{slope['scheduler'] * 1e3:.1f} CPU-ms, wall {slope['wall'] * 1e3:.1f} ms (2 "
            f"workers); start-up: client {startup['cpu']:.1f} CPU-s, {startup['wall']:.1f} s wall",
            flush=True,
        )
        data = write_rows(keep / f"rows-{args.rows}", args.rows)
        rows = per_row(cluster.address, work / "models", ref, data)
        print(
            f"3. a worker, {args.model} model, {rows['rows']:,} rows in {rows['partitions']} "
            f"partitions: {rows['rows_per_busy_second']:,.0f} rows per busy second, "
            f"{rows['rows_per_cpu_second']:,.0f} rows per CPU-second",
            flush=True,
        )
        merge = merge_rate(data)
        print(
            f"4. key check, {merge['rows']:,} rows: writing the key runs "
            f"{merge['write_cpu'] / merge['rows'] * 1e9:,.0f} CPU-ns per row; one merge task "
            f"{merge['merge_rows_per_cpu_second']:,.0f} rows per CPU-second",
            flush=True,
        )
        costs = {
            "scheduler": slope["scheduler"],
            "client": slope["cpu"],
            "startup": startup["wall"],
            # A worker's own cost per task, from the wall time per partition of two workers.
            "worker_task": 2 * slope["wall"],
            "merge_rate": merge["merge_rows_per_cpu_second"],
        }
        print(
            f"5. the model for 1B rows, r_worker = {rows['rows_per_cpu_second']:,.0f} rows/s, "
            f"{costs['worker_task'] * 1e3:.0f} ms per task on a worker:"
        )
        for workers in (100, 1_000):
            for partition_rows in (100_000, 1_000_000, 10_000_000):
                print(
                    "   "
                    + model(BILLION, workers, partition_rows, rows["rows_per_cpu_second"], costs)
                )
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
