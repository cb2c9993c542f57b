"""Aliases (``NAME@champion``): set, moved, deleted and resolved the same on local disk and S3."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from skfleet.errors import ModelNotFoundError, SkfleetError, UsageError
from skfleet.store import ModelStore


def _line(slope: float) -> LinearRegression:
    return LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, slope]))


def _three(store: ModelStore) -> None:
    for slope in (1.0, 2.0, 3.0):
        store.save("line", _line(slope), {"slope": slope})


def _files(store: ModelStore) -> list[str]:
    store.fs.invalidate_cache()
    return sorted(store.fs.find(store.root))


def test_alias_resolves_everywhere_and_moves_in_one_write(store):
    _three(store)
    assert store.set_alias("line@2", "champion").version == 2
    assert store.resolve("line@champion").version == 2
    assert store.metadata("line@champion")["slope"] == 2.0
    loaded = store.load("line@champion")
    assert loaded.ref.version == 2 and str(loaded.ref) == "line@2"
    assert loaded.model.predict(np.array([[1.0]]))[0] == pytest.approx(2.0)
    assert store.read_file("line@champion", "model.skops") == store.artifact_bytes("line@2")
    # An alias may be set from another alias or from NAME (the latest).
    assert store.set_alias("line@champion", "staging").version == 2
    assert store.set_alias("line", "champion").version == 3
    assert store.aliases("line") == {"champion": 3, "staging": 2}
    assert store.resolve("line@champion").version == 3
    # Neither the alias files nor their temporary files are versions or models.
    assert store.versions("line") == [1, 2, 3] and store.names() == ["line"]
    (entry,) = store.list()
    assert entry["aliases"] == {"champion": 3, "staging": 2} and entry["latest_version"] == 3
    assert not any(".tmp-" in path for path in _files(store))


def test_deleting_an_alias_and_an_aliased_version(store):
    _three(store)
    store.set_alias("line@2", "champion")
    before = _files(store)
    with pytest.raises(UsageError, match="alias 'champion' points at") as info:
        store.delete("line@2")
    assert "skfleet models alias --delete line champion" in str(info.value)
    assert _files(store) == before and store.versions("line") == [1, 2, 3]
    assert store.delete_alias("line", "champion") == 2
    assert store.aliases("line") == {}
    assert str(store.delete("line@2")) == "line@2"
    with pytest.raises(ModelNotFoundError, match="no alias 'champion'"):
        store.delete_alias("line", "champion")


@pytest.mark.parametrize("alias", ["3", "latest", "_x", "a/b", "a..b", "", "x" * 101, "é"])
def test_bad_alias_names_are_refused_and_nothing_is_written(store, alias):
    _three(store)
    before = _files(store)
    with pytest.raises(UsageError, match="is not allowed") as info:
        store.set_alias("line@1", alias)
    assert repr(alias) in str(info.value) and "\n" not in str(info.value)
    assert _files(store) == before


def test_unknown_alias_missing_version_and_damaged_alias(store):
    _three(store)
    with pytest.raises(ModelNotFoundError) as info:
        store.resolve("line@champion")
    message = str(info.value)
    assert "no alias 'champion'" in message and "(aliases: none)" in message
    before = _files(store)
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        store.set_alias("line@7", "champion")
    with pytest.raises(ModelNotFoundError, match="no model named 'other'"):
        store.set_alias("other@1", "champion")
    assert _files(store) == before
    # A version removed behind the store's back: the alias names what is wrong.
    store.set_alias("line@3", "champion")
    store.fs.rm(store._path("line", "3"), recursive=True)
    store.fs.invalidate_cache()
    with pytest.raises(ModelNotFoundError, match="points at version 3, which is not in store"):
        store.resolve("line@champion")
    store.fs.pipe_file(store._alias_path("line", "champion"), b"{not json")
    with pytest.raises(SkfleetError, match="alias 'champion' of model 'line' .* is damaged"):
        store.resolve("line@champion")


def test_readers_never_see_a_half_written_alias(store):
    """Moving the alias while others resolve it: every read gives one of the two versions."""
    _three(store)
    store.set_alias("line@1", "champion")
    seen, errors, stop = set(), [], threading.Event()

    def read() -> None:
        reader = ModelStore(store.uri)
        while not stop.is_set():
            try:
                seen.add(reader.resolve("line@champion").version)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(30):
            store.set_alias(f"line@{1 + i % 2}", "champion")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == [] and seen <= {1, 2} and seen
