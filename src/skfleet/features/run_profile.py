"""Profiles that say how the rows a model scores compare with the rows it was trained on.

A training run stores a *reference* profile in ``model.json`` (key ``profile``): per input column
its missing count, and either fixed histogram bins (numbers, booleans, datetimes as epoch seconds:
:data:`BINS` quantile bins of the training rows) or the contract's levels plus one bucket for
every other value, with the training rows' counts, mean and variance. Each scoring task profiles
the rows it scored against the same bins (:func:`profile_rows`: vectorised, a few numpy passes per
column) and the client merges the partitions' profiles (:meth:`RowProfile.merge`: counts add), so
a run's profile does not depend on how its table was split.

:func:`psi` compares two count vectors: the population stability index, with the missing values
as one more bucket, so a column that starts to go missing shows in it too.

>>> import pyarrow as pa
>>> from skfleet.features import TableEncoder
>>> train = pa.table({"dest": ["SFO", "LAX", "SFO", "JFK"] * 25, "miles": [float(i % 50) for i in range(100)]})
>>> contract = TableEncoder().fit(train).contract_
>>> reference = reference_profile(contract, train, bins=4)
>>> reference["columns"]["miles"]["edges"], reference["columns"]["miles"]["counts"]
([12.0, 24.5, 37.0], [24, 26, 24, 26])
>>> later = profile_rows(pa.table({"dest": ["SFO"] * 10, "miles": [45.0] * 9 + [None]}), reference)
>>> later.columns["miles"].counts, later.columns["miles"].n_missing
([0, 0, 0, 9], 1)
>>> round(psi(reference["columns"]["miles"]["counts"], 0, *later.column_counts("miles")), 2)
7.26
>>> RowProfile.from_dict(later.to_dict()) == later
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.features.coerce import decoded, epoch_seconds, float64_numpy, parse_strings
from skfleet.features.dtypes import family, type_from_str
from skfleet.features.stats import Moments

#: Quantile bins per numeric column in a training profile (fewer when values repeat).
BINS = 10
#: Proportion put in place of an empty bucket, so the PSI's logarithm stays finite (a common
#: choice; it caps what one empty bucket can add).
EMPTY_BUCKET = 1e-4
FORMAT = 1


@dataclass
class ColumnCounts:
    """One column of a :class:`RowProfile`: missing values, bucket counts, moments."""

    n_missing: int = 0
    counts: list[int] | None = None
    moments: Moments = field(default_factory=Moments)

    def merge(self, other: ColumnCounts) -> ColumnCounts:
        counts = self.counts
        if counts is None or other.counts is None:
            counts = counts if other.counts is None else other.counts
        else:
            counts = [a + b for a, b in zip(counts, other.counts, strict=True)]
        return ColumnCounts(
            self.n_missing + other.n_missing, counts, self.moments.merge(other.moments)
        )


@dataclass
class RowProfile:
    """Rows counted per column against a reference's bins; partitions merge by adding."""

    n_rows: int = 0
    columns: dict[str, ColumnCounts] = field(default_factory=dict)

    def merge(self, other: RowProfile) -> RowProfile:
        """Profile of both row sets (a new object)."""
        columns = dict(self.columns)
        for name, counts in other.columns.items():
            columns[name] = counts if name not in columns else columns[name].merge(counts)
        return RowProfile(self.n_rows + other.n_rows, columns)

    def column_counts(self, name: str) -> tuple[list[int] | None, int]:
        """``(bucket counts, missing count)`` of a column (a column never seen: all missing)."""
        col = self.columns.get(name)
        if col is None:
            return None, self.n_rows
        return col.counts, col.n_missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "columns": {
                name: {
                    "n_missing": c.n_missing,
                    "counts": c.counts,
                    "moments": [c.moments.n, c.moments.mean, c.moments.m2],
                }
                for name, c in self.columns.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowProfile:
        columns = {}
        for name, c in (data.get("columns") or {}).items():
            n, mean, m2 = c.get("moments") or (0, 0.0, 0.0)
            counts = c.get("counts")
            columns[name] = ColumnCounts(
                int(c.get("n_missing", 0)),
                None if counts is None else [int(x) for x in counts],
                Moments(int(n), float(mean), float(m2)),
            )
        return cls(int(data.get("n_rows", 0)), columns)


def _kind(spec) -> str:
    """How a contract column is profiled: ``numeric`` (bins), ``levels``, or ``missing`` only."""
    if spec.kind in ("numeric", "datetime"):
        return "numeric"
    if spec.kind == "boolean":
        return "levels"
    if spec.kind == "categorical" and not spec.hashed and spec.levels is not None:
        return "levels"
    return "missing"  # hashed codes and free text: too many values for a fixed set of buckets


def _numbers(values: pa.ChunkedArray, spec: Mapping[str, Any]) -> np.ndarray:
    """The column as float64 (datetimes as epoch seconds), NaN where missing."""
    values = decoded(values)
    fam = family(values.type)
    if fam == "string" and spec.get("parsed_type"):
        values = parse_strings(values, type_from_str(spec["parsed_type"]), spec["name"])
        fam = family(values.type)
    if fam == "datetime":
        return epoch_seconds(values)
    if fam == "string":
        values = pc.cast(values, pa.float64(), safe=False)  # may raise: the caller gives up
    return float64_numpy(values.cast(pa.float64(), safe=False))


def _finite(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    return x if finite.all() else x[finite]


def _histogram(kept: np.ndarray, edges: list[float]) -> list[int]:
    """Counts of ``kept`` in the buckets ``edges`` cut (a value on an edge goes above it).

    One comparison pass per edge: several times faster than ``np.searchsorted`` of a million
    unsorted values into a dozen edges, which mispredicts a branch at every step.

    >>> _histogram(np.array([0.0, 1.0, 1.5, 2.0, 9.0]), [1.0, 2.0])
    [1, 2, 2]
    """
    above = [int(np.count_nonzero(kept >= edge)) for edge in edges]
    steps = [kept.size, *above, 0]
    return [steps[i] - steps[i + 1] for i in range(len(steps) - 1)]


def _level_counts(values: pa.ChunkedArray, levels: list) -> tuple[list[int], int]:
    """Rows per level (the last bucket: any other value) and the missing count, counted over
    the distinct values (one hash pass) rather than per row."""
    values = decoded(values)
    if family(values.type) == "float":
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)
    counted = pc.value_counts(values) if len(values) else None
    if counted is None or len(counted) == 0:
        return [0] * (len(levels) + 1), 0
    uniques, counts = counted.field("values"), counted.field("counts").to_numpy()
    missing = pc.is_null(uniques).to_numpy(zero_copy_only=False)
    try:
        known = pa.array(levels).cast(uniques.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Type drift (codes that were numbers, now text): compare as text, as the encoder does.
        uniques = uniques.cast(pa.large_string())
        known = pa.array([str(v) for v in levels]).cast(pa.large_string())
    codes = pc.fill_null(pc.index_in(uniques, value_set=known), len(levels))
    codes = codes.to_numpy(zero_copy_only=False).astype(np.int64)
    hist = np.bincount(codes[~missing], weights=counts[~missing], minlength=len(levels) + 1)
    return [int(c) for c in hist], int(counts[missing].sum())


def _column_counts(values: pa.ChunkedArray, spec: Mapping[str, Any]) -> ColumnCounts:
    kind = spec["kind"]
    if kind == "numeric":
        x = _numbers(values, spec)
        kept = _finite(x)
        counts = _histogram(kept, spec["edges"])
        return ColumnCounts(int(x.size - kept.size), counts, Moments.of(kept))
    if kind == "levels":
        counts, missing = _level_counts(values, spec["levels"])
        return ColumnCounts(missing, counts)
    values = decoded(values)
    missing = pc.is_null(values)
    if family(values.type) == "float":
        missing = pc.or_(missing, pc.invert(pc.fill_null(pc.is_finite(values), False)))
    return ColumnCounts(int(pc.sum(missing.cast(pa.int64())).as_py() or 0))


def profile_rows(table: pa.Table, reference: Mapping[str, Any]) -> RowProfile:
    """Count ``table``'s rows against the bins of ``reference`` (a ``model.json`` ``profile``,
    or :func:`skfleet.predict.drift_runs.scoring_bins` of one). A column the table lacks counts as missing; one whose values
    cannot be read as the reference's kind counts its missing values only."""
    n = table.num_rows
    columns: dict[str, ColumnCounts] = {}
    for name, spec in reference["columns"].items():
        if name not in table.column_names:
            columns[name] = ColumnCounts(n, None)
            continue
        values = table.column(name)
        try:
            columns[name] = _column_counts(values, {**spec, "name": name})
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
            # The scoring step decides what is wrong with such a column; the profile only
            # keeps what it can say without guessing.
            columns[name] = _column_counts(values, {"kind": "missing", "name": name})
            columns[name].counts = None
    return RowProfile(n, columns)


def _edges(x: np.ndarray, bins: int) -> list[float]:
    """Interior cut points of ``bins`` quantile bins of ``x`` (fewer when values repeat)."""
    if x.size == 0:
        return []
    cuts = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(c) for c in np.unique(cuts)]


def reference_profile(contract, table: pa.Table, bins: int = BINS) -> dict[str, Any]:
    """The training profile stored in ``model.json``: bins from ``table`` (the training rows),
    and the training rows' counts in them. Columns are the contract's input columns."""
    columns: dict[str, dict[str, Any]] = {}
    for spec in contract.columns:
        if spec.kind == "excluded":
            continue
        kind = _kind(spec)
        entry: dict[str, Any] = {"kind": kind, "type": spec.kind}
        if spec.parsed_type:
            entry["parsed_type"] = spec.parsed_type
        if kind == "numeric" and spec.name in table.column_names:
            x = _numbers(table.column(spec.name), {**entry, "name": spec.name})
            entry["edges"] = _edges(_finite(x), bins)
        elif kind == "numeric":
            kind = entry["kind"] = "missing"
        elif kind == "levels":
            entry["levels"] = [False, True] if spec.kind == "boolean" else list(spec.levels)
        columns[spec.name] = entry
    reference = {"format": FORMAT, "bins": bins, "n_rows": table.num_rows, "columns": columns}
    counted = profile_rows(table, reference)
    for name, entry in columns.items():
        col = counted.columns[name]
        entry["n_missing"] = col.n_missing
        entry["counts"] = col.counts
        if entry["kind"] == "numeric":
            entry["mean"], entry["variance"] = col.moments.mean, col.moments.variance
    return reference


def psi(
    expected: list[int] | None, expected_missing: int, actual: list[int] | None, actual_missing: int
) -> float | None:
    """Population stability index of ``actual`` against ``expected`` (bucket counts, with the
    missing count as one more bucket): ``sum((a - e) * ln(a / e))`` over bucket proportions.
    None when either side has no rows, or when bucket counts are missing on one side only.

    >>> psi([50, 50], 0, [50, 50], 0)
    0.0
    >>> round(psi([50, 50], 0, [90, 10], 0), 3)
    0.879
    """
    if (expected is None) != (actual is None):
        return None
    e = np.asarray([*(expected or []), expected_missing], dtype=np.float64)
    a = np.asarray([*(actual or []), actual_missing], dtype=np.float64)
    if e.sum() == 0 or a.sum() == 0:
        return None
    e = np.maximum(e / e.sum(), EMPTY_BUCKET)
    a = np.maximum(a / a.sum(), EMPTY_BUCKET)
    value = float(np.sum((a - e) * np.log(a / e)))
    return 0.0 if math.isclose(value, 0.0, abs_tol=1e-12) else value
