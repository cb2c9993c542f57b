"""The classes and functions a stored model may hold without ``trust``, and why each is harmless.

Every check here is on the *resolved* object, never on the name a file gives it: a class is
judged by its own ``__module__`` + ``__qualname__`` (which must lead back to the same object), its
base classes, or its identity. :mod:`skfleet.store.trust` decides which of these each skops loader
may be given.

The lists were derived by dumping every preset skfleet trains (batch, segmented, streamed), every
estimator :func:`sklearn.utils.all_estimators` can fit with defaults, Pipelines with the
transformers of ``sklearn.preprocessing``, ``impute``, ``compose``, ``feature_extraction`` and
``decomposition``, and calibrated, stacking and voting models, then listing every name in the
files (``tests/store/test_artifact_trusted_models.py`` repeats that exercise). What an
entry must satisfy to be here: building it with ``__new__`` + state, or calling it with any
arguments, only computes on in-memory data (no files, sockets, processes, imports or ``eval``).

Known limit: Cython-backed structures (``Tree``, ``TreePredictor``, ``KDTree``/``BallTree``) index
their arrays without bounds checks, so a hand-made file can crash the process when the model
runs. That is a crash, not code the file chooses; skops leaves these types untrusted for that
reason, skfleet accepts them because every tree model needs them.

>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> is_state_class(LogisticRegression), is_allowed_function(np.log1p), is_allowed_function(eval)
(True, True, False)
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import sys
from functools import cache
from typing import Any

import numpy as np

from skfleet.store.skops_io import skops_io

skops_io()  # before the skops import below: see skfleet.store.skops_io

from skops.io._sklearn import ALLOWED_LOSSES  # noqa: E402

#: Data classes rebuilt with ``__new__`` + their saved state (skops' ``ObjectNode``), beyond
#: estimators. Each only holds fitted parameters and computes on arrays.
STATE_CLASSES: frozenset[str] = frozenset(
    {
        # HistGradientBoosting keeps its fitted trees as node arrays + thresholds.
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # The bounds of a loss's valid range (a dataclass of floats).
        "sklearn._loss.link.Interval",
        # CalibratedClassifierCV: one fitted estimator + its calibrators per fold.
        "sklearn.calibration._CalibratedClassifier",
        # The splitter a calibrated model keeps as its cv (skfleet train --calibrate): n_splits,
        # shuffle and random_state.
        "sklearn.model_selection._split.StratifiedKFold",
        # BisectingKMeans' tree of cluster centers.
        "sklearn.cluster._bisect_k_means._BisectingTree",
        # Nearest-neighbour indexes (arrays of points and node bounds).
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        # SplineTransformer's fitted splines (knots and coefficients).
        "scipy.interpolate._bsplines.BSpline",
    }
)

#: Families of data classes, by a base class (canonical name) and where subclasses must be
#: defined. Each family is parameters + arithmetic.
STATE_FAMILIES: tuple[tuple[str, str], ...] = (
    # The Python loss and link objects of (Hist)GradientBoosting and the GLMs.
    ("sklearn._loss.loss.BaseLoss", "sklearn._loss."),
    ("sklearn._loss.link.BaseLink", "sklearn._loss."),
    # Gaussian-process kernels (hyperparameters + kernel arithmetic).
    ("sklearn.gaussian_process.kernels.Kernel", "sklearn.gaussian_process."),
    # The distance metrics nearest-neighbour models keep (a metric name + its parameters).
    ("sklearn.metrics._dist_metrics.DistanceMetric", "sklearn.metrics."),
    # MLP's optimizer state (learning rate, moment arrays).
    ("sklearn.neural_network._stochastic_optimizers.BaseOptimizer", "sklearn.neural_network."),
)

#: skfleet classes that are neither estimators nor listed in their package's ``TRUSTED_TYPES``,
#: by the façade that exports them (so a move inside the package changes nothing): streamed
#: training checkpoints keep the holdout metrics' accumulators (counts and histograms).
SKFLEET_CLASSES: tuple[tuple[str, str], ...] = (
    ("skfleet.metrics", "ClassificationAccumulator"),
    ("skfleet.metrics", "RegressionAccumulator"),
)

#: Classes skops' ``ConstructorFromReduceNode`` may *call* with arguments from the file: their
#: constructors only build a value from plain data.
CONSTRUCTIBLE: frozenset[str] = frozenset({"builtins.frozenset", "builtins.range", "numpy.dtype"})

#: Dict classes skops' ``DictNode`` instantiates empty and fills (``Bunch``: the
#: ``named_estimators_`` of stacking and voting models).
DICT_CLASSES: frozenset[str] = frozenset(
    {"builtins.dict", "collections.OrderedDict", "sklearn.utils._bunch.Bunch"}
)

#: Named tuples skops' ``TupleNode`` calls with the saved items (IterativeImputer's steps).
NAMED_TUPLES: frozenset[str] = frozenset({"sklearn.impute._iterative._ImputerTriplet"})

#: Plain value types a reference may name (``TypeNode``: a ``dtype=str`` parameter, ...).
_BUILTIN_TYPES = (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set)
_BUILTIN_TYPES += (frozenset, slice, range, collections.OrderedDict, collections.defaultdict)

#: Functions a model may hold as a reference (never called during loading; a model may call them
#: when it runs, with arguments from the file, so each is pure computation on arrays). numpy and
#: scipy.special ufuncs are accepted on top of these (see :func:`is_allowed_function`).
FUNCTIONS: frozenset[str] = frozenset(
    {
        # Reductions and helpers a user passes as a parameter (FeatureAgglomeration's
        # pooling_func is numpy.mean by default).
        "numpy.mean",
        "numpy.median",
        "numpy.nanmean",
        "numpy.nanmedian",
        "numpy.sum",
        "numpy.nansum",
        "numpy.max",
        "numpy.min",
        "numpy.std",
        "numpy.var",
        "numpy.average",
        "numpy.clip",
        "numpy.round",
        # SelectKBest and friends keep their score function.
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.r_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        # BisectingKMeans keeps the k-means step it runs.
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.cluster._kmeans._kmeans_single_elkan",
        # SplineTransformer's BSpline keeps scipy's array-api asarray.
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
    }
)


def canonical_name(obj: Any) -> str | None:
    """``obj``'s own ``module.qualname``, if looking that up in the (already imported) module
    gives back ``obj``; else None. Nothing is imported.

    >>> from sklearn.preprocessing._function_transformer import partial
    >>> canonical_name(partial), canonical_name(np.mean), canonical_name(np.log1p)
    ('functools.partial', 'numpy.mean', 'numpy.log1p')
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)) or module not in sys.modules:
        return None
    found: Any = sys.modules[module]
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return f"{module}.{qualname}" if found is obj else None


