"""model.json contents: JSON conversion, redaction and library version checks."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from skfleet.errors import LibraryVersionWarning, UsageError
from skfleet.store import LibraryVersionError, check_library_versions, library_versions
from skfleet.store.metadata import to_json_safe, versions_differ


def test_numpy_values_become_plain_json():
    out = to_json_safe(
        {
            "n": np.int64(7),
            "f": np.float32(0.5),
            "b": np.bool_(True),
            "arr": np.arange(3),
            "nested": {"t": (1, np.float64(2.5))},
            "nan": float("nan"),
            "inf": np.float64(np.inf),
            "s": {3, 1},
            "p": Path("/data/x.parquet"),
            "when": dt.datetime(2024, 1, 2, 3, 4, 5),
            7: "int key",
        }
    )
    assert out == {
        "n": 7,
        "f": 0.5,
        "b": True,
        "arr": [0, 1, 2],
        "nested": {"t": [1, 2.5]},
        "nan": None,
        "inf": None,
        "s": [1, 3],
        "p": "/data/x.parquet",
        "when": "2024-01-02T03:04:05",
        "7": "int key",
    }
    json.dumps(out, allow_nan=False)  # strictly valid JSON


def test_strings_are_redacted_everywhere():
    out = to_json_safe(
        {
            "source": "postgresql://u:secret@h/db",
            "list": ["x password=hunter2 y"],
            "postgresql://a:pw2@h/db": 1,
        }
    )
    text = json.dumps(out)
    for secret in ("secret", "hunter2", "pw2"):
        assert secret not in text


def test_unknown_objects_are_refused_naming_the_key():
    with pytest.raises(UsageError, match=r"metadata\.extra\.obj holds a object"):
        to_json_safe({"extra": {"obj": object()}})


def test_version_comparison_uses_major_minor():
    assert not versions_differ("1.9.1", "1.9.0")
    assert versions_differ("1.9.1", "1.10.0")
    assert versions_differ("2.0", "1.9")
    assert not versions_differ(None, "1.9")


def _saved_with(**overrides):
    versions = library_versions()
    versions.update(overrides)
    return {"library_versions": versions}


def test_matching_versions_pass_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_library_versions(_saved_with(sklearn=library_versions()["sklearn"])) == []


def test_mismatch_warns_errors_or_is_ignored():
    meta = _saved_with(sklearn="0.1.0")
    with pytest.warns(LibraryVersionWarning, match=r"sklearn 0\.1\.0 \(saved\)"):
        check_library_versions(meta, "warn")
    with pytest.raises(LibraryVersionError, match="sklearn 0.1.0"):
        check_library_versions(meta, "error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(check_library_versions(meta, "ignore")) == 1
    with pytest.raises(UsageError, match="on_version_mismatch='sometimes'"):
        check_library_versions(meta, "sometimes")
