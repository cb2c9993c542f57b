"""``skfleet train`` through the CLI: JSON summary, report, search, segments and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.store import ModelStore
from tests.train.data import classification_table, regression_table, write


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def data(tmp_path):
    return write(classification_table(200), tmp_path)


def test_json_summary_and_stored_model(tmp_path, data):
    store = str(tmp_path / "models")
    code, out, err = run_cli(
        "train", data, "--target", "label", "--model", "logistic", "--param", "C=0.5",
        "--key", "id", "--exclude", "z", "--cv", "3", "--name", "delays", "--store", store,
        "--json", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["name"] == "delays" and summary["version"] == 1
    assert summary["rows"] == 200 and summary["dropped_missing_target"] == 0
    assert set(summary["metrics"]) >= {
        "accuracy",
        "roc_auc",
        "log_loss",
        "brier",
        "confusion_matrix",
    }
    assert summary["seconds"] > 0
    meta = ModelStore(store).metadata("delays@1")
    assert meta["estimator"]["params"]["C"] == 0.5
    assert sorted(meta["input_columns"]) == ["city", "x"]
    assert meta["metrics"]["overall"]["accuracy"] == summary["metrics"]["accuracy"]


def test_text_output_with_report(tmp_path, data):
    store = tmp_path / "models"
    code, out, err = run_cli(
        "train", data, "--target", "label", "--model", "sklearn.linear_model.LogisticRegression",
        "--key", "id", "--cv", "2", "--store", str(store),
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("stored label-LogisticRegression@1: roc_auc ")
    report = store / "label-LogisticRegression" / "1" / "report.html"
    assert f"report: {report}" in out
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<img" in html
    assert "<h2>Feature importance</h2>" in html and "<h2>Cross-validation" in html
    meta = ModelStore(str(store)).metadata("label-LogisticRegression")
    assert meta["feature_importance"]["method"] in ("native", "permutation")
    assert set(meta["feature_importance"]["values"]) == {"x", "z", "city"}


def test_search_and_group_by(tmp_path):
    path = write(regression_table(240), tmp_path)
    store = str(tmp_path / "models")
    code, out, err = run_cli(
        "train", path, "--target", "y", "--model", "ridge", "--key", "id", "--cv", "3",
        "--search", "grid", "--grid", "alpha=0.01,100", "--group-by", "shop",
        "--name", "shops", "--store", store, "--json", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    meta = ModelStore(store).metadata("shops")
    assert meta["kind"] == "segmented" and meta["segments"]["count"] == 3
    assert meta["search"]["best_params"] == {"alpha": 0.01}  # the data is nearly noise-free
    assert json.loads(out)["metrics"]["r2"] > 0.99


def test_missing_target_rows_are_dropped_and_counted(tmp_path):
    table = regression_table(100)
    y = table["y"].to_pylist()
    for i in (1, 2, 3):
        y[i] = None
    path = write(table.set_column(3, "y", pa.array(y, pa.float64())), tmp_path)
    code, out, err = run_cli(
        "train", path, "--target", "y", "--model", "ridge", "--key", "id", "--cv", "2",
        "--store", str(tmp_path / "m"), "--json", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["dropped_missing_target"] == 3 and json.loads(out)["rows"] == 97


def test_grid_alone_is_a_grid_search_and_no_encode_hands_a_frame(tmp_path):
    path = write(regression_table(120), tmp_path)
    store = str(tmp_path / "models")
    code, out, err = run_cli(
        "train", path, "--target", "y", "--model", "ridge", "--key", "id", "--exclude", "shop",
        "--cv", "2", "--grid", "alpha=0.01,100", "--no-encode", "--name", "g", "--store", store,
        "--json", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    meta = ModelStore(store).metadata("g")
    assert meta["search"]["method"] == "grid" and len(meta["search"]["cv_results"]) == 2
    assert meta["encoding"] == "frame"


def _bad_tables(tmp_path):
    base = classification_table(60)
    constant = regression_table(40).set_column(3, "y", pa.array(np.full(40, 7.0)))
    no_target = regression_table(40).set_column(3, "y", pa.array([float("nan")] * 40))
    one_class = base.set_column(4, "label", pa.array(["late"] * 60))
    return {
        "base": write(base, tmp_path, "base.parquet"),
        "constant": write(constant, tmp_path, "constant.parquet"),
        "no_target": write(no_target, tmp_path, "nan.parquet"),
        "one_class": write(one_class, tmp_path, "one.parquet"),
    }


BAD_INPUTS = [
    ("base", ["--target", "nope"], "target column 'nope' is missing"),
    ("constant", ["--target", "y", "--model", "ridge"], "target column 'y' is constant"),
    ("no_target", ["--target", "y", "--model", "ridge"], "target column 'y' has no values"),
    ("one_class", [], "target column 'label' has a single class ('late')"),
    ("base", ["--param", "depth=3"], "--param depth: LogisticRegression has no parameter"),
    ("base", ["--param", "C"], "--param 'C' must look like NAME=VALUE"),
    ("base", ["--model", "gbm"], "unknown --model 'gbm'"),
    ("base", ["--model", "sklearn.cluster.KMeans"], "neither a classifier nor a regressor"),
    ("base", ["--name", "a/b"], "model name 'a/b' is not allowed"),
    ("base", ["--name", "a..b"], "model name 'a..b' is not allowed"),
    ("base", ["--key", "missing"], "--key column 'missing' is missing"),
    ("base", ["--exclude", "label"], "column 'label' is given both as --target and --exclude"),
    ("base", ["--cv", "1"], "--cv must be 0 (no cross-validation) or at least 2"),
    ("base", ["--search", "grid"], "--search needs at least one --grid"),
    ("base", ["--search", "grid", "--grid", "depth=1,2"], "--grid depth: LogisticRegression has"),
    ("base", ["--group-by", "nope"], "--group-by column 'nope' is missing"),
    ("base", ["--target", "x"], "target column 'x' holds continuous values"),
]


@pytest.mark.parametrize(("table", "flags", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_nothing_stored(tmp_path, table, flags, message):
    paths = _bad_tables(tmp_path)
    store = tmp_path / "models"
    # A repeated --model is a comparison of candidates: a case naming its model names only it.
    model = [] if "--model" in flags else ["--model", "logistic"]
    args = ["train", paths[table], "--target", "label", *model, "--cv", "2",
            "--key", "id", "--name", "m", "--store", str(store), "--no-report"]  # fmt: skip
    code, out, err = run_cli(*args, *flags)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert not store.exists() or ModelStore(str(store)).names() == []


def test_unwritable_store_and_missing_file(tmp_path, data):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(
        "train",
        data,
        "--target",
        "label",
        "--model",
        "logistic",
        "--key",
        "id",
        "--store",
        str(blocker / "models"),
    )
    assert code == 2 and "is not writable" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(
        "train",
        str(tmp_path / "nope.parquet"),
        "--target",
        "label",
        "--model",
        "logistic",
        "--store",
        str(tmp_path / "m"),
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nope.parquet" in err
    assert not (tmp_path / "m").exists()
