"""Files can be written as streams (:func:`skfleet.util.atomic.atomic_write` given a function
that writes into the open file). The exclusive create that makes a part the record of its
partition holds for the streamed writes as it does for bytes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from skfleet.data.files.store import FileStore
from skfleet.util.atomic import atomic_write


class Boom(Exception):
    pass


def half_then_fail(handle):
    handle.write(b"half of it")
    raise Boom()


# -- the streamed atomic write -------------------------------------------------------------------
def test_local_stream_publishes_whole_or_nothing(tmp_path):
    path = str(tmp_path / "part.bin")
    with pytest.raises(Boom):
        atomic_write(None, path, half_then_fail, exclusive=True)
    assert os.listdir(tmp_path) == []  # nothing published, the temporary file removed
    assert atomic_write(None, path, lambda handle: handle.write(b"mine"), exclusive=True)
    called = []
    assert not atomic_write(None, path, called.append, exclusive=True)
    assert called == []  # known to exist: the content is not even produced
    assert Path(path).read_bytes() == b"mine"
    assert atomic_write(None, path, lambda handle: handle.write(b"new"))  # replacing
    assert Path(path).read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["part.bin"]


def test_local_stream_loses_a_race_to_a_file_that_appeared_meanwhile(tmp_path):
    path = str(tmp_path / "part.bin")

    def racing(handle):
        handle.write(b"late")
        with open(path, "wb") as other:  # another writer publishes first
            other.write(b"first")

    assert not atomic_write(None, path, racing, exclusive=True)
    assert Path(path).read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["part.bin"]


def test_s3_stream_is_a_conditional_upload(s3):
    store, path = FileStore.from_url(s3.url(f"{uuid.uuid4().hex}/part.bin"))
    fs = store.fs
    with pytest.raises(Boom):
        store.put_new(path, half_then_fail)
    assert not fs.exists(path)
    assert store.put_new(path, lambda handle: handle.write(b"mine"))
    assert not store.put_new(path, lambda handle: handle.write(b"again"))
    assert store.cat(path) == b"mine"

    raced = path + ".raced"

    def racing(handle):
        handle.write(b"late")
        fs.pipe_file(raced, b"first")

    # The object did not exist when the upload began: If-None-Match refuses it at the end.
    assert not store.put_new(raced, racing)
    assert store.cat(raced) == b"first"
    store.put(raced, lambda handle: handle.write(b"replaced"))
    assert store.cat(raced) == b"replaced"
    empty = path + ".empty"
    assert store.put_new(empty, lambda handle: None)
    assert not store.put_new(empty, lambda handle: None)
    assert store.cat(empty) == b""
