"""One way to make a file or object appear whole: for local paths and every fsspec filesystem.

A reader must never see half a run record, checkpoint, model file, part or manifest. On the local
disk the bytes go to a hidden temporary name in the same directory (flushed and fsynced), which
is then renamed over the final name (``os.replace``: atomic on POSIX); on an object store one PUT
is atomic by itself, so the object is written directly.

``exclusive=True`` writes only if nothing is at the path yet, and reports whether it did: on disk
through ``os.link`` (which refuses to overwrite, so of two racing writers exactly one wins), on
object stores with a conditional PUT (``If-None-Match: *``). This is how a file can be the record
that something was done once.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "record.json")
>>> atomic_write(None, path, b"{}")
True
>>> atomic_write(None, path, b"[1]", exclusive=True), open(path, "rb").read()
(False, b'{}')
>>> sorted(os.listdir(os.path.dirname(path)))
['record.json']
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import uuid
from typing import Any


def is_local_fs(fs: Any) -> bool:
    """True for None (plain paths) and fsspec's local filesystem."""
    if fs is None:
        return True
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def temp_name(path: str) -> str:
    """A hidden sibling of ``path``: readers skip it, and a rename stays on one disk.

    >>> temp_name("/out/part-p0.parquet").startswith("/out/.part-p0.parquet.tmp-")
    True
    """
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}.tmp-{uuid.uuid4().hex[:12]}")


def atomic_write(fs: Any, path: str, data: bytes, *, exclusive: bool = False) -> bool:
    """Make ``data`` appear at ``path`` whole or not at all (``fs``: an fsspec filesystem, or
    None for a local path). The parent directory must exist on disk.

    Returns True, or with ``exclusive=True`` False when something was already at ``path`` (then
    nothing is written). Filesystem errors propagate as ``OSError``: callers word them.
    """
    if is_local_fs(fs):
        return _local_write(path, data, exclusive)
    if exclusive:
        if fs.exists(path):
            return False
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
    else:
        fs.pipe_file(path, data)
    with contextlib.suppress(AttributeError):
        fs.invalidate_cache(posixpath.dirname(path))
    return True


def _local_write(path: str, data: bytes, exclusive: bool) -> bool:
    if exclusive and os.path.exists(path):
        return False
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not publish bytes only in the page cache
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A filesystem without hard links: fall back to rename (last writer wins).
            if os.path.exists(path):
                return False
            os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
