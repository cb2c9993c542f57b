"""How a PostgreSQL source is cut into partitions: heap block ranges or key ranges, and the WHERE
clause of each. Pure functions: :mod:`~skfleet.data.postgres.source` asks the server for sizes and
samples, and runs the SQL.

>>> block_ranges(10, 3)
[(0, 4), (4, 8), (8, None)]
>>> block_ranges(0, 5)
[(0, None)]
>>> pick_boundaries([(1,), (2,), (2,), (3,), (4,), (5,)], 3)
[(2,), (4,)]
>>> [p.id for p in block_partitions(rows=3_000, nblocks=30, target_rows=1_000, snapshot=None)]
['blocks-0-10', 'blocks-10-20', 'blocks-20-end']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from skfleet.data.base import Partition
from skfleet.errors import UsageError

#: Sampled key values per planned partition: enough that quantile boundaries land within a few
#: percent of the target size, small enough to sort on the server in milliseconds.
SAMPLE_PER_PARTITION = 100
MAX_SAMPLE = 100_000


def block_ranges(nblocks: int, n_parts: int) -> list[tuple[int, int | None]]:
    """Split blocks ``[0, nblocks)`` into about ``n_parts`` ranges; the last is open-ended so rows
    in blocks added after planning are never missed (the snapshot decides what is visible)."""
    if nblocks <= 0 or n_parts <= 1:
        return [(0, None)]
    step = math.ceil(nblocks / min(n_parts, nblocks))
    starts = list(range(0, nblocks, step))
    return [(a, b) for a, b in zip(starts, starts[1:], strict=False)] + [(starts[-1], None)]


def pick_boundaries(sorted_rows: Sequence[tuple], n_parts: int) -> list[tuple]:
    """``n_parts - 1`` increasing boundaries at the quantiles of an ordered sample (duplicates
    dropped, so heavy values never produce empty ranges twice)."""
    if n_parts <= 1 or not sorted_rows:
        return []
    picked: list[tuple] = []
    for i in range(1, n_parts):
        value = tuple(sorted_rows[(i * len(sorted_rows)) // n_parts])
        if not picked or picked[-1] != value:
            picked.append(value)
    return picked


def block_partitions(
    rows: int, nblocks: int, target_rows: int, snapshot: str | None
) -> list[Partition]:
    """Partitions of about ``target_rows`` rows of a heap of ``nblocks`` blocks."""
    ranges = block_ranges(nblocks, math.ceil(rows / target_rows) if rows else 1)
    per_part = rows // len(ranges)
    return [
        Partition(
            f"blocks-{start}-{'end' if stop is None else stop}",
            per_part,
            {"kind": "blocks", "start": start, "stop": stop, "snapshot": snapshot},
        )
        for start, stop in ranges
    ]


def key_sample_query(keys: Sequence[str], from_sql: str, total: int, n_parts: int):
    """The ordered sample of key values that :func:`pick_boundaries` cuts into ``n_parts``."""
    from psycopg import sql

    wanted = min(total, max(SAMPLE_PER_PARTITION * n_parts, 1_000), MAX_SAMPLE)
    idents = [sql.Identifier(k) for k in keys]
    conditions = [sql.SQL("{} IS NOT NULL").format(i) for i in idents]
    if wanted < total:
        # A sampled ordered scan: the server sorts only the sample (never LIMIT/OFFSET).
        conditions.append(sql.SQL("random() < {}").format(sql.Literal(wanted / total)))
    return sql.SQL("SELECT {cols} FROM {src} WHERE {cond} ORDER BY {cols}").format(
        cols=sql.SQL(", ").join(idents),
        src=sql.SQL(from_sql),
        cond=sql.SQL(" AND ").join(conditions),
    )


def key_partitions(
    keys: tuple[str, ...], total: int, bounds: list[tuple], snapshot: str | None
) -> list[Partition]:
    """Key ranges between ``bounds`` (one partition of everything when there are none)."""
    if not bounds:
        return [Partition("all", total, {"kind": "all", "snapshot": snapshot})]
    ranges = key_ranges(bounds)
    return [
        Partition(
            name,
            total // len(ranges),
            {"kind": "keys", "keys": keys, "lower": lower, "upper": upper, "snapshot": snapshot},
        )
        for name, lower, upper in ranges
    ]


def key_ranges(bounds: list[tuple]) -> list[tuple[str, tuple | None, tuple | None]]:
    """``(partition id, lower, upper)`` of each key range that ``bounds`` cut: the first open
    below, the last open above (the Redshift source names its partitions so too).

    >>> key_ranges([(10,)])
    [('keys-00000-of-00002', None, (10,)), ('keys-00001-of-00002', (10,), None)]
    """
    edges = [None, *bounds, None]
    n = len(edges) - 1
    return [(f"keys-{i:05d}-of-{n:05d}", edges[i], edges[i + 1]) for i in range(n)]


def where_clause(spec: dict):
    """The WHERE clause of a partition spec (``None``: every row)."""
    from psycopg import sql

    kind = spec.get("kind")
    if kind == "blocks":
        lower = sql.SQL("ctid >= {}::tid").format(sql.Literal(f"({int(spec['start'])},0)"))
        if spec.get("stop") is None:
            return lower
        upper = sql.SQL("ctid < {}::tid").format(sql.Literal(f"({int(spec['stop'])},0)"))
        return sql.SQL("{} AND {}").format(lower, upper)
    if kind == "keys":
        return key_range(spec["keys"], spec.get("lower"), spec.get("upper"))
    if kind == "range":
        # lower < column <= upper, cut at [start, stop): the run's range, one slice of it.
        clause = range_condition(spec["column"], spec["lower"], spec["upper"])
        col = sql.Identifier(spec["column"])
        if spec.get("start") is not None:
            clause = sql.SQL("{} AND {} >= {}").format(clause, col, sql.Literal(spec["start"]))
        if spec.get("stop") is not None:
            clause = sql.SQL("{} AND {} < {}").format(clause, col, sql.Literal(spec["stop"]))
        return clause
    if kind in ("all", None):
        return None
    raise UsageError(f"unknown partition kind {kind!r}")


def key_range(keys: Sequence[str], lower: tuple | None, upper: tuple | None):
    """``lower <= (keys) < upper``; the first range also takes rows with a NULL key part, and the
    others exclude them, because a row comparison can be true despite a NULL component.

    The Redshift source plans its key ranges with this too (its SQL is PostgreSQL's here).

    >>> key_range(["id"], None, None) is None
    True
    """
    from psycopg import sql

    idents = [sql.Identifier(k) for k in keys]
    if len(keys) == 1:
        cols = idents[0]

        def values(bound):
            return sql.Literal(bound[0])
    else:
        cols = sql.SQL("({})").format(sql.SQL(", ").join(idents))

        def values(bound):
            return sql.SQL("({})").format(sql.SQL(", ").join(sql.Literal(v) for v in bound))

    parts = []
    if lower is not None:
        parts.append(sql.SQL("{} >= {}").format(cols, values(lower)))
        parts += [sql.SQL("{} IS NOT NULL").format(i) for i in idents]
    if upper is not None:
        parts.append(sql.SQL("{} < {}").format(cols, values(upper)))
    if not parts:
        return None
    clause = sql.SQL(" AND ").join(parts)
    if lower is None:
        nulls = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(i) for i in idents)
        clause = sql.SQL("({}) OR {}").format(clause, nulls)
    return clause


def range_condition(column: str, lower, upper):
    """``lower < column <= upper`` (no lower bound when ``lower`` is None): an incremental run's
    rows. NULLs never match: the run refused them when it planned."""
    from psycopg import sql

    col = sql.Identifier(column)
    clause = sql.SQL("{} <= {}").format(col, sql.Literal(upper))
    if lower is not None:
        clause = sql.SQL("{} > {} AND {}").format(col, sql.Literal(lower), clause)
    return clause


def watermark_stats_query(column: str, lower, from_sql: str):
    """``max(column)`` and the rows at or below ``lower``, above it and null, in one scan."""
    from psycopg import sql

    col = sql.Identifier(column)
    below = (
        sql.SQL("FALSE") if lower is None else sql.SQL("{} <= {}").format(col, sql.Literal(lower))
    )
    return sql.SQL(
        "SELECT max({c}), count(*) FILTER (WHERE {below}), "
        "count(*) FILTER (WHERE {c} IS NOT NULL AND NOT ({below})), "
        "count(*) FILTER (WHERE {c} IS NULL) FROM {src}"
    ).format(c=col, below=below, src=sql.SQL(from_sql))


def range_count_query(from_sql: str, column: str, lower, upper):
    from psycopg import sql

    where = range_condition(column, lower, upper)
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.SQL(from_sql), where)


def range_quantiles_query(from_sql: str, column: str, lower, upper, n_parts: int):
    """Exact quantiles of ``column`` over the run's range (one sort of the new rows only), so
    planning the same range again cuts it at the same values (unlike a random sample)."""
    from psycopg import sql

    fractions = [i / n_parts for i in range(1, n_parts)]
    return sql.SQL(
        "SELECT percentile_disc({f}::float8[]) WITHIN GROUP (ORDER BY {c}) FROM {src} WHERE {w}"
    ).format(
        f=sql.Literal(fractions),
        c=sql.Identifier(column),
        src=sql.SQL(from_sql),
        w=range_condition(column, lower, upper),
    )


def range_partitions(
    column: str, lower, upper, rows: int, bounds: Sequence, snapshot: str | None
) -> list[Partition]:
    """Slices of an incremental run's range ``lower < column <= upper`` cut at ``bounds``. The
    ids carry a digest of the range and the cuts: a resumed run whose source now cuts otherwise
    (rows changed inside the range) plans other ids and is refused, never mixed.

    >>> parts = range_partitions("id", 10, 40, 30, [20, 30], None)
    >>> parts[0].id, parts[1].spec["start"], parts[1].spec["stop"]
    ('range-00000-of-00003-0de74b57', 20, 30)
    """
    cuts = [b for i, b in enumerate(bounds) if i == 0 or b != bounds[i - 1]]
    digest = hashlib.sha1(repr((column, lower, upper, cuts)).encode()).hexdigest()[:8]
    edges = [None, *cuts, None]
    n = len(edges) - 1
    return [
        Partition(
            f"range-{i:05d}-of-{n:05d}-{digest}",
            rows // n,
            {
                "kind": "range",
                "column": column,
                "lower": lower,
                "upper": upper,
                "start": edges[i],
                "stop": edges[i + 1],
                "snapshot": snapshot,
            },
        )
        for i in range(n)
    ]
