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

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skfleet.errors import (
    ConnectionFailedError,
    ModelNotFoundError,
    SkfleetError,
    SourceNotFoundError,
    UsageError,
)
from skfleet.store.aliases import AliasStore
from skfleet.store.artifact import load_artifact
from skfleet.store.fs import is_local, open_store_fs
from skfleet.store.metadata import check_library_versions
from skfleet.store.refs import (
    ARTIFACT_FILE,
    METADATA_FILE,
    ModelRef,
    is_version,
    parse_model_ref,
    passes,
    validate_file_name,
    validate_name,
)
from skfleet.store.summary import estimator_class, main_metric
from skfleet.store.writer import RESERVED_KEYS, StoreWriter
from skfleet.util.redact import redact_text, redact_url

DEFAULT_STORE = "./skfleet-models"

__all__ = ["DEFAULT_STORE", "RESERVED_KEYS", "LoadedModel", "ModelStore", "main_metric"]


def default_store_uri() -> str:
    """``$SKFLEET_STORE`` if set, else ``./skfleet-models``."""
    return os.environ.get("SKFLEET_STORE") or DEFAULT_STORE


@dataclass(frozen=True, repr=False)
class LoadedModel:
    """A model read back from the store, with its metadata and the hash it was checked against.

    In a notebook it scores DataFrames and Arrow tables directly (the same checks and output as
    ``skfleet predict``): :meth:`scores` gives the output table, :meth:`predict` and
    :meth:`predict_proba` the arrays scikit-learn would.
    """

    model: Any
    metadata: dict
    ref: ModelRef
    content_hash: str

    def scores(self, data: Any, key: Any = None, columns: Any = None) -> Any:
        """A pandas DataFrame of key columns, ``prediction`` and ``proba_<class>`` for ``data``."""
        # The scoring step lives with prediction; the model only forwards to it.
        from skfleet.predict.frame import score_frame

        return score_frame(self, data, key=key, columns=columns)

    def predict(self, data: Any) -> Any:
        """Predictions for the rows of ``data`` (a DataFrame or Arrow table), as a numpy array."""
        return self.scores(data, key=(), columns=["prediction"])["prediction"].to_numpy()

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities (rows x classes, in :attr:`classes` order) of a classifier."""
        wanted = [c for c in self.scores_columns() if c.startswith("proba_")]
        if not wanted:
            raise UsageError(f"model {self.ref} gives no class probabilities")
        return self.scores(data, key=(), columns=wanted)[wanted].to_numpy()

    @property
    def classes(self) -> list:
        """Class labels in the estimator's order (empty for a regressor)."""
        return list(self.metadata.get("classes") or [])

    def scores_columns(self) -> list[str]:
        """The output columns :meth:`scores` can give (besides key columns)."""
        from skfleet.predict.scoring import PREDICTION, proba_column

        return [PREDICTION, *(proba_column(c) for c in self.classes)]

    def _summary(self) -> list[tuple[str, str]]:
        meta = self.metadata
        rows = [("model", str(self.ref)), ("kind", f"{meta.get('kind')} {meta.get('task')}")]
        if meta.get("target"):
            rows.append(("target", str(meta["target"])))
        estimator = (meta.get("estimator") or {}).get("class")
        if estimator:
            rows.append(("estimator", str(estimator).rpartition(".")[2]))
        metric = main_metric(meta)
        if metric and isinstance(metric.get("value"), int | float):
            rows.append((metric["name"], f"{metric['value']:.4g}"))
        trained = (meta.get("rows") or {}).get("train")
        if isinstance(trained, int):
            rows.append(("rows", f"{trained:,}"))
        return rows

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self._summary()[1:])
        return f"<LoadedModel {self.ref}: {fields}>"

    def _repr_html_(self) -> str:
        import html

        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        report = f"{self.ref.uri.rstrip('/')}/report.html"
        link = (
            f"<p><a href='{html.escape(report)}'>report</a></p>"
            if "report.html" in (self.metadata.get("files") or [])
            else ""
        )
        return f"<table>{cells}</table>{link}"


