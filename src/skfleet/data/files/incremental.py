"""A file source's incremental reads (``--incremental``): the column's statistics from Parquet
footers, and partitions of only the row groups that may hold the new range
(:mod:`~skfleet.data.files.ranges` places row groups against a range).

:class:`IncrementalReads` is the part of :class:`~skfleet.data.files.source.FileSource` that does
this; it uses the source's format, store, file entries and schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from skfleet.data.base import Partition, WatermarkStats
from skfleet.data.files.parquet_format import ParquetFormat
from skfleet.data.files.ranges import (
    GroupRange,
    chosen_groups,
    counted,
    group_ranges,
    in_range,
    placed,
)
from skfleet.errors import UsageError


def group_row_groups(row_group_rows: Sequence[int], target_rows: int) -> list[list[int]]:
    """Consecutive row groups gathered until each group holds at least ``target_rows`` rows.

    >>> group_row_groups([400, 400, 400, 400, 100], 700)
    [[0, 1], [2, 3], [4]]
    """
    groups: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for index, count in enumerate(row_group_rows):
        current.append(index)
        rows += count
        if rows >= target_rows:
            groups.append(current)
            current, rows = [], 0
    if current:
        groups.append(current)
    return groups


class IncrementalReads:
    """``watermark_stats`` and ``restrict`` for a file source (Parquet only)."""

    def _check_incremental(self, column: str) -> None:
        if not isinstance(self._format, ParquetFormat):
            raise UsageError(
                f"{self.display_name} cannot be read incrementally (--incremental): CSV files "
                "keep no column statistics; use Parquet"
            )
        self._columns([column])

    def _group_ranges(self, path: str, column: str) -> list[GroupRange]:
        if (path, column) not in self._ranges:
            missing = [e.path for e in self._entries if (e.path, column) not in self._ranges]

            def footer(p: str) -> list[GroupRange]:
                with self._format._file(self._store, p) as pf:
                    return group_ranges(pf.metadata, column)

            # Every file's footer is needed: on S3 the round trips dominate, so several at once.
            workers = 1 if self._store.is_local or len(missing) == 1 else 8
            with ThreadPoolExecutor(workers) as pool:
                for p, ranges in zip(missing, pool.map(footer, missing), strict=True):
                    self._ranges[(p, column)] = ranges
        return self._ranges[(path, column)]

    def watermark_stats(self, column: str, lower: Any) -> WatermarkStats:
        """From the footers; a row group they cannot place entirely at or below ``lower`` or
        above it (it straddles it, or has no statistics) has that one column read."""
        self._check_incremental(column)
        maximum, below, above, nulls = None, 0, 0, 0
        for entry in self._entries:
            for i, group in enumerate(self._group_ranges(entry.path, column)):
                figures = placed(group, lower)
                if figures is None:
                    table = self._format.read(self._store, entry.path, self.schema(), [column], [i])
                    figures = counted(table.column(0), lower)
                below, above, nulls = below + figures[0], above + figures[1], nulls + figures[2]
                high = figures[3]
                if high is not None and (maximum is None or high > maximum):
                    maximum = high
        return WatermarkStats(maximum, below, above, nulls)

    def restrict(self, column: str, lower: Any, upper: Any) -> None:
        self._check_incremental(column)
        self._range = (column, lower, upper)

    def _range_partitions(self, target_rows: int) -> list[Partition]:
        """The row groups that may hold the range, in groups of about ``target_rows`` rows; a
        file taken whole keeps its plain id."""
        column, lower, upper = self._range
        parts = []
        for entry in self._entries:
            groups = self._group_ranges(entry.path, column)
            chosen = chosen_groups(groups, lower, upper)
            rows = sum(groups[i].rows for i in chosen)
            if chosen and len(chosen) == len(groups) and (rows <= target_rows or len(groups) < 2):
                parts.append(Partition(entry.id, rows, {"path": entry.path, "row_groups": None}))
                continue
            for run in group_row_groups([groups[i].rows for i in chosen], target_rows):
                picked = tuple(chosen[k] for k in run)
                parts.append(
                    Partition(
                        f"{entry.id}.rg{picked[0]}-{picked[-1]}",
                        sum(groups[i].rows for i in picked),
                        {"path": entry.path, "row_groups": picked},
                    )
                )
        return parts

    def _in_range(self, table: pa.Table, names: list[str]) -> pa.Table:
        return in_range(table, *self._range).select(names)
