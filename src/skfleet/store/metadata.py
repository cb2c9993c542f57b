"""``model.json``: turning the caller's metadata into plain, password-free JSON, and the library
versions a model was saved with.

>>> import numpy as np
>>> to_json_safe({"auc": np.float64(0.75), "levels": np.array([1, 2]), "cols": ("a", "b")})
{'auc': 0.75, 'levels': [1, 2], 'cols': ['a', 'b']}
>>> to_json_safe({"source": "postgresql://ana:s3cret@db/sales?table=t"})
{'source': 'postgresql://ana:***@db/sales?table=t'}
>>> versions_differ("1.9.1", "1.9.0"), versions_differ("1.9.1", "1.10.0")
(False, True)
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import warnings
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import PurePath
from typing import Any

from skfleet.errors import LibraryVersionWarning, SkfleetError, UsageError
from skfleet.util.redact import redact_text

#: Distribution names whose versions are recorded in every ``model.json``.
RECORDED_LIBRARIES = {
    "skfleet": "skfleet",
    "sklearn": "scikit-learn",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "skops": "skops",
}
#: Libraries whose major.minor must match for a stored model to be trusted to behave the same.
CHECKED_LIBRARIES = ("sklearn", "numpy", "skfleet")
VERSION_MISMATCH_CHOICES = ("warn", "error", "ignore")


class LibraryVersionError(SkfleetError):
    """A stored model needs other library versions and ``on_version_mismatch='error'`` was set."""


def library_versions() -> dict[str, str | None]:
    """Versions of Python and of the libraries a stored model depends on (None if absent)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in RECORDED_LIBRARIES.items():
        try:
            found[key] = version(dist)
        except PackageNotFoundError:
            found[key] = None
    return found


def to_json_safe(value: Any, path: str = "metadata") -> Any:
    """A copy of ``value`` made of dict/list/str/int/float/bool/None, with every string redacted.

    numpy scalars and arrays, tuples, sets, paths and datetimes are converted; NaN and infinities
    become None (JSON has no spelling for them). Anything else is a :class:`UsageError` naming
    where in the metadata it sits.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and not _is_numpy_scalar(key):
                raise UsageError(f"{path} has a key {key!r} that is not a string")
            text_key = redact_text(str(key.item() if _is_numpy_scalar(key) else key))
            out[text_key] = to_json_safe(item, f"{path}.{text_key}")
        return out
    if isinstance(value, list | tuple):
        return [to_json_safe(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [to_json_safe(item, f"{path}[]") for item in value]
        return sorted(items, key=repr)
    if isinstance(value, PurePath):
        return redact_text(str(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if _is_numpy_scalar(value):
        return to_json_safe(value.item(), path)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return to_json_safe(value.tolist(), path)
    raise UsageError(f"{path} holds a {type(value).__name__}, which cannot be stored in model.json")


def _is_numpy_scalar(value: Any) -> bool:
    return (
        type(value).__module__ == "numpy"
        and hasattr(value, "item")
        and getattr(value, "ndim", None) == 0
    )


#: The ``model.json`` key of :func:`describe_interface`.
INTERFACE_KEY = "interface"


def final_estimator(model: Any) -> Any:
    """The last step of a Pipeline (the model itself otherwise)."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return steps[-1][1]
    return model


def model_classes(model: Any, metadata: Mapping[str, Any]) -> tuple:
    """The class labels the model predicts (the model's own, else the metadata's), or ``()``."""
    found = getattr(model, "classes_", None)
    if found is None:
        found = getattr(final_estimator(model), "classes_", None)
    if found is None:
        found = metadata.get("classes")
    if found is None:
        return ()
    import numpy as np  # here: a client reading model.json alone has no use for numpy

    return tuple(np.asarray(found).tolist())


