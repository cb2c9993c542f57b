"""Reading partitions for the epoch loop: read, drop missing targets, split off the holdout,
encode, shuffle. Holdout rows are encoded once and kept in an on-disk cache, so scoring the
holdout after each epoch costs no extra read and no memory that grows with the data.

>>> import numpy as np, os, tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> from skfleet.data import open_source
>>> from skfleet.features import TableEncoder
>>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
>>> pq.write_table(pa.table({"x": np.arange(100.0), "y": np.arange(100) % 2}), path)
>>> source = open_source(path)
>>> [part] = source.partitions(1000)
>>> enc = TableEncoder(target="y").fit(pa.table({"x": np.arange(100.0)}))
>>> reader = PartitionReader(source, [part], ["x", "y"], "y", enc, holdout=0.2,
...                          holdout_key=None, seed=0, classes=[0, 1])
>>> batch = reader.prepare(0, epoch=0)
>>> batch.X.shape[0] + batch.holdout_X.shape[0], batch.X.dtype
(100, dtype('float32'))
>>> again = reader.prepare(0, epoch=0)
>>> bool(np.array_equal(batch.y, again.y))  # same seed, epoch and partition: same row order
True
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from skfleet.data.base import Partition, Source
from skfleet.errors import DataError
from skfleet.train.stream.holdout import holdout_mask
from skfleet.train.stream.profile import missing_mask, plain_target, row_offset
from skfleet.train.stream.scoring import label_array


@dataclass
class PreparedPartition:
    """One partition, ready to learn: shuffled training rows and (optionally) its holdout rows."""

    index: int
    partition_id: str
    X: Any
    y: np.ndarray | None
    holdout_X: Any = None
    holdout_y: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.X.shape[0]


def shuffle_rng(seed: int, epoch: int, index: int | None = None) -> np.random.Generator:
    """The generator for epoch ``epoch`` (partition order) or for partition ``index`` in it.

    Derived from the numbers alone, never from a generator's running state, so a resumed run
    draws exactly what the uninterrupted run drew at the same position.
    """
    key = [seed, epoch] if index is None else [seed, epoch, index]
    return np.random.default_rng(key)


def epoch_order(seed: int, epoch: int, n_partitions: int) -> list[int]:
    """The order in which epoch ``epoch`` visits the partitions.

    >>> epoch_order(0, 0, 5) == epoch_order(0, 0, 5), epoch_order(0, 0, 5) != epoch_order(0, 1, 5)
    (True, True)
    """
    return shuffle_rng(seed, epoch).permutation(n_partitions).tolist()


class PartitionReader:
    """Reads and encodes the partitions of one run (used from a prefetch thread)."""

    def __init__(
        self,
        source: Source,
        partitions: Sequence[Partition],
        columns: Sequence[str],
        target: str | None,
        encoder: Any,
        *,
        holdout: float,
        holdout_key: str | None,
        seed: int,
        classes: Sequence[Any] | None = None,
        dense: bool = False,
    ):
        self.source = source
        self.partitions = list(partitions)
        self.columns = list(columns)
        self.target = target
        self.encoder = encoder
        self.holdout = holdout
        self.holdout_key = holdout_key
        self.seed = seed
        self.classes = None if classes is None else label_array(classes)
        self.dense = dense

    def _read(self, index: int) -> tuple[pa.Table, np.ndarray | None, np.ndarray]:
        """Rows with a target, their labels, and the holdout mask."""
        partition = self.partitions[index]
        table = self.source.read(partition, self.columns)
        y = None
        if self.target is not None:
            target = plain_target(table.column(self.target))
            missing = missing_mask(target)
            if missing.any():
                keep = pa.array(~missing)
                table, target = table.filter(keep), target.filter(keep)
            self._check_labels(target, partition)
            y = self._labels(target)
            table = table.drop_columns([self.target])
        hold = holdout_mask(
            table, self.holdout, key=self.holdout_key, start_row=row_offset(partition.id)
        )
        return table, y, hold

    def _check_labels(self, target: pa.ChunkedArray, partition: Partition) -> None:
        """A label the profiling pass did not see means the data changed under us."""
        if self.classes is None or len(target) == 0:
            return
        known = pc.is_in(target, value_set=pa.array(self.classes.tolist(), type=target.type))
        if not pc.all(known).as_py():
            bad = target.filter(pc.invert(known))[0].as_py()
            raise DataError(
                f"target label {bad!r} in partition {partition.id} of {self.source.display_name} "
                "was not seen by the profiling pass: the table changed during training; "
                "train again on a stable snapshot"
            )

    def _labels(self, target: pa.ChunkedArray) -> np.ndarray:
        if self.classes is not None:
            values = target.to_numpy(zero_copy_only=False)
            return values.astype(object) if values.dtype.kind in "OUS" else values
        return target.cast(pa.float64()).to_numpy(zero_copy_only=False)

    def _encode(self, table: pa.Table) -> Any:
        X = self.encoder.transform(table)
        if self.dense and sp.issparse(X):
            X = X.toarray()
        return X

    def prepare(self, index: int, epoch: int, with_holdout: bool = True) -> PreparedPartition:
        """Partition ``index`` for epoch ``epoch``: training rows encoded and shuffled."""
        table, y, hold = self._read(index)
        train = ~hold
        X = self._encode(table.filter(pa.array(train)) if hold.any() else table)
        y_train = None if y is None else y[train]
        order = shuffle_rng(self.seed, epoch, index).permutation(X.shape[0])
        X = X[order]
        y_train = None if y_train is None else y_train[order]
        out = PreparedPartition(index, self.partitions[index].id, X, y_train)
        if with_holdout and hold.any():
            out.holdout_X = self._encode(table.filter(pa.array(hold)))
            out.holdout_y = None if y is None else y[hold]
        return out

    def holdout_rows(self, index: int) -> tuple[Any, np.ndarray | None]:
        """The encoded holdout rows of partition ``index`` (not shuffled)."""
        table, y, hold = self._read(index)
        X = self._encode(table.filter(pa.array(hold)))
        return X, (None if y is None else y[hold])


class HoldoutCache:
    """Encoded holdout rows per partition in a temporary folder (numpy files, no pickle).

    >>> cache = HoldoutCache(classes=["a", "b"])
    >>> cache.put(3, sp.csr_matrix(np.eye(2, dtype=np.float32)), np.array(["b", "a"], dtype=object))
    >>> X, y = cache.get(3)
    >>> X.toarray().tolist(), y.tolist(), cache.get(4)
    ([[1.0, 0.0], [0.0, 1.0]], ['b', 'a'], None)
    >>> cache.close()
    """

    def __init__(self, classes: Sequence[Any] | None = None, folder: str | None = None):
        self.folder = tempfile.mkdtemp(prefix="skfleet-holdout-", dir=folder)
        self.classes = None if classes is None else label_array(classes)
        self._index = None if classes is None else pd.Index(self.classes)
        self._stored: set[int] = set()

    def _path(self, index: int, part: str) -> str:
        return os.path.join(self.folder, f"{index}.{part}.npy")

    def put(self, index: int, X: Any, y: np.ndarray | None) -> None:
        arrays: dict[str, np.ndarray] = {}
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            arrays.update(
                data=X.data,
                indices=X.indices,
                indptr=X.indptr,
                shape=np.asarray(X.shape, dtype=np.int64),
            )
        else:
            arrays["dense"] = np.asarray(X)
        if y is not None:
            if self._index is not None:
                arrays["codes"] = self._index.get_indexer(y).astype(np.int32)
            else:
                arrays["y"] = np.asarray(y, dtype=np.float64)
        for part, array in arrays.items():
            np.save(self._path(index, part), array, allow_pickle=False)
        self._stored.add(index)

    def has(self, index: int) -> bool:
        return index in self._stored

    def get(self, index: int) -> tuple[Any, np.ndarray | None] | None:
        if index not in self._stored:
            return None

        def load(part: str) -> np.ndarray | None:
            path = self._path(index, part)
            return np.load(path, allow_pickle=False) if os.path.exists(path) else None

        dense = load("dense")
        if dense is not None:
            X = dense
        else:
            shape = tuple(int(v) for v in load("shape"))
            X = sp.csr_matrix((load("data"), load("indices"), load("indptr")), shape=shape)
        codes = load("codes")
        if codes is not None:
            return X, self.classes[codes]
        return X, load("y")

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._stored.clear()
