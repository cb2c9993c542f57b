"""Batch prediction Parquet -> Parquet: skfleet against the I/O limit, plain pyarrow and dask-ml.

Writes 2M rows (bigint key, 20 float64, 2 text) as 8 Parquet files, trains the same models as
``predict_postgres.py`` with ``skfleet.train``, then scores every row into (key, score) files:

(a) the limit: pyarrow reads the key and the model's columns and writes a (key, score) Parquet
    file, with no model;
(b) plain pyarrow: read + ``predict_proba`` + write, in one process;
(c) dask-ml: ``dask.dataframe.read_parquet`` + ``ParallelPostFit.predict_proba`` + ``to_parquet``
    on a 2-worker LocalCluster;
(d) ``skfleet.predict.api`` on the same 2-worker LocalCluster (workers warm), each run paired with a
    run of (a) just before it.

Then scaling: a RandomForest (100 trees) scored by skfleet on 1 worker and on 2 workers.

Run:  .venv/bin/python benchmarks/predict_parquet.py [--rows 2000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from predict_postgres import (  # noqa: E402
    FEATURES,
    bench_scaling,
    bench_skfleet,
    make_table,
    median_time,
    report,
    train_models,
)

from skfleet.engine.dask import DaskEngine  # noqa: E402
from skfleet.store import ModelStore  # noqa: E402

FILES = 8
LIMIT = "(a) limit: pyarrow read + write, no model"


def write_input(path: Path, rows: int) -> str:
    path.mkdir(parents=True)
    step = -(-rows // FILES)
    for i in range(FILES):
        n = min(step, rows - i * step)
        table = make_table(n, seed=i, start=1 + i * step).drop_columns(["y"])
        pq.write_table(table, path / f"part-{i:02d}.parquet", row_group_size=125_000)
    return str(path)


def read_columns(src: str) -> pa.Table:
    return ds.dataset(src, format="parquet").to_table(columns=["k", *FEATURES])


def limit_runner(src: str, out: Path):
    """A function running the limit once (seconds): read the model's columns, write (key, score)."""

    def limit() -> float:
        t0 = time.perf_counter()
        table = read_columns(src)
        pq.write_table(pa.table({"k": table["k"], "score": table["f00"]}), out)
        return time.perf_counter() - t0

    limit()  # warm: the files in the page cache
    return limit


def bench_pyarrow(src: str, out: Path, model, repeat: int) -> float:
    def plain():
        table = read_columns(src)
        score = model.predict_proba(table)[:, 1]
        pq.write_table(pa.table({"k": table["k"], "score": score}), out)

    return median_time(plain, repeat)[0]


def bench_dask_ml(src: str, out: Path, model) -> float:
    import dask.dataframe as dd
    from dask_ml.wrappers import ParallelPostFit

    t0 = time.perf_counter()
    frame = dd.read_parquet(src, columns=["k", *FEATURES])
    # The model ignores the extra key column; scoring the frame as read keeps the key and the
    # score in the same partitions (a projection first lets dask-expr re-partition one side).
    proba = ParallelPostFit(model).predict_proba(frame)
    out_frame = frame.assign(score=proba[:, 1])[["k", "score"]]
    out_frame.to_parquet(out, write_index=False, overwrite=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of (b) and paired (a, d)")
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument(
        "--only",
        choices=["compare", "scaling"],
        default=None,
        help="run only the comparison (a-d) or only the RandomForest scaling",
    )
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="skfleet-bench-predict-parquet-"))
    try:
        store = str(base / "models")
        refs = train_models(store, args.train_rows)
        src = write_input(base / "in", args.rows)
        out = str(base / "scores")
        figures, paired = {}, {}
        with DaskEngine(None, n_workers=2) as engine:
            for name in () if args.only == "scaling" else ("logistic", "hist_gb"):
                model = ModelStore(store).load(refs[name]).model
                limit = limit_runner(src, base / "limit.parquet")
                plain = bench_pyarrow(src, base / "plain.parquet", model, args.repeat)
                dask_ml = bench_dask_ml(src, base / "dask_ml", model)
                seconds, limit_seconds, paired[name] = bench_skfleet(
                    src, out, refs[name], store, engine, args.repeat, limit
                )
                row = {
                    LIMIT: limit_seconds,
                    "(b) pyarrow read + predict + write, 1 process": plain,
                    "(c) dask-ml ParallelPostFit, 2 workers": dask_ml,
                    "(d) skfleet predict, 2 workers": seconds,
                }
                figures[name] = row
                report(f"{name}: {args.rows:,} rows (median of {args.repeat})", row, LIMIT)
        forest = (
            {}
            if args.only == "compare"
            else bench_scaling(src, out, refs["forest"], store, args.repeat)
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print("\nsummary")
    for name, row in figures.items():
        d = row["(d) skfleet predict, 2 workers"]
        print(
            f"  {name}: skfleet {paired[name]:.2f}x the limit (median of paired runs), "
            f"{row['(b) pyarrow read + predict + write, 1 process'] / d:.2f}x faster than "
            f"plain pyarrow, {row['(c) dask-ml ParallelPostFit, 2 workers'] / d:.2f}x faster "
            "than dask-ml"
        )
    if forest:
        print(
            f"  RandomForest(100 trees): 1 worker {forest[1]:.2f} s, 2 workers {forest[2]:.2f} s "
            f"-> {forest[1] / forest[2]:.2f}x"
        )
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
