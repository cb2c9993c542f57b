"""Importing ``skops.io`` without the walk over every scikit-learn module it does at import.

skops lists, when ``skops.io`` is first imported, every estimator
:func:`sklearn.utils.all_estimators` finds, which imports all of scikit-learn (most of a second,
and some 450 modules), as the classes its own audit trusts by default. skfleet never uses that
default (:mod:`skfleet.store.trust` judges every name itself and builds the tree without skops'
audit), so here the list is computed when something else first reads it, and is then exactly
skops' own. Every skfleet use of skops goes through :func:`skops_io`.

>>> skops_io().loads(skops_io().dumps([1, 2]))
[1, 2]
"""

from __future__ import annotations

import collections
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


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

    def __add__(self, other: Any) -> list[str]:  # a plain list, as skops' own expression gives
        return self.data + list(other)


_deferring = threading.local()


def _import() -> None:
    """Import ``skops.io`` with ``all_estimators`` answering nothing, then give skops a default
    list that computes the real answer when first read (a caller of ``skops.io.loads``,
    ``--trust``'s ``get_untrusted_types``). Already imported (by someone else, the full way):
    nothing to do. The swap is not thread-safe, which is why it happens once, at import."""
    if "skops.io" in sys.modules:
        return
    import sklearn.utils

    real = sklearn.utils.all_estimators

    def names() -> list[str]:
        from skops.io._utils import get_type_name

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated estimators warn as they are imported
            found = [get_type_name(cls) for _, cls in real()]
        return [name for name in found if name.startswith("sklearn.")]

    sklearn.utils.all_estimators = lambda *args, **kwargs: []
    try:
        from skops.io import _general, _trusted_types
    finally:
        sklearn.utils.all_estimators = real
    _trusted_types.all_estimators = real
    deferred = _DeferredNames(names)
    _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES = deferred
    _general.SKLEARN_ESTIMATOR_TYPE_NAMES = deferred


def skops_io() -> types.ModuleType:
    """``skops.io``, imported as :func:`_import` does (every skfleet use goes here)."""
    _import()
    import skops.io

    return skops.io


@contextmanager
def deferred_defaults() -> Iterator[None]:
    """skops' default estimator list reads as empty in this thread while skfleet builds a node
    tree: each node stores the list, and nothing skfleet does with the tree consults it."""
    before = getattr(_deferring, "active", False)
    _deferring.active = True
    try:
        yield
    finally:
        _deferring.active = before
