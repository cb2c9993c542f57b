"""``skfleet models show`` is a short summary (``--json``: all of model.json) and ``models diff``
says what changed between two versions."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from skfleet.cli import main
from skfleet.store import ModelStore

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
Y = [False, False, False, True, True, True]


def _save(store: ModelStore, columns: list[str], roc_auc: float, **params) -> str:
    model = LogisticRegression(**params).fit(X[columns], Y)
    meta = {
        "task": "classification",
        "target": "late",
        "classes": [False, True],
        "input_columns": columns,
        "key_columns": ["id"],
        "rows": {"train": 6},
        "metrics": {"overall": {"roc_auc": roc_auc, "accuracy": 0.8333333333333334, "n": 6}},
        "main_metric": {"name": "roc_auc", "value": roc_auc},
    }
    return str(store.save("late", model, meta))


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_show_is_a_short_summary_and_json_is_all_of_it(tmp_path):
    store = ModelStore(str(tmp_path / "models"))
    _save(store, ["a", "b"], 0.9243174317431743, C=0.5)
    text = run("models", "show", "late", "--store", store.uri)
    lines = text.splitlines()
    assert len(lines) <= 12, text
    assert lines[0].startswith("late@1  classification of late")
    assert "LogisticRegression (C=0.5)" in text  # non-default parameters only
    assert "max_iter" not in text and "0.9243174317431743" not in text
    assert "roc_auc 0.9243 (main)" in text and "accuracy 0.8333" in text
    full = json.loads(run("models", "show", "late@1", "--json", "--store", store.uri))
    assert full["estimator"]["params"]["max_iter"] == 100
    assert len(json.dumps(full, indent=2).splitlines()) > 3 * len(lines)


def test_diff_names_changed_settings_columns_and_metrics(tmp_path):
    store = ModelStore(str(tmp_path / "models"))
    _save(store, ["a", "b"], 0.9, C=0.5)
    _save(store, ["a"], 0.95, C=2.0)
    text = run("models", "diff", "late@1", "late@2", "--store", store.uri)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:]}
    assert rows["params.C"] == ["0.5", "2"]
    assert rows["input_columns"] == ["-b", "-"]
    assert rows["roc_auc"] == ["0.9", "0.95", "+0.05"]
    assert "accuracy" in rows and "n" not in rows
    as_json = json.loads(run("models", "diff", "late@1", "late@2", "--json", "--store", store.uri))
    assert {"field": "params.C", "late@1": "0.5", "late@2": "2", "change": ""} in as_json
