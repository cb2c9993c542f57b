"""Test data and test models for the predict suite (importable by worker processes).

The custom estimators here live outside skfleet's trusted list, so loading them needs
``trust=True`` (``--trust``): that path is exercised too.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from skfleet.util.blocks import BLOCK

CITIES = ["Zürich", "O'Hare", 'say "hi"', "Köln"]
FEATURES = ["x0", "x1", "x2", "city"]


def make_rows(n: int, start: int = 0, seed: int = 0) -> pa.Table:
    """``id`` (unique int64), three floats, a text column and a string label."""
    rng = np.random.default_rng(seed + start)
    x = rng.normal(size=(n, 3))
    city = rng.choice(CITIES, size=n)
    score = x[:, 0] - 0.5 * x[:, 1] + (city == "Köln") + rng.normal(scale=0.5, size=n)
    label = np.where(score > 0.3, "late", "on_time")
    return pa.table(
        {
            "id": np.arange(start, start + n, dtype=np.int64),
            "x0": x[:, 0],
            "x1": x[:, 1],
            "x2": x[:, 2],
            "city": pa.array(city.tolist(), pa.string()),
            "label": pa.array(label.tolist(), pa.string()),
        }
    )


def write_parquet_dir(path: Path, table: pa.Table, files: int, row_group_size: int) -> str:
    """``table`` as ``files`` Parquet files under ``path`` (so partitions are real files)."""
    path.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(
            table.slice(i * step, step),
            path / f"part-{i:02d}.parquet",
            row_group_size=row_group_size,
        )
    return str(path)


def frame(table: pa.Table) -> pd.DataFrame:
    return table.select(FEATURES).to_pandas()


def classifier(table: pa.Table) -> Pipeline:
    """One-hot city + passthrough floats -> logistic regression, fitted on a DataFrame."""
    encode = ColumnTransformer(
        [("city", OneHotEncoder(handle_unknown="ignore"), ["city"])], remainder="passthrough"
    )
    model = Pipeline([("encode", encode), ("model", LogisticRegression())])
    return model.fit(frame(table), table["label"].to_pylist())


def registered_meta(task: str, label_type: str | None, **extra) -> dict:
    meta = {
        "kind": "registered",
        "task": task,
        "target": "label",
        "key_columns": ["id"],
        "input_columns": FEATURES,
        **extra,
    }
    if label_type is not None:
        meta["label_type"] = label_type
    return meta


def save_classifier(store, table: pa.Table, name: str = "late") -> str:
    model = classifier(table)
    meta = registered_meta("classification", "string", classes=model.classes_.tolist())
    return str(store.save(name, model, meta))


def save_regressor(store, table: pa.Table, name: str = "reg") -> str:
    x = table.select(["x0", "x1", "x2"]).to_pandas()
    model = LinearRegression().fit(x, x["x0"] * 3.0 + 1.0)
    meta = registered_meta("regression", "double", input_columns=["x0", "x1", "x2"])
    return str(store.save(name, model, meta))


class Sleepy(RegressorMixin, BaseEstimator):
    """``2 * x0``, after sleeping ``delay`` seconds per call: makes a run last long enough to
    interrupt it or kill a worker under it."""

    def __init__(self, delay: float = 0.2):
        self.delay = delay

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        time.sleep(self.delay)
        return np.asarray(X["x0"], dtype=np.float64) * 2.0


class FailsOnce(RegressorMixin, BaseEstimator):
    """``2 * x0``, but the first call on each distinct batch of more than one block raises
    (remembered in files under ``marker_dir``, so across processes): a partition that fails once
    and then succeeds. (A partition's last rows come in a call of their own, padded to a block:
    they would fail the retry.)"""

    def __init__(self, marker_dir: str = ""):
        self.marker_dir = marker_dir

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        values = np.ascontiguousarray(np.asarray(X["x0"], dtype=np.float64))
        digest = hashlib.sha1(values.tobytes()).hexdigest()[:16]
        marker = Path(self.marker_dir) / f"seen-{digest}"
        if len(values) > BLOCK and not marker.exists():
            marker.write_text(str(os.getpid()))
            raise RuntimeError(f"transient failure on batch {digest}")
        return values * 2.0


class Explodes(RegressorMixin, BaseEstimator):
    """Always fails: the run must fail and name the partition and the cause."""

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        raise RuntimeError("the model exploded")


def save_custom(store, model, name: str) -> str:
    meta = registered_meta("regression", "double", input_columns=["x0"])
    return str(store.save(name, model.fit(pd.DataFrame({"x0": [0.0]})), meta))


class Dies(RegressorMixin, BaseEstimator):
    """Kills the process it runs in: the engine breaks, the run must say so and stay resumable."""

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
