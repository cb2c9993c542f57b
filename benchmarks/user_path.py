"""The user's path: whole ``skfleet`` CLI processes, started cold, against the alternative in the
same run (issue #15's figures).

Every figure is a whole process timed from outside (``python -m skfleet ...``: interpreter start,
imports, the run, exit), wall seconds and the child's CPU seconds, median of ``--repeat`` runs.
Each run of skfleet is paired with a run of its alternative just before it (order alternating),
and the ratio given is the median of the pairs' ratios: on a loaded machine two runs seconds
apart move together more than medians minutes apart.

``small``: ``skfleet --help``; ``skfleet predict`` of a 1,000-row Parquet file to one Parquet
file; ``skfleet train`` of that file with ``--cv 3`` and its HTML report. With ``--pythonpath
OLD/src`` each is paired with the same command on that tree ("before"); without, the figures are
given against the issue's targets (0.5 s, 2 s, 5 s).

``postgres``: a throwaway PostgreSQL server (``tests/services/postgres.py``) holding ``t``:
``--rows`` rows of a bigint key, 20 float8, 2 short texts and a boolean label. A
LogisticRegression trained on a 100k-row sample scores all of ``t`` into ``scores`` (key,
prediction, both probabilities, ``--if-exists replace``):

- the limit: ``psql \\copy (SELECT key + the model's columns) to /dev/null`` in binary plus a
  binary ``\\copy`` bulk load of a prepared (key, score) file (``predict_postgres.limit_runner``);
- ``skfleet predict`` on the default engine (target ≤ 1.5× the limit);
- with a warm ``tcp://`` cluster (a scheduler and 2 worker processes, the model loaded by a first
  run): ``skfleet.predict.api.predict`` in this process (target ≤ 1.1×) and ``skfleet predict
  --engine tcp://...`` as a CLI process (target ≤ 1.3×).

``copy``: ``skfleet copy`` of ``t`` to each of ``--copy-outputs`` (a folder of Parquet parts,
``--out t/``, and one Parquet file, ``--out t.parquet``) against ``psql \\copy t to /dev/null`` in
binary (target ≤ 1.2×), on each of ``--copy-engines``: the default (a process pool the work may
decline: on two cores the partitions are copied in the CLI's process) and ``local`` (this
process, reading partition k + 1 while it writes k).

Run:  .venv/bin/python benchmarks/user_path.py [--only small|postgres|copy] [--repeat 5]
          [--rows 2000000] [--pythonpath OLD/src] [--copy-engines default,local]
          [--copy-outputs folder,file]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.services.postgres, benchmarks.predict_postgres

FLOATS = [f"f{i:02d}" for i in range(20)]


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process; its failure stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def child_env(pythonpath: str) -> dict[str, str]:
    """The environment of a timed ``skfleet`` process: ``pythonpath`` first, and Python allowed
    to cache compiled modules (a development shell may set ``PYTHONDONTWRITEBYTECODE``; an
    installed package has its bytecode compiled at install time, so without the cache a cold
    run would compile skfleet's modules anew each time, which no user's run does)."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def skfleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "skfleet", *args]


def paired(
    name: str, ours: Callable[[], tuple[float, float]], other: Callable[[], tuple[float, float]],
    repeat: int, other_name: str,
) -> dict:  # fmt: skip
    """Alternating runs of ``other`` and ``ours``; prints and returns the medians and the ratio."""
    mine, theirs = [], []
    for i in range(repeat):
        pair = [(theirs, other), (mine, ours)]
        for into, fn in pair if i % 2 == 0 else reversed(pair):
            into.append(fn())
    wall = statistics.median(w for w, _ in mine)
    other_wall = statistics.median(w for w, _ in theirs)
    ratio = statistics.median(m[0] / t[0] for m, t in zip(mine, theirs, strict=True))
    print(
        f"  {name}: {wall:.2f} s (cpu {statistics.median(c for _, c in mine):.2f} s; runs "
        f"{', '.join(f'{w:.2f}' for w, _ in mine)}) | {other_name}: {other_wall:.2f} s "
        f"(cpu {statistics.median(c for _, c in theirs):.2f} s; runs "
        f"{', '.join(f'{w:.2f}' for w, _ in theirs)}) | ratio {ratio:.2f}x",
        flush=True,
    )
    return {"seconds": wall, "other": other_wall, "ratio": ratio}


def alone(name: str, ours: Callable[[], tuple[float, float]], repeat: int, target: float) -> dict:
    runs = [ours() for _ in range(repeat)]
    wall = statistics.median(w for w, _ in runs)
    print(
        f"  {name}: {wall:.2f} s (cpu {statistics.median(c for _, c in runs):.2f} s; runs "
        f"{', '.join(f'{w:.2f}' for w, _ in runs)}) | target {target:.1f} s: "
        + ("met" if wall <= target else "not met"),
        flush=True,
    )
    return {"seconds": wall}


