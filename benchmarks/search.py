"""A 48-fit grid search: skfleet on a 2-worker local Dask cluster vs scikit-learn with loky.

Data: ``--rows`` rows (default 200,000) of 8 numeric columns and 2 categorical string columns
(16 and 30 levels), a binary target; one pyarrow Table, the same object for both sides.

Model: ``Pipeline([("encode", TableEncoder()), ("model", HistGradientBoostingClassifier(
max_iter=30, early_stopping=False))])`` — skfleet's stored model, so both sides do the same work
(the encoder is fitted inside every fit). Grid: ``max_leaf_nodes`` x ``learning_rate``, 4 x 4 =
16 candidates, 3 stratified folds (shuffled, seed 0) = 48 fits, scored by ROC AUC, then a refit on
all rows.

- **scikit-learn**: ``GridSearchCV(pipeline, grid, cv=..., scoring="roc_auc", n_jobs=2).fit(table,
  y)`` with joblib's default loky backend (also timed on a pandas DataFrame of the same data).
- **skfleet**: ``skfleet.train(..., search=grid, cv=3, engine=<2-worker LocalCluster>)``. The
  like-for-like number is the whole run minus its final cross-validation phase: preparing the run,
  uploading the table, the 48 fits and the refit (same splits, same scoring). The run then also
  cross-validates the chosen parameters (3 more fits), reported as "whole run".

"Busy share" is the time spent inside the 48 fits (scikit-learn's ``mean_fit_time``) divided by
2 workers x wall time: on a machine shared with other jobs the wall times swing, this share much
less, and it compares how much of the run each side spends fitting rather than waiting.

Both sides are warmed up first (loky workers spawned, Dask workers have imported scikit-learn);
the cluster start itself is reported separately. Runs alternate; the median is reported.

Bytes to workers, in one extra skfleet run after the timed ones (sampling costs CPU, so timed runs
are not metered): the sum over the Dask worker processes' TCP sockets of ``bytes_received`` (the
kernel's ``tcp_info``, read with ``ss -tinp``), sampled every second during the run so that
sockets closed mid-run still count, before/after deltas per socket, split by sender. That covers everything a worker
receives: the scattered table, task payloads, worker-to-worker transfers and heartbeats. The
training data size is the Arrow buffer size of the feature table plus the target array.

    .venv/bin/python benchmarks/search.py              # 200k rows, 3 runs each
    .venv/bin/python benchmarks/search.py --rows 50000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

GRID = {"max_leaf_nodes": [15, 31, 63, 127], "learning_rate": [0.05, 0.1, 0.2, 0.3]}
FOLDS = 3
MODEL_PARAMS = {"max_iter": 30, "early_stopping": False, "random_state": 0}


def make_data(n_rows: int, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns = {f"x{j}": rng.normal(size=n_rows) for j in range(8)}
    carriers = np.array([f"carrier_{k:02d}" for k in range(16)], dtype=object)
    cities = np.array([f"city_{k:02d}" for k in range(30)], dtype=object)
    carrier = carriers[rng.integers(0, 16, n_rows)]
    city = cities[rng.integers(0, 30, n_rows)]
    columns["carrier"] = pa.array(carrier.tolist(), pa.string())
    columns["city"] = pa.array(city.tolist(), pa.string())
    effect = rng.normal(size=16)[np.searchsorted(carriers, carrier)]
    score = columns["x0"] * columns["x1"] + np.sin(3 * columns["x2"]) + effect
    y = score + rng.normal(size=n_rows) > 0.5
    return pa.table(columns), y


def template():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    from skfleet.features import TableEncoder

    model = HistGradientBoostingClassifier(**MODEL_PARAMS)
    return Pipeline([("encode", TableEncoder()), ("model", model)])


def sklearn_search(X, y) -> tuple:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    grid = {f"model__{k}": v for k, v in GRID.items()}
    cv = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    search = GridSearchCV(template(), grid, cv=cv, scoring="roc_auc", n_jobs=2, refit=True)
    started = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - started
    fit_total = float(np.sum(search.cv_results_["mean_fit_time"]) * FOLDS)
    return seconds, search.best_params_, search.best_score_, fit_total


class PhaseClock:
    """A skfleet Progress that timestamps each phase (and snapshots worker bytes at its ends)."""

    def __init__(self, meter=None):
        self.meter = meter
        self.phases: dict[str, list[float]] = {}
        self.bytes: dict[str, int] = {}
        self._current = None

    def start(self, total, description=""):
        self._current = description
        if self.meter is not None:
            self.meter.mark(f"{description}:start")
        self.phases[description] = [time.perf_counter(), None]

    def advance(self, rows=0, tasks=1):
        pass

    def note(self, message):
        pass

    def stop(self):
        self.phases[self._current][1] = time.perf_counter()
        if self.meter is not None:
            self.meter.mark(f"{self._current}:stop")

    def seconds(self, phase: str) -> float:
        begin, end = self.phases[phase]
        return end - begin


_SS_LINE = re.compile(r"pid=(\d+),fd=(\d+)")
_RECEIVED = re.compile(r"bytes_received:(\d+)")


def sockets() -> list[tuple[int, int, str, str, int]]:
    """(pid, fd, local address, peer address, bytes_received) of every TCP socket on the host."""
    out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, check=True).stdout
    found, lines = [], out.splitlines()
    for i, line in enumerate(lines):
        owner = _SS_LINE.search(line)
        if not owner:
            continue
        detail = lines[i + 1] if i + 1 < len(lines) else ""
        received = _RECEIVED.search(detail)
        parts = line.split()
        found.append(
            (
                int(owner.group(1)),
                int(owner.group(2)),
                parts[3],
                parts[4],
                int(received.group(1)) if received else 0,
            )
        )
    return found


class ByteMeter:
    """Bytes received by the worker processes, split by sender (this process or another worker).

    Samples every 0.2 s and keeps the highest count seen per socket, so a socket closed mid-run
    still counts up to its last sample. This process hosts the client and the LocalCluster's
    scheduler, so "from client" covers scattered data, task payloads and scheduler messages.
    """

    def __init__(self, worker_pids: set[int], client_pid: int):
        self.workers, self.client = worker_pids, client_pid
        self.baseline: dict[tuple, int] = {}
        self.seen: dict[tuple, int] = {}
        self.sender: dict[tuple, str] = {}
        self._lock = threading.Lock()
        self._sample(baseline=True)
        self.marks: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, baseline: bool = False):
        table = sockets()
        owner = {local: pid for pid, _, local, _, _ in table}
        with self._lock:
            for pid, fd, local, peer, received in table:
                if pid not in self.workers:
                    continue
                key = (pid, fd, local, peer)
                peer_pid = owner.get(peer)
                self.sender.setdefault(
                    key,
                    "client"
                    if peer_pid == self.client
                    else "workers"
                    if peer_pid in self.workers
                    else "other",
                )
                if baseline:
                    self.baseline[key] = received
                self.seen[key] = max(received, self.seen.get(key, 0))

    def _run(self):
        while not self._stop.wait(1.0):
            self._sample()

    def totals(self) -> dict[str, int]:
        out = {"client": 0, "workers": 0, "other": 0}
        with self._lock:
            for key, value in self.seen.items():
                out[self.sender[key]] += value - self.baseline.get(key, 0)
        out["total"] = sum(out.values())
        return out

    def mark(self, label: str):
        self._sample()
        self.marks[label] = self.totals()

    def close(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.totals()


def skfleet_search(X, y, engine, measure: bool):
    from skfleet.train import train

    pids = set(engine.client.run(os.getpid).values())
    meter = ByteMeter(pids, os.getpid()) if measure else None
    clock = PhaseClock(meter)
    table = X.append_column("late", pa.array(y))
    started = time.perf_counter()
    result = train(
        template().named_steps["model"],
        table,
        target="late",
        cv=FOLDS,
        search={"method": "grid", "grid": GRID, "scoring": "roc_auc"},
        engine=engine,
        progress=clock,
        report=False,
    )
    whole = time.perf_counter() - started
    received = meter.close() if meter else None
    search = result.metadata["search"]
    return {
        # Everything but the extra CV phase: preparing the run, uploading the table, the 48 fits
        # and the refit (the search phase alone is reported too).
        "search_seconds": whole - clock.seconds("cross-validation"),
        "search_phase_seconds": clock.seconds("search"),
        "whole_seconds": whole,
        "best_params": search["best_params"],
        "best_score": search["best_score"],
        "bytes_total": received,
        "fit_total": sum(r["mean_fit_time"] for r in search["cv_results"]) * FOLDS,
        "bytes_search": meter.marks.get("search:stop") if meter else None,
    }


def warm_up(X, y, engine):
    from sklearn.model_selection import GridSearchCV

    from skfleet.train import train

    small_X, small_y = X.slice(0, 2000), y[:2000]
    grid = {"model__max_leaf_nodes": [15, 31]}
    GridSearchCV(template(), grid, cv=2, n_jobs=2).fit(small_X, small_y)
    table = small_X.append_column("late", pa.array(small_y))
    train(
        template().named_steps["model"],
        table,
        target="late",
        cv=2,
        search={"grid": {"max_leaf_nodes": [15, 31]}},
        engine=engine,
        report=False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pandas", action="store_true", help="Skip the pandas baseline.")
    args = parser.parse_args()

    from skfleet.engine.dask import DaskEngine

    X, y = make_data(args.rows)
    data_bytes = X.nbytes + y.nbytes
    started = time.perf_counter()
    engine = DaskEngine(None, n_workers=2)
    cluster_seconds = time.perf_counter() - started
    try:
        warm_up(X, y, engine)
        meter = ByteMeter(set(engine.client.run(os.getpid).values()), os.getpid())
        time.sleep(10)
        idle = round(meter.close()["total"] / 10)  # heartbeats and the like, for comparison
        sk_times, sk_pandas_times, runs, sk_busy = [], [], [], []
        frame = None if args.no_pandas else X.to_pandas()
        for i in range(args.runs):
            seconds, best, score, fit_total = sklearn_search(X, y)
            sk_times.append(seconds)
            sk_busy.append(fit_total / 2 / seconds)
            print(
                f"run {i}: scikit-learn (arrow) {seconds:.1f}s best {best} auc {score:.4f}; "
                f"time inside the 48 fits {fit_total:.1f}s",
                flush=True,
            )
            if frame is not None:
                seconds_pd, _, _, _ = sklearn_search(frame, y)
                sk_pandas_times.append(seconds_pd)
                print(f"run {i}: scikit-learn (pandas) {seconds_pd:.1f}s", flush=True)
            run = skfleet_search(X, y, engine, measure=False)
            runs.append(run)
            print(
                f"run {i}: skfleet search {run['search_seconds']:.1f}s (whole run "
                f"{run['whole_seconds']:.1f}s) best {run['best_params']} auc "
                f"{run['best_score']:.4f}; time inside the 48 fits {run['fit_total']:.1f}s",
                flush=True,
            )
        metered = skfleet_search(X, y, engine, measure=True)
        print(
            "metered run: MB to workers in the search "
            f"{ {k: round(v / 1e6, 1) for k, v in metered['bytes_search'].items()} }, whole run "
            f"{ {k: round(v / 1e6, 1) for k, v in metered['bytes_total'].items()} }",
            flush=True,
        )
    finally:
        engine.close()

    sk = statistics.median(sk_times)
    ours = statistics.median(r["search_seconds"] for r in runs)

    def metered_mb(part: str, key: str) -> float:
        return round(metered[part][key] / 1e6, 2)

    data_mb = data_bytes / 1e6
    summary = {
        "rows": args.rows,
        "fits": len(GRID["max_leaf_nodes"]) * len(GRID["learning_rate"]) * FOLDS,
        "cluster_start_seconds": round(cluster_seconds, 2),
        "sklearn_loky_arrow_seconds": round(sk, 2),
        "sklearn_loky_pandas_seconds": round(statistics.median(sk_pandas_times), 2)
        if sk_pandas_times
        else None,
        "skfleet_dask_search_seconds": round(ours, 2),
        "skfleet_search_phase_only_seconds": round(
            statistics.median(r["search_phase_seconds"] for r in runs), 2
        ),
        "skfleet_whole_run_seconds": round(statistics.median(r["whole_seconds"] for r in runs), 2),
        "ratio_search_vs_sklearn": round(ours / sk, 3),
        # Share of the wall time both workers spent inside fits: robust to a busy machine, it
        # shows the scheduling overhead of each side (the rest is the refit and the waits).
        "sklearn_busy_share": round(statistics.median(sk_busy), 3),
        "skfleet_busy_share": round(
            statistics.median(r["fit_total"] / 2 / r["search_seconds"] for r in runs), 3
        ),
        "training_data_mb": round(data_mb, 2),
        "search_mb_from_client": metered_mb("bytes_search", "client"),
        "search_mb_between_workers": metered_mb("bytes_search", "workers"),
        "search_mb_total": metered_mb("bytes_search", "total"),
        "whole_run_mb_total": metered_mb("bytes_total", "total"),
        "search_ratio_from_client": round(metered_mb("bytes_search", "client") / data_mb, 3),
        "search_ratio_total": round(metered_mb("bytes_search", "total") / data_mb, 3),
        "whole_run_ratio_total": round(metered_mb("bytes_total", "total") / data_mb, 3),
        "idle_bytes_per_second": idle,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
