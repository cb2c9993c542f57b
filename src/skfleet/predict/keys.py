"""Duplicate-key checks: per-partition key hashes on the workers, merged on the client."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from skfleet.errors import (
    SkfleetWarning,
)

DUPLICATE_KEY_CHOICES = ("warn", "error", "ignore")


class DuplicateKeyWarning(SkfleetWarning):
    """The key columns do not identify the input rows uniquely."""


def key_hashes(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """A uint64 per row identifying its key: the value itself for one integer key without nulls
    (exact), else a 64-bit hash of all key columns. Sorted, so equal keys are neighbours, unless
    the integer keys are strictly increasing already (then they are unique as they are).

    >>> key_hashes(pa.table({"id": [3, 1, 2]}), ["id"]).tolist()
    [1, 2, 3]
    >>> len(set(key_hashes(pa.table({"a": [1, 1], "b": ["x", "y"]}), ["a", "b"]).tolist()))
    2
    """
    column = table.column(keys[0]) if len(keys) == 1 else None
    if column is not None and pa.types.is_integer(column.type) and column.null_count == 0:
        values = column.to_numpy().astype(np.int64, copy=False).view(np.uint64)
        signed = values.view(np.int64)
        if signed.size < 2 or bool(np.all(signed[1:] > signed[:-1])):
            return values  # strictly increasing (the usual row order): unique, no sort needed
    else:
        import pandas as pd

        frame = table.select(list(keys)).to_pandas()
        values = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return np.sort(values)


def count_duplicates(parts: Sequence[np.ndarray]) -> int:
    """Rows whose key another row already has, over the :func:`key_hashes` of all partitions.

    Partitions whose value ranges do not overlap (block or key ranges of a table read in key
    order: the usual case) cannot share a key, so only overlapping ones are merged and sorted;
    within one partition equal keys are neighbours already.

    >>> count_duplicates([np.array([1, 2, 3], np.uint64), np.array([4, 5], np.uint64)])
    0
    >>> count_duplicates([np.array([1, 2, 5], np.uint64), np.array([4, 5, 5], np.uint64)])
    2
    """
    spans = sorted((int(a.min()), int(a.max()), i) for i, a in enumerate(parts) if a.size)
    groups: list[list[int]] = []
    reach = -1
    for low, high, i in spans:
        if groups and low <= reach:
            groups[-1].append(i)
            reach = max(reach, high)
        else:
            groups.append([i])
            reach = high
    total = 0
    for group in groups:
        if len(group) == 1:
            merged = parts[group[0]]
        else:
            merged = np.sort(np.concatenate([parts[i] for i in group]))
        total += int(np.count_nonzero(merged[1:] == merged[:-1]))
    return total


def duplicate_example(table: pa.Table, keys: Sequence[str]) -> str | None:
    keyed = table.select(list(keys))
    dup = np.flatnonzero(keyed.to_pandas().duplicated(keep="first").to_numpy())
    if not dup.size:
        return None
    row = keyed.slice(int(dup[0]), 1).to_pylist()[0]
    return ", ".join(f"{k}={row[k]!r}" for k in keys)


def duplicate_message(keys: Sequence[str], example: str | None, count: int | None = None) -> str:
    what = f"key column {keys[0]!r} is" if len(keys) == 1 else f"key columns {', '.join(keys)} are"
    detail = f": {count:,} rows repeat a key" if count else ""
    eg = f" (e.g. {example})" if example else ""
    return f"{what} not unique in the input{detail}{eg}; pass --duplicate-keys warn or ignore to score anyway"
