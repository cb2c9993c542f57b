"""The file sink's duplicate-key check: a run of key hashes per part, merged by hash range.

When a run tracks keys (:meth:`FileSink.track_keys <skfleet.data.files.sink.FileSink.track_keys>`),
the worker writing a partition first writes that partition's key hashes into the run's staging
folder, grouped by hash bucket (:func:`skfleet.data.keyhash.bucketed`)::

    _staging-<run>/_keys/<partition>.keys
      8 bytes   b"SKFKEYS1"
      8 * (BUCKETS + 1)   where each bucket starts (uint64, little-endian, in hashes)
      8 * rows  the hashes, bucket by bucket, sorted within each

8 bytes per row, written once, dropped with the staging folder. At commit a few merge tasks
(:func:`check_keys`) each take a contiguous range of buckets and read only that byte range of
every run (one ranged read per run), so every hash is read once, by one task, and a task holds
``rows / tasks`` hashes. A task returns two numbers and at most one example key, which it names
by reading the key columns of one part that holds it: the client receives a few counters.

>>> import tempfile, pyarrow as pa
>>> from skfleet.data.files.store import FileStore
>>> store, folder = FileStore.from_url(tempfile.mkdtemp())
>>> write_run(store, folder, "p0", pa.table({"id": [1, 2, 3]}), ["id"])
>>> write_run(store, folder, "p1", pa.table({"id": [3, 4]}), ["id"])
>>> runs = [run_path(folder, p) for p in ("p0", "p1")]
>>> merge_runs(store, runs, 0, BUCKETS)
(1, 3, 0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from skfleet.data.base import DuplicateKeys, RunTasks
from skfleet.data.files.store import FileStore
from skfleet.data.keyhash import BUCKETS, bucketed, key_hashes, repeats
from skfleet.errors import DataError

KEYS_DIR = "_keys"
MAGIC = b"SKFKEYS1"
HEADER_BYTES = len(MAGIC) + 8 * (BUCKETS + 1)
#: Hashes one merge task holds at most (8 bytes each, plus the sort's copy): 256 MB at most.
HASHES_PER_TASK = 16_000_000


def run_path(folder: str, partition_id: str) -> str:
    """Where the key run of ``partition_id`` lives in the staging ``folder``."""
    return FileStore.join(folder, KEYS_DIR, f"{partition_id}.keys")


def encode_run(table: pa.Table, keys: Sequence[str]) -> bytes:
    """The bytes of one key run (see the module docs)."""
    values, offsets = bucketed(key_hashes(table, keys))
    return MAGIC + offsets.astype("<u8").tobytes() + values.astype("<u8").tobytes()


def write_run(store: FileStore, folder: str, partition_id: str, table: pa.Table, keys) -> None:
    """Write the key run of one partition (replacing one a killed attempt left: same rows)."""
    store.makedirs(FileStore.join(folder, KEYS_DIR))
    store.put(run_path(folder, partition_id), encode_run(table, keys))


def _offsets(store: FileStore, path: str, header: bytes) -> np.ndarray:
    if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
        raise DataError(f"{store.url(path)} is not a skfleet key run")
    return np.frombuffer(header, "<u8", offset=len(MAGIC))


def merge_runs(
    store: FileStore, paths: Sequence[str], first: int, stop: int
) -> tuple[int, int | None, int | None]:
    """Count repeated hashes in buckets ``first .. stop-1`` over the runs at ``paths``.

    Returns ``(repeats, one repeated hash or None, index in paths of a run holding it)``.
    """
    if not paths:
        return 0, None, None
    fs = store.fs
    # One batch of ranged reads per step (concurrent on S3); a failed read raises, not returns.
    with store.errors(paths[0]):
        headers = fs.cat_ranges(
            list(paths), [0] * len(paths), [HEADER_BYTES] * len(paths), on_error="raise"
        )
    starts, ends = [], []
    for path, header in zip(paths, headers, strict=True):
        offsets = _offsets(store, path, header)
        starts.append(HEADER_BYTES + 8 * int(offsets[first]))
        ends.append(HEADER_BYTES + 8 * int(offsets[stop]))
    wanted = [i for i in range(len(paths)) if ends[i] > starts[i]]
    if not wanted:
        return 0, None, None
    with store.errors(paths[wanted[0]]):
        chunks = fs.cat_ranges(
            [paths[i] for i in wanted],
            [starts[i] for i in wanted],
            [ends[i] for i in wanted],
            on_error="raise",
        )
    pieces = [np.frombuffer(chunk, "<u8") for chunk in chunks]
    # Each piece is sorted bucket by bucket: timsort ("stable") merges such runs in near-linear time.
    merged = np.sort(np.concatenate(pieces), kind="stable")
    count = repeats(merged)
    if not count:
        return 0, None, None
    value = int(merged[1:][merged[1:] == merged[:-1]][0])
    for i, piece in zip(wanted, pieces, strict=True):
        if np.any(piece == np.uint64(value)):
            return count, value, i
    raise AssertionError("a repeated hash is in no run")


@dataclass(frozen=True)
class MergeTask:
    """One merge task: buckets ``first .. stop-1`` of the runs of ``partitions``."""

    sink: Any  # the opened FileSink (picklable), which knows its store, staging and format
    keys: tuple[str, ...]
    partitions: tuple[str, ...]
    first: int
    stop: int


def merge_task(task: MergeTask) -> tuple[int, str | None]:
    """Worker side: the repeats in this task's buckets, and one repeated key named."""
    sink = task.sink
    folder = sink.staging_folder
    paths = [run_path(folder, p) for p in task.partitions]
    count, value, where = merge_runs(sink.store, paths, task.first, task.stop)
    if not count:
        return 0, None
    return count, sink.staged_key(task.partitions[where], task.keys, value)


def check_keys(
    sink: Any, keys: Sequence[str], receipts: dict[str, int], run_tasks: RunTasks
) -> DuplicateKeys:
    """Count repeated keys over the key runs of every partition in ``receipts`` (id -> rows),
    in merge tasks of at most :data:`HASHES_PER_TASK` hashes each."""
    rows = sum(receipts.values())
    if rows < 2:
        return DuplicateKeys(0)
    tasks = min(BUCKETS, math.ceil(rows / HASHES_PER_TASK))
    bounds = [round(i * BUCKETS / tasks) for i in range(tasks + 1)]
    partitions = tuple(receipts)
    items = [
        MergeTask(sink, tuple(keys), partitions, bounds[i], bounds[i + 1]) for i in range(tasks)
    ]
    found = run_tasks(merge_task, items)
    examples = [example for _, example in found if example]
    return DuplicateKeys(sum(count for count, _ in found), examples[0] if examples else None)
