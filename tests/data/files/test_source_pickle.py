"""A file source travels with every task: once planned, its pickle does not hold the file list
(P tasks each carrying a list of P files is P² bytes through the scheduler)."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skfleet.data.files.source import FileSource


def folder_of(path, files: int) -> str:
    path.mkdir()
    for i in range(files):
        ids = np.arange(i * 10, i * 10 + 10)
        pq.write_table(pa.table({"id": ids, "x": ids * 0.5}), path / f"part-{i:05d}.parquet")
    return str(path)


def test_a_planned_source_pickles_the_same_size_for_10_or_1000_files(tmp_path):
    sizes = []
    for files in (10, 1_000):
        source = FileSource(folder_of(tmp_path / f"in{files}", files))
        parts = source.partitions(10)
        assert len(parts) == files
        sizes.append(len(pickle.dumps(source)))
        # A worker reads its partition, and can still plan (listing the folder again).
        worker = pickle.loads(pickle.dumps(source))
        assert worker.read(parts[-1])["id"].to_pylist() == list(range(files * 10 - 10, files * 10))
        assert [p.id for p in worker.partitions(10)] == [p.id for p in parts]
    assert sizes[1] - sizes[0] < 100, sizes
