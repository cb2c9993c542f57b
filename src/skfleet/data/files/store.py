"""Where files live: a file URL split into a filesystem and a path, and the few operations the
file backend needs, each translating filesystem errors into one-line :mod:`skfleet.errors`.

Local disk and S3 go through the same fsspec calls; :meth:`FileStore.put_new` and
:meth:`FileStore.put` go through :func:`skfleet.util.atomic.atomic_write`, because "appear
atomically under the final name" is a rename on a disk and one PUT (or one multipart upload's
completion) on S3.

>>> store, path = FileStore.from_url("s3://bucket/scores/")
>>> store.protocol, path, store.url(path + "/part-p0.parquet")
('s3', 'bucket/scores', 's3://bucket/scores/part-p0.parquet')
>>> store, path = FileStore.from_url("file:///tmp/flights/*.csv")
>>> store.protocol, path, is_glob(path), glob_base(path)
('file', '/tmp/flights/*.csv', True, '/tmp/flights')
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from skfleet.errors import ConnectionFailedError, SkfleetError, SourceNotFoundError, UsageError
from skfleet.util.atomic import Content, atomic_write
from skfleet.util.redact import redact_text

_GLOB_CHARS = "*?["


def is_glob(path: str) -> bool:
    """Whether ``path`` holds a glob pattern."""
    return any(c in path for c in _GLOB_CHARS)


def glob_base(pattern: str) -> str:
    """The directory part of a glob pattern before its first wildcard."""
    head = pattern[: min(pattern.index(c) for c in _GLOB_CHARS if c in pattern)]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def is_hidden(relative: str) -> bool:
    """Files and folders whose name starts with ``_`` or ``.`` (manifests, staging, temp files,
    Spark's ``_SUCCESS``) are bookkeeping, never data.

    >>> is_hidden("part-0.parquet"), is_hidden("_staging-r1/part-0.parquet"), is_hidden(".x.tmp")
    (False, True, True)
    """
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


class FileStore:
    """One filesystem (``file`` or ``s3``) plus its options; picklable, connects lazily.

    The fsspec filesystem object is dropped when pickled (a worker makes its own), and S3 listings
    are never cached: a reader that follows a writer must see what the writer just published.
    """

    def __init__(self, protocol: str, storage_options: dict[str, Any] | None = None):
        self.protocol = protocol
        self.storage_options = dict(storage_options or {})
        self._fs = None

    @classmethod
    def from_url(
        cls, url: str, storage_options: dict[str, Any] | None = None
    ) -> tuple[FileStore, str]:
        """Split a file URL into a store and the fsspec path inside it."""
        head, sep, rest = url.partition("://")
        scheme = head.lower() if sep else "file"
        if not sep:
            rest = url
        if scheme == "s3":
            path = rest.strip("/")
            if not path:
                raise UsageError(f"S3 URL {url!r} names no bucket")
            return cls("s3", storage_options), path
        if scheme != "file":
            raise UsageError(f"the file backend cannot open {redact_text(url)!r}")
        if sep:
            host, slash, local = rest.partition("/")
            if host not in ("", "localhost"):
                raise UsageError(f"file URL {url!r} names a remote host; use a local path")
            rest = slash + local
        path = os.path.abspath(os.path.expanduser(rest)) if rest else ""
        if not path:
            raise UsageError(f"file URL {url!r} names no path")
        return cls("file", storage_options), path.replace(os.sep, "/")

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def fs(self):
        if self._fs is None:
            if self.is_local:
                from fsspec.implementations.local import LocalFileSystem

                self._fs = LocalFileSystem()
            else:
                self._fs = _s3_filesystem(self.storage_options)
        return self._fs

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"] = None
        return state

    def url(self, path: str) -> str:
        """The user-facing form of an fsspec path (what error messages show)."""
        return f"s3://{path}" if self.protocol == "s3" else path

    @staticmethod
    def join(*parts: str) -> str:
        return posixpath.join(*parts)

    @contextlib.contextmanager
    def errors(self, path: str) -> Iterator[None]:
        """Turn filesystem and S3 client errors about ``path`` into one-line skfleet errors."""
        try:
            yield
        except SkfleetError:
            raise
        except FileNotFoundError as exc:
            raise self._not_found(path, exc) from None
        except PermissionError as exc:
            if self.is_local:
                raise SourceNotFoundError(f"permission denied on {self.url(path)}") from None
            raise ConnectionFailedError(
                f"S3 refused access to {self.url(path)} (check the AWS credentials): "
                f"{redact_text(str(exc))}"
            ) from None
        except Exception as exc:
            if self.is_local and isinstance(exc, OSError) and exc.strerror:
                # e.g. a file where a directory of the path should be, a full disk
                raise SkfleetError(f"cannot use {self.url(path)}: {exc.strerror}") from None
            if type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp"):
                raise ConnectionFailedError(
                    f"S3 request for {self.url(path)} failed: {type(exc).__name__}: "
                    f"{redact_text(str(exc))}"
                ) from None
            raise

    def _not_found(self, path: str, exc: BaseException) -> SkfleetError:
        if self.protocol == "s3" and "bucket" in str(exc).lower():
            return self._bucket_missing(path)
        return SourceNotFoundError(f"{self.url(path)} does not exist")

    def _bucket_missing(self, path: str) -> SkfleetError:
        bucket = path.split("/", 1)[0]
        return SourceNotFoundError(f"S3 bucket {bucket!r} does not exist ({self.url(path)})")

    def check_bucket(self, path: str) -> None:
        """Raise SourceNotFoundError naming the bucket if ``path``'s bucket does not exist."""
        if self.is_local:
            return
        bucket = path.split("/", 1)[0]
        try:
            with self.errors(path):
                self.fs.info(bucket)
        except SourceNotFoundError:
            raise self._bucket_missing(path) from None

    # -- reading --------------------------------------------------------------------------------
    def kind(self, path: str) -> str | None:
        """``"file"``, ``"directory"`` or None when nothing is at ``path`` (a missing bucket is
        an error, not None)."""
        with self.errors(path):
            try:
                info = self.fs.info(path)
            except FileNotFoundError as exc:
                if self.protocol == "s3" and "bucket" in str(exc).lower():
                    raise self._bucket_missing(path) from None
                if self.protocol == "s3":
                    self.check_bucket(path)
                return None
        return "directory" if info.get("type") == "directory" else "file"

    def list_files(self, path: str) -> list[tuple[str, int]]:
        """Visible files under directory ``path`` (recursively), sorted, with their sizes."""
        with self.errors(path):
            found = self.fs.find(path, detail=True)
        base = path.rstrip("/")
        out = []
        for name, info in found.items():
            relative = name[len(base) :].lstrip("/")
            if info.get("type", "file") == "file" and not is_hidden(relative):
                out.append((name, int(info.get("size") or 0)))
        return sorted(out)

    def glob(self, pattern: str) -> list[tuple[str, int]]:
        """Visible files matching ``pattern``, sorted, with their sizes."""
        with self.errors(pattern):
            found = self.fs.glob(pattern, detail=True)
        base = glob_base(pattern)
        out = []
        for name, info in found.items():
            relative = name[len(base) :].lstrip("/")
            if info.get("type", "file") == "file" and not is_hidden(relative):
                out.append((name, int(info.get("size") or 0)))
        if not out:
            self.check_bucket(pattern)
        return sorted(out)

    def names(self, path: str) -> list[str]:
        """Base names of the entries directly in directory ``path`` ([] if it does not exist)."""
        with self.errors(path):
            try:
                entries = self.fs.ls(path, detail=False)
            except FileNotFoundError as exc:
                if self.protocol == "s3" and "bucket" in str(exc).lower():
                    raise
                return []
        return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

    def open(self, path: str):
        """Open ``path`` for binary reading."""
        with self.errors(path):
            return self.fs.open(path, "rb")

    def cat(self, path: str) -> bytes | None:
        """The bytes of ``path``, or None when it does not exist."""
        with self.errors(path):
            try:
                return self.fs.cat_file(path)
            except FileNotFoundError as exc:
                if self.protocol == "s3" and "bucket" in str(exc).lower():
                    raise
                return None

    def size(self, path: str) -> int:
        with self.errors(path):
            return int(self.fs.size(path))

    def tail(self, path: str, nbytes: int) -> bytes:
        """The last ``nbytes`` bytes of ``path`` (one ranged read)."""
        size = self.size(path)
        return self.read_range(path, max(0, size - nbytes), size)

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start`` up to ``end`` of ``path`` (one ranged read; fewer at the file's end)."""
        with self.errors(path):
            return self.fs.cat_file(path, start=start, end=end)

    def exists(self, path: str) -> bool:
        with self.errors(path):
            return bool(self.fs.exists(path))

    # -- writing --------------------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        """Create a local directory; S3 has no directories (and creating one could create a
        bucket, which skfleet never does)."""
        if self.is_local:
            with self.errors(path):
                os.makedirs(path, exist_ok=True)

    def put_new(self, path: str, data: Content) -> bool:
        """Make ``data`` (bytes, or a function writing them into a file: streamed, see
        :func:`~skfleet.util.atomic.atomic_write`) appear at ``path`` in one step, unless
        something is there already.

        Returns False (and writes nothing) when ``path`` exists: the existing object is the
        record that this output was already written.
        """
        with self.errors(path):
            return atomic_write(None if self.is_local else self.fs, path, data, exclusive=True)

    def put(self, path: str, data: Content) -> None:
        """Write ``data`` (as for :meth:`put_new`) at ``path`` atomically, replacing what is
        there."""
        with self.errors(path):
            atomic_write(None if self.is_local else self.fs, path, data)

    def move(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Move files (a rename on disk, copy + delete on S3)."""
        pairs = list(pairs)
        if not pairs:
            return
        with self.errors(pairs[0][0]):
            if self.is_local:
                for src, dst in pairs:
                    os.replace(src, dst)
            else:
                self.fs.copy([s for s, _ in pairs], [d for _, d in pairs])
                self.fs.rm([s for s, _ in pairs])

    def remove(self, paths: Iterable[str]) -> None:
        """Delete files that may or may not exist."""
        paths = list(paths)
        if not paths:
            return
        with self.errors(paths[0]):
            if self.is_local:
                for path in paths:
                    _unlink_quietly(path)
            else:
                self.fs.rm(paths)

    def remove_tree(self, path: str) -> None:
        """Delete a directory (prefix) and everything in it, if it exists."""
        with self.errors(path):
            try:
                self.fs.rm(path, recursive=True)
            except FileNotFoundError as exc:
                if self.protocol == "s3" and "bucket" in str(exc).lower():
                    raise

    def remove_empty_dir(self, path: str) -> None:
        """Remove a local directory if it is empty (S3 prefixes vanish by themselves)."""
        if self.is_local:
            with contextlib.suppress(OSError):
                os.rmdir(path)


# Environment variables that change which S3 endpoint or identity a client talks to.
_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
_s3_clients: dict[tuple, Any] = {}
_s3_lock = threading.Lock()


def _s3_filesystem(storage_options: dict[str, Any]):
    """An s3fs filesystem for these options and the current AWS environment.

    Building an S3 client costs a good fraction of a second, so one is kept per process, options
    and environment: a changed ``AWS_ENDPOINT_URL`` or key gets a new client, never a stale one.
    Listings are never cached (see :class:`FileStore`).
    """
    import s3fs

    env = tuple(os.environ.get(name) for name in _AWS_ENV)
    key = (os.getpid(), repr(sorted(storage_options.items())), hash(env))
    with _s3_lock:
        fs = _s3_clients.get(key)
        if fs is None:
            # AWS_ENDPOINT_URL (S3-compatible stores, the test server) is honoured by botocore.
            options = {"skip_instance_cache": True, "use_listings_cache": False}
            options.update(storage_options)
            fs = _s3_clients[key] = s3fs.S3FileSystem(**options)
        return fs


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
