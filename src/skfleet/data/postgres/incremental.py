"""The PostgreSQL source's incremental reads (``--incremental COL``): the column's watermark
statistics, and partitions that are ranges of the column itself.

Both run in the run's exported snapshot, so they see what the partitions read; the range bounds
are exact quantiles of the range, so the same bounds plan the same partitions.
:class:`PostgresIncremental` is that part of :class:`~skfleet.data.postgres.source.PostgresSource`.
"""

from __future__ import annotations

import math
from typing import Any

from skfleet.data.base import Partition, WatermarkStats
from skfleet.data.postgres.plan import (
    range_count_query,
    range_partitions,
    range_quantiles_query,
    watermark_stats_query,
)
from skfleet.errors import MissingColumnError


class PostgresIncremental:
    """``watermark_stats`` / ``restrict`` of the source, and the range partitions they plan."""

    def watermark_stats(self, column: str, lower: Any) -> WatermarkStats:
        """One aggregate over the column in the run's exported snapshot (an index on it makes
        ``max`` cheap; the counts scan the column once)."""

        query = watermark_stats_query(column, lower, self._describe().from_sql)
        with self._in_run_snapshot() as (conn, _):
            maximum, at_or_below, above, nulls = conn.execute(query).fetchone()
        return WatermarkStats(maximum, int(at_or_below), int(above), int(nulls))

    def restrict(self, column: str, lower: Any, upper: Any) -> None:
        """Plan and read only ``lower < column <= upper``: ranges of ``column`` itself, whose
        bounds are exact quantiles of the range (the same bounds plan the same partitions)."""
        if column not in self._describe().schema.names:
            raise MissingColumnError(
                f"column {column!r} is not in {self.label} ({self.display_name})"
            )
        self._range = (column, lower, upper)

    def _range_partitions(self, target_rows: int) -> list[Partition]:
        relation = self._describe()
        column, lower, upper = self._range
        bounds: list = []
        with self._in_run_snapshot() as (conn, snapshot):
            rows = int(
                conn.execute(range_count_query(relation.from_sql, *self._range)).fetchone()[0]
            )
            n_parts = math.ceil(rows / target_rows) if rows else 1
            if n_parts > 1:
                query = range_quantiles_query(relation.from_sql, *self._range, n_parts)
                bounds = conn.execute(query).fetchone()[0] or []
        return range_partitions(column, lower, upper, rows, bounds, snapshot)
