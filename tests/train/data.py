"""Small synthetic tables for the training tests (written to Parquet by the tests), and a
progress recorder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skfleet.util.progress import Progress

CITIES = ["Zürich", "O'Hare", "Köln"]


def classification_table(n: int = 300, seed: int = 0) -> pa.Table:
    """``id`` key, two floats, a city, and a string label that depends on x and the city."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    city = rng.choice(CITIES, size=n)
    score = 1.5 * x + (city == "Köln") + rng.normal(scale=0.7, size=n)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": x,
            "z": z,
            "city": pa.array(city.tolist(), pa.string()),
            "label": pa.array(np.where(score > 0.3, "late", "on_time").tolist(), pa.string()),
        }
    )


def regression_table(n: int = 300, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    shop = rng.choice(["a", "b", "c"], size=n)
    slope = np.select([shop == "a", shop == "b"], [1.0, 5.0], default=-3.0)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": x,
            "shop": pa.array(shop.tolist(), pa.string()),
            "y": slope * x + rng.normal(scale=0.1, size=n),
        }
    )


def write(table: pa.Table, folder: Path, name: str = "train.parquet") -> str:
    path = folder / name
    pq.write_table(table, path)
    return str(path)


class Recorder(Progress):
    """Remembers every phase and how many fits each one reported."""

    def __init__(self):
        self.phases: list[list] = []
        self.rows: list[int] = []  # rows reported per phase
        self.notes: list[str] = []

    def start(self, total, description=""):
        self.phases.append([description, total, 0])
        self.rows.append(0)

    def advance(self, rows=0, tasks=1):
        self.phases[-1][2] += tasks
        self.rows[-1] += rows

    def note(self, message):
        self.notes.append(message)