def _named(obj: Any, names: frozenset[str]) -> bool:
    return canonical_name(obj) in names


def is_ufunc(obj: Any) -> bool:
    return isinstance(obj, np.ufunc)


def is_allowed_function(obj: Any) -> bool:
    """A numpy or scipy.special ufunc (elementwise arithmetic), or one of :data:`FUNCTIONS`."""
    if is_ufunc(obj):
        special = sys.modules.get("scipy.special")
        return getattr(np, obj.__name__, None) is obj or getattr(special, obj.__name__, None) is obj
    return _named(obj, FUNCTIONS)


def _defined_in(cls: type, prefixes: tuple[str, ...]) -> bool:
    module = getattr(cls, "__module__", None)
    return isinstance(module, str) and module.startswith(prefixes)


def is_estimator_class(obj: Any) -> bool:
    """A scikit-learn estimator or transformer class of scikit-learn or skfleet itself.

    Their constructors only store parameters (a scikit-learn rule) and their state is fitted
    arrays and parameters, so ``__new__`` + state is harmless.
    """
    from sklearn.base import BaseEstimator

    return (
        isinstance(obj, type)
        and issubclass(obj, BaseEstimator)
        and _defined_in(obj, ("sklearn.", "skfleet."))
    )


def is_declared_by_skfleet(obj: Any) -> bool:
    """A class a skfleet package lists in its ``TRUSTED_TYPES`` (the feature contract's data
    classes, ...), or one of :data:`SKFLEET_CLASSES`. Declarations are read from the packages
    that contain the class, so a class that moves with its declaration keeps loading."""
    name = canonical_name(obj)
    if not isinstance(obj, type) or name is None or not name.startswith("skfleet."):
        return False
    parts = obj.__module__.split(".")
    for depth in range(1, len(parts) + 1):
        package = sys.modules.get(".".join(parts[:depth]))
        if name in getattr(package, "TRUSTED_TYPES", ()):
            return True
    return any(obj is cls for cls in _skfleet_classes())


