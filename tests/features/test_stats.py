"""Mergeable statistics: merging chunks equals one pass over all values."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skfleet.features.stats import DistinctSketch, LevelCounts, Moments

floats = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(floats, min_size=1, max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_moments_merge_equals_one_pass(values, cuts):
    x = np.array(values)
    bounds = [0, *sorted(cuts), len(x)]
    merged = Moments()
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        merged = merged.merge(Moments.of(x[a:b]))
    assert merged.n == len(x)
    assert math.isclose(merged.mean, x.mean(), rel_tol=1e-9, abs_tol=1e-6)
    expected_var = float(np.var(x.astype(np.longdouble)))
    assert math.isclose(
        merged.variance, expected_var, rel_tol=1e-9, abs_tol=1e-9 * (1 + x.mean() ** 2) * 1e-3
    )


def test_moments_stay_accurate_where_the_naive_formula_cancels():
    x = 1e9 + np.array([4.0, 7.0, 13.0, 16.0])
    m = Moments.of(x[:2]).merge(Moments.of(x[2:]))
    assert m.variance == 22.5  # naive E[x^2] - E[x]^2 in float64 gives garbage here


def test_weighted_moments_equal_repeated_values():
    values, counts = np.array([2.0, 5.0, 11.0]), np.array([3, 1, 2])
    a = Moments.weighted(values, counts)
    b = Moments.of(np.repeat(values, counts))
    assert a.n == b.n and math.isclose(a.mean, b.mean) and math.isclose(a.m2, b.m2)


def test_level_counts_overflow_does_not_depend_on_chunking():
    parts = [(["a", "b"], [1, 2]), (["c"], [1]), (["a", "d"], [5, 1])]
    merged = LevelCounts.of([], [], limit=4)
    for values, counts in parts:
        merged = merged.merge(LevelCounts.of(values, counts, limit=4))
    assert not merged.overflowed and merged.ranked() == [("a", 6), ("b", 2), ("c", 1), ("d", 1)]
    merged = merged.merge(LevelCounts.of(["e"], [1], limit=4))
    assert merged.overflowed and merged.values == []
    # Once overflowed, always overflowed.
    assert merged.merge(LevelCounts.of(["a"], [1], limit=4)).overflowed


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 50_000), min_size=1, max_size=3000), st.integers(1, 3000))
def test_distinct_sketch_depends_on_the_set_only(values, cut):
    x = np.array(values)
    whole = DistinctSketch(k=64).update(x)
    parts = DistinctSketch(k=64).update(x[:cut]).merge(DistinctSketch(k=64).update(x[cut:]))
    assert np.array_equal(whole.hashes, parts.hashes)
    assert whole.estimate() == parts.estimate()
    if len(set(values)) < 64:
        assert whole.estimate() == len(set(values))
