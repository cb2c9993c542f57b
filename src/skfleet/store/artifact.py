"""The model artifact: skops bytes, their content hash, and loading them safely.

Without ``trust=True`` an artifact is loaded only if every name in it resolves to an object the
loader skops would use on it may be given (:mod:`skfleet.store.trust`): estimator and data classes
rebuilt from state, a few harmless functions as references. Anything else is refused in one line
naming the first offending name and what it really is, before skops constructs anything.

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
import io
import json
import zipfile
from collections.abc import Iterator

from skfleet.errors import SkfleetError, UntrustedModelError, UsageError

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
    # Here, not at the top: planning from model.json never loads skops.
    from skfleet.store.skops_io import skops_io

    try:
        data = skops_io().dumps(model)
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


def untrusted_types(data: bytes) -> list[str]:
    """Names in the artifact that may not be loaded without trust (see :mod:`skfleet.store.trust`),
    sorted; ``[]`` means it loads without ``trust``.

    >>> import numpy as np
    >>> untrusted_types(dump_artifact({"levels": np.array([1, 2])}))
    []
    """
    return sorted({refusal.name for refusal in _audit(data)})


def _audit(data: bytes) -> list:
    from skfleet.store import trust as policy

    try:
        return policy.audit(data)
    except policy.ArtifactReadError as exc:
        raise SkfleetError(f"model artifact is not a readable skops file: {exc}") from exc


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
    """Check the hash of skops ``data``, refuse it unless every name in it is allowed (see
    :mod:`skfleet.store.trust`) or ``trust``, and load it.

    A refusal is an :class:`UntrustedModelError` in one line naming the first offending name and
    what it really is, raised before anything in the file is constructed.

    This is what a worker calls after fetching the artifact bytes once; it does not touch the
    store, so it can run anywhere.
    """
    # The trust policy imports skops and the scikit-learn modules it judges names against: only
    # a process that loads or writes an artifact pays for that.
    from skfleet.store import trust as policy

    skops_io = policy.skops_io()  # imported by the policy already

    check_hash(data, expected_hash)
    if not trust:
        try:
            return policy.load_checked(data)
        except policy.RefusedArtifact as exc:
            raise UntrustedModelError(exc.refusal.message()) from None
        except policy.ArtifactReadError as exc:
            raise SkfleetError(f"model artifact is not a readable skops file: {exc}") from exc
        except Exception as exc:
            raise SkfleetError(f"model artifact could not be loaded: {exc}") from exc
    try:
        allowed = skops_io.get_untrusted_types(data=data)
    except Exception as exc:
        raise SkfleetError(f"model artifact is not a readable skops file: {exc}") from exc
    try:
        return skops_io.loads(data, trusted=allowed)
    except Exception as exc:
        raise SkfleetError(f"model artifact could not be loaded: {exc}") from exc
