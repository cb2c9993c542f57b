"""Batch prediction PostgreSQL -> PostgreSQL: skfleet against the I/O limit, pandas and dask-ml.

Starts its own throwaway server (``tests/services/postgres.py``, binaries from ``pgserver``), fills
``t`` with 2M rows (bigint key, 20 float8, 2 text), trains a LogisticRegression and a
HistGradientBoosting classifier with ``skfleet.train`` (TableEncoder + estimator, on a 100k-row
sample), then scores all of ``t`` into a (key, score) table with each method:

(a) the limit: ``psql \\copy (SELECT <the key and the model's columns> FROM t) to /dev/null`` in
    binary format plus a binary ``\\copy`` bulk load of a prepared (key, score) file: moving the
    bytes with no model and no decoding at all; each run of (d) is paired with a run of (a) just
    before it, and the ratio printed is the median of the pairs' ratios;
(b) naive pandas: ``pandas.read_sql`` + ``predict_proba`` + ``DataFrame.to_sql`` (one process);
(c) dask-ml: ``dask.dataframe.read_sql_table`` + ``ParallelPostFit.predict_proba`` + ``to_sql``
    on the same 2-worker LocalCluster;
(d) ``skfleet.predict.api`` on a 2-worker LocalCluster (workers warm: a first run loaded the model).

Then scaling: a RandomForest (100 trees) scored by skfleet on 1 worker and on 2 workers.

Run:  .venv/bin/python benchmarks/predict_postgres.py [--rows 2000000] [--repeat 5]
Needs dask-ml and sqlalchemy (the ``bench`` extra) for (b) and (c).
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

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from skfleet.engine.dask import DaskEngine  # noqa: E402
from skfleet.predict.api import predict  # noqa: E402
from skfleet.store import ModelStore  # noqa: E402
from skfleet.train import train  # noqa: E402

FLOATS = [f"f{i:02d}" for i in range(20)]
FEATURES = [*FLOATS, "s2"]
SCORE = "proba_True"


def median_time(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def make_table(rows: int, seed: int = 0, start: int = 1) -> pa.Table:
    """Rows like the benchmark table (uniform floats, an md5-like text, 97 categories) + target."""
    rng = np.random.default_rng(seed)
    key = np.arange(start, start + rows, dtype=np.int64)
    floats = rng.random((rows, len(FLOATS)))
    s2 = np.char.add("category_", (key % 97).astype(str))
    s1 = [f"{v:032x}" for v in rng.integers(0, 2**63, size=rows)]
    signal = floats[:, 0] + floats[:, 1] + 0.3 * (key % 97 < 40) + rng.normal(0, 0.2, rows)
    columns = {"k": key, **{name: floats[:, i] for i, name in enumerate(FLOATS)}}
    columns |= {"s1": pa.array(s1), "s2": pa.array(s2.tolist()), "y": signal > 1.15}
    return pa.table(columns)


def train_models(store: str, sample_rows: int, forest: bool = True) -> dict[str, str]:
    """LogisticRegression, HistGradientBoosting (and RandomForest) trained by skfleet."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    sample = make_table(sample_rows, seed=42)
    estimators = {
        "logistic": LogisticRegression(max_iter=1_000),
        "hist_gb": HistGradientBoostingClassifier(max_iter=100),
    }
    if forest:
        estimators["forest"] = RandomForestClassifier(n_estimators=100, min_samples_leaf=20)
    refs = {}
    for name, estimator in estimators.items():
        result = train(
            estimator,
            sample,
            target="y",
            keys=["k"],
            exclude=["s1"],
            cv=0,
            report=False,
            name=name,
            store=store,
        )
        refs[name] = str(result.ref)
    return refs


