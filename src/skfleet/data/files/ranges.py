"""What an incremental read of Parquet files learns from their footers: per row group, the rows,
nulls, minimum and maximum of the watermark column, so that files and row groups entirely at or
below the watermark (or above the run's upper bound) are never read.

>>> groups = [GroupRange(500, 0, 0, 499, True), GroupRange(500, 0, 500, 999, True),
...           GroupRange(500, 0, None, None, False)]
>>> chosen_groups(groups, lower=499, upper=2_000)   # the first is done; the last has no stats
[1, 2]
>>> placed(groups[0], lower=499), placed(groups[1], lower=700) is None
((500, 0, 0, 499), True)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa


class GroupRange(NamedTuple):
    """One row group: rows, nulls, min and max of the column; ``known``: the footer says."""

    rows: int
    nulls: int
    low: Any
    high: Any
    known: bool


def group_ranges(meta: Any, column: str) -> list[GroupRange]:
    """Per row group of a Parquet footer (``pyarrow.parquet.FileMetaData``), ``column``'s range.
    A file without the column (a source's schemas are a union) holds only nulls in it."""
    index = next((j for j in range(meta.num_columns) if meta.schema.column(j).path == column), None)
    ranges = []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if index is None:
            ranges.append(GroupRange(group.num_rows, group.num_rows, None, None, True))
            continue
        stats = group.column(index).statistics
        if stats is None or not stats.has_min_max or not stats.has_null_count:
            ranges.append(GroupRange(group.num_rows, 0, None, None, False))
        else:
            ranges.append(GroupRange(group.num_rows, stats.null_count, stats.min, stats.max, True))
    return ranges


def placed(group: GroupRange, lower: Any) -> tuple[int, int, int, Any] | None:
    """``(rows at or below lower, rows above, nulls, max)`` when the footer alone tells (the
    group lies entirely on one side of ``lower``); None when its column must be read."""
    if not group.known:
        return None
    values = group.rows - group.nulls
    if group.low is None:  # only nulls
        return 0, 0, group.nulls, None
    if lower is None or group.low > lower:
        return 0, values, group.nulls, group.high
    if group.high <= lower:
        return values, 0, group.nulls, group.high
    return None  # it straddles the watermark


def counted(col: pa.ChunkedArray | pa.Array, lower: Any) -> tuple[int, int, int, Any]:
    """The same four figures, from the column's values."""
    import pyarrow.compute as pc

    nulls = col.null_count
    below = (
        0
        if lower is None
        else int(pc.sum(pc.less_equal(col, pa.scalar(lower, col.type))).as_py() or 0)
    )
    return below, len(col) - nulls - below, nulls, pc.max(col).as_py()


def chosen_groups(groups: list[GroupRange], lower: Any, upper: Any) -> list[int]:
    """The row groups that may hold rows with ``lower < column <= upper``."""
    return [
        i
        for i, g in enumerate(groups)
        if not g.known
        or (g.low is not None and g.low <= upper and (lower is None or g.high > lower))
    ]


def in_range(table: pa.Table, column: str, lower: Any, upper: Any) -> pa.Table:
    """The rows of ``table`` with ``lower < column <= upper`` (nulls never match).

    >>> in_range(pa.table({"id": [1, 5, None, 9]}), "id", 1, 5)["id"].to_pylist()
    [5]
    """
    import pyarrow.compute as pc

    col = table.column(column)
    mask = pc.less_equal(col, pa.scalar(upper, col.type))
    if lower is not None:
        mask = pc.and_(mask, pc.greater(col, pa.scalar(lower, col.type)))
    return table.filter(mask)
