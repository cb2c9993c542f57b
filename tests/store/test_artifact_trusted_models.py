"""Every model skfleet stores, and common scikit-learn models, load back without ``trust``.

The other side of ``test_artifact_gallery.py``: the allow-lists in ``skfleet.store.trust_lists``
must not refuse real models. Each model is fitted, dumped, audited (no refusals), loaded without
trust and checked to predict exactly what the original predicts.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.base import is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.decomposition import NMF, PCA, FastICA, IncrementalPCA, TruncatedSVD
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
)
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest
from sklearn.impute import IterativeImputer, KNNImputer, MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.utils import all_estimators

from skfleet import train_stream
from skfleet.metrics import ClassificationAccumulator, RegressionAccumulator
from skfleet.store import dump_artifact, load_artifact, untrusted_types
from skfleet.store import trust_lists as lists
from skfleet.train import train
from skfleet.train.presets import PRESETS


def _round_trip(model, predict) -> None:
    data = dump_artifact(model)
    assert untrusted_types(data) == []
    loaded = load_artifact(data)
    got, expected = np.asarray(predict(loaded)), np.asarray(predict(model))
    if expected.dtype.kind == "f":
        # Arrays come back C-ordered, so BLAS may sum in another order: equal to the last ulps.
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    else:
        np.testing.assert_array_equal(got, expected)


def _output(model, X):
    """What a stored model gives for ``X``: predictions, or the transform of a transformer."""
    return model.predict(X) if hasattr(model, "predict") else model.transform(X)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """Numbers (one with gaps), a count, a category, a flag, a timestamp, two targets."""
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 3))
    hours = rng.integers(0, 2000, n).astype("timedelta64[h]")
    return pa.table(
        {
            "id": np.arange(n),
            "a": x[:, 0],
            "b": x[:, 1],
            "c": np.where(rng.random(n) < 0.1, np.nan, x[:, 2]),
            "count": rng.integers(0, 5, n),
            "city": pa.array(rng.choice(["Basel", "Bern", "Chur"], n).tolist()),
            "flag": pa.array((rng.random(n) < 0.5).tolist()),
            "when": pa.array((np.datetime64("2024-01-01", "us") + hours).astype("datetime64[us]")),
            "label": pa.array(np.where(x[:, 0] > 0, "late", "on_time").tolist()),
            "value": x[:, 0] * 2 + x[:, 1],
        }
    )


def _target(task: str) -> str | None:
    return {"classification": "label", "regression": "value"}.get(task)


@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if "train" in p.commands))
def test_every_train_preset_loads_without_trust(name, table):
    result = train(name, table, _target(PRESETS[name].task), keys=["id"], cv=0, report=False)
    _round_trip(result.model, lambda m: m.predict(table))


def test_segmented_model_loads_without_trust(table):
    result = train(
        "ridge",
        table,
        "value",
        keys=["id"],
        cv=0,
        report=False,
        group_by="city",
        min_segment_rows=10,
    )
    _round_trip(result.model, lambda m: m.predict(table))


@pytest.fixture(scope="module")
def parquet(table, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("stream") / "t.parquet"
    pq.write_table(table, path)
    return str(path)


@pytest.mark.parametrize(
    "name", sorted(n for n, p in PRESETS.items() if "train-stream" in p.commands)
)
def test_every_stream_preset_loads_without_trust(name, table, parquet):
    source = parquet
    if name == "multinomial-nb":
        # It needs non-negative features: only one-hot columns, nothing standardised.
        source = parquet.replace(".parquet", "-categories.parquet")
        pq.write_table(table.select(["id", "city", "flag", "label"]), source)
    result = train_stream(
        name,
        source,
        _target(PRESETS[name].task),
        keys=["id"],
        epochs=1,
        holdout=0,
        report=False,
    )
    _round_trip(result.model, lambda m: _output(m, pq.read_table(source)))


# --- scikit-learn models a user registers --------------------------------------------------------

rng = np.random.default_rng(1)
X = rng.normal(size=(120, 4))
X_POSITIVE = np.abs(X)
Y_CLASS = (X[:, 0] > 0).astype(int)
Y_VALUE = X[:, 0] + X[:, 1]

TRANSFORMERS = [
    StandardScaler(),
    MinMaxScaler(),
    MaxAbsScaler(),
    RobustScaler(),
    Normalizer(),
    QuantileTransformer(n_quantiles=20),
    PowerTransformer(),
    SplineTransformer(n_knots=4),
    PolynomialFeatures(),
    KBinsDiscretizer(n_bins=3),
    Binarizer(),
    FunctionTransformer(np.log1p, inverse_func=np.expm1),
    SimpleImputer(),
    KNNImputer(),
    IterativeImputer(max_iter=3),
    FeatureUnion([("pca", PCA(n_components=2)), ("missing", MissingIndicator(features="all"))]),
    PCA(n_components=2),
    TruncatedSVD(n_components=2),
    NMF(n_components=2, max_iter=50),
    FastICA(n_components=2, max_iter=50),
    IncrementalPCA(n_components=2),
    SelectKBest(k=2),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: type(t).__name__)
def test_pipeline_with_transformer_loads_without_trust(transformer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the short fits
        model = make_pipeline(transformer, LogisticRegression()).fit(X_POSITIVE, Y_CLASS)
    _round_trip(model, lambda m: m.predict_proba(X_POSITIVE))


def test_column_transformer_on_a_dataframe_loads_without_trust():
    frame = pd.DataFrame(
        {
            "a": X[:, 0],
            "b": X[:, 1],
            "city": rng.choice(["Basel", "Bern"], len(X)),
            "text": rng.choice(["late train again", "on time today"], len(X)),
            "d": [{"k": float(v)} for v in X[:, 2]],
        }
    )
    columns = ColumnTransformer(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("ordinal", OrdinalEncoder(), ["city"]),
            ("target", TargetEncoder(), ["city"]),
            ("scale", StandardScaler(), ["a", "b"]),
            ("count", CountVectorizer(), "text"),
            ("tfidf", TfidfVectorizer(), "text"),
            ("hash", HashingVectorizer(n_features=16), "text"),
            ("dict", DictVectorizer(), "d"),
        ]
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, Y_CLASS)
    _round_trip(model, lambda m: m.predict_proba(frame))


ENSEMBLES = [
    CalibratedClassifierCV(LogisticRegression()),
    CalibratedClassifierCV(
        RandomForestClassifier(n_estimators=3, random_state=0), method="isotonic"
    ),
    StackingClassifier([("lr", LogisticRegression()), ("knn", KNeighborsClassifier())], cv=3),
    VotingClassifier(
        [("lr", LogisticRegression()), ("hgb", HistGradientBoostingClassifier(max_iter=5))],
        voting="soft",
    ),
    GradientBoostingClassifier(n_estimators=5),
    HistGradientBoostingClassifier(max_iter=5),
]


@pytest.mark.parametrize("model", ENSEMBLES, ids=lambda m: type(m).__name__)
def test_calibrated_and_ensemble_models_load_without_trust(model):
    _round_trip(model.fit(X, Y_CLASS), lambda m: m.predict_proba(X))


def test_regressors_with_functions_and_stacks_load_without_trust():
    ttr = TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1)
    _round_trip(ttr.fit(X, np.abs(Y_VALUE)), lambda m: m.predict(X))
    stack = StackingRegressor([("r", Ridge()), ("h", HistGradientBoostingRegressor(max_iter=5))])
    _round_trip(stack.fit(X, Y_VALUE), lambda m: m.predict(X))
    poisson = HistGradientBoostingRegressor(max_iter=5, loss="poisson")
    _round_trip(poisson.fit(X, np.abs(Y_VALUE)), lambda m: m.predict(X))


#: Slow to fit (seconds each) and holding nothing the others do not.
_SLOW = {"TSNE", "SpectralBiclustering", "MeanShift", "LogisticRegressionCV"}


@pytest.mark.slow
def test_every_default_sklearn_estimator_that_fits_loads_without_trust():
    """All of scikit-learn's estimators that fit on a small numeric table with their defaults."""
    refused = {}
    fitted = 0
    for name, cls in all_estimators():
        if name in _SLOW:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated classes, convergence
            try:
                est = cls()
            except TypeError:
                continue  # meta-estimators that need an estimator argument
            try:
                y = Y_CLASS if is_classifier(est) else Y_VALUE
                try:
                    est.fit(X_POSITIVE, y)
                except TypeError:
                    est.fit(X_POSITIVE)
                data = dump_artifact(est)
            except Exception:
                continue  # needs other input (text, labels, square kernels) or skops cannot save it
        fitted += 1
        names = untrusted_types(data)
        if names:
            refused[name] = names
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated classes warn when rebuilt too
            load_artifact(data)
    assert fitted > 150
    assert refused == {}