def create_table(pg, rows: int) -> None:
    floats = ", ".join(f"random() AS {name}" for name in FLOATS)
    with pg.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute(
            f"CREATE TABLE t AS SELECT g::bigint AS k, {floats}, md5(g::text) AS s1, "
            "'category_' || (g %% 97) AS s2 FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("ALTER TABLE t ADD PRIMARY KEY (k)")  # dask's read_sql_table splits on it
        conn.execute("VACUUM (FREEZE, ANALYZE) t")


def limit_runner(pg, workdir: Path):
    """A function running the limit once (seconds): binary COPY out of the columns the models
    read, then a binary bulk load of a prepared (key, score) file."""
    scores = workdir / "scores.bin"
    pg.psql("-c", f"\\copy (SELECT k, f00 AS score FROM t) to '{scores}' with (format binary)")

    # The columns the models read (the md5 text s1 is not a feature); binary, so no parsing.
    read = f"\\copy (SELECT k, {', '.join(FEATURES)} FROM t) to '/dev/null' with (format binary)"

    def limit() -> float:
        t0 = time.perf_counter()
        pg.psql("-c", read)
        pg.psql(
            "-c", "DROP TABLE IF EXISTS limit_out; CREATE TABLE limit_out (k bigint, score float8)"
        )
        pg.psql("-c", f"\\copy limit_out from '{scores}' with (format binary)")
        return time.perf_counter() - t0

    limit()  # warm: the table's pages in the server's cache, psql in the page cache
    return limit


def bench_pandas(pg, model, rows: int, to_sql_rows: int) -> float:
    """read_sql + predict_proba + to_sql; to_sql of ``to_sql_rows`` rows, scaled to ``rows``."""
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(pg.url().replace("postgresql://", "postgresql+psycopg://"))
    try:
        t0 = time.perf_counter()
        with engine.connect() as conn:
            frame = pd.read_sql("SELECT * FROM t", conn)
        out = pd.DataFrame({"k": frame["k"], "score": model.predict_proba(frame)[:, 1]})
        read_predict = time.perf_counter() - t0
        t0 = time.perf_counter()
        out.iloc[:to_sql_rows].to_sql(
            "pandas_out", engine, if_exists="replace", index=False, chunksize=50_000
        )
        write = (time.perf_counter() - t0) * rows / min(rows, to_sql_rows)
    finally:
        engine.dispose()
    return read_predict + write


def bench_dask_ml(pg, model, engine: DaskEngine) -> float:
    import dask.dataframe as dd
    from dask_ml.wrappers import ParallelPostFit

    uri = pg.url().replace("postgresql://", "postgresql+psycopg://")
    t0 = time.perf_counter()
    frame = dd.read_sql_table("t", uri, index_col="k", npartitions=16)
    proba = ParallelPostFit(model).predict_proba(frame[FEATURES])
    out = frame.index.to_frame().assign(score=proba[:, 1])
    out.to_sql(
        "dask_ml_out",
        uri,
        if_exists="replace",
        index=False,
        parallel=True,
        chunksize=50_000,
        compute=False,
    ).compute()
    return time.perf_counter() - t0


def bench_skfleet(
    url: str, out_url: str, ref: str, store: str, engine, repeat: int, limit=None
) -> tuple[float, float | None, float | None]:
    """(median seconds, median limit seconds, median of the per-run ratios) of ``repeat`` runs
    after a warm-up run (workers import and load the model once). With ``limit``, each run is
    paired with a run of the limit just before it: on a noisy machine the ratio of two runs a few
    seconds apart is steadier than the ratio of medians taken minutes apart. Also prints how many
    cores the workers kept busy (task CPU seconds / wall seconds)."""
    kwargs = dict(store=store, engine=engine, key=["k"], columns=[SCORE], if_exists="replace")
    predict(ref, url, out_url, **kwargs)
    times, limits, result = [], [], None
    for _ in range(repeat):
        if limit is not None:
            limits.append(limit())
        t0 = time.perf_counter()
        result = predict(ref, url, out_url, **kwargs)
        times.append(time.perf_counter() - t0)
        assert result.rows_out == result.rows_in, result
    busy = result.task_cpu_seconds / result.seconds if result.seconds else 0.0
    seconds = statistics.median(times)
    print(
        f"    skfleet {ref} on {engine.workers} worker(s): {seconds:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in times)}), {busy:.2f} cores busy, "
        f"{result.partitions} partitions",
        flush=True,
    )
    if not limits:
        return seconds, None, None
    ratio = statistics.median(t / lim for t, lim in zip(times, limits, strict=True))
    print(f"    paired limit runs: {', '.join(f'{t:.2f}' for t in limits)}", flush=True)
    return seconds, statistics.median(limits), ratio


def bench_scaling(url: str, out_url: str, ref: str, store: str, repeat: int) -> dict[int, float]:
    """skfleet with 1 and with 2 ``dask worker`` processes of a separate ``dask scheduler``.

    Each worker runs in its own session, as on its own machine or container. This matters on a
    shared Linux host: with autogroup scheduling the kernel shares the CPU fairly between
    sessions, so workers that all sit in this script's session would share one session's
    slice and add nothing under load from other jobs.
    """
    from skfleet.engine import get_engine
    from tests.services.dask import start_process_cluster

    seconds = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as logs:
            cluster = start_process_cluster(n, Path(logs))
            try:
                with get_engine(cluster.address) as engine:
                    seconds[n] = bench_skfleet(url, out_url, ref, store, engine, repeat)[0]
            finally:
                cluster.stop()
    return seconds


def report(title: str, results: dict[str, float], limit_key: str) -> None:
    print(f"\n{title}")
    limit = results[limit_key]
    for name, seconds in results.items():
        print(f"  {name:<48} {seconds:8.2f} s   {seconds / limit:6.2f}x limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="paired runs of (a) and (d)")
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument(
        "--to-sql-rows",
        type=int,
        default=None,
        help="rows (b) writes with to_sql, time scaled to --rows (default all)",
    )
    parser.add_argument("--skip-baselines", action="store_true", help="only (a) and (d)")
    parser.add_argument(
        "--only",
        choices=["compare", "scaling"],
        default=None,
        help="run only the comparison (a-d) or only the RandomForest scaling",
    )
    args = parser.parse_args()
    from tests.services.postgres import start_postgres

    base = Path(tempfile.mkdtemp(prefix="skfleet-bench-predict-pg-"))
    store = str(base / "models")
    refs = train_models(store, args.train_rows)
    loaded = {name: ModelStore(store).load(ref).model for name, ref in refs.items()}
    figures: dict[str, dict[str, float]] = {}
    paired: dict[str, float] = {}
    limit_name = "(a) limit: psql binary COPY out + bulk load"
    skfleet_name = "(d) skfleet predict, 2 workers"
    try:
        with start_postgres(base / "pg") as pg:
            create_table(pg, args.rows)
            url, out_url = pg.table_url("public.t"), pg.table_url("public.scores")
            limit = limit_runner(pg, base)
            with DaskEngine(None, n_workers=2) as engine:
                for name in () if args.only == "scaling" else ("logistic", "hist_gb"):
                    row: dict[str, float] = {}
                    if not args.skip_baselines:
                        row["(b) pandas read_sql + predict + to_sql"] = bench_pandas(
                            pg, loaded[name], args.rows, args.to_sql_rows or args.rows
                        )
                        row["(c) dask-ml ParallelPostFit, 2 workers"] = bench_dask_ml(
                            pg, loaded[name], engine
                        )
                    seconds, limit_seconds, paired[name] = bench_skfleet(
                        url, out_url, refs[name], store, engine, args.repeat, limit
                    )
                    row = {limit_name: limit_seconds, **row, skfleet_name: seconds}
                    figures[name] = row
                    report(
                        f"{name}: {args.rows:,} rows (median of {args.repeat} paired runs of a, d)",
                        row,
                        limit_name,
                    )
            forest = (
                {}
                if args.only == "compare"
                else bench_scaling(url, out_url, refs["forest"], store, args.repeat)
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print("\nsummary")
    for name, row in figures.items():
        d = row[skfleet_name]
        parts = [f"{paired[name]:.2f}x the limit (median of paired runs)"]
        if "(b) pandas read_sql + predict + to_sql" in row:
            parts.append(
                f"{row['(b) pandas read_sql + predict + to_sql'] / d:.1f}x faster than pandas"
            )
            parts.append(
                f"{row['(c) dask-ml ParallelPostFit, 2 workers'] / d:.1f}x faster than dask-ml"
            )
        print(f"  {name}: skfleet " + ", ".join(parts))
    if forest:
        print(
            f"  RandomForest(100 trees): 1 worker {forest[1]:.2f} s, 2 workers {forest[2]:.2f} s "
            f"-> {forest[1] / forest[2]:.2f}x"
        )
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
