"""The holdout: a fixed, deterministic set of rows that the streamed model never learns from.

A row is held out when a 32-bit MurmurHash3 of its key (or of its global row position, when there
is no key) falls below ``fraction * 2**32``. The hash depends only on the value, not on the
partition plan, the process or the epoch, so the same rows are held out in every epoch, on every
worker and after a resume.

>>> import pyarrow as pa
>>> mask = holdout_mask(pa.table({"id": list(range(1000))}), 0.2, key="id")
>>> int(mask.sum())  # about 20% of 1000
213
>>> by_position = holdout_mask(pa.table({"x": [1.0] * 1000}), 0.2, start_row=0)
>>> bool((mask == by_position).all())  # an integer key hashes like a position of that value
True
>>> holdout_mask(pa.table({"k": ["d", "a", "d"]}), 0.5, key="k").tolist()
[True, False, True]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import MissingColumnError
from skfleet.features.hashing import hash_int64, hash_strings

#: Seed of the holdout hash: fixed, so models trained with different ``--seed`` values are
#: compared on the same rows.
HOLDOUT_HASH_SEED = 0x5F1EE7


def holdout_mask(
    table: pa.Table, fraction: float, *, key: str | None = None, start_row: int = 0
) -> np.ndarray:
    """Boolean mask of the rows of ``table`` that belong to the holdout.

    ``start_row`` is the global position of the table's first row (used when ``key`` is None).
    """
    n = table.num_rows
    if fraction <= 0 or n == 0:
        return np.zeros(n, dtype=bool)
    if key is None:
        hashes = hash_int64(np.arange(start_row, start_row + n, dtype=np.int64), HOLDOUT_HASH_SEED)
    else:
        if key not in table.column_names:
            raise MissingColumnError(f"holdout key column {key!r} is missing from the table")
        hashes = hash_values(table.column(key))
    threshold = np.uint64(min(int(fraction * 2**32), 2**32))
    return hashes.astype(np.uint64) < threshold


def hash_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A stable 32-bit hash per value: integers by their 8 bytes, anything else by its text."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    if pa.types.is_integer(column.type):
        values = pc.fill_null(column, 0).cast(pa.int64()).to_numpy(zero_copy_only=False)
        return hash_int64(values, HOLDOUT_HASH_SEED)
    return hash_strings(column.cast(pa.large_string()), HOLDOUT_HASH_SEED)
