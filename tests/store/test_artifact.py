"""Safe loading of skops artifacts: the trusted list, the hash, and crafted files."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import SplineTransformer

from skfleet.errors import SkfleetError, UntrustedModelError, UsageError
from skfleet.store import (
    TRUSTED_PACKAGES,
    ArtifactHashError,
    content_hash,
    dump_artifact,
    load_artifact,
    untrusted_types,
)


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """A classifier outside the trusted list (it lives in the test package)."""

    def fit(self, X, y):
        values, counts = np.unique(y, return_counts=True)
        self.majority_ = values[np.argmax(counts)]
        self.classes_ = values
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


class Exploding:
    def __getstate__(self):
        raise RuntimeError("cannot be serialised")


def _rewrite_schema(data: bytes, edit) -> bytes:
    """Return ``data`` with its schema.json changed by ``edit`` (to craft hostile files)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            payload = src.read(item)
            if item == "schema.json":
                payload = json.dumps(edit(json.loads(payload))).encode()
            dst.writestr(item, payload)
    return out.getvalue()


def test_pipeline_round_trips(pipeline, xy):
    X, _ = xy
    data = dump_artifact(pipeline)
    loaded = load_artifact(data, content_hash(data))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))


@pytest.mark.parametrize(
    "estimator",
    [
        HistGradientBoostingClassifier(max_iter=5),
        RandomForestClassifier(n_estimators=3, random_state=0),
        KNeighborsClassifier(n_neighbors=3),
    ],
    ids=lambda e: type(e).__name__,
)
def test_sklearn_models_with_extra_types_load_without_trust(estimator, xy):
    X, y = xy
    estimator.fit(X, y)
    data = dump_artifact(estimator)
    assert untrusted_types(data) == []
    np.testing.assert_array_equal(load_artifact(data).predict(X), estimator.predict(X))


def test_function_referenced_from_a_trusted_package_is_accepted(xy):
    # SplineTransformer holds a scipy BSpline and a reference to a scipy array-api function.
    X, _ = xy
    spline = SplineTransformer(n_knots=4).fit(X)
    data = dump_artifact(spline)
    assert untrusted_types(data) == []
    np.testing.assert_allclose(load_artifact(data).transform(X), spline.transform(X))


def test_custom_class_is_refused_without_trust(xy):
    X, y = xy
    data = dump_artifact(MajorityClassifier().fit(X, y))
    name = f"{__name__}.MajorityClassifier"
    assert untrusted_types(data) == [name]
    with pytest.raises(UntrustedModelError) as info:
        load_artifact(data, content_hash(data))
    message = str(info.value)
    assert name in message and "--trust / trust=True" in message and "\n" not in message
    loaded = load_artifact(data, content_hash(data), trust=True)
    assert loaded.predict(X[:3]).tolist() == [MajorityClassifier().fit(X, y).majority_] * 3


def test_tampered_bytes_fail_the_hash(pipeline):
    data = dump_artifact(pipeline)
    expected = content_hash(data)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    with pytest.raises(ArtifactHashError, match="hash mismatch"):
        load_artifact(bytes(tampered), expected)
    with pytest.raises(ArtifactHashError):
        load_artifact(bytes(tampered), expected, trust=True)  # trust never skips the hash


def test_garbage_is_a_clear_error():
    with pytest.raises(SkfleetError, match="not a readable skops file"):
        load_artifact(b"not a zip file")


def _as_constructor_call(module: str, name: str, args: list):
    """A schema whose root is ``module.name(*args)`` through skops' constructor loader."""

    def edit(schema):
        return {
            "__class__": name,
            "__module__": module,
            "__loader__": "ConstructorFromReduceNode",
            "content": {
                "__class__": "tuple",
                "__module__": "builtins",
                "__loader__": "TupleNode",
                "content": [
                    {
                        "__class__": "str",
                        "__module__": "builtins",
                        "__loader__": "JsonNode",
                        "content": json.dumps(a),
                        "is_json": True,
                    }
                    for a in args
                ],
            },
            "protocol": schema["protocol"],
            "_skops_version": schema.get("_skops_version"),
        }

    return edit


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.utils", "gen_batches"),  # a function under a trusted prefix, called on load
        ("numpy", "memmap"),  # a class under a trusted prefix that writes files
        ("numpy.testing", "assert_equal"),
        ("os", "system"),
        ("builtins", "eval"),
        ("sklearn", "utils.gen_batches"),  # dotted names are never what skops writes
    ],
)
def test_crafted_calls_are_refused_without_trust(module, name, tmp_path):
    data = _rewrite_schema(dump_artifact([1]), _as_constructor_call(module, name, [10, 3]))
    refused = untrusted_types(data)
    assert f"{module}.{name}" in refused
    with pytest.raises(UntrustedModelError, match="trust=True"):
        load_artifact(data)


def test_trusted_class_via_constructor_is_still_accepted():
    # The constructor loader is fine for classes: numpy.dtype("int64").
    data = _rewrite_schema(dump_artifact([1]), _as_constructor_call("numpy", "dtype", ["int64"]))
    assert untrusted_types(data) == []
    assert load_artifact(data) == np.dtype("int64")


def test_trusted_packages_are_the_libraries_models_are_made_of():
    assert set(TRUSTED_PACKAGES) == {"sklearn", "numpy", "scipy", "skfleet"}


def test_unserialisable_model_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot save Exploding"):
        dump_artifact(Exploding())


def test_lambda_is_refused_at_save():
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(lambda x: x).fit(np.ones((2, 2)))
    with pytest.raises(UsageError, match="lambda"):
        dump_artifact(model)


def test_crafted_call_really_runs_with_trust():
    # Shows the crafted file is well formed: the refusal above is what stops the call.
    data = _rewrite_schema(
        dump_artifact([1]), _as_constructor_call("sklearn.utils", "gen_batches", [10, 3])
    )
    assert list(load_artifact(data, trust=True)) == [
        slice(0, 3),
        slice(3, 6),
        slice(6, 9),
        slice(9, 10),
    ]
