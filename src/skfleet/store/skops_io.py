"""Importing ``skops.io`` without the work its trusted-type lists do at import.

When ``skops.io`` is first imported, ``skops.io._trusted_types`` computes skops' default trusted
types: every estimator :func:`sklearn.utils.all_estimators` finds (which imports all of
scikit-learn, some 450 modules), HistGradientBoosting's bin mapper (which imports
``sklearn.ensemble``, with ``sklearn.metrics`` and ``sklearn.compose``), and the numpy and
scipy.special ufuncs (a search of every loaded module for each one): most of a second before a
LogisticRegression can load. skfleet never uses those defaults (:mod:`skfleet.store.trust`
judges every name itself and builds the tree without skops' audit), so here that module is a
stand-in whose lists are computed, by running skops' own module, when something first reads one
(a caller of ``skops.io.loads``, ``--trust``'s ``get_untrusted_types``); they are then exactly
skops' own. Every skfleet use of skops goes through :func:`skops_io`.

>>> skops_io().loads(skops_io().dumps([1, 2]))
[1, 2]
"""

from __future__ import annotations

import collections
import importlib.machinery
import importlib.util
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_TRUSTED_TYPES = "skops.io._trusted_types"


class _DeferredNames(collections.UserList):
    """A list computed when first read, except by a thread inside :func:`deferred_defaults`."""

    def __init__(self, compute: Callable[[], list[str]]):
        self._compute = compute
        self._value: list[str] | None = None
        self._lock = threading.Lock()

    @property
    def data(self) -> list[str]:  # every UserList method reads the list through this
        if getattr(_deferring, "active", False):
            return []
        with self._lock:
            if self._value is None:
                self._value = self._compute()
            return self._value

    @data.setter
    def data(self, value: list[str]) -> None:
        self._value = list(value)

    # Plain lists, as skops' own expressions (``NAMES + OTHER``, ``[np.ndarray] + NAMES``) give.
    def __add__(self, other: Any) -> list[Any]:
        return self.data + list(other)

    def __radd__(self, other: Any) -> list[Any]:
        return list(other) + self.data


_deferring = threading.local()


class _TrustedTypes(types.ModuleType):
    """``skops.io._trusted_types`` whose ``*_NAMES`` lists are :class:`_DeferredNames` of skops'
    own module, which runs (once, on its own module object) when the first of them is read."""

    def __init__(self, spec: importlib.machinery.ModuleSpec):
        super().__init__(spec.name)
        self.__spec__ = spec
        self._real: types.ModuleType | None = None
        self._real_lock = threading.Lock()

    def _skops_module(self) -> types.ModuleType:
        with self._real_lock:
            if self._real is None:
                module = importlib.util.module_from_spec(self.__spec__)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # deprecated estimators warn as imported
                    self.__spec__.loader.exec_module(module)
                self._real = module
            return self._real

    def __getattr__(self, name: str) -> Any:  # names not set yet: each list once, deferred
        # skops imports only the lists from here. Anything else is missing, not computed: the
        # module's own ufunc search looks every name up in every loaded module, this one too.
        if not name.endswith("_NAMES"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        names = _DeferredNames(lambda: list(getattr(self._skops_module(), name)))
        setattr(self, name, names)
        return names


def _import() -> None:
    """Import ``skops.io`` with :class:`_TrustedTypes` in place of its trusted-type lists.
    Already imported (by someone else, the full way): nothing to do."""
    if "skops.io" in sys.modules:
        return
    package = importlib.util.find_spec("skops.io")  # imports ``skops`` (its version), not .io
    spec = importlib.machinery.PathFinder.find_spec(
        _TRUSTED_TYPES, package.submodule_search_locations
    )
    stand_in = _TrustedTypes(spec)
    sys.modules[_TRUSTED_TYPES] = stand_in
    try:
        import skops.io
    except BaseException:
        sys.modules.pop(_TRUSTED_TYPES, None)
        raise
    skops.io._trusted_types = stand_in


def skops_io() -> types.ModuleType:
    """``skops.io``, imported as :func:`_import` does (every skfleet use goes here)."""
    _import()
    import skops.io

    return skops.io


@contextmanager
def deferred_defaults() -> Iterator[None]:
    """skops' default lists read as empty in this thread while skfleet builds a node tree: each
    node stores its defaults, and nothing skfleet does with the tree consults them."""
    before = getattr(_deferring, "active", False)
    _deferring.active = True
    try:
        yield
    finally:
        _deferring.active = before
