"""From a notebook: train on a DataFrame, look at the model, score DataFrames in memory, and get
exactly what the CLI writes for the same rows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import skfleet
from skfleet.data import open_source
from skfleet.errors import MissingColumnError, UsageError
from tests.train.data import classification_table


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebook")
    frame = classification_table(400).to_pandas()
    store = str(folder / "models")
    skfleet.train("logistic", frame, "label", name="late", store=store, keys=["id"], cv=2,
                  report=False)  # fmt: skip
    return folder, frame, store


def test_api_names_are_listed_for_tab_completion():
    assert {"train", "train_stream", "predict", "copy", "load"} <= set(dir(skfleet))


def test_a_loaded_model_shows_a_short_summary(notebook):
    _, _, store = notebook
    model = skfleet.load("late", store=store)
    text = repr(model)
    assert text.startswith("<LoadedModel late@1: ") and "roc_auc=" in text and len(text) < 200
    assert "<table>" in model._repr_html_() and "roc_auc" in model._repr_html_()


def test_predict_on_a_frame_equals_the_cli_on_the_same_rows(notebook):
    folder, frame, store = notebook
    model = skfleet.load("late", store=store)
    scores = skfleet.predict(model, frame.iloc[::-1])
    assert isinstance(scores, pd.DataFrame)
    assert list(scores.columns) == ["id", "prediction", "proba_late", "proba_on_time"]
    assert list(scores.index) == list(frame.index[::-1])  # rows keep the frame's index
    by_name = skfleet.predict("late", frame, store=store)
    pd.testing.assert_frame_equal(by_name, scores.sort_index())

    frame.to_parquet(folder / "rows.parquet")
    out = folder / "cli-scores"
    done = subprocess.run(
        [sys.executable, "-m", "skfleet", "predict", "late", str(folder / "rows.parquet"),
         "--out", str(out), "--store", store, "--engine", "local"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli = open_source(str(out)).read_all().to_pandas().sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(cli, by_name.sort_values("id", ignore_index=True))


def test_predict_and_predict_proba_give_sklearn_shaped_arrays(notebook):
    _, frame, store = notebook
    model = skfleet.load("late", store=store)
    labels = model.predict(frame)
    proba = model.predict_proba(frame)
    assert labels.shape == (len(frame),) and proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(labels) == [model.classes[i] for i in proba.argmax(axis=1)]


def test_in_memory_bad_input_is_one_clear_error(notebook):
    _, frame, store = notebook
    model = skfleet.load("late", store=store)
    with pytest.raises(UsageError, match="in memory"):
        skfleet.predict(model, frame, "scores/")
    with pytest.raises(UsageError, match="DataFrame or a pyarrow Table"):
        skfleet.predict(model, [1, 2, 3])
    with pytest.raises(MissingColumnError, match="city"):
        skfleet.predict(model, frame.drop(columns=["city"]))
