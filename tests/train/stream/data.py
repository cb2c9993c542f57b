"""Synthetic tables for the streaming tests, written to Parquet in row groups.

The generator is chunked and seeded per chunk, so a 2M-row file is written without holding 2M rows
and the first ``n`` rows of a large table equal a small table of ``n`` rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CITIES = [f"city{i:03d}" for i in range(200)]
CARRIERS = ["AA", "B6", "DL", "EV", "UA", "WN"]
CHUNK = 100_000


def chunk(start: int, n: int, seed: int = 0) -> pa.Table:
    """Rows ``start .. start + n`` (within one generator chunk): id, numerics, categories, targets."""
    rng = np.random.default_rng([seed, start])
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    carrier_code = rng.integers(0, len(CARRIERS), size=n)
    city_code = rng.integers(0, len(CITIES), size=n)
    carrier = pa.DictionaryArray.from_arrays(carrier_code.astype(np.int32), CARRIERS)
    city = pa.DictionaryArray.from_arrays(city_code.astype(np.int32), CITIES)
    score = 1.2 * x - 0.8 * z + 0.7 * (carrier_code == 3) + 0.4 * (city_code % 3) - 0.4
    late = score + rng.logistic(size=n) > 0
    return pa.table(
        {
            "id": np.arange(start, start + n, dtype=np.int64),
            "x": x,
            "z": z,
            "carrier": carrier.cast(pa.string()),
            "city": city.cast(pa.string()),
            "late": pa.array(late),
            "amount": 3.0 * x + 2.0 * (carrier_code == 4) + rng.normal(scale=0.5, size=n),
        }
    )


def table(n: int, seed: int = 0) -> pa.Table:
    return pa.concat_tables(
        [chunk(s, min(CHUNK, n - s), seed) for s in range(0, n, CHUNK)]
    ).combine_chunks()


def write_parquet(path: Path, n: int, row_group_size: int = 10_000, seed: int = 0) -> str:
    """``n`` rows to one Parquet file, generated and written chunk by chunk."""
    writer = None
    try:
        for start in range(0, n, CHUNK):
            part = chunk(start, min(CHUNK, n - start), seed)
            if writer is None:
                writer = pq.ParquetWriter(str(path), part.schema)
            writer.write_table(part, row_group_size=row_group_size)
    finally:
        if writer is not None:
            writer.close()
    return str(path)


def write_files(folder: Path, parts: list[pa.Table]) -> str:
    """One Parquet file per table (so each is a partition), named in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        pq.write_table(part, folder / f"part-{i:03d}.parquet")
    return str(folder)
