"""The profiling pass: one task per partition on the engine, merged on the client.

Each task reads its partition, drops rows without a target, and returns small statistics: row
counts, the encoder's mergeable profile of the *training* rows (holdout rows never shape the
features), every class label with its count (holdout rows included, so ``classes=`` is complete
by construction), and the target's moments for regression. The client merges them in partition
order, so the merged profile does not depend on which task finished first.

>>> import pyarrow as pa
>>> table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", None, "a"]})
>>> part = target_profile(table.column("y"), classification=True)
>>> part.dropped, part.labels
(1, {'a': 2, 'b': 1})
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.data.base import Partition, Source
from skfleet.errors import DataError
from skfleet.features.stats import Moments
from skfleet.train.stream.holdout import holdout_mask

#: A classification target with more distinct values than this in one partition is refused
#: (it is almost certainly continuous), before a huge label table travels back to the client.
MAX_CLASSES = 10_000
#: The training profile of a streamed model (``model.json`` ``profile``: the bins drift over
#: runs is measured in) comes from a uniform sample of this many training rows at most, and of
#: at most this many cells, so the client's memory does not grow with the table.
REFERENCE_ROWS = 100_000
REFERENCE_CELLS = 5_000_000


@dataclass
class TargetProfile:
    """What one partition says about the target."""

    dropped: int = 0
    labels: dict[Any, int] = field(default_factory=dict)
    moments: Moments = field(default_factory=Moments)
    too_many_labels: bool = False

    def merge(self, other: TargetProfile) -> TargetProfile:
        labels = dict(self.labels)
        for label, count in other.labels.items():
            labels[label] = labels.get(label, 0) + count
        return TargetProfile(
            dropped=self.dropped + other.dropped,
            labels=labels,
            moments=self.moments.merge(other.moments),
            too_many_labels=self.too_many_labels or other.too_many_labels,
        )


@dataclass(frozen=True)
class ProfileTask:
    """One partition to profile (small and picklable: a source URL, a partition, an encoder)."""

    source: Source
    partition: Partition
    index: int
    columns: tuple[str, ...]
    target: str | None
    classification: bool
    holdout: float
    holdout_key: str | None
    encoder: Any
    #: Fraction of the partition's training rows sent back as a sample (see REFERENCE_ROWS).
    sample: float = 0.0


@dataclass
class PartitionProfile:
    """The statistics one task sends back (``features``: the encoder's mergeable profile)."""

    index: int
    partition_id: str
    rows: int
    holdout_rows: int
    target: TargetProfile
    features: Any = None
    #: A uniform sample of the partition's training rows (None: none asked for).
    sample: pa.Table | None = None


def sample_fraction(rows_estimates: Sequence[int | None], columns: int) -> float:
    """The fraction of every partition's training rows the reference profile is computed from.

    >>> sample_fraction([50_000, 50_000], 10), sample_fraction([4_000_000, None], 10)
    (1.0, 0.025)
    """
    limit = min(REFERENCE_ROWS, REFERENCE_CELLS // max(1, columns))
    total = sum(max(0, r or 0) for r in rows_estimates)
    return 1.0 if total <= limit else limit / total


def sample_rows(table: pa.Table, fraction: float, seed: int) -> pa.Table | None:
    """About ``fraction`` of ``table``'s rows, drawn with a fixed seed (the same on a retry).

    >>> sample_rows(pa.table({"x": list(range(1000))}), 0.1, seed=0).num_rows
    92
    """
    n = table.num_rows
    if n == 0 or fraction <= 0:
        return None
    if fraction >= 1:
        return table
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=int(rng.binomial(n, fraction)), replace=False))
    return table.take(pa.array(rows, type=pa.int64()))


def encoder_from_statistics(template: Any, parts: Sequence[Any]) -> Any:
    """A fitted copy of ``template`` from the statistics of every partition, in order (None when
    no partition had a training row)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    statistics = parts[0]
    for other in parts[1:]:
        statistics = statistics.merge(other)
    return template.from_statistics(statistics)


def missing_mask(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Rows whose value is null (or NaN, for floats)."""
    nan_is_null = pa.types.is_floating(column.type)
    missing = pc.is_null(column, nan_is_null=nan_is_null)
    return np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)


