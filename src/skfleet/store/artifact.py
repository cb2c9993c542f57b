"""The model artifact: skops bytes, their content hash, and loading them safely.

skops keeps a short list of types it trusts by default; a fitted model usually holds a few more
(``sklearn.tree._tree.Tree``, ``numpy.dtype``, ...). Rather than trusting whatever a file names, we
accept an extra type only if it is under :data:`TRUSTED_PREFIXES` *and* it is used in a harmless
way: a class (which skops rebuilds with ``__new__`` + state, or with its own constructor), or a
function that is only referenced, never called during loading. Anything else needs ``trust=True``.

>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
>>> data = dump_artifact(model)
>>> loaded = load_artifact(data, content_hash(data))
>>> loaded.predict(np.array([[0.2], [2.8]])).tolist()
[0, 1]
>>> load_artifact(data, "0" * 64)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
skfleet.store.artifact.ArtifactHashError: model artifact content hash mismatch: expected 000000000000…, got ... (the file was changed or corrupted after it was stored)
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import zipfile
from collections.abc import Iterator

import skops.io

from skfleet.errors import SkfleetError, UntrustedModelError, UsageError

#: Extra types a stored model may hold without ``trust=True``. An entry ending in ``.`` is a module
#: prefix; any other entry is one exact ``module.Name``.
TRUSTED_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "numpy.",
    "scipy.sparse.",
    "scipy.interpolate.",  # SplineTransformer keeps BSpline objects
    "scipy.special.",
    "scipy._lib.",  # array-api helpers referenced by some fitted transformers
    "skfleet.",
    "collections.OrderedDict",
    "collections.defaultdict",
    "builtins.frozenset",
    "builtins.range",
    "builtins.slice",
)

#: Never accepted without trust, even under a trusted prefix: these touch files or run code.
_DENIED_PREFIXES: tuple[str, ...] = (
    "numpy.memmap",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.ctypeslib",
    "numpy.lib._datasource",
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.lib.format",
    "numpy.lib._format_impl",
    "sklearn.utils._testing",
    "sklearn.utils.estimator_checks",
    "sklearn.datasets",
)

#: skops loaders that only look a function up by name; every other loader may call what it names.
_REFERENCE_LOADERS = {"FunctionNode", "TypeNode"}

_SCHEMA = "schema.json"


class ArtifactHashError(SkfleetError):
    """The artifact bytes are not the ones whose hash was recorded when the model was stored."""


def content_hash(data: bytes) -> str:
    """SHA-256 of the artifact bytes, as hex.

    >>> content_hash(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def dump_artifact(model: object) -> bytes:
    """Serialise ``model`` with skops; a model skops cannot write is a :class:`UsageError`."""
    try:
        data = skops.io.dumps(model)
    except Exception as exc:  # skops raises TypeError, UnsupportedTypeException, pickling errors
        raise UsageError(f"cannot save {type(model).__name__} with skops: {exc}") from exc
    check_loadable(data)
    return data


def check_loadable(data: bytes) -> None:
    """Refuse an artifact that names lambdas or objects from ``__main__``: no process can load it.

    >>> check_loadable(dump_artifact({"plain": [1, 2]}))
    """
    for module, name, _ in _schema_nodes(data):
        if module in ("__main__", "__mp_main__") or "<" in name:
            what = "a lambda or local function" if "<" in name else f"{name!r} from __main__"
            raise UsageError(
                f"the model holds {what}, which cannot be loaded back from the store; "
                "define it in an importable module"
            )


def _matches(full_name: str, entries: tuple[str, ...]) -> bool:
    return any(
        full_name.startswith(entry) if entry.endswith(".") else full_name == entry
        for entry in entries
    )


def _denied(full_name: str) -> bool:
    return any(
        full_name == entry or full_name.startswith(entry + ".") for entry in _DENIED_PREFIXES
    )


def _schema_nodes(data: bytes) -> Iterator[tuple[str, str, str]]:
    """Every (module, name, loader) the skops schema mentions, in any position."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read(_SCHEMA))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkfleetError(f"model artifact is not a readable skops file: {exc}") from exc
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, name = item.get("__module__"), item.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                yield module, name, str(item.get("__loader__", ""))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _resolves_safely(module: str, name: str, loaders: set[str]) -> bool:
    """True if ``module.name`` is allowed: a class, or a function skops only references."""
    full_name = f"{module}.{name}"
    if not _matches(full_name, TRUSTED_PREFIXES) or _denied(full_name) or _denied(module):
        return False
    if "." in name:
        return False  # skops looks names up with one getattr; anything else is hand-made
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    real_name = f"{getattr(obj, '__module__', '') or ''}.{getattr(obj, '__qualname__', '')}"
    if _denied(real_name):
        return False
    if isinstance(obj, type):
        return True
    return callable(obj) and loaders <= _REFERENCE_LOADERS


def untrusted_types(data: bytes) -> list[str]:
    """Types in the artifact that neither skops nor :data:`TRUSTED_PREFIXES` accept, sorted.

    >>> import numpy as np
    >>> untrusted_types(dump_artifact({"levels": np.array([1, 2])}))
    []
    """
    try:
        unknown = set(skops.io.get_untrusted_types(data=data))
    except Exception as exc:
        raise SkfleetError(f"model artifact is not a readable skops file: {exc}") from exc
    uses: dict[tuple[str, str], set[str]] = {}
    for module, name, loader in _schema_nodes(data):
        if f"{module}.{name}" in unknown:
            uses.setdefault((module, name), set()).add(loader)
    refused = {
        f"{m}.{n}" for (m, n), loaders in uses.items() if not _resolves_safely(m, n, loaders)
    }
    # A name skops reports but our walk could not place is refused too (fail closed).
    placed = {f"{m}.{n}" for m, n in uses}
    return sorted(refused | (unknown - placed))


def check_hash(data: bytes, expected_hash: str | None) -> str:
    """Return the hash of ``data``; raise :class:`SkfleetError` if it is not ``expected_hash``."""
    actual = content_hash(data)
    if expected_hash is not None and actual != expected_hash:
        raise ArtifactHashError(
            f"model artifact content hash mismatch: expected {expected_hash[:12]}…, got "
            f"{actual[:12]}… (the file was changed or corrupted after it was stored)"
        )
    return actual


def load_artifact(data: bytes, expected_hash: str | None = None, trust: bool = False) -> object:
    """Check the hash of skops ``data``, refuse untrusted types unless ``trust``, and load it.

    This is what a worker calls after fetching the artifact bytes once; it does not touch the
    store, so it can run anywhere.
    """
    check_hash(data, expected_hash)
    if trust:
        try:
            allowed = skops.io.get_untrusted_types(data=data)
        except Exception as exc:
            raise SkfleetError(f"model artifact is not a readable skops file: {exc}") from exc
    else:
        refused = untrusted_types(data)
        if refused:
            raise UntrustedModelError(
                f"model artifact holds types outside skfleet's trusted list: {', '.join(refused)}; "
                "pass trust=True / --trust to load it anyway if you trust where it came from"
            )
        allowed = skops.io.get_untrusted_types(data=data)
    try:
        return skops.io.loads(data, trusted=allowed)
    except Exception as exc:
        raise SkfleetError(f"model artifact could not be loaded: {exc}") from exc
