"""10,000 columns through ``skfleet copy`` and ``skfleet train`` (issue #12, item 7).

Column lookups by name once made both quadratic in the columns (a 10k-column CSV was still being
copied after 300 s). The bounds are generous, several times what a loaded laptop needs; the
benchmark of the scaling itself is ``benchmarks/wide_tables.py``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.store import ModelStore

WIDTH = 10_000
ROWS = 200


@pytest.fixture(scope="module")
def wide_csv(tmp_path_factory):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(ROWS, WIDTH)).round(4)
    data = {"id": np.arange(ROWS, dtype=np.int64)}
    data.update({f"c{i:05d}": values[:, i] for i in range(WIDTH)})
    data["y"] = (values[:, :10].sum(axis=1) * 3.0).round(4)
    table = pa.table(data)
    path = tmp_path_factory.mktemp("wide") / "wide.csv"
    pacsv.write_csv(table, path)
    return str(path), table


def _timed(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output[-2000:]
    return time.perf_counter() - started, result.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_copy_of_10k_columns(wide_csv, tmp_path):
    path, table = wide_csv
    out = tmp_path / "wide.parquet"
    seconds, _ = _timed("copy", path, "--out", str(out), "--engine", "local")
    assert seconds < 90, f"copy of {WIDTH} columns took {seconds:.0f}s"
    copied = pq.read_table(out)
    assert copied.column_names == table.column_names
    assert copied.sort_by("id").equals(table)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_on_10k_columns(wide_csv, tmp_path):
    path, table = wide_csv
    store = tmp_path / "models"
    seconds, _ = _timed(
        "train", path, "--target", "y", "--model", "ridge", "--key", "id", "--cv", "2",
        "--no-report", "--name", "wide", "--store", str(store), "--json",
    )  # fmt: skip
    assert seconds < 300, f"train on {WIDTH} columns took {seconds:.0f}s"
    meta = json.loads((store / "wide" / "1" / "model.json").read_text())
    assert len(meta["input_columns"]) == WIDTH and meta["label_type"] == "double"
    loaded = ModelStore(str(store)).load("wide")
    rows = table.slice(0, 20)
    predicted = loaded.model.predict(rows.select(meta["input_columns"]))
    assert predicted.shape == (20,) and np.isfinite(predicted).all()
    # A model of 10,000 columns is stored in megabytes, not hundreds of them.
    assert (store / "wide" / "1" / "model.skops").stat().st_size < 30_000_000