def test_hgb_on_pandas_categories_needs_trust():
    # The one real model found that is refused: it keeps functools.partial(check_array, ...),
    # and partial is refused whatever it wraps. skfleet's own models encode categories first.
    frame = pd.DataFrame({"a": X[:, 0], "city": rng.choice(["Basel", "Bern"], len(X))})
    frame["city"] = frame["city"].astype("category")
    model = HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype")
    data = dump_artifact(model.fit(frame, Y_CLASS))
    assert "functools.partial" in untrusted_types(data)
    loaded = load_artifact(data, trust=True)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_streamed_training_checkpoint_state_loads_without_trust():
    # A checkpoint keeps the holdout metrics' accumulators next to the estimator.
    classes = ClassificationAccumulator([0, 1])
    classes.update(Y_CLASS, Y_CLASS, np.eye(2)[Y_CLASS])
    values = RegressionAccumulator()
    values.update(Y_VALUE, Y_VALUE)
    state = {"format": 1, "state": {"classification": classes, "regression": values}}
    loaded = load_artifact(dump_artifact(state))
    assert loaded["state"]["classification"].result() == classes.result()
    assert loaded["state"]["regression"].result() == values.result()


def _lookup(full: str):
    module, _, qualname = full.rpartition(".")
    while module not in sys.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            module, _, head = module.rpartition(".")
            qualname = f"{head}.{qualname}"
    obj = sys.modules[module]
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_listed_name_is_a_real_object_under_its_own_name():
    """A typo or a rename in a later library version would silently shrink the lists."""
    names = set(lists.STATE_CLASSES | lists.FUNCTIONS | lists.CONSTRUCTIBLE)
    names |= lists.DICT_CLASSES | lists.NAMED_TUPLES
    names |= {base for base, _ in lists.STATE_FAMILIES}
    for full in sorted(names):
        assert lists.canonical_name(_lookup(full)) == full, full
    for module, name in lists.SKFLEET_CLASSES:
        assert lists.is_declared_by_skfleet(getattr(importlib.import_module(module), name))