def plain_target(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The target as its value type (a dictionary column is decoded)."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def target_profile(column: pa.ChunkedArray, classification: bool) -> TargetProfile:
    """Counts of the present values (classification) or their moments (regression)."""
    column = plain_target(column)
    missing = missing_mask(column)
    present = column.filter(pa.array(~missing)) if missing.any() else column
    out = TargetProfile(dropped=int(missing.sum()))
    if len(present) == 0:
        return out
    if classification:
        counts = pc.value_counts(present)
        if len(counts) > MAX_CLASSES:
            out.too_many_labels = True
            return out
        values = counts.field("values").to_pylist()
        out.labels = dict(zip(values, counts.field("counts").to_pylist(), strict=True))
    else:
        values = present.cast(pa.float64()).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        if len(finite) < len(values):
            raise DataError("target holds infinite values; a regressor needs finite numbers")
        out.moments = Moments.of(finite)
    return out


def profile_partition(task: ProfileTask) -> PartitionProfile:
    """Worker side: read one partition and profile it (top-level, so any engine can run it)."""
    table = task.source.read(task.partition, list(task.columns))
    target = TargetProfile()
    if task.target is not None:
        target = target_profile(table.column(task.target), task.classification)
        missing = missing_mask(plain_target(table.column(task.target)))
        if missing.any():
            table = table.filter(pa.array(~missing))
    hold = holdout_mask(
        table, task.holdout, key=task.holdout_key, start_row=row_offset(task.partition.id)
    )
    features = table.drop_columns([task.target]) if task.target is not None else table
    train_rows = features.filter(pa.array(~hold)) if hold.any() else features
    features = task.encoder.statistics(train_rows) if train_rows.num_rows else None
    return PartitionProfile(
        index=task.index,
        partition_id=task.partition.id,
        rows=table.num_rows,
        holdout_rows=int(hold.sum()),
        target=target,
        features=features,
        sample=sample_rows(train_rows, task.sample, seed=task.index),
    )


def row_offset(partition_id: str) -> int:
    """Where a partition's rows start in the hash space of positions.

    Without a holdout key a row is identified by (partition, position in partition): the partition
    id is hashed into the upper 32 bits, so the positions of different partitions never collide
    and the holdout does not depend on the order in which partitions are read.

    >>> row_offset("part-0") != row_offset("part-1"), row_offset("part-0") % 2**32
    (True, 0)
    """
    from skfleet.features.hashing import hash_strings

    high = int(hash_strings(pa.array([partition_id]), seed=0)[0])
    # Keep it a positive int64 (hash_int64 hashes the 8 bytes of a signed value).
    return (high & 0x7FFFFFFF) << 32


@dataclass
class StreamProfile:
    """The merged profile: what the epoch loop needs to know before it starts."""

    partition_ids: list[str]
    rows: list[int]
    holdout_rows: int
    target: TargetProfile
    encoder: Any
    #: The training profile for ``model.json`` (:func:`~skfleet.features.run_profile.reference_profile`
    #: of the rows sampled), None when no sample could be taken.
    reference: dict[str, Any] | None = None

    @property
    def total_rows(self) -> int:
        return sum(self.rows)

    def classes(self) -> list[Any]:
        """Every label seen anywhere, sorted (scikit-learn's order for ``classes_``)."""
        return sorted(self.target.labels)

    def to_state(self) -> dict[str, Any]:
        """A form skops stores faithfully (labels as pairs: skops loses some non-string keys).

        >>> p = StreamProfile(["a"], [3], 1, TargetProfile(labels={False: 1, True: 2}), None)
        >>> StreamProfile.from_state(p.to_state()).target.labels
        {False: 1, True: 2}
        """
        t = self.target
        return {
            "partition_ids": list(self.partition_ids),
            "rows": list(self.rows),
            "holdout_rows": self.holdout_rows,
            "dropped": t.dropped,
            "labels": [[label, count] for label, count in t.labels.items()],
            "moments": [t.moments.n, t.moments.mean, t.moments.m2],
            "too_many_labels": t.too_many_labels,
            "encoder": self.encoder,
            # As JSON text: skops would store the nested lists node by node.
            "reference": None if self.reference is None else json.dumps(self.reference),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamProfile:
        n, mean, m2 = state["moments"]
        target = TargetProfile(
            dropped=state["dropped"],
            labels={label: count for label, count in state["labels"]},
            moments=Moments(int(n), float(mean), float(m2)),
            too_many_labels=state["too_many_labels"],
        )
        return cls(
            partition_ids=list(state["partition_ids"]),
            rows=list(state["rows"]),
            holdout_rows=state["holdout_rows"],
            target=target,
            encoder=state["encoder"],
            reference=json.loads(state["reference"]) if state.get("reference") else None,
        )


def merge_profiles(parts: Sequence[PartitionProfile], template: Any) -> StreamProfile:
    """Merge per-partition profiles in partition order; fit a copy of the ``template`` encoder."""
    parts = sorted(parts, key=lambda p: p.index)
    target = TargetProfile()
    for part in parts:
        target = target.merge(part.target)
    encoder = encoder_from_statistics(template, [p.features for p in parts])
    return StreamProfile(
        partition_ids=[p.partition_id for p in parts],
        rows=[p.rows for p in parts],
        holdout_rows=sum(p.holdout_rows for p in parts),
        target=target,
        encoder=encoder,
        reference=_reference(encoder, parts),
    )


def _reference(encoder: Any, parts: Sequence[PartitionProfile]) -> dict[str, Any] | None:
    """The training profile, from the partitions' samples of their training rows."""
    samples = [p.sample for p in parts if p.sample is not None and p.sample.num_rows]
    if encoder is None or not samples:
        return None
    from skfleet.features.run_profile import reference_profile

    try:
        table = pa.concat_tables(samples, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # parts whose types do not unify: the encoder has said so already
    reference = reference_profile(encoder.contract_, table)
    reference["sampled_from"] = sum(p.rows - p.holdout_rows for p in parts)
    return reference
