"""Can a worker on another machine reach this URL? Checked before any task runs.

A data URL means the same thing on every machine only if it names a place on the network: a
relative path, ``localhost`` or a Unix socket resolve on each worker to *its own* folder, host or
socket, which is at best the wrong one. :func:`unreachable_reason` says why a URL cannot be used
by workers that do not share this machine, in words for a one-line error.

>>> unreachable_reason("postgresql://u@localhost/db?table=t")
'its host localhost is each worker itself, not this machine'
>>> unreachable_reason("postgresql:///db?table=t&host=/var/run/postgresql")
'it connects through a Unix socket (/var/run/postgresql), which exists only on this machine'
>>> unreachable_reason("scores/")
'a relative path means a different folder on each worker; give an absolute path or s3://...'
>>> unreachable_reason("s3://bucket/scores/") is None
True
>>> unreachable_reason("postgresql://u@db.internal:5432/db?table=t") is None
True
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlsplit

from skfleet.data.registry import scheme_of
from skfleet.util.net import is_loopback

_POSTGRES_SCHEMES = {"postgresql", "postgres", "redshift"}


def unreachable_reason(url: str) -> str | None:
    """Why workers on other machines cannot use ``url``, or None when nothing is known wrong."""
    scheme = scheme_of(url)
    if scheme == "file":
        path = url[len("file://") :] if url.startswith("file://") else url
        if not os.path.isabs(path):
            return "a relative path means a different folder on each worker; give an absolute path or s3://..."
        return None
    if scheme not in _POSTGRES_SCHEMES:
        return None
    parts = urlsplit(url)
    hosts = [h for h in [parts.hostname] if h]
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in ("host", "hostaddr"):
            hosts += [h.strip() for h in value.split(",") if h.strip()]
    if not hosts:
        return "it names no host, so libpq uses a Unix socket that exists only on this machine"
    for host in hosts:
        if host.startswith("/"):
            return f"it connects through a Unix socket ({host}), which exists only on this machine"
        if is_loopback(host):
            return f"its host {host} is each worker itself, not this machine"
    return None
