"""Files are written as streams: a part is encoded straight into its temporary file (on S3, its
upload), and a single-file commit copies the staged parts into the output a bounded chunk at a
time, so that neither ever holds a whole file as bytes. The exclusive create that makes a part the
record of its partition holds for the streamed writes as it does for bytes."""

from __future__ import annotations

import os
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skfleet.data import open_sink
from skfleet.data.files import parquet_format, single
from skfleet.data.files.store import FileStore
from skfleet.util import atomic
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


def test_a_part_is_encoded_into_its_file_not_into_bytes(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a part was built in memory")

    monkeypatch.setattr(pa, "BufferOutputStream", refuse)
    sink = open_sink(str(tmp_path / "t") + "/")
    table = pa.table({"id": np.arange(1_000), "x": np.linspace(0, 1, 1_000)})
    sink.open(table.schema)
    assert sink.write("p0", table) == 1_000
    sink.commit()
    assert pq.read_table(tmp_path / "t" / "part-p0.parquet").equals(table)


# -- a single-file commit holds a bounded chunk, never the file --------------------------------
def random_parts(parts: int, rows: int) -> list[pa.Table]:
    rng = np.random.default_rng(0)
    return [
        pa.table({"id": np.arange(i * rows, (i + 1) * rows), "x": rng.random(rows)})
        for i in range(parts)
    ]


@pytest.mark.parametrize("name", ["scores.parquet", "scores.csv"])
def test_single_file_commit_memory_is_bounded_by_the_chunk(tmp_path, monkeypatch, name):
    chunk = 256 << 10
    monkeypatch.setattr(parquet_format, "COPY_BYTES", chunk)
    monkeypatch.setattr(single, "COPY_BYTES", chunk)
    tables = random_parts(4, 100_000)  # random floats: ~1 MB a part even compressed
    target = tmp_path / name
    sink = open_sink(str(target))
    sink.open(tables[0].schema, run_id="big")
    for index, table in enumerate(tables):
        sink.write(f"p{index}", table)
    tracemalloc.start()
    try:
        sink.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = target.stat().st_size
    assert size > 3_000_000
    # Bytes held as Python objects (what reading a part or the file whole makes; Arrow's own
    # buffers are not traced): for Parquet a chunk or two; CSV parts are decoded, one at a time,
    # and the CSV reader holds a few of its 1 MiB blocks of that part.
    assert peak < (4 * chunk if name.endswith(".parquet") else size // 2), (peak, size)
    read = pq.read_table if name.endswith(".parquet") else pd.read_csv
    got = read(target)
    assert list(np.asarray(got["id"])) == list(range(400_000))
    # A resume of the committed run recognises the file by its record (size and digest).
    again = open_sink(str(target))
    again.open(tables[0].schema, run_id="big")
    assert again.committed() == {f"p{i}": 100_000 for i in range(4)}


def test_commit_cut_short_between_record_and_file_is_recomposed(tmp_path, monkeypatch):
    target = tmp_path / "scores.csv"
    sink = open_sink(str(target))
    sink.open(pa.schema([("id", pa.int64())]), run_id="old")
    sink.write("p0", pa.table({"id": [0, 1, 2]}))
    sink.commit()
    sink = open_sink(str(target))
    sink.open(pa.schema([("id", pa.int64())]), if_exists="append", run_id="late")
    sink.write("p0", pa.table({"id": [3, 4]}))
    replace = os.replace

    def killed_before_the_file(src, dst):
        if os.fspath(dst) == str(target):
            raise Boom()
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_before_the_file)
    with pytest.raises(Boom):
        sink.commit()
    monkeypatch.setattr(atomic.os, "replace", replace)
    # The record of run "late" was written; the file is still the old one, and no temp file.
    assert '"late"' in (tmp_path / ".scores.csv.skfleet.json").read_text()
    assert pd.read_csv(target)["id"].tolist() == [0, 1, 2]
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    again = open_sink(str(target))
    again.open(pa.schema([("id", pa.int64())]), if_exists="append", run_id="late")
    again.commit()
    assert pd.read_csv(target)["id"].tolist() == [0, 1, 2, 3, 4]
