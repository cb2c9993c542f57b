"""``skfleet models drift``: a table of PSI per column and run, exit 1 when one is flagged (for
schedulers), 0 otherwise, and one line with status 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LinearRegression

import skfleet
from skfleet.cli import main
from skfleet.errors import UsageError
from skfleet.store import ModelStore

N = 2_000


def _rows(seed: int, shift: float = 0.0, missing: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(N),
            "x": rng.normal(size=N) + shift,
            "z": rng.normal(size=N),
            "c": rng.choice(["a", "b", "c"], N),
        }
    )
    frame.loc[rng.random(N) < missing, "c"] = None
    return frame


def _score(store: str, tmp: Path, model: str, frame: pd.DataFrame, tag: str) -> str:
    path = tmp / f"{tag}.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    result = skfleet.predict(
        model, str(path), str(tmp / f"scores-{tag}/"), store=store, engine="local"
    )
    return result.run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Model ``m`` (trained on seed 0) scored on the same distribution, then on a shifted one."""
    tmp = tmp_path_factory.mktemp("drift-cli")
    store = str(tmp / "models")
    train = _rows(0)
    train["y"] = train["x"] + (train["c"] == "a") > 0.5
    skfleet.train("logistic", train, "y", keys=["id"], cv=2, name="m", store=store)
    same = _score(store, tmp, "m", _rows(1), "same")
    shifted = _score(store, tmp, "m", _rows(2, shift=1.5, missing=0.3), "shifted")
    return tmp, store, same, shifted


def invoke(*args: str):
    return CliRunner().invoke(main, ["models", "drift", *args])


def test_a_shifted_run_is_flagged_and_exits_1(runs):
    _, store, same, shifted = runs
    result = invoke("m", "--store", store)
    assert result.exit_code == 1, result.output
    assert same[:15] in result.output and shifted[:15] in result.output
    assert "flagged (PSI > 0.2 in at least one run): c, x" in result.output
    assert "+30" in result.output or "+29" in result.output or "+31" in result.output


def test_json_has_every_run_and_column(runs):
    _, store, same, shifted = runs
    result = invoke("m", "--store", store, "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert [r["run_id"] for r in data["runs"]] == [same, shifted]
    first, second = (r["features"] for r in data["runs"])
    assert first["x"]["psi"] < 0.05 and not first["x"]["flagged"]
    assert second["x"]["psi"] > 0.2 and second["x"]["flagged"]
    assert second["c"]["missing_change"] == pytest.approx(0.3, abs=0.05)
    assert second["z"]["psi"] < 0.05 and data["flagged"] == ["c", "x"]
    assert data["threshold"] == 0.2 and data["model"] == "m"


def test_threshold_and_last_runs(runs):
    _, store, same, _ = runs
    assert invoke("m", "--store", store, "--threshold", "100").exit_code == 0
    # The one run on the training distribution alone: nothing flagged.
    only = skfleet.drift("m", store=store, runs=2, threshold=0.2)
    assert len(only.runs) == 2
    result = invoke("m@1", "--store", store, "--runs", "1", "--json")
    assert result.exit_code == 1 and len(json.loads(result.output)["runs"]) == 1
    assert skfleet.drift("m", store=store).runs[0].run_id == same


def _one_line(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_bad_input_is_one_line(runs, tmp_path):
    _, store, _, _ = runs
    assert "no model named 'nope'" in _one_line("nope", "--store", store)
    assert "no version 7" in _one_line("m@7", "--store", store)
    assert "--runs must be a whole number of at least 1, not 0" in _one_line(
        "m", "--store", store, "--runs", "0"
    )
    assert "--threshold must be a PSI above 0" in _one_line(
        "m", "--store", store, "--threshold", "-1"
    )
    assert "'--runs'" in _one_line("m", "--store", store, "--runs", "many")
    with pytest.raises(UsageError, match="--threshold"):
        skfleet.drift("m", store=store, threshold=float("nan"))


def test_a_model_without_runs_is_one_line(tmp_path):
    store = str(tmp_path / "models")
    train = _rows(0)
    train["y"] = train["x"] > 0
    skfleet.train("logistic", train, "y", keys=["id"], name="fresh", store=store, report=False)
    line = _one_line("fresh", "--store", store)
    assert "no drift over runs for model fresh" in line and "no committed prediction runs" in line


def test_a_registered_model_has_no_training_profile(tmp_path):
    store = str(tmp_path / "models")
    frame = _rows(0)
    model = LinearRegression().fit(frame[["x", "z"]], frame["x"] * 2)
    ModelStore(store).save(
        "reg",
        model,
        {
            "kind": "registered",
            "task": "regression",
            "input_columns": ["x", "z"],
            "key_columns": ["id"],
        },
    )
    _score(store, tmp_path, "reg", frame, "reg")
    line = _one_line("reg", "--store", store)
    assert "it was registered from outside, so it has no training profile" in line


def test_a_model_stored_before_profiles_shows_missing_rates_only(tmp_path):
    store = str(tmp_path / "models")
    train = _rows(0)
    train["y"] = train["x"] > 0
    skfleet.train("logistic", train, "y", keys=["id"], name="old", store=store, report=False)
    (path,) = Path(store).rglob("model.json")
    meta = json.loads(path.read_text())
    del meta["profile"]  # as written before training profiles were recorded
    path.write_text(json.dumps(meta))
    _score(store, tmp_path, "old", _rows(3, shift=2.0, missing=0.5), "old")
    result = invoke("old", "--store", store)
    assert result.exit_code == 0, result.output  # no PSI, so nothing to flag
    assert "n/a" in result.output and "+5" in result.output
    assert "note: old@1 has no training profile" in result.output
    data = json.loads(invoke("old", "--store", store, "--json").output)
    assert data["runs"][0]["features"]["c"]["missing_change"] == pytest.approx(0.5, abs=0.05)


def test_help_lists_the_options():
    result = CliRunner().invoke(main, ["models", "drift", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # click wraps the help
    for option in ("--runs", "--threshold", "--json", "--store", "[default: 0.2]", "[default: 10]"):
        assert option in text


def test_runs_recorded_before_profiles_are_one_line(tmp_path):
    store = str(tmp_path / "models")
    train = _rows(0)
    train["y"] = train["x"] > 0
    skfleet.train("logistic", train, "y", keys=["id"], name="early", store=store, report=False)
    _score(store, tmp_path, "early", _rows(1), "early")
    (record,) = Path(store, "_runs").glob("*.json")
    data = json.loads(record.read_text())
    data.pop("profile"), data.pop("profile_partitions")  # as recorded before profiles existed
    record.write_text(json.dumps(data))
    line = _one_line("early", "--store", store)
    assert "none of its 1 committed runs recorded a profile" in line