class ModelStore(StoreWriter, AliasStore):
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

    # -- reading the layout ----------------------------------------------------------------------

    def _find(self, path: str) -> list[str]:
        """Every file below ``path`` (fresh, not from a listing cache); [] if it does not exist."""
        self.fs.invalidate_cache()
        with self._reading():
            try:
                if self.fs.isfile(path):
                    raise SkfleetError(
                        f"model store {self.display} has a file where a folder belongs"
                    )
                return self.fs.find(path)
            except FileNotFoundError:
                return []

    def _complete(self, base: str, found: list[str]) -> dict[str, set[int]]:
        """Names and version numbers that have a ``model.json`` among ``found`` paths."""
        out: dict[str, set[int]] = {}
        prefix = base.rstrip("/") + "/"
        for path in found:
            parts = path[len(prefix) :].split("/") if path.startswith(prefix) else []
            if len(parts) == 3 and parts[2] == METADATA_FILE and is_version(parts[1]):
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
        return sorted(n for n in found if passes(validate_name, n))

    def resolve(self, ref: str | ModelRef) -> ModelRef:
        """The stored version ``ref`` means (``NAME`` is the latest, ``NAME@ALIAS`` the version
        the alias points at now: callers that must keep to one version keep the result)."""
        name, version, alias = parse_model_ref(ref)
        versions = self.versions(name)
        if not versions:
            available = self.names()
            listing = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
            raise ModelNotFoundError(
                f"no model named {name!r} in store {self.display} "
                f"(available models: {listing or 'none'})"
            )
        if alias is not None:
            version = self.alias_version(name, alias, versions)
        elif version is None:
            version = versions[-1]
        elif version not in versions:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version} in store {self.display} "
                f"(available versions: {', '.join(map(str, versions))})"
            )
        return self._ref(name, version)

    def _read(self, ref: ModelRef, file_name: str) -> bytes:
        path = self._path(ref.name, str(ref.version), file_name)
        with self._reading():
            try:
                return self.fs.cat_file(path)
            except FileNotFoundError as exc:
                raise SourceNotFoundError(
                    f"model {ref} has no {file_name} in store {self.display}"
                ) from exc

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reading the store: a filesystem or S3 client error comes out as one line
        (:meth:`_read_error`); a missing file is the caller's to handle inside the block."""
        try:
            yield
        except Exception as exc:
            error = self._read_error(exc)
            if error is exc:
                raise
            raise error from exc

    def _read_error(self, exc: Exception) -> Exception:
        """A filesystem error, or the S3 client's (no credentials, no endpoint: not OSErrors),
        as one line; anything else as it is."""
        client = type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp")
        if not isinstance(exc, OSError) and not client:
            return exc
        text = redact_text(str(exc) or type(exc).__name__)
        if "credential" in text.lower():
            text += " (check the AWS credentials)"
        return ConnectionFailedError(f"model store {self.display} cannot be read: {text}")

    def metadata(self, ref: str | ModelRef) -> dict:
        """The ``model.json`` of ``ref``."""
        mref = self.resolve(ref)
        try:
            meta = json.loads(self._read(mref, METADATA_FILE))
        except ValueError as exc:
            raise SkfleetError(f"model.json of {mref} in store {self.display} is damaged") from exc
        if not isinstance(meta, dict):
            raise SkfleetError(
                f"model.json of {mref} in store {self.display} is damaged: it holds a JSON "
                f"{type(meta).__name__}, not an object"
            )
        return meta

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
        """One summary per model: name, latest version, versions, aliases, created_at, estimator,
        metric."""
        out = []
        found = self._find(self.root)
        for name, versions in sorted(self._complete(self.root, found).items()):
            if not passes(validate_name, name):
                continue
            latest = max(versions)
            try:
                meta = json.loads(self._read(self._ref(name, latest), METADATA_FILE))
            except (SkfleetError, ValueError):
                meta = {}
            if not isinstance(meta, dict):  # damaged: listed without details, not a crash
                meta = {}
            out.append(
                {
                    "name": name,
                    "latest_version": latest,
                    "versions": sorted(versions),
                    "aliases": self._aliases_among(name, found),
                    "created_at": meta.get("created_at"),
                    "estimator": estimator_class(meta),
                    "main_metric": main_metric(meta),
                }
            )
        return out