def describe_interface(model: Any, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What planning a prediction needs from the model object itself, as JSON: the store writes it
    into ``model.json`` (under :data:`INTERFACE_KEY`) so that a client plans a run without
    loading the model (and without importing scikit-learn); workers check the artifact's hash.

    >>> from sklearn.linear_model import LogisticRegression
    >>> describe_interface(LogisticRegression().fit([[0], [1]], ["a", "b"]), {})
    {'estimator': 'LogisticRegression', 'predict': True, 'predict_proba': True, 'classes': ['a', 'b']}
    """
    final = final_estimator(model)
    return {
        "estimator": type(final).__name__,
        "predict": hasattr(final, "predict"),
        "predict_proba": hasattr(final, "predict_proba"),
        "classes": list(model_classes(model, metadata)),
    }


def recorded_interface(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :func:`describe_interface` of a ``model.json``; None for a model stored before it was
    recorded (or a damaged entry): the caller then loads the model to find out.

    >>> recorded_interface({"interface": {"estimator": "Ridge", "predict": True,
    ...                     "predict_proba": False, "classes": []}})["estimator"]
    'Ridge'
    >>> recorded_interface({}) is None
    True
    """
    found = metadata.get(INTERFACE_KEY)
    if not isinstance(found, Mapping):
        return None
    shape = {"estimator": str, "predict": bool, "predict_proba": bool, "classes": list}
    if any(not isinstance(found.get(key), kind) for key, kind in shape.items()):
        return None
    return dict(found)


def describe_estimator(model: Any) -> dict[str, Any]:
    """The estimator's class and its (shallow) parameters, values JSON-safe or their repr.

    >>> from sklearn.linear_model import LogisticRegression
    >>> describe_estimator(LogisticRegression(C=0.5))["params"]["C"]
    0.5
    >>> from sklearn.pipeline import make_pipeline
    >>> describe_estimator(make_pipeline(LogisticRegression()))["params"]["steps"][0][1]["class"]
    'sklearn.linear_model._logistic.LogisticRegression'
    """
    cls = type(model)
    params: dict[str, Any] = {}
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        params = {key: _describe_param(item) for key, item in get_params(deep=False).items()}
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": params}


def _describe_param(value: Any) -> Any:
    """A parameter as JSON: nested estimators (Pipeline steps) described, others as their repr."""
    if not isinstance(value, type) and callable(getattr(value, "get_params", None)):
        return describe_estimator(value)
    if isinstance(value, list | tuple):
        return [_describe_param(item) for item in value]
    try:
        return to_json_safe(value)
    except UsageError:
        return redact_text(repr(value))  # callables, random states, ...


def _major_minor(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(text.split("+")[0].split(".")[:2])


def versions_differ(saved: str | None, current: str | None) -> bool:
    """True when two version strings differ in major.minor (unknown versions never differ)."""
    a, b = _major_minor(saved), _major_minor(current)
    return a is not None and b is not None and a != b


def check_library_versions(
    metadata: Mapping[str, Any], on_version_mismatch: str = "warn", label: str = "model"
) -> list[str]:
    """Compare the versions in ``metadata`` with this process; warn, raise or ignore.

    Returns the mismatches found, as ``"sklearn 1.4 (saved) vs 1.9 (here)"`` strings.
    """
    if on_version_mismatch not in VERSION_MISMATCH_CHOICES:
        raise UsageError(
            f"on_version_mismatch={on_version_mismatch!r} is not one of "
            f"{', '.join(VERSION_MISMATCH_CHOICES)}"
        )
    saved = metadata.get("library_versions") or {}
    here = library_versions()
    mismatches = [
        f"{lib} {saved.get(lib)} (saved) vs {here.get(lib)} (here)"
        for lib in CHECKED_LIBRARIES
        if versions_differ(saved.get(lib), here.get(lib))
    ]
    if mismatches and on_version_mismatch != "ignore":
        message = f"{label} was saved with other library versions: {'; '.join(mismatches)}"
        if on_version_mismatch == "error":
            raise LibraryVersionError(message + " (pass on_version_mismatch='warn' to load anyway)")
        warnings.warn(message, LibraryVersionWarning, stacklevel=3)
    return mismatches
