"""The model store: ``NAME/VERSION/`` folders on local disk or S3 (any fsspec filesystem).

Each version holds ``model.skops`` (the artifact), ``model.json`` (metadata) and whatever extra
files the caller hands in (``oof.parquet``, ``report.html``). A version exists exactly when its
``model.json`` does, and ``model.json`` is the last thing written, so a version appears whole or
not at all:

- local disk: everything is written into ``NAME/.tmp-<uuid>/`` and renamed to ``NAME/<v>/`` in one
  step; if another process took ``<v>`` meanwhile, the next number is tried.
- object stores: ``NAME/<v>/.claim`` is created with an exclusive write (``If-None-Match: *``) to
  take the number, then the files are written and ``model.json`` last.

>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> store = ModelStore("memory://doc-store/models")
>>> model = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), [1.0, 3.0, 5.0])
>>> store.save("line", model, {"metrics": {"r2": 1.0}})
ModelRef(name='line', version=1, uri='memory://doc-store/models/line/1')
>>> store.save("line", model, {"metrics": {"r2": 1.0}}).version
2
>>> loaded = store.load("line@1")
>>> loaded.ref.version, loaded.model.predict(np.array([[3.0]])).round(6).tolist()
(1, [7.0])
>>> store.load("line").ref.version, store.versions("line")
(2, [1, 2])
>>> store.load("line@7")
Traceback (most recent call last):
...
skfleet.errors.ModelNotFoundError: model 'line' has no version 7 in store memory://doc-store/models (available versions: 1, 2)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skfleet.errors import ModelNotFoundError, SkfleetError, SourceNotFoundError, UsageError
from skfleet.store.artifact import content_hash, dump_artifact, load_artifact, untrusted_types
from skfleet.store.fs import is_local, open_store_fs
from skfleet.store.metadata import (
    check_library_versions,
    describe_estimator,
    library_versions,
    to_json_safe,
)
from skfleet.store.refs import ModelRef, parse_model_ref, validate_file_name, validate_name
from skfleet.util.atomic import atomic_write
from skfleet.util.redact import redact_text, redact_url

ARTIFACT_FILE = "model.skops"
METADATA_FILE = "model.json"
_CLAIM_FILE = ".claim"
_RESERVED_FILES = {ARTIFACT_FILE, METADATA_FILE}
#: Fields of ``model.json`` that the store itself writes; callers may not pass them.
RESERVED_KEYS = ("name", "version", "created_at", "artifact", "library_versions", "files")
DEFAULT_STORE = "./skfleet-models"
_MAX_VERSION_TRIES = 1000


def default_store_uri() -> str:
    """``$SKFLEET_STORE`` if set, else ``./skfleet-models``."""
    return os.environ.get("SKFLEET_STORE") or DEFAULT_STORE


@dataclass(frozen=True)
class LoadedModel:
    """A model read back from the store, with its metadata and the hash it was checked against."""

    model: Any
    metadata: dict
    ref: ModelRef
    content_hash: str


class ModelStore:
    """Versioned models under one folder or URL (``./skfleet-models``, ``s3://bucket/prefix``)."""

    def __init__(self, uri: str | os.PathLike | None = None):
        self.uri = os.fspath(uri) if uri is not None else default_store_uri()
        self.fs, self.root = open_store_fs(self.uri)
        self.local = is_local(self.fs)
        self.display = redact_url(self.uri)

    def __repr__(self) -> str:
        return f"ModelStore({self.display!r})"

    # -- paths -----------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts]) if parts else self.root

    def _ref(self, name: str, version: int) -> ModelRef:
        if self.local:
            return ModelRef(name, version, self._path(name, str(version)))
        # Keep the user's spelling of the store URL (s3://bucket/prefix) for remote stores.
        return ModelRef(name, version, f"{self.uri.rstrip('/')}/{name}/{version}")

    def _write_error(self, exc: OSError) -> SkfleetError:
        if isinstance(exc, FileNotFoundError):
            reason = "its bucket or a parent folder does not exist"
        else:
            reason = exc.strerror or str(exc) or type(exc).__name__
        return SkfleetError(f"model store {self.display} is not writable: {redact_text(reason)}")

    # -- reading the layout ----------------------------------------------------------------------

    def _find(self, path: str) -> list[str]:
        """Every file below ``path`` (fresh, not from a listing cache); [] if it does not exist."""
        self.fs.invalidate_cache()
        try:
            if self.fs.isfile(path):
                raise SkfleetError(f"model store {self.display} has a file where a folder belongs")
            return self.fs.find(path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SkfleetError(f"model store {self.display} cannot be read: {exc}") from exc

    def _complete(self, base: str, found: list[str]) -> dict[str, set[int]]:
        """Names and version numbers that have a ``model.json`` among ``found`` paths."""
        out: dict[str, set[int]] = {}
        prefix = base.rstrip("/") + "/"
        for path in found:
            parts = path[len(prefix) :].split("/") if path.startswith(prefix) else []
            if len(parts) == 3 and parts[2] == METADATA_FILE and _is_version(parts[1]):
                out.setdefault(parts[0], set()).add(int(parts[1]))
        return out

    def versions(self, name: str) -> list[int]:
        """Complete versions of ``name``, ascending ([] if there is no such model)."""
        validate_name(name)
        found = self._find(self._path(name))
        return sorted(self._complete(self.root, found).get(name, set()))

    def names(self) -> list[str]:
        """Names of all models with at least one complete version."""
        found = self._complete(self.root, self._find(self.root))
        return sorted(n for n in found if _valid_name(n))

    def resolve(self, ref: str | ModelRef) -> ModelRef:
        """The stored version ``ref`` means (``NAME`` is the latest)."""
        name, version = parse_model_ref(ref)
        versions = self.versions(name)
        if not versions:
            available = self.names()
            listing = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
            raise ModelNotFoundError(
                f"no model named {name!r} in store {self.display} "
                f"(available models: {listing or 'none'})"
            )
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version} in store {self.display} "
                f"(available versions: {', '.join(map(str, versions))})"
            )
        return self._ref(name, version)

    def _read(self, ref: ModelRef, file_name: str) -> bytes:
        path = self._path(ref.name, str(ref.version), file_name)
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise SourceNotFoundError(
                f"model {ref} has no {file_name} in store {self.display}"
            ) from exc
        except OSError as exc:
            raise SkfleetError(f"model store {self.display} cannot be read: {exc}") from exc

    def metadata(self, ref: str | ModelRef) -> dict:
        """The ``model.json`` of ``ref``."""
        mref = self.resolve(ref)
        try:
            return json.loads(self._read(mref, METADATA_FILE))
        except ValueError as exc:
            raise SkfleetError(f"model.json of {mref} in store {self.display} is damaged") from exc

    def read_file(self, ref: str | ModelRef, file_name: str) -> bytes:
        """The bytes of one file of a version (``report.html``, ``oof.parquet``, ...)."""
        validate_file_name(file_name)
        return self._read(self.resolve(ref), file_name)

    def local_path(self, ref: str | ModelRef, file_name: str) -> str | None:
        """The path of a version's file on local disk, or None when the store is remote."""
        validate_file_name(file_name)
        mref = self.resolve(ref)
        if not self.local:
            return None
        path = self._path(mref.name, str(mref.version), file_name)
        if not os.path.isfile(path):
            raise SourceNotFoundError(f"model {mref} has no {file_name} in store {self.display}")
        return path

    def artifact_bytes(self, ref: str | ModelRef) -> bytes:
        """The ``model.skops`` bytes of ``ref`` (check them with :func:`load_artifact`)."""
        return self._read(self.resolve(ref), ARTIFACT_FILE)

    def load(
        self, ref: str | ModelRef, trust: bool = False, on_version_mismatch: str = "warn"
    ) -> LoadedModel:
        """Read, hash-check and safely deserialise a stored model."""
        mref = self.resolve(ref)
        meta = self.metadata(mref)
        check_library_versions(meta, on_version_mismatch, label=f"model {mref}")
        expected = (meta.get("artifact") or {}).get("sha256")
        if not isinstance(expected, str):
            raise SkfleetError(f"model.json of {mref} in store {self.display} has no artifact hash")
        model = load_artifact(self._read(mref, ARTIFACT_FILE), expected, trust=trust)
        return LoadedModel(model=model, metadata=meta, ref=mref, content_hash=expected)

    def list(self) -> list[dict]:
        """One summary per model: name, latest version, versions, created_at, estimator, metric."""
        out = []
        for name, versions in sorted(self._complete(self.root, self._find(self.root)).items()):
            if not _valid_name(name):
                continue
            latest = max(versions)
            try:
                meta = json.loads(self._read(self._ref(name, latest), METADATA_FILE))
            except (SkfleetError, ValueError):
                meta = {}
            out.append(
                {
                    "name": name,
                    "latest_version": latest,
                    "versions": sorted(versions),
                    "created_at": meta.get("created_at"),
                    "estimator": _estimator_class(meta),
                    "main_metric": main_metric(meta),
                }
            )
        return out

    # -- writing ---------------------------------------------------------------------------------

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
        }

    def _next_version(self, name: str) -> int:
        """One past every number in use under ``name``, complete or not (a claim counts too)."""
        self.fs.invalidate_cache()
        try:
            entries = self.fs.ls(self._path(name), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return 1
        numbers = [int(p.rstrip("/").rsplit("/", 1)[-1]) for p in entries if _is_version_path(p)]
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
        """Remove one version; ``ref`` must name it explicitly (``NAME@3``)."""
        name, version = parse_model_ref(ref)
        if version is None:
            raise UsageError(
                f"delete needs an explicit version: {name}@<version> "
                f"(available versions: {', '.join(map(str, self.versions(name))) or 'none'})"
            )
        mref = self.resolve(ref)
        version_dir = self._path(name, str(mref.version))
        try:
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
        except OSError as exc:
            raise self._write_error(exc) from exc
        finally:
            self.fs.invalidate_cache()
        return mref


def main_metric(meta: Mapping[str, Any]) -> dict | None:
    """The headline metric of a ``model.json`` as ``{"name", "value"}``, or None.

    ``main_metric`` may name an entry of ``metrics`` (or be ``{"name", "value"}``); otherwise the
    first numeric entry of ``metrics`` is used. An entry may be a number or hold ``mean``/``value``.

    >>> main_metric({"metrics": {"roc_auc": {"mean": 0.81, "std": 0.01}}, "main_metric": "roc_auc"})
    {'name': 'roc_auc', 'value': 0.81}
    >>> main_metric({"metrics": {"r2": 0.5, "mae": 3.0}})
    {'name': 'r2', 'value': 0.5}
    """
    metrics = meta.get("metrics")
    metrics = metrics if isinstance(metrics, Mapping) else {}
    chosen = meta.get("main_metric")
    if isinstance(chosen, Mapping) and "name" in chosen:
        value = chosen.get("value", _metric_value(metrics.get(chosen["name"])))
        return {"name": chosen["name"], "value": value}
    if isinstance(chosen, str):
        return {"name": chosen, "value": _metric_value(metrics.get(chosen))}
    for key, entry in metrics.items():
        value = _metric_value(entry)
        if value is not None:
            return {"name": key, "value": value}
    return None


def _metric_value(entry: Any) -> float | None:
    if isinstance(entry, bool):
        return None
    if isinstance(entry, int | float):
        return entry
    if isinstance(entry, Mapping):
        for key in ("mean", "value"):
            if isinstance(entry.get(key), int | float) and not isinstance(entry.get(key), bool):
                return entry[key]
    return None


def _estimator_class(meta: Mapping[str, Any]) -> str | None:
    estimator = meta.get("estimator")
    if isinstance(estimator, Mapping):
        return estimator.get("class")
    return estimator if isinstance(estimator, str) else None


def _is_version(text: str) -> bool:
    return text.isascii() and text.isdigit() and str(int(text)) == text and int(text) > 0


def _is_version_path(path: str) -> bool:
    return _is_version(path.rstrip("/").rsplit("/", 1)[-1])


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except UsageError:
        return False
    return True


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
