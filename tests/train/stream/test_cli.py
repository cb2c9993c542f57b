"""``skfleet train-stream`` through the CLI, and ``skfleet predict`` scoring its model unchanged."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.data import open_source
from skfleet.store import ModelStore
from tests.train.stream.data import table


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_train_stream(data: str, store: str, flags: str):
    """``skfleet train-stream DATA --store STORE`` and ``flags`` (split on spaces)."""
    return run_cli("train-stream", data, "--store", store, *flags.split())


def test_train_stream_then_predict(parquet_20k, tmp_path):
    store = str(tmp_path / "models")
    code, out, err = run_train_stream(
        parquet_20k,
        store,
        "--target late --model sgd-logistic --key id --exclude amount --hash city --hash-features 32 "
        "--epochs 2 --partition-rows 4000 --holdout 0.2 --holdout-key id --param alpha=0.0005 "
        "--engine local --json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["name"] == "late-sgd-logistic" and summary["version"] == 1
    assert summary["epochs"] == 2 and summary["resumed"] is False
    assert summary["rows"] + summary["holdout_rows"] == 20_000
    assert summary["metrics"]["roc_auc"] > 0.75
    meta = ModelStore(store).metadata("late-sgd-logistic")
    assert meta["estimator"]["params"]["alpha"] == 0.0005
    city = next(c for c in meta["features"]["columns"] if c["name"] == "city")
    assert city["hash"]["n_features"] == 32  # --hash city --hash-features 32
    scores = str(tmp_path / "scores.parquet")
    code, out, err = run_cli(
        "predict",
        "late-sgd-logistic",
        parquet_20k,
        "--out",
        scores,
        "--store",
        store,
        "--engine",
        "local",
        "--json",
    )
    assert code == 0, err
    with open_source(scores) as source:
        scored = source.read_all().sort_by("id")
    assert scored.column_names == ["id", "prediction", "proba_false", "proba_true"]
    model = ModelStore(store).load("late-sgd-logistic").model
    expected = model.predict_proba(table(20_000).drop_columns(["late", "amount"]))[:, 1]
    np.testing.assert_allclose(scored.column("proba_true").to_numpy(), expected)


def test_human_summary_and_bad_flag(parquet_20k, tmp_path):
    store = str(tmp_path / "models")
    flags = "--target amount --model sgd-linear --key id --exclude late --partition-rows 5000"
    code, out, err = run_train_stream(parquet_20k, store, f"{flags} --name amount --no-report")
    assert code == 0, err
    assert out.startswith("stored amount@1: r2 ")
    flags = "--target late --model sgd-logistic --checkpoint-every 2 --resume --holdout-key nope"
    code, out, err = run_train_stream(parquet_20k, store, flags)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: --holdout-key column 'nope' is missing")
