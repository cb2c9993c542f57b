"""Bad flags are one line naming the flag, exit status 2, nothing written (issue #12, items 8-9)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main

PG = "postgresql://ana:s3cret-pw@127.0.0.1:1/db?table=public.t"


@pytest.fixture
def data(tmp_path):
    n = 200
    x = np.random.default_rng(2).normal(size=n)
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "x": x, "y": 2 * x + 1}), path)
    return str(path)


def _one_line(tmp_path, *args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Usage:" not in result.output and "s3cret-pw" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["copy", "{data}", "--out", "{tmp}/o.parquet", "--partition-rows", "0"], "'--partition-rows': 0"),
        (["train-stream", "{data}", "--target", "y", "--model", "sgd-linear", "--holdout", "1.0"], "'--holdout': 1.0"),
        (["train", "{data}", "--target", "y", "--model", "ridge", "--cv", "2", "--name", ""], "model name ''"),
        (["train-stream", "{data}", "--target", "y", "--model", "sgd-linear", "--name", ""], "model name ''"),
        (["copy", PG, "--out", "{tmp}/dir/", "--format", "parquet"], "did you mean --out-format parquet?"),
        (["copy", "{data}", "--out", PG, "--out-format", "csv"], "--out-format csv sets the format of output files"),
        (["train", PG, "--target", "y", "--model", "ridge", "--format", "csv"], "--format csv sets the format of input files"),
        (["copy", "{data}", "--out", "{tmp}/o.parquet", "--no-such-flag"], "No such option '--no-such-flag'"),
    ],
)  # fmt: skip
def test_bad_flag_is_one_line(tmp_path, data, args, expected):
    store = tmp_path / "models"
    args = [a.format(data=data, tmp=tmp_path) for a in args] + ["--store", str(store)] * (
        args[0].startswith("train")
    )
    line = _one_line(tmp_path, *args)
    assert expected in line, line
    assert not store.exists() and not (tmp_path / "o.parquet").exists()
    assert not (tmp_path / "dir").exists()


def test_infinite_target_names_the_column(tmp_path):
    y = np.linspace(0.0, 1.0, 100)
    y[7] = np.inf
    path = tmp_path / "inf.parquet"
    pq.write_table(pa.table({"x": np.arange(100.0), "price": y}), path)
    store = tmp_path / "models"
    args = ["train", str(path), "--target", "price", "--model", "ridge", "--store", str(store)]
    line = _one_line(tmp_path, *args)
    assert "target column 'price' holds 1 infinite value" in line and "Input y" not in line
    assert not store.exists()