@cache
def _skfleet_classes() -> tuple[type, ...]:
    found = []
    for module, name in SKFLEET_CLASSES:
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def _in_family(cls: type) -> bool:
    bases = {f"{base.__module__}.{base.__qualname__}" for base in cls.__mro__[1:]}
    return any(base in bases and _defined_in(cls, (prefix,)) for base, prefix in STATE_FAMILIES)


def is_state_class(obj: Any) -> bool:
    """May skops' ``ObjectNode`` rebuild ``obj`` with ``__new__`` + state?"""
    if not isinstance(obj, type):
        return False
    return (
        is_estimator_class(obj)
        or is_declared_by_skfleet(obj)
        or _named(obj, STATE_CLASSES)
        or _in_family(obj)
    )


def is_constructible(obj: Any) -> bool:
    return isinstance(obj, type) and _named(obj, CONSTRUCTIBLE)


def is_dict_class(obj: Any) -> bool:
    return isinstance(obj, type) and _named(obj, DICT_CLASSES)


def is_defaultdict_class(obj: Any) -> bool:
    return obj is collections.defaultdict


def is_tuple_class(obj: Any) -> bool:
    return obj is tuple or (isinstance(obj, type) and _named(obj, NAMED_TUPLES))


def is_numpy_scalar(obj: Any) -> bool:
    """A numpy scalar type (``numpy.float64``, ...): calling it converts a value."""
    return isinstance(obj, type) and issubclass(obj, np.generic) and obj.__module__ == "numpy"


def is_array_class(obj: Any) -> bool:
    """skops' ``NdArrayNode`` loads the array (``allow_pickle=False``) and, for a scalar, calls
    the scalar type on it."""
    return obj is np.ndarray or is_numpy_scalar(obj)


def is_masked_array_class(obj: Any) -> bool:
    return obj is np.ma.MaskedArray


def is_dtype_class(obj: Any) -> bool:
    return obj is np.dtype


def is_random_state_class(obj: Any) -> bool:
    return obj is np.random.RandomState


def is_generator_class(obj: Any) -> bool:
    return obj is np.random.Generator


def is_bit_generator(obj: Any) -> bool:
    bit_generator = np.random.BitGenerator
    return isinstance(obj, type) and issubclass(obj, bit_generator) and obj is not bit_generator


def is_sparse_class(obj: Any) -> bool:
    """A scipy.sparse matrix or array class (skops reads it with ``load_npz``, no pickle)."""
    import scipy.sparse

    kinds = tuple(k for k in (scipy.sparse.spmatrix, getattr(scipy.sparse, "sparray", None)) if k)
    return isinstance(obj, type) and issubclass(obj, kinds) and _defined_in(obj, ("scipy.sparse",))


def is_tree_class(obj: Any) -> bool:
    from sklearn.tree._tree import Tree

    return obj is Tree


def is_loss_class(obj: Any) -> bool:
    """A Cython loss skops' ``LossNode`` rebuilds (its constructor takes a few floats)."""
    return any(obj is cls for cls in ALLOWED_LOSSES)


def is_key_type(obj: Any) -> bool:
    """A type skops' ``DictNode`` may call on each saved key: ``str``, numbers, numpy scalars."""
    return obj in (str, int, float, bool) or is_numpy_scalar(obj)


def is_allowed_class(obj: Any) -> bool:
    """Any class some loader may be given (what a ``TypeNode`` reference may name)."""
    if not isinstance(obj, type):
        return False
    return (
        any(obj is t for t in _BUILTIN_TYPES)
        or is_state_class(obj)
        or is_constructible(obj)
        or is_dict_class(obj)
        or is_tuple_class(obj)
        or is_array_class(obj)
        or is_masked_array_class(obj)
        or is_dtype_class(obj)
        or is_random_state_class(obj)
        or is_generator_class(obj)
        or is_bit_generator(obj)
        or is_sparse_class(obj)
        or is_tree_class(obj)
        or is_loss_class(obj)
    )
