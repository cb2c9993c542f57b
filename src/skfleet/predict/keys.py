"""The duplicate-key check's messages and options. Counting happens where the rows are: each
worker checks its own partition (:func:`skfleet.data.keyhash.key_hashes`), and the sink counts
repeats across partitions in its backend (:meth:`skfleet.data.base.Sink.duplicate_keys`), so the
client holds nothing per row."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from skfleet.data.keyhash import key_text
from skfleet.errors import SkfleetWarning


class DuplicateKeyWarning(SkfleetWarning):
    """The key columns do not identify the input rows uniquely."""


def duplicate_example(table: pa.Table, keys: Sequence[str]) -> str | None:
    """The first key of ``table`` that an earlier row already has.

    >>> duplicate_example(pa.table({"id": [1, 2, 1]}), ["id"])
    'id=1'
    """
    keyed = table.select(list(keys))
    dup = keyed.to_pandas().duplicated(keep="first").to_numpy().nonzero()[0]
    if not dup.size:
        return None
    return key_text(keyed.slice(int(dup[0]), 1).to_pylist()[0], keys)


def duplicate_message(keys: Sequence[str], example: str | None, count: int | None = None) -> str:
    what = f"key column {keys[0]!r} is" if len(keys) == 1 else f"key columns {', '.join(keys)} are"
    detail = f": {count:,} rows repeat a key" if count else ""
    eg = f" (e.g. {example})" if example else ""
    return f"{what} not unique in the input{detail}{eg}; pass --duplicate-keys warn or ignore to score anyway"
