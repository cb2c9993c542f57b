"""Out-of-core logistic regression: ``skfleet train-stream`` against Vowpal Wabbit, River, dask-ml
``Incremental(SGDClassifier)`` and a plain scikit-learn ``partial_fit`` loop over pandas chunks.

Data: ``--rows`` rows (default 10,000,000) in one Parquet file (row groups of 250,000): an ``id``,
8 numeric columns, 3 categorical columns (8, 64 and 512 levels) and one high-cardinality column
(200,000 user ids), and a boolean target drawn from a logistic model of all of them. The same 10%
of rows (a hash of ``id``, skfleet's holdout rule) is held out for every contender.

Features, the same information for every contender: the numeric columns standardised (VW: raw, it
normalises adaptively) and the string columns as indicators, the high-cardinality ``user`` column
hashed into 2**18 weights. skfleet: ``--hash user --hash-features 262144``, the three small
categorical columns one-hot (``max_levels=512``); scikit-learn (loop, dask-ml):
``FeatureHasher(2**18)`` over ``column=value`` tokens of all four; VW: the same tokens, ``-b 18``.
River one-hot encodes its dict features exactly (a dict of weights, no hashing).

Model: logistic loss everywhere. The scikit-learn contenders (skfleet, loop, dask-ml) share one
``SGDClassifier`` configuration (:data:`SGD_PARAMS`); VW and River keep their defaults.

Contenders (each in its own child process, so peak RSS is its own):

- ``skfleet``: ``train_stream("sgd-logistic", ...)``, partitions of 250,000 rows; timed from the
  call to its return (profiling pass, epochs, per-epoch holdout scoring included);
  ``skfleet-noprog``: the same without progressive validation.
- ``sklearn-loop``: ``pyarrow`` batches -> pandas -> features -> ``SGDClassifier.partial_fit``;
  one pass for the scaling statistics, then the epochs (both timed).
- ``dask-ml``: ``dask.dataframe.read_parquet`` -> per-partition features (the loop's encoder) ->
  ``Incremental(SGDClassifier)``, ``fit`` then ``partial_fit`` per extra epoch (threaded
  scheduler; scaling statistics computed by dask first, timed).
- ``vw``: ``vowpalwabbit`` on a text file written from the Parquet file (conversion timed
  separately); ``--loss_function logistic -b 18 --passes E`` (with a cache file for E > 1).
- ``river``: ``LogisticRegression`` one pass over the first ``--river-rows`` training rows (River is
  per-row Python; its rows/s does not depend on the row count), scored on the first 100,000
  holdout rows.

Holdout ROC AUC uses scikit-learn's ``roc_auc_score`` on each contender's probabilities (skfleet:
the stored holdout metric, computed with its mergeable accumulator over every holdout row).

Run (results, a plot and a table land in ``--out``):

    .venv/bin/python benchmarks/out_of_core.py                       # 10M rows, ~25 minutes
    .venv/bin/python benchmarks/out_of_core.py --rows 1000000 --only skfleet,vw
    .venv/bin/python benchmarks/out_of_core.py --rss-pair 1000000,10000000   # flat-memory check

Needs ``vowpalwabbit``, ``river`` and ``dask-ml`` (``pip install vowpalwabbit river dask-ml``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 250_000
N_NUMERIC = 8
CATEGORICAL = {"c0": 8, "c1": 64, "c2": 512, "user": 200_000}
STRINGS = list(CATEGORICAL)
NUMERIC = [f"n{j}" for j in range(N_NUMERIC)]
HOLDOUT = 0.1
HASH_BITS = 18
#: The scikit-learn model of every SGD contender: averaged SGD with a constant step
#: (Polyak-Ruppert averaging), chosen on a separate 2M-row sample; VW keeps its defaults.
SGD_PARAMS = {"alpha": 1e-7, "average": True, "learning_rate": "constant", "eta0": 0.5}
#: skfleet's feature settings (streamed and in-memory): ``user`` hashed, the rest one-hot.
ENCODER = {"hash": ["user"], "hash_features": 2**HASH_BITS, "max_levels": 512}


# -- data -----------------------------------------------------------------------------------------
def _effects(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = {"c0": 0.8, "c1": 0.5, "c2": 0.4, "user": 0.6}
    return {c: rng.normal(scale=scale[c], size=n) for c, n in CATEGORICAL.items()}


def make_chunk(start: int, n: int, effects: dict[str, np.ndarray]) -> pa.Table:
    rng = np.random.default_rng([7, start])
    numeric = rng.normal(size=(n, N_NUMERIC))
    weights = np.linspace(-1.0, 1.0, N_NUMERIC)
    score = numeric @ weights * 0.6
    columns: dict[str, object] = {"id": np.arange(start, start + n, dtype=np.int64)}
    for j in range(N_NUMERIC):
        columns[f"n{j}"] = numeric[:, j] * (1 + j) + 10 * j  # different scales and offsets
    for col, levels in CATEGORICAL.items():
        # Skewed level frequencies, like real categories.
        codes = np.minimum((rng.pareto(1.2, size=n) * levels / 8).astype(np.int64), levels - 1)
        score += effects[col][codes]
        names = pa.array([f"{col}_{k}" for k in range(levels)])
        columns[col] = pa.DictionaryArray.from_arrays(codes.astype(np.int32), names).cast(
            pa.string()
        )
    columns["y"] = score - 0.3 + rng.logistic(size=n) > 0
    return pa.table(columns)


def write_data(path: Path, rows: int) -> None:
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    effects = _effects(0)
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, ROW_GROUP):
        chunk = make_chunk(start, min(ROW_GROUP, rows - start), effects)
        if writer is None:
            writer = pq.ParquetWriter(str(tmp), chunk.schema)
        writer.write_table(chunk, row_group_size=ROW_GROUP)
    writer.close()
    os.replace(tmp, path)


def row_groups(path: Path, columns: list[str] | None = None):
    """The file's row groups one at a time, as record batches.

    ``ParquetFile.iter_batches`` keeps allocating (pyarrow's pre-buffering: ~20 MB more per row
    group here, 1.6 GB over 10M rows), which would inflate every contender's peak RSS.
    """
    parquet = pq.ParquetFile(path)
    for i in range(parquet.num_row_groups):
        yield from parquet.read_row_group(i, columns=columns).to_batches()


def holdout_of(ids: np.ndarray) -> np.ndarray:
    from skfleet.train.stream.holdout import holdout_mask

    return holdout_mask(pa.table({"id": ids}), HOLDOUT, key="id")


#: CPU seconds (user + system, every thread of this process) of the last timed region: on a
#: machine shared with other work, CPU time stays comparable where wall time does not.
LAST_CPU: float | None = None


def start_clock() -> tuple[float, float]:
    return time.perf_counter(), _cpu()


def stop_clock(start: tuple[float, float]) -> float:
    """Wall seconds since ``start``; the CPU seconds go to :data:`LAST_CPU`."""
    global LAST_CPU
    LAST_CPU = _cpu() - start[1]
    return time.perf_counter() - start[0]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def holdout_scores(y, p) -> dict:
    """Holdout ROC AUC and accuracy (P(y) >= 0.5 predicts True) of one contender."""
    y, p = np.asarray(y, dtype=bool), np.asarray(p, dtype=np.float64)
    return {"holdout_auc": auc(y, p), "holdout_accuracy": float(np.mean((p >= 0.5) == y))}


# -- shared plain features (sklearn loop, dask-ml, river's scaling) ---------------------------------
def scaling_stats_arrow(path: Path) -> dict[str, tuple[float, float]]:
    """Mean and std of the numeric columns over the training rows (one pass, batch by batch)."""
    sums = np.zeros(N_NUMERIC)
    squares = np.zeros(N_NUMERIC)
    n = 0
    for batch in row_groups(path, columns=["id", *NUMERIC]):
        keep = ~holdout_of(batch.column(0).to_numpy())
        values = np.column_stack([batch.column(c).to_numpy()[keep] for c in NUMERIC])
        sums += values.sum(axis=0)
        squares += (values**2).sum(axis=0)
        n += len(values)
    mean = sums / n
    std = np.sqrt(squares / n - mean**2)
    return {c: (float(m), float(s)) for c, m, s in zip(NUMERIC, mean, std, strict=True)}


def plain_features(frame, stats, hasher):
    """Standardised numerics next to hashed ``column=value`` tokens, as one CSR matrix."""
    import scipy.sparse as sp

    numeric = np.column_stack(
        [(frame[c].to_numpy(dtype=np.float64) - stats[c][0]) / stats[c][1] for c in NUMERIC]
    )
    tokens = (
        [f"{c}={v}" for c, v in zip(STRINGS, row, strict=True)]
        for row in zip(*(frame[c].to_numpy(dtype=object) for c in STRINGS), strict=True)
    )
    hashed = hasher.transform(tokens)
    return sp.hstack([sp.csr_matrix(numeric), hashed], format="csr")


def make_hasher():
    from sklearn.feature_extraction import FeatureHasher

    return FeatureHasher(n_features=2**HASH_BITS, input_type="string", alternate_sign=False)


def sgd():
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", random_state=0, **SGD_PARAMS)


# -- contenders (child side) -------------------------------------------------------------------------
def run_skfleet(path: Path, epochs: int, progressive: bool = True) -> dict:
    import skfleet.train.stream.checkpoint  # noqa: F401  (imports warmed up before timing)
    from skfleet.train.stream.api import train_stream

    started = start_clock()
    result = train_stream(
        "sgd-logistic",
        str(path),
        target="y",
        keys=["id"],
        holdout_key="id",
        holdout=HOLDOUT,
        epochs=epochs,
        partition_rows=ROW_GROUP,
        batch_rows=50_000,
        progressive=progressive,
        params=SGD_PARAMS,
        encoder=ENCODER,
        report=False,
    )
    seconds = stop_clock(started)
    learned = result.metadata["rows"]["learned"]
    # Scored like every other contender (exact AUC over the holdout rows); the stored metric comes
    # from a mergeable histogram and is kept next to it.
    y_true, proba = [], []
    for batch in row_groups(path):
        batch = batch.filter(pa.array(holdout_of(batch.column("id").to_numpy())))
        rows = pa.Table.from_batches([batch])
        proba.append(result.model.predict_proba(rows.drop_columns(["y"]))[:, 1])
        y_true.append(rows.column("y").to_numpy())
    return {
        "rows_learned": learned,
        "seconds": seconds,
        **holdout_scores(np.concatenate(y_true), np.concatenate(proba)),
        "stored_holdout_auc": result.metrics["holdout"]["roc_auc"],
        "loop_rows_per_second": result.metadata["rows_per_second"],
    }


def run_sklearn_loop(path: Path, epochs: int) -> dict:
    hasher = make_hasher()
    started = start_clock()
    stats = scaling_stats_arrow(path)
    model = sgd()
    learned = 0
    for _ in range(epochs):
        for batch in row_groups(path):
            frame = batch.to_pandas()
            frame = frame[~holdout_of(frame["id"].to_numpy())]
            X = plain_features(frame, stats, hasher)
            model.partial_fit(X, frame["y"].to_numpy(), classes=np.array([False, True]))
            learned += len(frame)
    seconds = stop_clock(started)
    y_true, proba = [], []
    for batch in row_groups(path):
        frame = batch.to_pandas()
        frame = frame[holdout_of(frame["id"].to_numpy())]
        proba.append(model.predict_proba(plain_features(frame, stats, hasher))[:, 1])
        y_true.append(frame["y"].to_numpy())
    return {
        "rows_learned": learned,
        "seconds": seconds,
        **holdout_scores(np.concatenate(y_true), np.concatenate(proba)),
    }


def run_sklearn_fit(path: Path) -> dict:
    """In memory: every training row encoded by skfleet's TableEncoder (the streamed run's
    features), then ``SGDClassifier.fit`` with its own stopping rule (the accuracy reference)."""
    from skfleet.features import TableEncoder

    started = start_clock()
    parts = []
    for batch in row_groups(path):
        parts.append(batch.filter(pa.array(~holdout_of(batch.column("id").to_numpy()))))
    train = pa.Table.from_batches(parts)
    del parts
    y = train.column("y").to_numpy()
    features = train.drop_columns(["id", "y"])
    del train
    encoder = TableEncoder(**ENCODER).fit(features)
    X = encoder.transform(features)
    del features
    model = sgd().fit(X, y)
    seconds = stop_clock(started)
    y_true, proba = [], []
    for batch in row_groups(path):
        hold = pa.Table.from_batches([batch.filter(pa.array(holdout_of(batch["id"].to_numpy())))])
        proba.append(model.predict_proba(encoder.transform(hold.drop_columns(["id", "y"])))[:, 1])
        y_true.append(hold.column("y").to_numpy())
    return {
        "rows_learned": int(len(y)) * int(model.n_iter_),
        "passes": int(model.n_iter_),
        "seconds": seconds,
        **holdout_scores(np.concatenate(y_true), np.concatenate(proba)),
    }


def run_dask_ml(path: Path, epochs: int) -> dict:
    import dask
    import dask.array as da
    import dask.dataframe as dd
    import scipy.sparse as sp
    from dask_ml.wrappers import Incremental

    dask.config.set(scheduler="threads")
    hasher = make_hasher()
    width = N_NUMERIC + 2**HASH_BITS
    started = start_clock()
    frame = dd.read_parquet(str(path), split_row_groups=True)
    train = frame.map_partitions(lambda f: f[~holdout_of(f["id"].to_numpy())])
    moments = dask.compute(
        *[train[c].mean() for c in NUMERIC], *[train[c].std(ddof=0) for c in NUMERIC]
    )
    stats = {c: (moments[j], moments[N_NUMERIC + j]) for j, c in enumerate(NUMERIC)}

    def block(f):
        return plain_features(f, stats, hasher), f["y"].to_numpy()

    parts = train.to_delayed()
    sizes = train.map_partitions(len).compute()
    blocks = [dask.delayed(block)(p) for p in parts]
    X = da.concatenate(
        [
            da.from_delayed(
                b[0], shape=(n, width), dtype=np.float64, meta=sp.csr_matrix((0, width))
            )
            for b, n in zip(blocks, sizes, strict=True)
        ]
    )
    y = da.concatenate(
        [da.from_delayed(b[1], shape=(n,), dtype=bool) for b, n in zip(blocks, sizes, strict=True)]
    )
    inc = Incremental(sgd(), shuffle_blocks=False)
    inc.fit(X, y, classes=[False, True])
    for _ in range(epochs - 1):
        inc.partial_fit(X, y, classes=[False, True])
    seconds = stop_clock(started)
    model = inc.estimator_
    hold = frame.map_partitions(lambda f: f[holdout_of(f["id"].to_numpy())]).compute()
    proba = model.predict_proba(plain_features(hold, stats, hasher))[:, 1]
    return {
        "rows_learned": int(sum(sizes)) * epochs,
        "seconds": seconds,
        **holdout_scores(hold["y"].to_numpy(), proba),
    }


def _vw_lines(batch: pa.RecordBatch) -> list[str]:
    import pyarrow.compute as pc

    label = pc.if_else(batch.column("y"), "1", "-1")
    parts = [label, pa.array([" |n"] * batch.num_rows)]
    for c in NUMERIC:
        value = pc.cast(pc.round(batch.column(c), 6), pa.string())
        parts.append(pc.binary_join_element_wise(f" {c}:", value, ""))
    parts.append(pa.array([" |c"] * batch.num_rows))
    for c in STRINGS:
        parts.append(pc.binary_join_element_wise(" ", batch.column(c), ""))
    return pc.binary_join_element_wise(*parts, "").to_pylist()


def run_vw(path: Path, epochs: int, workdir: Path) -> dict:
    from vowpalwabbit import Workspace

    train_file, hold_file = workdir / "train.vw", workdir / "holdout.vw"
    convert_seconds = None
    if not train_file.exists():
        convert_started = time.perf_counter()
        with open(train_file, "w") as train_out, open(hold_file, "w") as hold_out:
            for batch in row_groups(path):
                hold = holdout_of(batch.column("id").to_numpy())
                lines = np.asarray(_vw_lines(batch), dtype=object)
                train_out.write("\n".join(lines[~hold]) + "\n")
                hold_out.write("\n".join(lines[hold]) + "\n")
        convert_seconds = time.perf_counter() - convert_started
    with open(train_file) as lines:
        train_rows = sum(1 for _ in lines)
    model_file = workdir / f"model-{epochs}.vw"
    cache = workdir / f"train-{epochs}.cache"
    if cache.exists():
        cache.unlink()
    args = f"-d {train_file} --loss_function logistic -b {HASH_BITS} --passes {epochs} "
    args += f"--holdout_off -f {model_file} --quiet"
    if epochs > 1:
        args += f" --cache_file {cache}"
    started = start_clock()
    Workspace(args).finish()
    seconds = stop_clock(started)
    preds = workdir / f"pred-{epochs}.txt"
    Workspace(f"-t -i {model_file} -d {hold_file} -p {preds} --link logistic --quiet").finish()
    proba = np.loadtxt(preds)
    with open(hold_file) as lines:
        y = np.array([line.startswith("1 ") for line in lines])
    return {
        "rows_learned": train_rows * epochs,
        "seconds": seconds,
        **holdout_scores(y, proba),
        "convert_seconds": convert_seconds,
    }


def run_river(path: Path, rows: int) -> dict:
    from river import linear_model, optim

    stats = scaling_stats_arrow(path)
    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.01), l2=0.0)

    def rows_of(batch):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            x = {c: (data[c][i] - stats[c][0]) / stats[c][1] for c in NUMERIC}
            for c in STRINGS:
                x[f"{c}={data[c][i]}"] = 1.0
            yield x, data["y"][i]

    learned = 0
    started = start_clock()
    for batch in row_groups(path):
        batch = batch.filter(pa.array(~holdout_of(batch.column("id").to_numpy())))
        for x, y in rows_of(batch):
            model.learn_one(x, y)
            learned += 1
            if learned >= rows:
                break
        if learned >= rows:
            break
    seconds = stop_clock(started)
    y_true, proba = [], []
    for batch in row_groups(path):
        batch = batch.filter(pa.array(holdout_of(batch.column("id").to_numpy())))
        for x, y in rows_of(batch):
            proba.append(model.predict_proba_one(x).get(True, 0.0))
            y_true.append(y)
        if len(y_true) >= 100_000:
            break
    return {"rows_learned": learned, "seconds": seconds, **holdout_scores(y_true, proba)}


def child(args) -> None:
    path = Path(args.data)
    if args.child == "skfleet":
        out = run_skfleet(path, args.epochs)
    elif args.child == "skfleet-noprog":
        out = run_skfleet(path, args.epochs, progressive=False)
    elif args.child == "sklearn-loop":
        out = run_sklearn_loop(path, args.epochs)
    elif args.child == "sklearn-fit":
        out = run_sklearn_fit(path)
    elif args.child == "dask-ml":
        out = run_dask_ml(path, args.epochs)
    elif args.child == "vw":
        out = run_vw(path, args.epochs, Path(args.workdir))
    elif args.child == "river":
        out = run_river(path, args.river_rows)
    else:
        raise SystemExit(f"unknown contender {args.child}")
    out["cpu_seconds"] = LAST_CPU
    out["rows_per_second"] = out["rows_learned"] / out["seconds"]
    out["rows_per_cpu_second"] = out["rows_learned"] / LAST_CPU if LAST_CPU else None
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


# -- driver --------------------------------------------------------------------------------------------
PLAN = [
    ("skfleet", 1),
    ("skfleet", 3),
    ("skfleet-noprog", 1),
    ("skfleet-noprog", 3),
    ("vw", 1),
    ("vw", 3),
    ("sklearn-loop", 1),
    ("sklearn-loop", 3),
    ("dask-ml", 1),
    ("dask-ml", 3),
    ("river", 1),
    ("sklearn-fit", 1),
]


def run_child(tool: str, epochs: int, data: Path, workdir: Path, river_rows: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        tool,
        "--epochs",
        str(epochs),
        "--data",
        str(data),
        "--workdir",
        str(workdir),
        "--river-rows",
        str(river_rows),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "error" not in r]
    labels = [f"{r['tool']}\n{r['epochs']} ep" for r in ok]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.8))
    panels = (
        ("rows_per_second", "rows/s, wall clock (higher is better)"),
        ("rows_per_cpu_second", "rows per CPU second (higher is better)"),
        ("peak_rss_mb", "peak RSS, MB"),
        ("holdout_auc", "holdout ROC AUC"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [r[key] for r in ok]
        ax.bar(range(len(ok)), values)
        ax.set_xticks(range(len(ok)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(title)
        if key.startswith("rows_per"):
            ax.set_yscale("log")
        if key == "holdout_auc":
            ax.set_ylim(min(values) - 0.01, max(values) + 0.005)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def table(results: list[dict]) -> str:
    lines = [
        "| contender | epochs | rows learned | seconds | rows/s | CPU s | rows/CPU s "
        "| peak RSS MB | holdout AUC | holdout accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['tool']} | {r['epochs']} | error: {r['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {r['tool']} | {r['epochs']} | {r['rows_learned']:,} | {r['seconds']:.1f} | "
            f"{r['rows_per_second']:,.0f} | {r['cpu_seconds']:.1f} | "
            f"{r['rows_per_cpu_second']:,.0f} | {r['peak_rss_mb']:,.0f} | {r['holdout_auc']:.4f} | "
            f"{r['holdout_accuracy']:.4f} |"
        )
    return "\n".join(lines)


def ratios(results: list[dict]) -> str:
    """skfleet's throughput over each contender's at the same epochs, and its accuracy and AUC
    against the in-memory fit (the targets of BENCHMARKS.md)."""
    ok = [r for r in results if "error" not in r]
    ours = {r["epochs"]: r for r in ok if r["tool"] == "skfleet"}
    lines = []
    for r in ok:
        mine = ours.get(r["epochs"]) or ours.get(1)
        if r["tool"].startswith("skfleet") or mine is None:
            continue
        if r["tool"] == "sklearn-fit":
            lines.append(
                f"skfleet ({mine['epochs']} epoch) vs in-memory SGDClassifier.fit "
                f"({r['passes']} passes): accuracy {mine['holdout_accuracy'] - r['holdout_accuracy']:+.4f}, "
                f"ROC AUC {mine['holdout_auc'] - r['holdout_auc']:+.4f}"
            )
            continue
        lines.append(
            f"skfleet / {r['tool']} ({r['epochs']} epoch(s)): "
            f"{mine['rows_per_second'] / r['rows_per_second']:.2f}x rows/s, "
            f"{mine['rows_per_cpu_second'] / r['rows_per_cpu_second']:.2f}x rows per CPU-s, "
            f"AUC {mine['holdout_auc'] - r['holdout_auc']:+.4f}"
        )
    return "\n".join(lines)


def rss_pair(rows_list: list[int], out: Path) -> None:
    """Peak RSS of skfleet (1 epoch) on each row count: the flat-memory check."""
    for rows in rows_list:
        data = out / f"data-{rows}.parquet"
        write_data(data, rows)
        r = run_child("skfleet", 1, data, out, 0)
        print(json.dumps({"rows": rows, **r}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--river-rows", type=int, default=1_000_000)
    parser.add_argument("--out", default="benchmark-out-of-core")
    parser.add_argument("--only", default=None, help="Comma-separated contenders.")
    parser.add_argument("--rss-pair", default=None, help="ROWS1,ROWS2: skfleet peak RSS only.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.rss_pair:
        rss_pair([int(v) for v in args.rss_pair.split(",")], out)
        return
    data = out / f"data-{args.rows}.parquet"
    started = time.perf_counter()
    write_data(data, args.rows)
    print(f"data: {args.rows:,} rows in {time.perf_counter() - started:.1f}s -> {data}", flush=True)
    only = set(args.only.split(",")) if args.only else None
    results = []
    for tool, epochs in PLAN:
        if only and tool not in only:
            continue
        r = {"tool": tool, "epochs": epochs, **run_child(tool, epochs, data, out, args.river_rows)}
        results.append(r)
        print(json.dumps(r), flush=True)
    (out / "results.json").write_text(json.dumps({"rows": args.rows, "results": results}, indent=1))
    (out / "results.md").write_text(table(results) + "\n\n" + ratios(results) + "\n")
    plot(results, out / "out_of_core.png")
    print(table(results))
    print(ratios(results))


if __name__ == "__main__":
    main()
