"""Model presets and the ``--model`` / ``--param`` / ``--grid`` flags turned into estimators.

``--model`` is either a preset name (a short, tested default such as ``hgb-classifier``) or the
import path of any scikit-learn compatible estimator class. ``--param k=v`` values are read as
JSON-ish literals, and every name is checked against the estimator's own parameters so a typo is a
one-line error rather than a silently ignored setting.

>>> est = build_estimator("logistic", {"C": 0.5})
>>> type(est).__name__, est.C, est.max_iter
('LogisticRegression', 0.5, 1000)
>>> build_estimator("sklearn.linear_model.Ridge").alpha
1.0
>>> parse_param("max_depth=3"), parse_param("loss=log_loss"), parse_param("class_weight=null")
(('max_depth', 3), ('loss', 'log_loss'), ('class_weight', None))
>>> parse_grid("C=0.1,1,10")
('C', [0.1, 1, 10])
>>> build_estimator("logistic", {"depth": 3})
Traceback (most recent call last):
...
skfleet.errors.UsageError: --param depth: LogisticRegression has no parameter 'depth' (its parameters: C, class_weight, dual, fit_intercept, intercept_scaling, l1_ratio, max_iter, n_jobs, penalty, random_state, solver, tol, verbose, warm_start)
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from skfleet.errors import UsageError


@dataclass(frozen=True)
class Preset:
    """A named estimator with defaults chosen to be sensible on tabular data."""

    name: str
    #: Import path of the estimator class.
    estimator: str
    #: ``classification``, ``regression``, ``clustering`` or ``transform``.
    task: str
    #: Constructor arguments applied before the user's ``--param`` values.
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Whether the estimator learns incrementally (``partial_fit``), as ``train-stream`` needs.
    incremental: bool = False
    #: The commands that list this preset in their help and errors. ``skfleet train`` takes only
    #: the presets it lists; ``train-stream`` takes any incremental one.
    commands: tuple[str, ...] = ("train",)
    help: str = ""

    def build(self) -> Any:
        return import_estimator(self.estimator)(**dict(self.params))


def _presets(*items: Preset) -> Mapping[str, Preset]:
    return MappingProxyType({p.name: p for p in items})


def _classifier_and_regressor(name: str, estimator: str, **fields: Any) -> tuple[Preset, Preset]:
    """``NAME-classifier`` and ``NAME-regressor``: the classes ``ESTIMATORClassifier`` and
    ``ESTIMATORRegressor`` with the same ``fields`` (params, help, ...)."""
    return (
        Preset(f"{name}-classifier", f"{estimator}Classifier", "classification", **fields),
        Preset(f"{name}-regressor", f"{estimator}Regressor", "regression", **fields),
    )


def _sgd(name: str, estimator: str, task: str, loss: str, fits: str) -> Preset:
    """A stochastic gradient descent preset (``fits``: what it is, by SGD), for both commands."""
    return Preset(
        name,
        f"sklearn.linear_model.{estimator}",
        task,
        {"loss": loss, "alpha": 1e-4, "random_state": 0},
        incremental=True,
        commands=("train", "train-stream"),
        help=f"{fits} by stochastic gradient descent (partial_fit)",
    )


#: Presets that only ``train-stream`` lists (``skfleet train`` refuses them as unknown).
_STREAM_ONLY = {"incremental": True, "commands": ("train-stream",)}


def _stream_only(name: str, estimator: str, task: str, help: str, **params: Any) -> Preset:
    return Preset(name, estimator, task, params, help=help, **_STREAM_ONLY)


_FOREST = {"n_estimators": 100, "min_samples_leaf": 2, "random_state": 0}

#: Every preset, by name. ``random_state`` is fixed where an estimator has randomness so that a
#: training run gives the same model (and the same metrics) wherever it runs; the stream-only
#: presets leave it to ``train-stream``, which seeds it from ``--seed``.
PRESETS: Mapping[str, Preset] = _presets(
    Preset(
        "logistic",
        "sklearn.linear_model.LogisticRegression",
        "classification",
        {"max_iter": 1000},
        help="logistic regression (L2)",
    ),
    Preset("ridge", "sklearn.linear_model.Ridge", "regression", help="ridge regression"),
    Preset("linear", "sklearn.linear_model.LinearRegression", "regression", help="least squares"),
    *_classifier_and_regressor(
        "hgb",
        "sklearn.ensemble.HistGradientBoosting",
        params={"random_state": 0},
        help="histogram gradient boosting",
    ),
    *_classifier_and_regressor(
        "random-forest", "sklearn.ensemble.RandomForest", params=_FOREST, help="random forest"
    ),
    *_classifier_and_regressor(
        "extra-trees",
        "sklearn.ensemble.ExtraTrees",
        params=_FOREST,
        help="extremely randomised trees",
    ),
    Preset(
        "naive-bayes",
        "sklearn.naive_bayes.GaussianNB",
        "classification",
        incremental=True,
        help="Gaussian naive Bayes",
    ),
    _sgd("sgd-logistic", "SGDClassifier", "classification", "log_loss", "logistic regression"),
    _sgd("sgd-linear", "SGDRegressor", "regression", "squared_error", "linear regression"),
    _stream_only("perceptron", "sklearn.linear_model.Perceptron", "classification", "perceptron"),
    _stream_only(
        "multinomial-nb",
        "sklearn.naive_bayes.MultinomialNB",
        "classification",
        "multinomial naive Bayes (non-negative features such as counts)",
    ),
    _stream_only(
        "bernoulli-nb",
        "sklearn.naive_bayes.BernoulliNB",
        "classification",
        "Bernoulli naive Bayes (binary features)",
    ),
    _stream_only(
        "minibatch-kmeans",
        "sklearn.cluster.MiniBatchKMeans",
        "clustering",
        "k-means clustering on mini-batches",
        n_clusters=8,
        n_init=3,
    ),
    _stream_only(
        "incremental-pca",
        "sklearn.decomposition.IncrementalPCA",
        "transform",
        "principal component analysis in batches",
        n_components=8,
    ),
    *_classifier_and_regressor(
        "mlp",
        "sklearn.neural_network.MLP",
        params={"hidden_layer_sizes": (64,)},
        help="multi-layer perceptron (one hidden layer of 64 units)",
        **_STREAM_ONLY,
    ),
)


def preset_names(command: str) -> list[str]:
    """The presets that ``command`` lists, in table order.

    >>> preset_names("train-stream")[:3]
    ['sgd-logistic', 'sgd-linear', 'perceptron']
    >>> "perceptron" in preset_names("train")
    False
    """
    return [name for name, preset in PRESETS.items() if command in preset.commands]


def import_estimator(path: str) -> type:
    """The estimator class at import path ``path`` (``sklearn.ensemble.RandomForestClassifier``).

    >>> import_estimator("sklearn.svm.SVC").__name__
    'SVC'
    >>> import_estimator("sklearn.nothing.Here")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: --model sklearn.nothing.Here: no module sklearn.nothing
    """
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UsageError(
            f"--model {path!r} is neither a preset ({', '.join(preset_names('train'))}) "
            "nor an import path like sklearn.linear_model.Ridge"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise UsageError(f"--model {path}: no module {module_name}") from None
    except ImportError as exc:
        raise UsageError(f"--model {path}: {module_name} cannot be imported ({exc})") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise UsageError(f"--model {path}: {module_name} has no {attr}")
    if not isinstance(cls, type) or not all(hasattr(cls, m) for m in ("fit", "get_params")):
        raise UsageError(f"--model {path} is not a scikit-learn estimator class")
    return cls


def resolve_model(model: str | Any) -> Any:
    """A fresh estimator for a preset name or import path; an estimator object passes through.

    The presets are those ``skfleet train`` lists (:func:`preset_names`); ``train-stream`` resolves
    its own in :mod:`skfleet.train.stream.estimators`.

    >>> type(resolve_model("hgb-regressor")).__name__
    'HistGradientBoostingRegressor'
    >>> resolve_model("gbm")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: unknown --model 'gbm': not a preset (extra-trees-classifier, extra-trees-regressor, hgb-classifier, hgb-regressor, linear, logistic, naive-bayes, random-forest-classifier, random-forest-regressor, ridge, sgd-linear, sgd-logistic) nor an import path like sklearn.linear_model.Ridge
    """
    if not isinstance(model, str):
        if not all(hasattr(model, m) for m in ("fit", "get_params")):
            raise UsageError(
                f"model {type(model).__name__} is not a scikit-learn estimator (needs fit and "
                "get_params)"
            )
        return model
    preset = PRESETS.get(model)
    if preset is not None and "train" in preset.commands:
        return preset.build()
    if "." not in model:
        raise UsageError(
            f"unknown --model {model!r}: not a preset ({', '.join(sorted(preset_names('train')))}) "
            "nor an import path like sklearn.linear_model.Ridge"
        )
    try:
        return import_estimator(model)()
    except UsageError:
        raise
    except TypeError as exc:
        raise UsageError(f"--model {model} cannot be built without arguments: {exc}") from None


def set_params_checked(estimator: Any, params: Mapping[str, Any], flag: str = "--param") -> Any:
    """``estimator.set_params(**params)``, refusing a name the estimator does not have.

    Nested names (``model__C`` on a Pipeline) are accepted when ``get_params()`` lists them.
    """
    if not params:
        return estimator
    known = estimator.get_params(deep=True)
    shallow = sorted(estimator.get_params(deep=False))
    for key in params:
        if key not in known:
            raise UsageError(
                f"{flag} {key}: {type(estimator).__name__} has no parameter {key!r} "
                f"(its parameters: {', '.join(shallow)})"
            )
    try:
        estimator.set_params(**dict(params))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{flag}: {exc}") from None
    return estimator


def build_estimator(model: str | Any, params: Mapping[str, Any] | None = None) -> Any:
    """:func:`resolve_model` then :func:`set_params_checked` with ``params``."""
    return set_params_checked(resolve_model(model), params or {})


def parse_value(text: str) -> Any:
    """A ``--param``/``--grid`` value: a JSON literal where it parses as one, else the string.

    ``true``/``false``/``null`` and Python's ``True``/``False``/``None`` are both accepted.

    >>> [parse_value(t) for t in ["3", "0.5", "1e-3", "true", "None", "balanced", '"7"', "[1, 2]"]]
    [3, 0.5, 0.001, True, None, 'balanced', '7', [1, 2]]
    """
    text = text.strip()
    python_words = {"True": True, "False": False, "None": None}
    if text in python_words:
        return python_words[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_param(text: str, flag: str = "--param") -> tuple[str, Any]:
    """``"k=v"`` -> ``("k", parsed v)``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"{flag} {text!r} must look like NAME=VALUE")
    return key, parse_value(value)


