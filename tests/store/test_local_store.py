"""What only the local-disk store does: temp folders, renames, unwritable paths."""

from __future__ import annotations

import os

import pytest

from skfleet.errors import SkfleetError
from skfleet.store import ModelStore


def test_temp_and_trash_folders_are_not_versions(local_store, pipeline):
    local_store.save("m", pipeline)
    root = local_store.root
    for stray in (".tmp-abc", ".del-abc", "007", "x"):
        os.makedirs(f"{root}/m/{stray}")
        with open(f"{root}/m/{stray}/model.json", "w") as handle:
            handle.write("{}")
    os.makedirs(f"{root}/.tmp-top/1")
    with open(f"{root}/.tmp-top/1/model.json", "w") as handle:
        handle.write("{}")
    assert local_store.versions("m") == [1]
    assert [e["name"] for e in local_store.list()] == ["m"]


def test_a_version_appears_by_rename(local_store, pipeline, monkeypatch):
    # While the version is being written it lives only in a hidden temp folder.
    seen = []
    real_rename = os.rename

    def spy(src, dst):
        seen.append((os.path.basename(src), sorted(os.listdir(src)), local_store.versions("m")))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    local_store.save("m", pipeline, files={"report.html": b"r"})
    ((tmp_name, contents, visible_then),) = seen
    assert tmp_name.startswith(".tmp-")
    assert contents == ["model.json", "model.skops", "report.html"]
    assert visible_then == []
    assert local_store.versions("m") == [1]


def test_taken_version_number_moves_to_the_next(local_store, pipeline, monkeypatch):
    # Another process takes version 1 between our numbering and our rename.
    real_rename = os.rename
    calls = []

    def racing_rename(src, dst):
        if not calls:
            other = ModelStore(local_store.uri)
            monkeypatch.setattr(os, "rename", real_rename)
            other.save("m", pipeline, {"who": "other"})
            monkeypatch.setattr(os, "rename", racing_rename)
        calls.append(dst)
        return real_rename(src, dst)

    local_store.save("m", pipeline, {"who": "first"})  # creates the name folder
    monkeypatch.setattr(os, "rename", racing_rename)
    ref = local_store.save("m", pipeline, {"who": "us"})
    assert [os.path.basename(c) for c in calls] == ["2", "3"]
    assert ref.version == 3
    assert [local_store.metadata(f"m@{v}")["who"] for v in (1, 2, 3)] == ["first", "other", "us"]


def test_file_in_the_way_is_one_line_naming_the_store(tmp_path, pipeline):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    for uri in (str(blocker), str(blocker / "models")):
        store = ModelStore(uri)
        with pytest.raises(SkfleetError) as info:
            store.save("m", pipeline)
        message = str(info.value)
        assert uri in message and "\n" not in message
        assert blocker.read_text() == "not a folder"
    assert sorted(os.listdir(tmp_path)) == ["blocker"]
    with pytest.raises(SkfleetError, match="file where a folder belongs"):
        ModelStore(str(blocker)).list()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_parent_is_refused(tmp_path, pipeline):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(SkfleetError, match="is not writable"):
            ModelStore(str(parent / "models")).save("m", pipeline)
        assert os.listdir(parent) == []
    finally:
        parent.chmod(0o700)


def test_unwritable_system_path_is_refused(pipeline):
    # /proc refuses new folders even for root, so this runs everywhere.
    uri = "/proc/skfleet-no-such-dir/models"
    with pytest.raises(SkfleetError, match=f"model store {uri} is not writable"):
        ModelStore(uri).save("m", pipeline)


def test_crash_removes_the_folders_it_created(tmp_path, pipeline):
    class Boom:
        def __bytes__(self):
            raise RuntimeError("boom")

    store = ModelStore(str(tmp_path / "deep" / "models"))
    with pytest.raises(RuntimeError):
        store.save("m", pipeline, files={"report.html": Boom()})
    assert os.listdir(tmp_path) == []


def test_file_uri_and_default_from_env(tmp_path, pipeline, monkeypatch):
    ref = ModelStore(f"file://{tmp_path}/models").save("m", pipeline)
    assert ref.uri == f"{tmp_path}/models/m/1"
    monkeypatch.setenv("SKFLEET_STORE", str(tmp_path / "models"))
    assert ModelStore().versions("m") == [1]