def bench_small(base: Path, repeat: int, pythonpath: str | None) -> None:
    import pyarrow.parquet as pq

    from benchmarks.predict_postgres import make_table

    data = base / "small.parquet"
    pq.write_table(make_table(1_000, seed=1).drop_columns(["s1"]), data)
    store = str(base / "models")
    train = ["train", str(data), "--target", "y", "--key", "k", "--model", "logistic", "--cv", "3"]
    new_env = child_env(str(ROOT / "src"))
    timed(skfleet(*train, "--name", "small", "--store", store), new_env)  # the model predict uses
    predict = ["predict", "small", str(data), "--store", store, "--if-exists", "replace"]
    commands = {
        "skfleet --help": ["--help"],
        "skfleet predict, 1,000-row Parquet -> one Parquet file": [
            *predict, "--out", str(base / "scores.parquet"),
        ],
        "skfleet train, 1,000 rows, --cv 3, with its report": [
            *train, "--name", "timed", "--store", str(base / "timed-models"),
        ],
    }  # fmt: skip
    targets = [0.5, 2.0, 5.0]
    old_env = child_env(pythonpath or "")
    print(f"small jobs (median of {repeat}, whole CLI processes, cold)", flush=True)
    for (name, args), target in zip(commands.items(), targets, strict=True):
        ours = lambda args=args: timed(skfleet(*args), new_env)  # noqa: E731
        if pythonpath:
            old = lambda args=args: timed(skfleet(*args), old_env)  # noqa: E731
            paired(name, ours, old, repeat, "before")
        else:
            alone(name, ours, repeat, target)


def create_labelled_table(pg, rows: int) -> None:
    """``t``: bigint key, 20 float8, 2 short texts, a boolean label (as ``make_table`` draws it)."""
    floats = ", ".join(f"random() AS {name}" for name in FLOATS)
    with pg.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute(
            f"CREATE TABLE t AS SELECT g::bigint AS k, {floats}, md5(g::text) AS s1, "
            "'category_' || (g %% 97) AS s2, random() > 0.5 AS y FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("ALTER TABLE t ADD PRIMARY KEY (k)")
        conn.execute("VACUUM (FREEZE, ANALYZE) t")


def train_logistic(store: str, rows: int) -> str:
    from sklearn.linear_model import LogisticRegression

    from benchmarks.predict_postgres import make_table
    from skfleet.train import train

    result = train(
        LogisticRegression(max_iter=1_000), make_table(rows, seed=42), target="y", keys=["k"],
        exclude=["s1"], cv=0, report=False, name="logistic", store=store,
    )  # fmt: skip
    return str(result.ref)


def psql_timed(pg, *args: str) -> Callable[[], tuple[float, float]]:
    def run() -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        pg.psql(*args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return time.perf_counter() - started, cpu

    return run


def bench_postgres(
    base: Path,
    repeat: int,
    rows: int,
    parts: set[str],
    copy_engines: list[str],
    copy_outputs: list[str] = ("folder",),
) -> None:
    from benchmarks.predict_postgres import limit_runner
    from tests.services.postgres import start_postgres

    store = str(base / "models")
    ref = train_logistic(store, 100_000)
    env = child_env(str(ROOT / "src"))
    with start_postgres(base / "pg") as pg:
        create_labelled_table(pg, rows)
        url, out_url = pg.table_url("public.t"), pg.table_url("public.scores")
        if "copy" in parts:
            print(f"\ncopy PostgreSQL -> Parquet, {rows:,} rows (median of {repeat} pairs)")
            whole = psql_timed(pg, "-c", "\\copy t to '/dev/null' with (format binary)")
            whole()  # warm: the table's pages in the server's cache
            outs = {"folder": str(base / "copied") + "/", "file": str(base / "copied.parquet")}
            for output in copy_outputs:
                for engine in copy_engines:
                    copy = skfleet("copy", url, "--out", outs[output], "--if-exists", "replace")
                    copy += ["--engine", engine] if engine != "default" else []
                    name = f"skfleet copy to a {output}, {engine} engine"
                    ours = lambda copy=copy: timed(copy, env)  # noqa: E731
                    paired(name, ours, whole, repeat, "psql binary COPY")
        if "postgres" not in parts:
            return
        limit = limit_runner(pg, base)
        limit_pair = lambda: (limit(), 0.0)  # noqa: E731
        args = ["predict", ref, url, "--out", out_url, "--store", store, "--if-exists", "replace"]
        print(f"\npredict PostgreSQL -> PostgreSQL, {rows:,} rows (median of {repeat} pairs)")
        paired(
            "skfleet predict, default engine (CLI, cold)",
            lambda: timed(skfleet(*args), env), limit_pair, repeat, "limit",
        )  # fmt: skip
        from distributed import LocalCluster

        from skfleet.predict.api import predict

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            address = cluster.scheduler_address
            kwargs = dict(store=store, engine=address, if_exists="replace")
            predict(ref, url, out_url, **kwargs)  # warm: the workers load the model

            def api() -> tuple[float, float]:
                started = time.perf_counter()
                predict(ref, url, out_url, **kwargs)
                return time.perf_counter() - started, 0.0

            paired("skfleet.predict API, warm tcp:// cluster", api, limit_pair, repeat, "limit")
            cli = skfleet(*args, "--engine", address)
            paired(
                "skfleet predict --engine tcp:// (CLI, warm cluster)",
                lambda: timed(cli, env), limit_pair, repeat, "limit",
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["small", "postgres", "copy"], action="append")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument(
        "--copy-engines",
        default="default,local",
        help="engines copy is timed on (default: processes; local reads k + 1 while writing k)",
    )
    parser.add_argument(
        "--copy-outputs",
        default="folder,file",
        help="outputs copy writes: folder (--out t/, parts) and file (--out t.parquet)",
    )
    parser.add_argument("--pythonpath", help="pair the small jobs with this src folder (before)")
    args = parser.parse_args()
    parts = set(args.only or ["small", "postgres", "copy"])
    base = Path(tempfile.mkdtemp(prefix="skfleet-bench-user-path-"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()}")
    try:
        if "small" in parts:
            bench_small(base, args.repeat, args.pythonpath)
        if parts & {"postgres", "copy"}:
            engines, outputs = args.copy_engines.split(","), args.copy_outputs.split(",")
            bench_postgres(base, args.repeat, args.rows, parts, engines, outputs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
