"""One registry from URL scheme to table backend.

Built-in backends are named here as ``module:Class`` strings and imported only when a URL needs
them (so ``skfleet copy a.csv b.parquet`` never imports the Postgres driver). Third parties add a
scheme through the ``skfleet.data`` entry-point group or :func:`register_backend`; registering a
scheme twice is refused unless ``overwrite=True``.

>>> scheme_of("flights/2013/*.parquet"), scheme_of("s3://bucket/key.csv")
('file', 's3')
>>> scheme_of("postgresql://localhost/db?table=t")
'postgresql'
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import Any

from skfleet.data.base import Sink, Source
from skfleet.errors import UsageError
from skfleet.util.redact import redact_url

ENTRY_POINT_GROUP = "skfleet.data"

_BUILTIN: dict[str, str] = {
    "file": "skfleet.data.files:FileBackend",
    "s3": "skfleet.data.files:FileBackend",
    "postgresql": "skfleet.data.postgres:PostgresBackend",
    "postgres": "skfleet.data.postgres:PostgresBackend",
    "redshift": "skfleet.data.redshift:RedshiftBackend",
}
_registry: dict[str, Any] = dict(_BUILTIN)
_lock = threading.Lock()
_entry_points_loaded = False


class Backend:
    """Opens sources and sinks for the URLs of one or more schemes.

    A backend names its two classes, ``source_class`` and ``sink_class``, each called with the
    URL and the options; one that picks a class by URL overrides :meth:`source` or :meth:`sink`.
    """

    source_class: type[Source]
    sink_class: type[Sink]

    @classmethod
    def source(cls, url: str, **options: Any) -> Source:
        """A :class:`Source` reading ``url``."""
        return cls.source_class(url, **options)

    @classmethod
    def sink(cls, url: str, **options: Any) -> Sink:
        """A :class:`Sink` writing ``url``."""
        return cls.sink_class(url, **options)


def scheme_of(url: str) -> str:
    """The scheme of a data URL; a plain path is ``file``."""
    head, sep, _ = url.partition("://")
    if not sep or "/" in head or len(head) < 2:
        return "file"
    return head.lower()


def register_backend(scheme: str, backend: type[Backend] | str, *, overwrite: bool = False) -> None:
    """Make ``scheme://`` URLs open through ``backend`` (a class or a ``module:Class`` string)."""
    scheme = scheme.lower()
    with _lock:
        if scheme in _registry and not overwrite and _registry[scheme] != backend:
            raise ValueError(f"scheme {scheme!r} is already registered; pass overwrite=True")
        _registry[scheme] = backend


def _load_entry_points() -> None:
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _registry.setdefault(ep.name.lower(), ep.value)


def registered_schemes() -> list[str]:
    """Every scheme a URL may use: built-ins, :func:`register_backend` and entry points.

    >>> {"file", "s3", "postgresql", "postgres"} <= set(registered_schemes())
    True
    """
    _load_entry_points()
    with _lock:
        return sorted(_registry)


def backend_for(url: str) -> type[Backend]:
    """The backend class for ``url``, importing it on first use."""
    scheme = scheme_of(url)
    if scheme not in _registry:
        _load_entry_points()
    target = _registry.get(scheme)
    if target is None:
        known = ", ".join(sorted(_registry))
        raise UsageError(
            f"unknown data URL scheme {scheme!r} in {redact_url(url)} (known: {known})"
        )
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        with _lock:
            _registry[scheme] = target
    return target


def open_source(url: str, **options: Any) -> Source:
    """Open ``url`` for reading.

    >>> import pyarrow as pa, pyarrow.parquet as pq, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    >>> open_source(path).read_all().num_rows
    3
    """
    return backend_for(url).source(url, **options)


def open_sink(url: str, **options: Any) -> Sink:
    """Open ``url`` for writing (see :class:`skfleet.data.base.Sink` for the lifecycle)."""
    return backend_for(url).sink(url, **options)
