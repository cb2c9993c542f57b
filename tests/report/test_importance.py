"""Feature importance per input column, with real sklearn Pipelines on pandas tables."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from skfleet.report import feature_importance

NUMERIC = ["signal", "noise"]


@pytest.fixture(autouse=True)
def one_thread():
    """HistGradientBoosting's OpenMP threads spin-wait for each other on a busy 2-core machine
    (one prediction per column and repeat: seconds instead of tenths); one thread is enough here."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def table():
    """'signal' decides y, 'carrier' shifts it a little, 'noise' is noise (pandas 3 str column)."""
    rng = np.random.default_rng(0)
    n = 600
    carrier = rng.choice(["AA", "DL", "UA", "WN"], n)
    signal = rng.normal(size=n)
    X = pd.DataFrame({"signal": signal, "noise": rng.normal(size=n), "carrier": carrier})
    y = np.where(signal + 0.5 * (carrier == "WN") + 0.3 * rng.normal(size=n) > 0, "late", "on time")
    return X, y


def _pipeline(model, scale=False):
    numeric = StandardScaler() if scale else "passthrough"
    encode = ColumnTransformer(
        [("num", numeric, NUMERIC), ("cat", OneHotEncoder(sparse_output=False), ["carrier"])]
    )
    return Pipeline([("encode", encode), ("model", model)])


def _mapping(pipe):
    """Encoded feature name -> input column, as skfleet's encoder contract would give it."""
    mapping = {f"num__{c}": c for c in NUMERIC}
    levels = pipe.named_steps["encode"].named_transformers_["cat"].categories_[0]
    mapping.update({f"cat__carrier_{level}": "carrier" for level in levels})
    return mapping


def _per_input(pipe, values):
    """The expected sums, computed from sklearn's own feature names."""
    names = pipe[:-1].get_feature_names_out()
    return {
        "signal": values[list(names).index("num__signal")],
        "noise": values[list(names).index("num__noise")],
        "carrier": values[[n.startswith("cat__carrier_") for n in names]].sum(),
    }


def test_native_tree_importances_sum_back_to_input_columns(table):
    X, y = table
    pipe = _pipeline(RandomForestClassifier(n_estimators=25, random_state=0)).fit(X, y)
    values, method = feature_importance(pipe, X, y, _mapping(pipe))
    assert method == "native"
    expected = _per_input(pipe, pipe.named_steps["model"].feature_importances_)
    assert values == pytest.approx(expected, rel=1e-12)
    assert list(values)[0] == "signal"
    assert sum(values.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("three_classes", [False, True])
def test_native_coefficients_sum_back_to_input_columns(table, three_classes):
    X, y = table
    if three_classes:
        y = np.where(X["signal"] > 1, "very late", y)
    pipe = _pipeline(LogisticRegression(max_iter=500), scale=True).fit(X, y)
    values, method = feature_importance(pipe, X, y, _mapping(pipe))
    assert method == "native"
    coef = np.abs(pipe.named_steps["model"].coef_).mean(axis=0)
    assert values == pytest.approx(_per_input(pipe, coef), rel=1e-12)
    assert list(values)[0] == "signal"


def test_model_without_native_importance_uses_permutation_on_input_columns(table):
    X, y = table
    pipe = _pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(X, y)
    values, method = feature_importance(pipe, X, y, _mapping(pipe))
    assert method == "permutation"
    # 600 rows < the 2,000-row sample: the whole table, so sklearn on it must agree exactly.
    direct = permutation_importance(pipe, X, y, n_repeats=5, random_state=0)
    assert values == pytest.approx(dict(zip(X.columns, direct.importances_mean, strict=True)))
    assert list(values)[0] == "signal"
    assert values["noise"] < values["signal"] / 5


def test_permutation_sample_is_fixed_and_takes_arrow_tables(table):
    X, y = table
    pipe = _pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(X, y)
    first = feature_importance(pipe, pa.Table.from_pandas(X), y, max_rows=200)
    second = feature_importance(pipe, X, pd.Series(y), max_rows=200)
    assert first == second
    assert first[1] == "permutation" and set(first[0]) == {"signal", "noise", "carrier"}


def test_unmapped_encoded_feature_and_missing_target_are_refused(table):
    X, y = table
    pipe = _pipeline(RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, y)
    mapping = _mapping(pipe)
    del mapping["num__noise"]
    with pytest.raises(ValueError, match="encoded feature 'num__noise' has no input column"):
        feature_importance(pipe, X, y, mapping)
    hgb = _pipeline(HistGradientBoostingClassifier(max_iter=5)).fit(X, y)
    with pytest.raises(ValueError, match="needs y"):
        feature_importance(hgb, X, None)


def test_permutation_predictions_run_on_one_thread(table):
    # A few thousand rows per prediction: threads cost more than they save (and spin-wait on a
    # busy machine), so every prediction runs on one, whatever the caller allows.
    from threadpoolctl import threadpool_info

    X, y = table
    pipe = _pipeline(HistGradientBoostingClassifier(max_iter=5, random_state=0)).fit(X, y)
    seen = []

    def scorer(estimator, X_, y_):
        seen.append({pool["user_api"]: pool["num_threads"] for pool in threadpool_info()})
        return estimator.score(X_, y_)

    with threadpool_limits(limits=2):
        values, method = feature_importance(pipe, X, y, scoring=scorer, n_repeats=2)
        assert {pool["num_threads"] for pool in threadpool_info()} == {2}  # restored after
    assert method == "permutation" and set(values) == {"signal", "noise", "carrier"}
    assert len(seen) == 1 + 2 * 3
    assert all(set(threads.values()) == {1} for threads in seen), seen
