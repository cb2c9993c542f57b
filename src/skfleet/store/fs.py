"""Open the filesystem behind a store URI with fsspec: a local folder, ``file://``, ``s3://``, ...

S3 goes through s3fs. botocore already reads ``AWS_ENDPOINT_URL``; we pass it explicitly as well
so that older botocore versions and S3-compatible servers (MinIO, moto) work the same way.

>>> fs, root = open_store_fs("memory://doc-fs/models")
>>> type(fs).__name__, root
('MemoryFileSystem', '/doc-fs/models')
"""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from skfleet.errors import UsageError
from skfleet.util.redact import redact_url


def open_store_fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``uri`` and the store's root path inside it (no protocol)."""
    if not isinstance(uri, str) or not uri.strip():
        raise UsageError(f"--store {uri!r} is not a folder or URL")
    options: dict[str, Any] = {}
    protocol = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        # Each store gets its own client: a cached instance could carry another test's or
        # another endpoint's credentials.
        options["skip_instance_cache"] = True
    try:
        fs, root = fsspec.core.url_to_fs(uri, **options)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"--store {redact_url(uri)} cannot be opened: {exc}") from exc
    if isinstance(fs, LocalFileSystem):
        root = os.path.abspath(root)
    return fs, root.rstrip("/") or "/"


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local disk, where a directory rename is atomic."""
    return isinstance(fs, LocalFileSystem)
