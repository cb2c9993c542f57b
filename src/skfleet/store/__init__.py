"""The model store: versioned, hash-checked, safely loadable models on local disk or S3.

>>> from skfleet.store import ModelStore, parse_model_ref
>>> parse_model_ref("churn@2")
ParsedRef(name='churn', version=2, alias=None)
>>> ModelStore("memory://doc-init/models").list()
[]
"""

from __future__ import annotations

from skfleet.store.artifact import (
    ArtifactHashError,
    content_hash,
    dump_artifact,
    load_artifact,
    untrusted_types,
)
from skfleet.store.metadata import LibraryVersionError, check_library_versions, library_versions
from skfleet.store.refs import ModelRef, ParsedRef, parse_model_ref, validate_name
from skfleet.store.store import (
    DEFAULT_STORE,
    RESERVED_KEYS,
    LoadedModel,
    ModelStore,
    default_store_uri,
    main_metric,
)


def __getattr__(name: str):
    # The trust policy imports skops and scikit-learn: loaded when first asked for, so that a
    # client planning from model.json alone never imports them.
    if name == "TRUSTED_PACKAGES":
        from skfleet.store.trust import TRUSTED_PACKAGES

        return TRUSTED_PACKAGES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_model(
    ref: str | ModelRef,
    store: str | None = None,
    trust: bool = False,
    on_version_mismatch: str = "warn",
) -> LoadedModel:
    """Load ``ref`` (``NAME`` or ``NAME@3``) from ``store`` (default ``$SKFLEET_STORE`` or
    ``./skfleet-models``); ``.model`` is the estimator, ``.metadata`` its ``model.json``."""
    return ModelStore(store).load(ref, trust=trust, on_version_mismatch=on_version_mismatch)


__all__ = [
    "DEFAULT_STORE",
    "RESERVED_KEYS",
    "TRUSTED_PACKAGES",
    "ArtifactHashError",
    "LibraryVersionError",
    "LoadedModel",
    "ModelRef",
    "ModelStore",
    "ParsedRef",
    "check_library_versions",
    "content_hash",
    "default_store_uri",
    "dump_artifact",
    "library_versions",
    "load_artifact",
    "load_model",
    "main_metric",
    "parse_model_ref",
    "untrusted_types",
    "validate_name",
]
