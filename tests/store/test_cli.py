"""``skfleet models ...`` and ``skfleet register`` through click's test runner."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from skfleet.cli import main
from skfleet.store import ModelStore
from tests.store.test_artifact import MajorityClassifier


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def store_dir(tmp_path):
    return str(tmp_path / "models")


def _run(runner, *args, env=None):
    return runner.invoke(main, list(args), env=env, catch_exceptions=False)


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_list_show_report_delete(runner, store_dir, pipeline):
    store = ModelStore(store_dir)
    store.save("churn", pipeline, {"metrics": {"roc_auc": 0.91}}, files={"report.html": b"<h1>"})
    store.save("churn", pipeline, {"metrics": {"roc_auc": 0.93}})

    listed = _run(runner, "models", "list", "--store", store_dir)
    assert listed.exit_code == 0 and "churn" in listed.output and "roc_auc=0.93" in listed.output
    as_json = json.loads(_run(runner, "models", "list", "--store", store_dir, "--json").output)
    assert as_json[0]["versions"] == [1, 2]

    shown = _run(runner, "models", "show", "churn@1", "--store", store_dir)
    assert shown.exit_code == 0 and "churn@1" in shown.output and "roc_auc" in shown.output
    raw = json.loads(_run(runner, "models", "show", "churn", "--store", store_dir, "--json").output)
    assert raw == store.metadata("churn@2")

    path = _run(runner, "models", "report", "churn@1", "--store", store_dir).output.strip()
    assert Path(path).read_bytes() == b"<h1>"
    out = os.path.join(os.path.dirname(store_dir), "copy.html")
    assert (
        _run(runner, "models", "report", "churn@1", "--store", store_dir, "--out", out).exit_code
        == 0
    )
    assert Path(out).read_bytes() == b"<h1>"

    deleted = _run(runner, "models", "delete", "churn@1", "--store", store_dir)
    assert deleted.exit_code == 0 and "deleted churn@1" in deleted.output
    assert store.versions("churn") == [2]


def test_store_comes_from_the_environment(runner, store_dir, pipeline):
    ModelStore(store_dir).save("m", pipeline)
    result = _run(runner, "models", "list", "--json", env={"SKFLEET_STORE": store_dir})
    assert [e["name"] for e in json.loads(result.output)] == ["m"]


def test_bad_inputs_are_one_line_errors(runner, store_dir, pipeline, tmp_path):
    ModelStore(store_dir).save("churn", pipeline)
    cases = {
        ("models", "show", "a/b"): "'a/b' is not allowed",
        ("models", "show", "../x"): "'../x' is not allowed",
        ("models", "show", "nope"): "no model named 'nope'",
        ("models", "show", "churn@9"): "available versions: 1",
        ("models", "report", "churn"): "churn@1 has no report.html",
        ("models", "delete", "churn"): "explicit version",
        ("models", "delete", "churn@latest"): "explicit version",
        ("models", "delete", "churn@x"): "explicit version",
        ("models", "delete", "churn@1x"): "bad version",
        ("models", "show", "churn@x"): "model 'churn' has no alias 'x'",
    }
    for args, expected in cases.items():
        line = _one_line_error(_run(runner, *args, "--store", store_dir))
        assert expected in line, (args, line)
    assert ModelStore(store_dir).versions("churn") == [1]


def _dump(model, path):
    skops.io.dump(model, path)
    return str(path)


def test_register_skops_model(runner, store_dir, tmp_path, xy):
    X, y = xy
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    path = _dump(LogisticRegression().fit(frame, y), tmp_path / "ext.skops")
    result = _run(
        runner,
        "register",
        path,
        "--name",
        "ext",
        "--features",
        "a, b,c",
        "--target",
        "label",
        "--store",
        store_dir,
    )
    assert result.exit_code == 0, result.output
    assert "registered ext@1" in result.output
    meta = ModelStore(store_dir).metadata("ext")
    assert meta["registered"] is True
    assert meta["features"] == {"input_columns": ["a", "b", "c"]}
    assert meta["target"] == "label" and meta["class_labels"] == [0, 1]
    loaded = ModelStore(store_dir).load("ext").model
    np.testing.assert_array_equal(
        loaded.predict(frame), LogisticRegression().fit(frame, y).predict(frame)
    )


def test_register_takes_the_columns_a_dataframe_fit_recorded_and_a_key(
    runner, store_dir, tmp_path, xy
):
    X, y = xy
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, y)
    path = _dump(model, tmp_path / "ext.skops")
    result = _run(runner, "register", path, "--name", "ext", "--key", "id", "--store", store_dir)
    assert result.exit_code == 0, result.output
    meta = ModelStore(store_dir).metadata("ext")
    assert meta["input_columns"] == ["a", "b", "c"] and meta["key_columns"] == ["id"]
    # predict copies the recorded key without being told, and scores as the model does.
    rows = frame.assign(id=np.arange(len(frame)) * 10)
    rows.to_parquet(tmp_path / "rows.parquet")
    out = tmp_path / "scores.parquet"
    result = _run(runner, "predict", "ext", str(tmp_path / "rows.parquet"), "--out", str(out),
                  "--store", store_dir, "--engine", "local")  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out).sort_values("id", ignore_index=True)
    assert scores["id"].tolist() == rows["id"].tolist()
    np.testing.assert_array_equal(scores["prediction"].to_numpy(), model.predict(frame))


def test_register_pickle_needs_trust(runner, store_dir, tmp_path, xy):
    X, y = xy
    path = tmp_path / "ext.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression().fit(X, y)))
    line = _one_line_error(
        _run(
            runner,
            "register",
            str(path),
            "--name",
            "p",
            "--features",
            "a,b,c",
            "--store",
            store_dir,
        )
    )
    assert "pass --trust" in line and "ext.pkl" in line
    assert not os.path.exists(store_dir)
    ok = _run(
        runner,
        "register",
        str(path),
        "--name",
        "p",
        "--features",
        "a,b,c",
        "--store",
        store_dir,
        "--trust",
    )
    assert ok.exit_code == 0 and ModelStore(store_dir).versions("p") == [1]


def test_register_help_says_why_pickles_need_trust(runner):
    text = " ".join(_run(runner, "register", "--help").output.split())
    assert "runs any code" in text


def test_register_untrusted_skops_needs_trust(runner, store_dir, tmp_path, xy):
    X, y = xy
    path = _dump(MajorityClassifier().fit(X, y), tmp_path / "custom.skops")
    args = ["register", path, "--name", "c", "--features", "a,b,c", "--store", store_dir]
    line = _one_line_error(_run(runner, *args))
    assert "MajorityClassifier" in line and "--trust" in line
    assert _run(runner, *args, "--trust").exit_code == 0


def test_register_bad_inputs(runner, store_dir, tmp_path, xy):
    X, y = xy
    fitted = _dump(LogisticRegression().fit(X, y), tmp_path / "fitted.skops")
    named = _dump(
        LogisticRegression().fit(pd.DataFrame(X, columns=["a", "b", "c"]), y),
        tmp_path / "named.skops",
    )
    unfitted = _dump(LogisticRegression(), tmp_path / "unfitted.skops")
    not_model = _dump({"a": 1}, tmp_path / "dict.skops")
    other = tmp_path / "model.txt"
    other.write_text("x")
    cases = [
        ([fitted, "--name", "a/b", "--features", "a,b,c"], "'a/b' is not allowed"),
        ([fitted, "--name", "..", "--features", "a,b,c"], "'..' is not allowed"),
        (
            [fitted, "--name", "m", "--features", "a,b"],
            "lists 2 columns but the model in fitted.skops",
        ),
        ([fitted, "--name", "m", "--features", "a,,c"], "--features"),
        ([fitted, "--name", "m", "--features", "a,a,c"], "names a more than once"),
        ([fitted, "--name", "m", "--features", "a,b,c", "--target", "b"], "--target b"),
        ([named, "--name", "m", "--features", "c,b,a"], "fitted on: a,b,c"),
        ([unfitted, "--name", "m", "--features", "a,b,c"], "not fitted"),
        ([not_model, "--name", "m", "--features", "a"], "not a scikit-learn estimator"),
        ([str(other), "--name", "m", "--features", "a"], "model.txt is not a model file"),
        ([str(tmp_path / "missing.skops"), "--name", "m", "--features", "a"], "does not exist"),
        ([fitted, "--name", "m"], "--features is needed"),  # fitted on an array: no names
        ([named, "--name", "m", "--key", "a"], "--key a is also an input column"),
    ]
    for args, expected in cases:
        line = _one_line_error(_run(runner, "register", *args, "--store", store_dir))
        assert expected in line, (args, line)
    assert not os.path.exists(store_dir)


def test_unwritable_store_is_one_line(runner, tmp_path, xy):
    X, y = xy
    fitted = _dump(LogisticRegression().fit(X, y), tmp_path / "fitted.skops")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    store = str(blocker / "models")
    line = _one_line_error(
        _run(runner, "register", fitted, "--name", "m", "--features", "a,b,c", "--store", store)
    )
    assert store in line and "not writable" in line


def test_report_from_an_s3_store_needs_out(runner, s3_store, pipeline, tmp_path):
    s3_store.save("churn", pipeline, files={"report.html": b"<h1>s3</h1>"})
    args = ["models", "report", "churn", "--store", s3_store.uri]
    line = _one_line_error(_run(runner, *args))
    assert "remote store; pass --out FILE" in line
    out = tmp_path / "report.html"
    assert _run(runner, *args, "--out", str(out)).exit_code == 0
    assert out.read_bytes() == b"<h1>s3</h1>"
    listed = json.loads(_run(runner, "models", "list", "--json", "--store", s3_store.uri).output)
    assert [e["name"] for e in listed] == ["churn"]
