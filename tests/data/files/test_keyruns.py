"""The file sink's key runs and their merge by bucket ranges; key hashes that do not depend on
what else is in a partition."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from skfleet.data.files import keyruns
from skfleet.data.files.sink import FileSink
from skfleet.data.keyhash import BUCKETS, bucket_of, key_hashes, repeats, row_hashes
from skfleet.errors import DataError


def in_process(fn, items):
    return [fn(item) for item in items]


@pytest.mark.parametrize("seed", range(4))
def test_merge_tasks_count_what_one_global_sort_does(tmp_path, seed, monkeypatch):
    """Disjoint, overlapping and nested partitions, negative and hashed keys, split over one
    merge task or many: the count is that of sorting every key together."""
    rng = np.random.default_rng(seed)
    tables = []
    for _ in range(8):
        low = int(rng.integers(-1_000, 1_000))
        ids = rng.integers(low, low + int(rng.integers(1, 400)), size=int(rng.integers(0, 300)))
        tables.append(pa.table({"id": ids.astype(np.int64), "s": ids.astype(str)}))
    for keys in (["id"], ["id", "s"]):
        everything = np.sort(np.concatenate([row_hashes(t, keys) for t in tables]))
        expected = repeats(everything)
        for per_task in (keyruns.HASHES_PER_TASK, 37):
            monkeypatch.setattr(keyruns, "HASHES_PER_TASK", per_task)
            sink = FileSink(str(tmp_path / f"out-{len(keys)}-{per_task}"))
            sink.open(tables[0].schema, run_id="r")
            sink.track_keys(keys)
            for i, table in enumerate(tables):
                sink.write(f"p{i}", table)
            found = sink.duplicate_keys(keys, in_process)
            assert found.rows == expected
            assert (found.example is None) == (expected == 0)
            sink.abort()


def test_the_example_is_a_repeated_key(tmp_path):
    sink = FileSink(str(tmp_path / "out"))
    sink.open(pa.schema([("a", pa.int64()), ("b", pa.string())]), run_id="r")
    sink.track_keys(["a", "b"])
    sink.write("p0", pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    sink.write("p1", pa.table({"a": [2, 3], "b": ["x", "z"]}))
    found = sink.duplicate_keys(["a", "b"], in_process)
    assert found.rows == 1 and found.example == "a=3, b='z'"


def test_a_part_without_its_key_run_is_named(tmp_path):
    """A run whose first attempt wrote parts without key runs cannot be checked: said so."""
    sink = FileSink(str(tmp_path / "out"))
    sink.open(pa.schema([("id", pa.int64())]), run_id="r")
    sink.write("p0", pa.table({"id": [1, 2]}))
    sink.track_keys(["id"])
    sink.write("p1", pa.table({"id": [3]}))
    with pytest.raises(DataError, match="partition p0 of run r .* has no key run"):
        sink.duplicate_keys(["id"], in_process)


def test_a_corrupt_key_run_is_named(tmp_path):
    sink = FileSink(str(tmp_path / "out"))
    sink.open(pa.schema([("id", pa.int64())]), run_id="r")
    sink.track_keys(["id"])
    sink.write("p0", pa.table({"id": [1, 2]}))
    sink.write("p1", pa.table({"id": [2, 3]}))
    path = keyruns.run_path(sink.staging_folder, "p1")
    with open(path, "r+b") as f:
        f.truncate(10)
    with pytest.raises(DataError, match=r"p1\.keys is not a skfleet key run"):
        sink.duplicate_keys(["id"], in_process)


@pytest.mark.parametrize(
    "with_null, without",
    [
        (pa.table({"id": [7, None]}), pa.table({"id": [7, 8]})),
        (pa.table({"id": [7, None], "s": ["a", "b"]}), pa.table({"id": [7, 8], "s": ["a", "c"]})),
        (pa.table({"ok": [True, None], "s": ["a", "b"]}), pa.table({"ok": [True], "s": ["a"]})),
    ],
)
def test_a_key_hashes_alike_whether_or_not_its_partition_has_nulls(with_null, without):
    """Hashes of different partitions are compared: a null elsewhere in one of them must not
    change how its other keys hash (pandas makes such an integer column float)."""
    keys = without.column_names
    assert row_hashes(with_null, keys)[0] == row_hashes(without, keys)[0]


def test_buckets_spread_consecutive_integers():
    values = key_hashes(pa.table({"id": np.arange(100_000)}), ["id"])
    counts = np.bincount(bucket_of(values), minlength=BUCKETS)
    assert counts.min() > 0.8 * counts.mean()
