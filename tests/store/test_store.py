"""ModelStore behaviour, the same on local disk and on an S3 endpoint."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from skfleet.errors import (
    LibraryVersionWarning,
    ModelNotFoundError,
    SkfleetError,
    SourceNotFoundError,
    UntrustedModelError,
    UsageError,
)
from skfleet.store import ArtifactHashError, LibraryVersionError, ModelStore, content_hash
from tests.store.test_artifact import Exploding, MajorityClassifier


class RaisingBytes:
    """A ``files`` value that fails while the version is being written."""

    def __bytes__(self):
        raise RuntimeError("disk on fire")


def _everything_under(store: ModelStore) -> list[str]:
    store.fs.invalidate_cache()
    try:
        return store.fs.find(store.root, withdirs=True)
    except FileNotFoundError:
        return []


def _line(slope: float) -> LinearRegression:
    return LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, slope]))


def test_versions_count_up_and_refs_resolve(store):
    refs = [store.save("line", _line(s), {"slope": s}) for s in (1.0, 2.0, 3.0)]
    assert [r.version for r in refs] == [1, 2, 3]
    assert refs[1].uri.endswith("line/2") and str(refs[1]) == "line@2"
    assert store.versions("line") == [1, 2, 3]
    assert store.load("line").ref.version == 3
    assert store.load("line@latest").metadata["slope"] == 3.0
    loaded = store.load("line@2")
    assert loaded.metadata["version"] == 2 and loaded.metadata["slope"] == 2.0
    assert loaded.model.predict(np.array([[1.0]]))[0] == pytest.approx(2.0)
    assert loaded.content_hash == content_hash(store.artifact_bytes("line@2"))


def test_model_json_holds_store_fields_and_caller_metadata(store, pipeline):
    ref = store.save(
        "churn",
        pipeline,
        {"metrics": {"roc_auc": np.float64(0.91)}, "rows": {"train": np.int64(80)}},
        files={"report.html": b"<html>hi</html>"},
    )
    meta = json.loads(store.read_file(ref, "model.json"))
    assert meta == store.metadata("churn@1")
    assert meta["name"] == "churn" and meta["version"] == 1
    assert meta["created_at"].endswith("Z")
    assert meta["metrics"] == {"roc_auc": 0.91} and meta["rows"] == {"train": 80}
    assert meta["estimator"]["class"] == "sklearn.pipeline.Pipeline"
    artifact = store.artifact_bytes(ref)
    assert meta["artifact"] == {
        "file": "model.skops",
        "sha256": content_hash(artifact),
        "bytes": len(artifact),
        "format": "skops",
        "untrusted_types": [],
    }
    assert set(meta["library_versions"]) >= {"python", "skfleet", "sklearn", "numpy", "skops"}
    assert meta["files"] == ["report.html"]
    assert store.read_file("churn", "report.html") == b"<html>hi</html>"


def test_passwords_never_reach_model_json(store, pipeline):
    store.save("m", pipeline, {"training_source": {"url": "postgresql://u:secret@h/db"}})
    raw = store.read_file("m", "model.json")
    assert b"secret" not in raw
    assert store.metadata("m")["training_source"]["url"] == "postgresql://u:***@h/db"


def test_local_path_is_none_only_on_remote_stores(store, pipeline):
    store.save("m", pipeline, files={"report.html": b"<p>r</p>"})
    path = store.local_path("m", "report.html")
    if store.local:
        with open(path, "rb") as handle:
            assert handle.read() == b"<p>r</p>"
    else:
        assert path is None
    with pytest.raises(SourceNotFoundError, match="m@1 has no oof.parquet"):
        store.read_file("m", "oof.parquet")


def test_unknown_refs_name_the_model_and_the_versions(store, pipeline):
    store.save("m", pipeline)
    store.save("m", pipeline)
    with pytest.raises(
        ModelNotFoundError, match=r"'m' has no version 5 .*available versions: 1, 2"
    ):
        store.load("m@5")
    with pytest.raises(ModelNotFoundError, match=r"no model named 'other' .*available models: m"):
        store.metadata("other")


def test_list_summarises_every_model(store, pipeline):
    store.save("a", pipeline, {"metrics": {"roc_auc": {"mean": 0.8}}, "main_metric": "roc_auc"})
    store.save("a", pipeline, {"metrics": {"roc_auc": {"mean": 0.9}}, "main_metric": "roc_auc"})
    store.save("b", _line(1.0), {"metrics": {"r2": 1.0}})
    listing = store.list()
    assert [e["name"] for e in listing] == ["a", "b"]
    a, b = listing
    assert a["latest_version"] == 2 and a["versions"] == [1, 2]
    assert a["main_metric"] == {"name": "roc_auc", "value": 0.9}
    assert a["estimator"] == "sklearn.pipeline.Pipeline"
    assert a["created_at"] == store.metadata("a@2")["created_at"]
    assert b["main_metric"] == {"name": "r2", "value": 1.0}
    assert b["estimator"].endswith("LinearRegression")


def test_delete_needs_a_version_and_removes_only_it(store, pipeline):
    for _ in range(3):
        store.save("m", pipeline)
    with pytest.raises(UsageError, match="explicit version"):
        store.delete("m")
    assert store.delete("m@2").version == 2
    assert store.versions("m") == [1, 3]
    with pytest.raises(ModelNotFoundError, match="available versions: 1, 3"):
        store.load("m@2")
    assert store.save("m", pipeline).version == 4  # numbers count up past the latest
    store.delete("m@1"), store.delete("m@3"), store.delete("m@4")
    assert store.list() == []


def test_a_crash_mid_save_leaves_nothing(store, pipeline):
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save("m", pipeline, files={"oof.parquet": b"ok", "report.html": RaisingBytes()})
    assert store.versions("m") == [] and store.list() == []
    assert _everything_under(store) == []
    assert store.save("m", pipeline).version == 1


def test_an_unserialisable_model_stores_nothing(store):
    with pytest.raises(UsageError, match="cannot save Exploding"):
        store.save("m", Exploding())
    assert _everything_under(store) == []


def test_a_version_without_model_json_is_invisible_and_skipped(store, pipeline):
    # What a crash on S3 between the artifact and model.json leaves behind.
    store.fs.makedirs(f"{store.root}/m/1", exist_ok=True)
    store.fs.pipe_file(f"{store.root}/m/1/model.skops", b"half")
    assert store.versions("m") == [] and store.list() == []
    with pytest.raises(ModelNotFoundError):
        store.load("m")
    assert store.save("m", pipeline).version == 2


def test_tampered_artifact_is_refused(store, pipeline):
    ref = store.save("m", pipeline)
    data = bytearray(store.artifact_bytes(ref))
    data[100] ^= 0xFF
    store.fs.pipe_file(f"{store.root}/m/1/model.skops", bytes(data))
    with pytest.raises(ArtifactHashError, match="hash mismatch"):
        store.load("m")


def test_untrusted_types_need_trust(store, xy):
    X, y = xy
    store.save("custom", MajorityClassifier().fit(X, y))
    meta = store.metadata("custom")
    assert meta["artifact"]["untrusted_types"] == ["tests.store.test_artifact.MajorityClassifier"]
    with pytest.raises(UntrustedModelError, match="MajorityClassifier.*trust=True"):
        store.load("custom")
    assert store.load("custom", trust=True).model.predict(X[:2]).shape == (2,)


def test_library_version_mismatch_warns_or_errors(store, pipeline):
    store.save("m", pipeline)
    meta = store.metadata("m")
    meta["library_versions"]["sklearn"] = "0.1.0"
    store.fs.pipe_file(f"{store.root}/m/1/model.json", json.dumps(meta).encode())
    with pytest.warns(LibraryVersionWarning, match="m@1 was saved with other library versions"):
        store.load("m")
    with pytest.raises(LibraryVersionError):
        store.load("m", on_version_mismatch="error")
    assert store.load("m", on_version_mismatch="ignore").ref.version == 1


@pytest.mark.parametrize("name", ["a/b", "..", "../x", "x..y", "", "a" * 101])
def test_bad_names_store_nothing(store, pipeline, name):
    with pytest.raises(UsageError, match="is not allowed"):
        store.save(name, pipeline)
    assert _everything_under(store) == []


@pytest.mark.parametrize(
    ("metadata", "files", "match"),
    [
        ({"version": 9}, None, "may not set version"),
        ({"obj": object()}, None, "metadata.obj holds a object"),
        (None, {"../x": b""}, "file name '../x' is not allowed"),
        (None, {"model.json": b"{}"}, "written by the store itself"),
        (None, {"report.html": "text"}, "must be given as bytes"),
    ],
)
def test_bad_metadata_or_files_store_nothing(store, pipeline, metadata, files, match):
    with pytest.raises(UsageError, match=match):
        store.save("m", pipeline, metadata, files)
    assert _everything_under(store) == []


def test_concurrent_saves_get_distinct_versions(store):
    errors: list[BaseException] = []

    def save(slope):
        try:
            ModelStore(store.uri).save("race", _line(slope), {"slope": slope})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(float(s),)) for s in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.versions("race") == [1, 2, 3, 4]
    slopes = {store.metadata(f"race@{v}")["slope"] for v in (1, 2, 3, 4)}
    assert slopes == {1.0, 2.0, 3.0, 4.0}
    for v in (1, 2, 3, 4):
        loaded = store.load(f"race@{v}")
        assert loaded.model.coef_[0] == pytest.approx(loaded.metadata["slope"])


def test_an_absent_store_is_empty(store):
    assert store.list() == [] and store.versions("m") == []


def test_a_damaged_artifact_is_a_one_line_error(store, pipeline):
    """An artifact changed after it was stored fails its hash check: one line, never loaded."""
    ref = store.save("m", pipeline)
    artifact = f"{ref.uri}/model.skops"
    data = bytearray(store.fs.cat_file(artifact))
    data[len(data) // 2] ^= 0xFF
    store.fs.pipe_file(artifact, bytes(data))
    with pytest.raises(ArtifactHashError) as caught:
        store.load("m@1")
    assert isinstance(caught.value, SkfleetError) and "\n" not in str(caught.value)


def test_a_stale_version_number_never_overwrites(store, pipeline, monkeypatch):
    # As if the listing lagged behind another writer: numbering proposes a taken version.
    store.save("m", pipeline, {"who": "first"})
    proposals = iter([1, 1, 1])
    monkeypatch.setattr(store, "_next_version", lambda name: next(proposals, 1))
    assert store.save("m", pipeline, {"who": "second"}).version == 2
    assert [store.metadata(f"m@{v}")["who"] for v in (1, 2)] == ["first", "second"]


def test_missing_bucket_is_one_line_naming_the_store(s3, pipeline):
    uri = "s3://skfleet-no-such-bucket/models"
    with pytest.raises(SkfleetError) as info:
        ModelStore(uri).save("m", pipeline)
    assert str(info.value) == (
        f"model store {uri} is not writable: its bucket or a parent folder does not exist"
    )
