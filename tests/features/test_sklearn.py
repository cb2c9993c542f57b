"""TableEncoder is a well-behaved scikit-learn transformer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfleet.features import EncoderOptions, TableEncoder


@parametrize_with_checks([TableEncoder(), TableEncoder(sparse=False, max_levels=3)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def flights(n=600, seed=0):
    rng = np.random.default_rng(seed)
    carrier = rng.choice(["UA", "AA", "B6", "DL"], n)
    distance = rng.integers(100, 3000, n)
    delay = rng.normal(0, 10, n) + (carrier == "B6") * 15
    return pd.DataFrame(
        {
            "carrier": pd.array(carrier, dtype="str"),
            "distance": distance,
            "dep_delay": np.where(rng.random(n) < 0.05, np.nan, delay),
            "late": (delay > 5).astype(int),
        }
    )


def test_in_a_pipeline_with_cross_validation():
    df = flights()
    X, y = df.drop(columns="late"), df["late"]
    pipe = make_pipeline(TableEncoder(), LogisticRegression(max_iter=500))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.8  # dep_delay nearly determines "late"


def test_set_output_pandas_uses_the_feature_names():
    df = flights(50)
    enc = TableEncoder(exclude=["late"]).set_output(transform="pandas").fit(df)
    out = enc.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(enc.get_feature_names_out())
    assert "carrier=UA" in out.columns and "dep_delay__missing" in out.columns


def test_clone_keeps_parameters_and_drops_state():
    enc = TableEncoder(categorical=["c"], options=EncoderOptions(scale=False))
    enc.fit(pa.table({"c": [1, 2]}))
    twin = clone(enc)
    assert twin.get_params() == enc.get_params() and not hasattr(twin, "contract_")
