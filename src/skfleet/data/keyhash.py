"""Key hashes: one uint64 per row naming its key, so that repeated keys can be counted wherever
the rows are (a worker checking its partition, a merge task on the engine, never the client).

A single integer key is its own value (exact: two rows share a hash only if they share the key).
Any other key is a 64-bit hash of all its columns, so two distinct keys may collide: among ``n``
distinct keys the chance of one false repeat is about ``n**2 / 2**65`` (3% at a billion keys).

The hash of a value depends only on the column's type, never on the rest of its partition (a
column with nulls hashes its other values as one without), because the hashes of different
partitions are compared with each other.

>>> key_hashes(pa.table({"id": [3, 1, 2]}), ["id"]).tolist()
[1, 2, 3]
>>> h = row_hashes(pa.table({"a": [1, 1, 1], "b": ["x", "y", "x"]}), ["a", "b"])
>>> bool(h[0] == h[2]), bool(h[0] == h[1])
(True, False)
>>> values, offsets = bucketed(key_hashes(pa.table({"id": [5, 7, 5, 9]}), ["id"]))
>>> repeats(np.sort(values)), int(offsets[-1]), len(offsets) == BUCKETS + 1
(1, 4, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Hash buckets the hashes of a partition are grouped by (see :func:`bucketed`): a merge task
#: takes a contiguous range of them from every partition, so this bounds how many merge tasks
#: one check can use.
BUCKETS = 256
_BUCKET_SHIFT = np.uint64(64 - int(np.log2(BUCKETS)))

#: What a null integer key hashes to: a null key and the key -2**63 count as one key.
_NULL_INT = np.iinfo(np.int64).min


def _normalised(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column in a type whose pandas form does not depend on whether nulls are present
    (pandas turns an integer column with nulls into floats, a boolean one into objects)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_integer(kind):
        return pc.fill_null(column.cast(pa.int64()), _NULL_INT)
    if pa.types.is_boolean(kind):
        return pc.fill_null(column.cast(pa.int8()), -1)
    return column


def row_hashes(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """A uint64 per row, in row order, identifying the row's key (see the module docs)."""
    columns = [_normalised(table.column(k)) for k in keys]
    if len(columns) == 1 and pa.types.is_integer(columns[0].type):
        return columns[0].to_numpy().astype(np.int64, copy=False).view(np.uint64)
    import pandas as pd

    frame = pa.table(columns, names=list(keys)).to_pandas()
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def key_hashes(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """:func:`row_hashes`, sorted so that equal keys are neighbours; hashes that are strictly
    increasing already (integer keys in the usual row order) are unique and left as they are.

    >>> key_hashes(pa.table({"id": [1, 2, 3]}), ["id"]).tolist()
    [1, 2, 3]
    """
    values = row_hashes(table, keys)
    signed = values.view(np.int64)
    if signed.size < 2 or bool(np.all(signed[1:] > signed[:-1])):
        return values  # strictly increasing: unique, no sort needed
    return np.sort(values)


def repeats(ordered: np.ndarray) -> int:
    """Rows whose hash the row before them has, in hashes where equal ones are neighbours: the
    rows that repeat a key another row already has.

    >>> repeats(np.array([1, 2, 2, 2, 5], np.uint64))
    2
    """
    return int(np.count_nonzero(ordered[1:] == ordered[:-1])) if ordered.size > 1 else 0


def bucket_of(values: np.ndarray) -> np.ndarray:
    """The bucket (``0 .. BUCKETS-1``) of each hash: the top bits of a 64-bit mix, so that keys
    that are small consecutive integers still spread over every bucket."""
    with np.errstate(over="ignore"):
        mixed = values ^ (values >> np.uint64(30))
        mixed = mixed * np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(27)
        mixed = mixed * np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(31)
    return (mixed >> _BUCKET_SHIFT).astype(np.uint16)


def bucketed(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted hashes regrouped by bucket (sorted within each), and the ``BUCKETS + 1`` offsets
    where each bucket starts: bucket ``b`` is ``values[offsets[b]:offsets[b + 1]]``."""
    buckets = bucket_of(ordered)
    order = np.argsort(buckets, kind="stable")  # stable: each bucket stays sorted
    counts = np.bincount(buckets, minlength=BUCKETS)
    offsets = np.zeros(BUCKETS + 1, np.uint64)
    np.cumsum(counts, out=offsets[1:])
    return ordered[order], offsets


def key_text(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """How a key is named in messages.

    >>> key_text({"id": 7, "day": "mon"}, ["id", "day"])
    "id=7, day='mon'"
    """
    return ", ".join(f"{k}={row[k]!r}" for k in keys)


def key_with_hash(table: pa.Table, keys: Sequence[str], value: int) -> str | None:
    """The key (as :func:`key_text`) of the first row of ``table`` whose hash is ``value``."""
    hits = np.flatnonzero(row_hashes(table, keys) == np.uint64(value))
    if not hits.size:
        return None
    return key_text(table.select(list(keys)).slice(int(hits[0]), 1).to_pylist()[0], keys)
