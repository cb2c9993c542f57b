"""What a name in a skops file resolves to: its module imported only inside the trusted packages,
one attribute looked up, and the object described by its own name (:mod:`skfleet.store.trust`
judges it).

>>> import importlib
>>> describe(resolve("sklearn.utils.discovery", "import_module")) == describe(
...     importlib.import_module)
True
>>> resolve("os", "system")
Traceback (most recent call last):
...
skfleet.store.trust_names.Refused: from a module outside the packages a model may use (sklearn, numpy, scipy, skfleet): not imported, not allowed
"""

from __future__ import annotations

import importlib
import re
import types
from functools import cache
from typing import Any

from skfleet.store import trust_lists as lists

#: Packages whose modules may be imported to find out what a name in a file is. A name from any
#: other module is refused without importing it (importing runs that module's code).
TRUSTED_PACKAGES: tuple[str, ...] = ("sklearn", "numpy", "scipy", "skfleet")

#: Standard-library modules every Python process has already imported; skops writes containers
#: (``builtins.dict``, ``collections.OrderedDict``) under these names.
_PRELOADED = ("builtins", "collections")

#: Module name parts never imported for a model even inside a trusted package: test suites,
#: packaging tools, scripts that compute at import (``scipy.special._precompute``) and
#: ``__main__`` modules (``skfleet.__main__`` would start the CLI).
_NEVER_IMPORT = frozenset(
    {
        "__main__",
        "conftest",
        "tests",
        "testing",
        "_testing",
        "estimator_checks",
        "f2py",
        "distutils",
        "_build_utils",
        "_precompute",
        "_pyinstaller",
        "setup",
    }
)

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


class Refused(Exception):
    """A name refused before or while it is resolved; ``detail`` says why."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _import(module: str) -> types.ModuleType:
    """The module named ``module``, imported only if it belongs to a trusted package."""
    parts = module.split(".")
    if module in _PRELOADED:
        return importlib.import_module(module)  # already in sys.modules: nothing runs
    if parts[0] not in TRUSTED_PACKAGES:
        raise Refused(
            f"from a module outside the packages a model may use ({', '.join(TRUSTED_PACKAGES)}): "
            "not imported, not allowed"
        )
    if _NEVER_IMPORT.intersection(parts):
        raise Refused("from a test, packaging or __main__ module: not imported, not allowed")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or whatever a broken module raises
        raise Refused(
            f"which does not resolve ({type(exc).__name__}: {exc}): not allowed"
        ) from None


@cache
def resolve(module: Any, name: Any) -> Any:
    """The object ``module.name`` is, the way skops will look it up (one ``getattr``).

    Raises ``Refused`` for a name that is malformed, outside :data:`TRUSTED_PACKAGES` or does not
    resolve.
    """
    if not (isinstance(module, str) and _MODULE_NAME.fullmatch(module)):
        raise Refused(f"whose module {module!r} is not a Python module name: not allowed")
    if not (isinstance(name, str) and name.isidentifier()):
        raise Refused(f"whose name {name!r} is not a Python identifier: not allowed")
    mod = _import(module)
    try:
        return getattr(mod, name)
    except AttributeError:
        raise Refused(
            f"which does not resolve (module {module} has no {name!r}): not allowed"
        ) from None


def describe(obj: Any) -> str:
    """The canonical name of ``obj`` (its own ``__module__`` + ``__qualname__``), or its kind.

    >>> import functools, sys
    >>> describe(functools.partial), describe(sys)
    ('functools.partial', 'the module sys')
    """
    if isinstance(obj, types.ModuleType):
        return f"the module {obj.__name__}"
    if lists.is_ufunc(obj):
        return f"the ufunc {obj.__name__}"
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__} object"
