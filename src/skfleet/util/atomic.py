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

``data`` may also be a function that writes the content into the open file it is given: then the
content is never whole in memory (a table streamed into the temporary file, or on S3 into a
multipart upload that completes, and so publishes, only when the function returns).

>>> atomic_write(None, path + ".txt", lambda handle: handle.write(b"streamed"))
True
>>> open(path + ".txt", "rb").read()
b'streamed'
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import posixpath
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO

#: What :func:`atomic_write` publishes: the bytes, or a function writing them into a binary file.
Content = bytes | Callable[[BinaryIO], object]


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


def atomic_write(fs: Any, path: str, data: Content, *, exclusive: bool = False) -> bool:
    """Make ``data`` appear at ``path`` whole or not at all (``fs``: an fsspec filesystem, or
    None for a local path). The parent directory must exist on disk.

    ``data`` is bytes or a function ``write(handle)`` (see the module docs); an exception from the
    function publishes nothing and propagates. Returns True, or with ``exclusive=True`` False when
    something was already at ``path`` (then nothing is written, and the function is not called
    when that is known beforehand). Filesystem errors propagate as ``OSError``: callers word them.
    """
    if is_local_fs(fs):
        return _local_write(path, data, exclusive)
    if exclusive and fs.exists(path):
        return False
    try:
        if callable(data) and _streams(fs):
            _stream(fs, path, data, exclusive)
        else:
            if callable(data):
                # Another object store: its open("wb") may not publish in one step, so the
                # content is gathered here and PUT whole, as bytes are.
                buffer = io.BytesIO()
                data(buffer)
                data = buffer.getvalue()
            if exclusive:
                fs.pipe_file(path, data, mode="create")
            else:
                fs.pipe_file(path, data)
    except FileExistsError:
        if not exclusive:
            raise
        return False
    with contextlib.suppress(AttributeError):
        fs.invalidate_cache(posixpath.dirname(path))
    return True


# s3fs: a file opened "wb" is a multipart upload (a single PUT when small) that publishes the
# object only on close, and "xb" makes that PUT or the upload's completion conditional
# (``If-None-Match: *``): the same exclusive create as ``pipe_file(mode="create")``.
def _streams(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", None)
    return "s3" in (protocol if isinstance(protocol, tuple | list) else (protocol,))


def _stream(fs: Any, path: str, write: Callable[[BinaryIO], object], exclusive: bool) -> None:
    handle = fs.open(path, "xb" if exclusive else "wb")
    try:
        write(handle)
        if exclusive and handle.tell() == 0:
            # s3fs "touches" an empty file on close, unconditionally: PUT it conditionally.
            handle.discard()
            handle.closed = True
            fs.pipe_file(path, b"", mode="create")
            return
        handle.close()
    except BaseException:
        # Not close(): closing publishes what was written. discard() aborts the upload; marking
        # the file closed keeps its finaliser from closing (and publishing) it later.
        handle.discard()
        handle.closed = True
        raise


def _local_write(path: str, data: Content, exclusive: bool) -> bool:
    if exclusive and os.path.exists(path):
        return False
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as handle:
            if callable(data):
                data(handle)
            else:
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