def parse_params(items: Iterable[str], flag: str = "--param") -> dict[str, Any]:
    """Several ``k=v`` strings into one dict; a name given twice is an error.

    >>> parse_params(["C=1", "penalty=l2"])
    {'C': 1, 'penalty': 'l2'}
    """
    return _once_each((parse_param(item, flag) for item in items), flag)


def parse_grid(text: str, flag: str = "--grid") -> tuple[str, list[Any]]:
    """``"k=v1,v2,..."`` -> ``("k", [v1, v2, ...])`` (commas inside ``[...]`` do not split).

    >>> parse_grid("max_leaf_nodes=15,31,null")
    ('max_leaf_nodes', [15, 31, None])
    >>> parse_grid("hidden=[10, 5],[20]")
    ('hidden', [[10, 5], [20]])
    """
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise UsageError(f"{flag} {text!r} must look like NAME=V1,V2,...")
    parts, depth, current = [], 0, []
    for char in values:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    if any(not p.strip() for p in parts):
        raise UsageError(f"{flag} {text!r} has an empty value")
    return key, [parse_value(p) for p in parts]


def parse_grids(items: Iterable[str], flag: str = "--grid") -> dict[str, list[Any]]:
    """Several ``--grid`` flags into one parameter grid; a name given twice is an error."""
    return _once_each((parse_grid(item, flag) for item in items), flag)


def _once_each(pairs: Iterable[tuple[str, Any]], flag: str) -> dict[str, Any]:
    """``pairs`` into a dict, refusing a name given twice (pairs are parsed one at a time, so a
    malformed flag is reported before a repeated one that follows it)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UsageError(f"{flag} {key} is given more than once")
        out[key] = value
    return out


__all__ = [
    "PRESETS",
    "Preset",
    "build_estimator",
    "import_estimator",
    "parse_grid",
    "parse_grids",
    "parse_param",
    "parse_params",
    "parse_value",
    "preset_names",
    "resolve_model",
    "set_params_checked",
]
