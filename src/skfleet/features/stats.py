"""Partial statistics that merge exactly: running moments, level counts, a distinct-count sketch.

Each worker can profile its own partitions and the client folds the results together; the merged
statistics equal (moments: to rounding) those of one pass over all rows, in any order.

>>> a = Moments.of(np.array([1.0, 2.0, 3.0]))
>>> b = Moments.of(np.array([4.0, 5.0]))
>>> m = a.merge(b)
>>> m.n, m.mean, m.variance
(5, 3.0, 2.0)
>>> counts = LevelCounts.of(["JFK", "LGA"], [6, 1], limit=10)
>>> counts.merge(LevelCounts.of(["EWR"], [3], limit=10)).ranked()
[('JFK', 6), ('EWR', 3), ('LGA', 1)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from skfleet.features.hashing import hash_int64


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (``m2``) of the finite values seen.

    Chunks combine with Chan, Golub and LeVeque's pairwise update, which stays accurate where the
    naive sum of squares cancels catastrophically.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """Moments of a float array that holds no NaN or infinity.

        Two passes with a correction term: the second pass fixes the rounding of the first mean.
        """
        n = int(values.size)
        if n == 0:
            return cls()
        first = float(values.mean())
        dev = values - first
        dev_sum = float(dev.sum())
        m2 = float(np.dot(dev, dev)) - dev_sum * dev_sum / n
        return cls(n, first + dev_sum / n, max(m2, 0.0))

    @classmethod
    def weighted(cls, values: np.ndarray, weights: np.ndarray) -> Moments:
        """Moments of ``values[i]`` repeated ``weights[i]`` times (distinct values and counts).

        >>> Moments.weighted(np.array([1.0, 3.0]), np.array([3, 1]))
        Moments(n=4, mean=1.5, m2=3.0)
        """
        w = np.asarray(weights, dtype=np.float64)
        n = int(np.asarray(weights).sum())
        if n == 0:
            return cls()
        first = float(np.dot(w, values) / n)
        dev = values - first
        dev_sum = float(np.dot(w, dev))
        m2 = float(np.dot(w, dev * dev)) - dev_sum * dev_sum / n
        return cls(n, first + dev_sum / n, max(m2, 0.0))

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of both samples (a new object)."""
        if other.n == 0:
            return Moments(self.n, self.mean, self.m2)
        if self.n == 0:
            return Moments(other.n, other.mean, other.m2)
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        return Moments(n, mean, m2)

    @property
    def variance(self) -> float:
        """Population variance (``ddof=0``, as :class:`sklearn.preprocessing.StandardScaler`)."""
        return self.m2 / self.n if self.n else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)


@dataclass
class LevelCounts:
    """Exact counts of distinct values, up to ``limit`` distinct values (``None``: no limit).

    Past the limit the counts are dropped and ``overflowed`` is set. Whether that happens depends
    only on the number of distinct values overall, never on how the rows were chunked: a union
    has at least as many distinct values as any of its parts.

    >>> LevelCounts.of(["a", "b", "c"], [1, 1, 1], limit=2).overflowed
    True
    """

    values: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    limit: int | None = None
    overflowed: bool = False

    @classmethod
    def of(cls, values: list, counts: list, limit: int | None) -> LevelCounts:
        if limit is not None and len(values) > limit:
            return cls([], [], limit, True)
        return cls(list(values), [int(c) for c in counts], limit, False)

    @classmethod
    def too_many(cls, limit: int | None) -> LevelCounts:
        return cls([], [], limit, True)

    def merge(self, other: LevelCounts) -> LevelCounts:
        limit = self.limit if other.limit is None else other.limit
        if self.limit is not None and other.limit is not None:
            limit = min(self.limit, other.limit)
        if self.overflowed or other.overflowed:
            return LevelCounts.too_many(limit)
        total = dict(zip(self.values, self.counts, strict=True))
        for value, count in zip(other.values, other.counts, strict=True):
            total[value] = total.get(value, 0) + count
        return LevelCounts.of(list(total), list(total.values()), limit)

    def ranked(self) -> list[tuple]:
        """``(value, count)`` pairs, most frequent first, ties broken by value."""
        return sorted(zip(self.values, self.counts, strict=True), key=lambda vc: (-vc[1], vc[0]))

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class DistinctSketch:
    """K-minimum-values sketch: an estimate of how many distinct integers were seen.

    It keeps the ``k`` smallest hashes of the values, which depend on the *set* of values only,
    so the estimate is the same however the rows are chunked or merged.

    >>> s = DistinctSketch().update(np.arange(100_000))
    >>> round(s.estimate() / 100_000, 1)
    1.0
    >>> DistinctSketch().update(np.array([7, 7, 8])).estimate()
    2.0
    """

    k: int = 2048
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))

    def update(self, values: np.ndarray) -> DistinctSketch:
        """Add integer values (in place) and return self."""
        h = hash_int64(np.asarray(values, dtype=np.int64))
        if len(self.hashes) >= self.k:
            h = h[h <= self.hashes[-1]]
        self.hashes = np.unique(np.concatenate([self.hashes, h]))[: self.k]
        return self

    def merge(self, other: DistinctSketch) -> DistinctSketch:
        k = min(self.k, other.k)
        return DistinctSketch(k, np.unique(np.concatenate([self.hashes, other.hashes]))[:k])

    def estimate(self) -> float:
        if len(self.hashes) < self.k:
            return float(len(self.hashes))
        return (self.k - 1) * 2.0**32 / (float(self.hashes[-1]) + 1.0)
