"""Bring an externally trained scikit-learn model into the store with its feature list.

A ``.skops`` file is read with the same trusted-type rules as the store. A pickle or joblib file can
run any code while it is being read, so it is only opened with ``trust=True``.

>>> import tempfile, numpy as np, skops.io
>>> from sklearn.linear_model import LinearRegression
>>> folder = tempfile.mkdtemp()
>>> path = f"{folder}/line.skops"
>>> skops.io.dump(LinearRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), [1, 2, 3]), path)
>>> ref = register_model(path, "line", ["x1", "x2"], store=f"{folder}/models")
>>> ref.name, ref.version
('line', 1)
>>> ModelStore(f"{folder}/models").metadata("line")["features"]
{'input_columns': ['x1', 'x2']}
>>> register_model(path, "line", ["x1"], store=f"{folder}/models")
Traceback (most recent call last):
...
skfleet.errors.UsageError: --features lists 1 column but the model in line.skops was fitted on 2 features
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from skfleet.errors import SourceNotFoundError, UsageError
from skfleet.store.artifact import load_artifact
from skfleet.store.refs import ModelRef, validate_name
from skfleet.store.store import ModelStore

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def parse_features(text: str | Sequence[str]) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; empty names and duplicates are refused.

    >>> parse_features("dep_delay, distance,carrier")
    ['dep_delay', 'distance', 'carrier']
    """
    names = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise UsageError(f"--features {text!r} must be a comma-separated list of column names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"--features names {', '.join(duplicates)} more than once")
    return names


def read_model_file(path: str, trust: bool = False) -> object:
    """Load a fitted model from a ``.skops`` file, or from a pickle/joblib file with ``trust``."""
    base = os.path.basename(path)
    if not os.path.isfile(path):
        raise SourceNotFoundError(f"model file {path} does not exist")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SKOPS_SUFFIXES:
        with open(path, "rb") as handle:
            return load_artifact(handle.read(), None, trust=trust)
    if suffix in PICKLE_SUFFIXES:
        if not trust:
            raise UsageError(
                f"{base} is a pickle/joblib file, and reading one runs whatever code it holds; "
                "pass --trust only if you trust where it came from, or save the model with skops"
            )
        import joblib  # reads plain pickles too

        try:
            return joblib.load(path)
        except Exception as exc:
            raise UsageError(f"{base} could not be read as a pickle/joblib file: {exc}") from exc
    raise UsageError(
        f"{base} is not a model file skfleet reads: use .skops, or .pkl/.pickle/.joblib with --trust"
    )


def check_model(model: object, features: list[str], file_label: str) -> None:
    """The model must be a fitted estimator taking exactly ``features``."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(model, "fit") or not (hasattr(model, "predict") or hasattr(model, "transform")):
        raise UsageError(
            f"{file_label} holds a {type(model).__name__}, not a scikit-learn estimator"
        )
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise UsageError(f"the model in {file_label} is not fitted") from exc
    except TypeError as exc:
        raise UsageError(f"{file_label} does not hold a scikit-learn estimator: {exc}") from exc
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and int(n_in) != len(features):
        plural = "column" if len(features) == 1 else "columns"
        raise UsageError(
            f"--features lists {len(features)} {plural} but the model in {file_label} "
            f"was fitted on {int(n_in)} features"
        )
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None:
        fitted = [str(n) for n in fitted_names]
        if fitted != features:
            raise UsageError(
                f"--features {','.join(features)} differ from the columns the model in "
                f"{file_label} was fitted on: {','.join(fitted)}"
            )


def _task(model: object) -> str | None:
    """``classification``, ``regression`` or ``clustering`` (what ``predict`` writes depends on it)."""
    from sklearn.base import is_classifier, is_clusterer, is_regressor

    for task, test in (
        ("classification", is_classifier),
        ("regression", is_regressor),
        ("clustering", is_clusterer),
    ):
        if test(model):
            return task
    return None


def register_model(
    path: str | os.PathLike,
    name: str,
    features: str | Sequence[str] | None = None,
    target: str | None = None,
    store: str | ModelStore | None = None,
    trust: bool = False,
    keys: str | Sequence[str] | None = None,
) -> ModelRef:
    """Store the fitted model in ``path`` as the next version of ``name``.

    ``features`` may be left out when the model knows the columns it was fitted on
    (``feature_names_in_``: a model fitted on a DataFrame). ``keys`` are the columns ``predict``
    copies to its output by default (they are not features).
    """
    path = os.fspath(path)
    validate_name(name)
    model = read_model_file(path, trust=trust)
    label = os.path.basename(path)
    if features is None or features == "":
        fitted_names = getattr(model, "feature_names_in_", None)
        if fitted_names is None:
            raise UsageError(
                f"--features is needed: the model in {label} does not record the columns it was "
                "fitted on (fit it on a DataFrame, or list them)"
            )
        features = [str(c) for c in fitted_names]
    columns = parse_features(features)
    if target is not None and target in columns:
        raise UsageError(f"--target {target} is also listed in --features")
    key_columns = parse_features(keys) if keys else []
    both = [k for k in key_columns if k in columns]
    if both:
        raise UsageError(f"--key {both[0]} is also an input column of the model")
    check_model(model, columns, label)
    classes = getattr(model, "classes_", None)
    metadata: dict = {
        # ``kind`` and ``input_columns`` are what ``predict`` reads: a registered estimator is
        # handed a DataFrame of exactly these columns, in this order.
        "kind": "registered",
        "task": _task(model),
        "registered": True,
        "input_columns": columns,
        "features": {"input_columns": columns},
        "target": target,
        "key_columns": key_columns,
        "training_source": {"file": os.path.abspath(path)},
    }
    if classes is not None:
        metadata["class_labels"] = list(classes)
        metadata["classes"] = list(classes)
    target_store = store if isinstance(store, ModelStore) else ModelStore(store)
    return target_store.save(name, model, metadata)
