"""Packages that are also the function they are named after: ``skfleet.train(...)``.

``skfleet.train`` is both the training package and the function users call. Python sets the
attribute ``skfleet.train`` to the package as soon as any ``skfleet.train.*`` module is imported,
so a plain function of that name in ``skfleet/__init__.py`` would be replaced by the package the
first time a submodule loads. Instead the package itself is made callable: calling it calls its
entry point, imported only then (so ``import skfleet`` stays cheap).

>>> import skfleet
>>> callable(skfleet.train), callable(skfleet.predict), callable(skfleet.copy)
(True, True, True)
>>> import inspect
>>> list(inspect.signature(skfleet.predict).parameters)[:3]
['model', 'source', 'out']
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any


def resolve(target: str) -> Any:
    """``"package.module:attr"`` -> the object (importing the module)."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def lazy_names(module_name: str, names: dict[str, str]):
    """``(__getattr__, __dir__)`` for a module whose public ``names`` (name -> ``"module:attr"``)
    are imported on first use, so that importing the package stays cheap.

    >>> getattr_, dir_ = lazy_names("skfleet.predict", {"predict": "skfleet.predict.api:predict"})
    >>> getattr_("predict").__name__, "predict" in dir_()
    ('predict', True)
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            return resolve(names[name])
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module_name]), *names})

    return __getattr__, __dir__


class CallableModule(types.ModuleType):
    """A module whose call is forwarded to the function named by its ``__entry_point__``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return resolve(self.__entry_point__)(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(resolve(self.__entry_point__))


def make_callable(module_name: str, entry_point: str) -> None:
    """Make the (already imported) module ``module_name`` call ``entry_point`` when called."""
    module = sys.modules[module_name]
    module.__entry_point__ = entry_point
    module.__class__ = CallableModule
