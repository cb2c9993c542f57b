"""The write side of the model store: saving a new version whole or not at all, deleting one.

:class:`StoreWriter` is the half of :class:`~skfleet.store.ModelStore` that writes (the class
that reads composes it); see :mod:`skfleet.store.store` for the layout and how a version
appears atomically on local disk and on object stores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from skfleet.errors import SkfleetError, UsageError
from skfleet.store.artifact import content_hash, dump_artifact, untrusted_types
from skfleet.store.metadata import (
    INTERFACE_KEY,
    describe_estimator,
    describe_interface,
    library_versions,
    to_json_safe,
)
from skfleet.store.refs import (
    ARTIFACT_FILE,
    METADATA_FILE,
    ModelRef,
    is_version_path,
    parse_model_ref,
    validate_file_name,
    validate_name,
)
from skfleet.util.atomic import atomic_write
from skfleet.util.redact import redact_text

_CLAIM_FILE = ".claim"
_RESERVED_FILES = {ARTIFACT_FILE, METADATA_FILE}
#: Fields of ``model.json`` that the store itself writes; callers may not pass them.
RESERVED_KEYS = (
    "name",
    "version",
    "created_at",
    "artifact",
    "library_versions",
    "files",
    INTERFACE_KEY,
)
_MAX_VERSION_TRIES = 1000


class StoreWriter:
    """Saving and deleting versions; needs the store's ``fs``, paths and reading methods."""

    def _write_error(self, exc: OSError) -> SkfleetError:
        if isinstance(exc, FileNotFoundError):
            reason = "its bucket or a parent folder does not exist"
        else:
            reason = exc.strerror or str(exc) or type(exc).__name__
        return SkfleetError(f"model store {self.display} is not writable: {redact_text(reason)}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Changing files in place (a delete, an alias): a filesystem error comes out as one
        line, and listings are read afresh afterwards whatever happened."""
        try:
            yield
        except OSError as exc:
            raise self._write_error(exc) from exc
        finally:
            self.fs.invalidate_cache()

    def check_writable(self) -> None:
        """Fail before any work when a local store folder cannot be created or written (a
        remote store says so when it is written)."""
        if not self.local:
            return
        probe = self.root
        while not os.path.exists(probe):
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        if not os.path.isdir(probe):
            raise SkfleetError(f"model store {self.display} is not writable: {probe} is a file")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise SkfleetError(f"model store {self.display} is not writable: permission denied")

    def save(
        self,
        name: str,
        model: Any,
        metadata: Mapping[str, Any] | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> ModelRef:
        """Store ``model`` as the next version of ``name``; the version appears whole or not at all."""
        validate_name(name)
        extra = _check_files(files)
        data = dump_artifact(model)
        meta = self._build_metadata(name, model, metadata, data, sorted(extra))
        commit = self._commit_local if self.local else self._commit_remote
        return commit(name, data, meta, extra)

    def _build_metadata(
        self, name: str, model: Any, metadata: Mapping[str, Any] | None, data: bytes, files: list
    ) -> dict:
        if metadata is not None and not isinstance(metadata, Mapping):
            raise UsageError(f"metadata for model {name!r} must be a dict")
        user = to_json_safe(dict(metadata or {}))
        clashes = [key for key in RESERVED_KEYS if key in user]
        if clashes:
            raise UsageError(
                f"metadata for model {name!r} may not set {', '.join(clashes)}: the store writes it"
            )
        if "estimator" not in user:
            user["estimator"] = to_json_safe(describe_estimator(model))
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {
            "name": name,
            "version": None,
            "created_at": created,
            **user,
            "artifact": {
                "file": ARTIFACT_FILE,
                "sha256": content_hash(data),
                "bytes": len(data),
                "format": "skops",
                "untrusted_types": untrusted_types(data),
            },
            "library_versions": library_versions(),
            "files": files,
            INTERFACE_KEY: to_json_safe(describe_interface(model, user)),
        }

    def _next_version(self, name: str) -> int:
        """One past every number in use under ``name``, complete or not (a claim counts too)."""
        self.fs.invalidate_cache()
        try:
            entries = self.fs.ls(self._path(name), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return 1
        numbers = [int(p.rstrip("/").rsplit("/", 1)[-1]) for p in entries if is_version_path(p)]
        return max(numbers, default=0) + 1

    def _commit_local(self, name: str, data: bytes, meta: dict, extra: dict) -> ModelRef:
        name_dir = self._path(name)
        created: list[str] = []
        tmp = f"{name_dir}/.tmp-{uuid.uuid4().hex}"
        try:
            created = _make_dirs(name_dir)
            os.mkdir(tmp)
            _write_local(f"{tmp}/{ARTIFACT_FILE}", data)
            for file_name, value in extra.items():
                _write_local(f"{tmp}/{file_name}", _as_bytes(file_name, value))
            version = self._next_version(name)
            for _ in range(_MAX_VERSION_TRIES):
                meta["version"] = version
                _write_local(f"{tmp}/{METADATA_FILE}", _encode(meta))
                try:
                    os.rename(tmp, f"{name_dir}/{version}")
                    return self._ref(name, version)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    version = max(version + 1, self._next_version(name))
            raise SkfleetError(f"no free version number for model {name!r} in {self.display}")
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            for path in reversed(created):
                try:
                    os.rmdir(path)  # only if still empty: another save may be using it
                except OSError:
                    break
            if isinstance(exc, OSError):
                raise self._write_error(exc) from exc
            raise

    def _commit_remote(self, name: str, data: bytes, meta: dict, extra: dict) -> ModelRef:
        version = self._claim(name)
        version_dir = self._path(name, str(version))
        try:
            atomic_write(self.fs, f"{version_dir}/{ARTIFACT_FILE}", data)
            for file_name, value in extra.items():
                atomic_write(self.fs, f"{version_dir}/{file_name}", _as_bytes(file_name, value))
            meta["version"] = version
            atomic_write(self.fs, f"{version_dir}/{METADATA_FILE}", _encode(meta))  # the commit
        except BaseException as exc:
            # Best effort: without model.json the version is invisible anyway.
            with contextlib.suppress(Exception):
                self.fs.rm(version_dir, recursive=True)
            self.fs.invalidate_cache()
            if isinstance(exc, OSError):
                raise self._write_error(exc) from exc
            raise
        self.fs.invalidate_cache()
        return self._ref(name, version)

    def _claim(self, name: str) -> int:
        """Take the next free version number with an exclusive create of its claim file."""
        token = uuid.uuid4().hex.encode()
        version = self._next_version(name)
        for _ in range(_MAX_VERSION_TRIES):
            claim = self._path(name, str(version), _CLAIM_FILE)
            try:
                if atomic_write(self.fs, claim, token, exclusive=True):
                    # Some S3-compatible servers ignore If-None-Match: read back to catch a race.
                    self.fs.invalidate_cache()
                    if self.fs.cat_file(claim) == token:
                        return version
            except OSError as exc:
                raise self._write_error(exc) from exc
            version = max(version + 1, self._next_version(name))
        raise SkfleetError(f"no free version number for model {name!r} in {self.display}")

    def delete(self, ref: str | ModelRef) -> ModelRef:
        """Remove one version; ``ref`` must name it explicitly (``NAME@3``), and no alias may
        point at it."""
        name, version, _ = parse_model_ref(ref)
        if version is None:
            raise UsageError(
                f"delete needs an explicit version: {name}@<version> "
                f"(available versions: {', '.join(map(str, self.versions(name))) or 'none'})"
            )
        mref = self.resolve(ref)
        self.check_no_alias(mref)  # NAME@champion must never point at nothing
        version_dir = self._path(name, str(mref.version))
        with self._writing():
            if self.local:
                # Rename first so the version vanishes in one step, then clean up at leisure.
                trash = self._path(name, f".del-{uuid.uuid4().hex}")
                os.rename(version_dir, trash)
                shutil.rmtree(trash, ignore_errors=True)
                with contextlib.suppress(OSError):  # fails while other versions remain
                    os.rmdir(self._path(name))
            else:
                self.fs.rm(f"{version_dir}/{METADATA_FILE}")  # invisible from here on
                self.fs.rm(version_dir, recursive=True)
        return mref


def _check_files(files: Mapping[str, Any] | None) -> dict[str, Any]:
    if files is None:
        return {}
    if not isinstance(files, Mapping):
        raise UsageError("files must be a dict of file name to bytes")
    for file_name, value in files.items():
        validate_file_name(file_name)
        if file_name in _RESERVED_FILES:
            raise UsageError(f"file name {file_name!r} is written by the store itself")
        if isinstance(value, str | int | float) or value is None:
            raise UsageError(
                f"file {file_name!r} must be given as bytes, not {type(value).__name__}"
            )
    return dict(files)


def _as_bytes(file_name: str, value: Any) -> bytes:
    """Bytes of a ``files`` value; conversion happens at write time (it may raise)."""
    return value if isinstance(value, bytes) else bytes(value)


def _encode(meta: Mapping[str, Any]) -> bytes:
    # Second line of defence: the whole document is redacted again right before it is written.
    text = json.dumps(to_json_safe(meta), indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _make_dirs(path: str) -> list[str]:
    """Create ``path`` and its missing parents; return the ones created, outermost first."""
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    created = []
    try:
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                if not os.path.isdir(folder):
                    raise
                continue
            created.append(folder)
    except OSError:
        for folder in reversed(created):
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise
    return created


def _write_local(path: str, data: bytes) -> None:
    # Synced before the folder's rename publishes it (atomic_write fsyncs).
    atomic_write(None, path, data)
