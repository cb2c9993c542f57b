"""A table with a few malformed rows of six kinds, and a model whose feature contract refuses
them (importable by worker processes)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skfleet.features import TableEncoder

#: What is written in place of a good value, per reason, and the column it goes in.
MALFORMED = {
    "unparseable_number": ("fare", "n/a"),
    "not_whole_number": ("seats", 2.5),
    "unparseable_date": ("departed", "2013-02-30 10:00"),
    "unseen_level": ("cabin", "Z"),
    "unparseable_boolean": ("member", "maybe"),
    "type_refused": ("vip", 2),
}
REASONS = sorted(MALFORMED)
INPUTS = ["fare", "seats", "departed", "cabin", "member", "vip"]


def training_table(n: int = 2_000, seed: int = 0) -> tuple[pa.Table, list[str]]:
    """The columns in the types the model is trained on, and the labels."""
    rng = np.random.default_rng(seed)
    fare = rng.gamma(2.0, 50.0, n).round(2)
    seats = rng.integers(1, 6, n)
    departed = np.datetime64("2013-01-01T00:00") + rng.integers(0, 365 * 24 * 60, n).astype(
        "timedelta64[m]"
    )
    cabin = rng.choice(["A", "B", "C"], n)
    member = rng.random(n) < 0.4
    vip = rng.random(n) < 0.1
    late = (fare / 100 + seats * 0.2 + (cabin == "C") + rng.normal(0, 0.5, n)) > 1.8
    table = pa.table(
        {
            "fare": fare,
            "seats": seats.astype(np.int64),
            "departed": pa.array(departed.astype("datetime64[us]")),
            "cabin": cabin.tolist(),
            "member": member,
            "vip": vip,
        }
    )
    return table, np.where(late, "late", "on_time").tolist()


class Pause(TransformerMixin, BaseEstimator):
    """Passes its input on after ``delay`` seconds: makes partitions last long enough for a
    worker to be killed under them."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        time.sleep(self.delay)
        return X


class FailsOnCall(TransformerMixin, BaseEstimator):
    """Passes its input on, except that its ``call``-th call (counted in files under
    ``marker_dir``, across processes) raises, once: a run that fails part-way and resumes."""

    def __init__(self, marker_dir: str = "", call: int = 0):
        self.marker_dir = marker_dir
        self.call = call

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        if self.marker_dir:
            folder = Path(self.marker_dir)
            number = len(list(folder.glob("call-*"))) + 1
            (folder / f"call-{number:04d}").write_text("")
            if number == self.call:
                raise RuntimeError(f"call {number} fails")
        return X


def model(delay: float = 0.0, fail: FailsOnCall | None = None) -> Pipeline:
    """Encoder (unseen levels refused) -> pause (or ``fail``) -> logistic regression, fitted."""
    table, labels = training_table()
    pipeline = Pipeline(
        [
            ("encode", TableEncoder(on_unseen_level="error")),
            ("pause", fail or Pause(delay)),
            ("model", LogisticRegression(max_iter=500)),
        ]
    )
    return pipeline.fit(table, labels)


def scoring_table(n: int, every: int = 1_000, seed: int = 1) -> tuple[pa.Table, dict[int, str]]:
    """``n`` rows to score, ``id`` first, in the types a loosely typed staging table has (text
    numbers, dates and booleans, float seats, integer vip); every ``every``-th row (0.1% by
    default) holds one malformed value, the reasons taking turns. Returns the table and
    ``{id: reason}`` of the malformed rows."""
    good, _ = training_table(n, seed)
    ids = np.arange(1, n + 1, dtype=np.int64) * 7  # not the row numbers
    fare = [f"{v:.2f}" for v in good["fare"].to_pylist()]
    seats = [float(v) for v in good["seats"].to_pylist()]
    departed = [v.strftime("%Y-%m-%d %H:%M") for v in good["departed"].to_pylist()]
    cabin = good["cabin"].to_pylist()
    member = ["true" if v else "false" for v in good["member"].to_pylist()]
    vip = [int(v) for v in good["vip"].to_pylist()]
    columns = {"fare": fare, "seats": seats, "departed": departed, "cabin": cabin}
    columns |= {"member": member, "vip": vip}
    bad: dict[int, str] = {}
    for turn, row in enumerate(range(every // 2, n, every)):
        reason = REASONS[turn % len(REASONS)]
        column, value = MALFORMED[reason]
        columns[column][row] = value
        bad[int(ids[row])] = reason
    table = pa.table(
        {
            "id": ids,
            "fare": pa.array(fare, pa.string()),
            "seats": pa.array(seats, pa.float64()),
            "departed": pa.array(departed, pa.string()),
            "cabin": pa.array(cabin, pa.string()),
            "member": pa.array(member, pa.string()),
            "vip": pa.array(vip, pa.int64()),
        }
    )
    return table, bad
