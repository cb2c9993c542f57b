"""Transform throughput and peak memory: skfleet's TableEncoder vs scikit-learn's ColumnTransformer.

Data: ``--rows`` rows (default 1,000,000) of 20 numeric columns (5 with 2% missing values),
5 categorical string columns (40 levels each, skewed) and 1 timestamp column, as a pandas
DataFrame (pandas' default string dtype), plus the same data as a pyarrow Table.

Both sides produce the same columns: per numeric column the mean-imputed standardised value plus a
missing indicator where values are missing; per categorical column one-hot over the 32 most
frequent levels plus one bucket for the rest; per timestamp year, month, day of week, hour and the
standardised epoch. scikit-learn: ``ColumnTransformer`` of ``SimpleImputer(add_indicator=True) +
StandardScaler``, ``OneHotEncoder(max_categories=33, handle_unknown="infrequent_if_exist")`` and a
``FunctionTransformer`` for the timestamp parts (scikit-learn has no datetime expansion).

Throughput is the median over ``--runs`` runs (interleaved, after one warm-up each). Peak memory is
measured in a fresh child process per encoder: the largest resident-set growth while
``transform`` runs (sampled every millisecond), divided by the size of the output array.

    .venv/bin/python benchmarks/encode.py            # 1M rows, 3 runs
    .venv/bin/python benchmarks/encode.py --rows 100000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

N_NUMERIC, N_WITH_NAN, N_CATEGORICAL, N_LEVELS, MAX_LEVELS = 20, 5, 5, 40, 32


def make_data(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for j in range(N_NUMERIC):
        x = rng.normal(loc=j * 10.0, scale=1.0 + j, size=n_rows)
        if j < N_WITH_NAN:
            x[rng.random(n_rows) < 0.02] = np.nan
        data[f"n{j:02d}"] = x
    weights = 1.0 / np.arange(1, N_LEVELS + 1)
    weights /= weights.sum()
    for j in range(N_CATEGORICAL):
        levels = np.array([f"c{j}_level{k:02d}" for k in range(N_LEVELS)], dtype=object)
        data[f"c{j}"] = pd.array(levels[rng.choice(N_LEVELS, size=n_rows, p=weights)], dtype="str")
    start = np.datetime64("2013-01-01T00:00:00", "us").astype(np.int64)
    span = 365 * 24 * 3600 * 1_000_000
    data["ts"] = (start + rng.integers(0, span, n_rows)).astype("datetime64[us]")
    return pd.DataFrame(data)


def numeric_columns(df):
    return [c for c in df.columns if c.startswith("n")]


def categorical_columns(df):
    return [c for c in df.columns if c.startswith("c")]


def datetime_parts(frame):
    ts = pd.DatetimeIndex(frame.iloc[:, 0])
    epoch = ts.asi8 / 1e6
    return np.column_stack([ts.year, ts.month, ts.day_of_week, ts.hour, epoch]).astype(np.float64)


def datetime_part_names(transformer, names):
    return [f"{names[0]}__{part}" for part in ("year", "month", "dayofweek", "hour", "epoch")]


def sklearn_encoder(df):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    scale_epoch = ColumnTransformer(
        [("keep", "passthrough", [0, 1, 2, 3]), ("epoch", StandardScaler(), [4])]
    )
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="mean", add_indicator=True), StandardScaler()),
                numeric_columns(df),
            ),
            (
                "cat",
                OneHotEncoder(
                    max_categories=MAX_LEVELS + 1,
                    handle_unknown="infrequent_if_exist",
                    sparse_output=False,
                ),
                categorical_columns(df),
            ),
            (
                "dt",
                make_pipeline(
                    FunctionTransformer(datetime_parts, feature_names_out=datetime_part_names),
                    scale_epoch,
                ),
                ["ts"],
            ),
        ],
        sparse_threshold=0.0,
    )


def skfleet_encoder():
    from skfleet.features import TableEncoder

    return TableEncoder(max_levels=MAX_LEVELS, sparse=False)


def check_same_columns(df, ours, theirs) -> str:
    """Same width; identical one-hot columns; equal standardised values where nothing is missing."""
    Xo, Xs = ours.transform(df.head(20_000)), theirs.transform(df.head(20_000))
    assert Xo.shape == Xs.shape, (Xo.shape, Xs.shape)
    names = list(ours.get_feature_names_out())
    sk_names = list(theirs.get_feature_names_out())
    checked = 0
    for j, name in enumerate(names):
        if "=" in name and not name.endswith("__other__"):
            col, level = name.split("=", 1)
            sk = sk_names.index(f"cat__{col}_{level}")
            assert np.array_equal(Xo[:, j], Xs[:, sk]), name
            checked += 1
        elif name.startswith("n") and "__" not in name and int(name[1:]) >= N_WITH_NAN:
            sk = sk_names.index(f"num__{name}")
            np.testing.assert_allclose(Xo[:, j], Xs[:, sk], rtol=1e-5, atol=1e-5)
            checked += 1
    return f"same width {Xo.shape[1]}; {checked} columns checked equal"


def measure_memory(which: str, parquet: str) -> dict:
    """Run in a child process: peak RSS growth during one transform, over the output size."""
    import gc
    import os

    table = pq.read_table(parquet)
    df = table.to_pandas()
    for c in categorical_columns(df):
        df[c] = df[c].astype("str")
    if which == "sklearn":
        enc = sklearn_encoder(df).fit(df)
        X = df
    else:
        enc = skfleet_encoder().fit(df)
        X = df if which == "skfleet-pandas" else table
    enc.transform(X.head(1000) if hasattr(X, "head") else X.slice(0, 1000))
    gc.collect()
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    base, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = enc.transform(X)
    done.set()
    sampler.join()
    peak[0] = max(peak[0], rss())
    return {"peak_growth": peak[0] - base, "output_bytes": int(out.nbytes), "dtype": str(out.dtype)}


def timed(fn) -> float:
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    del out
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "PARQUET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_memory(*args.child)))
        return

    print(
        f"building {args.rows:,} rows x ({N_NUMERIC} numeric + {N_CATEGORICAL} categorical + 1 datetime)"
    )
    df = make_data(args.rows, args.seed)
    table = pa.Table.from_pandas(df, preserve_index=False)
    ours, theirs = skfleet_encoder(), sklearn_encoder(df)
    fit_ours, fit_theirs = timed(lambda: ours.fit(df)), timed(lambda: theirs.fit(df))
    print(f"fit: skfleet {fit_ours:.2f}s, scikit-learn {fit_theirs:.2f}s")
    print("check:", check_same_columns(df, ours, theirs))

    contenders = {
        "skfleet (pandas in)": lambda: ours.transform(df),
        "skfleet (arrow in)": lambda: ours.transform(table),
        "scikit-learn ColumnTransformer": lambda: theirs.transform(df),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up: first touch of fresh memory is slow on some hosts
        timed(fn)
    for _ in range(args.runs):
        for name, fn in contenders.items():
            times[name].append(timed(fn))

    with tempfile.TemporaryDirectory() as tmp:
        parquet = str(Path(tmp) / "data.parquet")
        pq.write_table(table, parquet)
        memory = {}
        for which in ("skfleet-pandas", "skfleet-arrow", "sklearn"):
            result = subprocess.run(
                [sys.executable, __file__, "--child", which, parquet],
                capture_output=True,
                text=True,
                check=True,
            )
            memory[which] = json.loads(result.stdout.strip().splitlines()[-1])

    sk = statistics.median(times["scikit-learn ColumnTransformer"])
    print(f"\ntransform, median of {args.runs} runs ({args.rows:,} rows):")
    for name, ts in times.items():
        med = statistics.median(ts)
        runs = ", ".join(f"{t:.2f}" for t in ts)
        print(
            f"  {name:32s} {med:6.2f}s  {args.rows / med / 1e6:6.2f} M rows/s  "
            f"speed-up vs scikit-learn x{sk / med:5.2f}   (runs: {runs})"
        )
    print("\npeak memory growth during transform / output array size:")
    for which, m in memory.items():
        ratio = m["peak_growth"] / m["output_bytes"]
        print(
            f"  {which:16s} output {m['output_bytes'] / 2**20:7.0f} MiB ({m['dtype']}), "
            f"peak growth {m['peak_growth'] / 2**20:7.0f} MiB, ratio {ratio:4.2f}"
        )
    ours_med = statistics.median(times["skfleet (pandas in)"])
    mem_ratio = memory["skfleet-pandas"]["peak_growth"] / memory["skfleet-pandas"]["output_bytes"]
    print(
        f"\ntargets: no slower than scikit-learn: {'met' if ours_med <= sk else 'NOT met'} "
        f"(ratio skfleet/sklearn time {ours_med / sk:.2f}); peak memory <= 2x output: "
        f"{'met' if mem_ratio <= 2 else 'NOT met'} (ratio {mem_ratio:.2f})"
    )


if __name__ == "__main__":
    main()
