"""What the encoder learns from rows before it decides anything: one mergeable profile per column.

``partial_fit`` profiles each chunk and merges; ``TableEncoder.merge`` merges the profiles of two
encoders. Kinds, levels and scales are derived from the merged profile afterwards
(:mod:`skfleet.features.infer`), so they are the same however the rows were split.

>>> import pyarrow as pa
>>> chunk = as_input_table(pa.table({"carrier": ["AA", "UA", "AA", None], "delay": [1.0, 3.0, None, 5.0]}))
>>> p = TableProfile.of(chunk, roles={}, max_distinct=100)
>>> p.columns["carrier"].levels.ranked(), p.columns["carrier"].n_missing
([('AA', 2), ('UA', 1)], 1)
>>> p.columns["delay"].moments
Moments(n=3, mean=3.0, m2=8.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import DataError
from skfleet.features.coerce import (
    DATETIME_TEXT,
    TEXT_TIMESTAMP,
    decoded,
    epoch_seconds,
    parse_strings,
    to_float64,
)
from skfleet.features.dtypes import family, type_from_str, type_to_str, unify
from skfleet.features.errors import FeatureParamError
from skfleet.features.stats import DistinctSketch, LevelCounts, Moments
from skfleet.features.tables import InputTable, as_input_table

#: Roles a user override gives a column; anything else is ``"auto"``.
ROLES = ("exclude", "numeric", "categorical", "hash", "text")
WORD = r"[\pL\pN_]+"


@dataclass
class ColumnProfile:
    """Statistics of one column over the rows seen so far.

    ``moments`` describe the column as numbers (numeric columns; datetimes as epoch seconds);
    (and of strings that all read as dates);
    ``levels`` count distinct values (strings, integers, booleans, ``categorical=`` overrides);
    ``sketch`` estimates the distinct count of integer columns past the level limit;
    ``n_words`` totals the words of string values (to tell free text from codes);
    ``date_text`` says whether all strings read as ISO dates: ``"naive"`` or ``"zoned"`` (with a
    zone offset), ``"no"``, or ``""`` (no string seen yet).
    """

    arrow_type: str
    n_rows: int = 0
    n_missing: int = 0
    moments: Moments | None = None
    levels: LevelCounts | None = None
    sketch: DistinctSketch | None = None
    n_words: int = 0
    date_text: str = ""

    @property
    def family(self) -> str:
        parsed = _parse(self.arrow_type)
        return "other" if parsed is None else family(parsed)

    def merge(self, other: ColumnProfile, column: str) -> ColumnProfile:
        """Profile of both row sets; types are unified (``int32`` + ``int64`` -> ``int64``)."""
        a_type, b_type = _parse(self.arrow_type), _parse(other.arrow_type)
        if a_type is None or b_type is None:  # types the encoder does not use (lists, ...)
            if self.arrow_type != other.arrow_type:
                raise DataError(
                    f"column {column!r} holds {self.arrow_type} values in one part of the table "
                    f"and {other.arrow_type} in another"
                )
            return replace(
                self, n_rows=self.n_rows + other.n_rows, n_missing=self.n_missing + other.n_missing
            )
        unified = unify(a_type, b_type, column)
        counts = {
            "n_rows": self.n_rows + other.n_rows,
            "n_missing": self.n_missing + other.n_missing,
        }
        # A chunk with no values (null type) contributes counts only.
        if family(a_type) == "null":
            return replace(other, arrow_type=type_to_str(unified), **counts)
        if family(b_type) == "null":
            return replace(self, arrow_type=type_to_str(unified), **counts)
        same_family = family(a_type) == family(b_type) == family(unified)
        return ColumnProfile(
            arrow_type=type_to_str(unified),
            moments=_merge_opt(self.moments, other.moments),
            levels=_merge_opt(self.levels, other.levels)
            if same_family or _unlimited(self.levels, other.levels)
            else None,
            sketch=_merge_opt(self.sketch, other.sketch) if same_family else None,
            n_words=self.n_words + other.n_words,
            date_text=_merge_date_text(self.date_text, other.date_text),
            **counts,
        )


def _parse(arrow_type: str) -> pa.DataType | None:
    try:
        return type_from_str(arrow_type)
    except DataError:
        return None


def _unlimited(a: LevelCounts | None, b: LevelCounts | None) -> bool:
    """``categorical=`` overrides keep their levels even when int and float chunks unify."""
    return a is not None and b is not None and a.limit is None and b.limit is None


def _merge_opt(a, b):
    if a is None or b is None:
        return None
    return a.merge(b)


@dataclass
class TableProfile:
    """Per-column profiles, the total row count, and the column names in first-seen order."""

    n_rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, table: InputTable | pa.Table, roles: dict[str, str], max_distinct: int):
        """Profile one chunk. ``roles`` maps overridden columns to one of :data:`ROLES`."""
        if not isinstance(table, InputTable):
            table = as_input_table(table)
        columns = {
            name: profile_column(table.columns[name], name, roles.get(name, "auto"), max_distinct)
            for name in table.names
        }
        return cls(table.n_rows, columns, list(table.names))

    def merge(self, other: TableProfile) -> TableProfile:
        """Profile of both row sets (a new object). Columns missing on one side count as null."""
        columns: dict[str, ColumnProfile] = {}
        order = list(self.order) + [c for c in other.order if c not in self.columns]
        for name in order:
            a, b = self.columns.get(name), other.columns.get(name)
            if a is None or b is None:
                columns[name] = a if b is None else b
            else:
                columns[name] = a.merge(b, name)
        return TableProfile(self.n_rows + other.n_rows, columns, order)

    def missing_in(self, name: str) -> int:
        """Missing values of a column, counting rows of chunks that lacked the column."""
        col = self.columns[name]
        return col.n_missing + (self.n_rows - col.n_rows)


def _missing_mask(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if family(values.type) == "float":
        return pc.or_kleene(pc.is_null(values), pc.invert(pc.is_finite(values)))
    return pc.is_null(values)


def _count_true(mask: pa.ChunkedArray) -> int:
    return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)


def _distinct(values: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Distinct non-missing values of a chunk and their counts."""
    if len(values) == 0:
        return pa.array([], values.type), pa.array([], pa.int64())
    counted = pc.value_counts(values)
    uniques, counts = counted.field("values"), counted.field("counts")
    keep = pc.is_valid(uniques)
    if family(uniques.type) == "float":
        keep = pc.and_(keep, pc.is_finite(uniques))
    return uniques.filter(keep), counts.filter(keep)


def _levels_of(uniques: pa.Array, counts: pa.Array, limit: int | None) -> LevelCounts:
    if limit is not None and len(uniques) > limit:
        return LevelCounts.too_many(limit)
    return LevelCounts.of(uniques.to_pylist(), counts.to_pylist(), limit)


def _moments_of(numbers: np.ndarray) -> Moments:
    return Moments.of(numbers[np.isfinite(numbers)])


def _as_numpy_float(values: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(values.cast(pa.float64(), safe=False), np.nan).to_numpy()


def _profile_date_text(profile: ColumnProfile, uniques, counts, name: str) -> None:
    """Strings that all read as ISO dates: note how they are written and profile their epoch."""
    profile.date_text = "no"
    if len(uniques) == 0:
        profile.date_text = ""
        profile.moments = Moments()
        return
    for style, pattern in DATETIME_TEXT.items():
        if pc.all(pc.match_substring_regex(uniques, pattern)).as_py():
            stamps = parse_strings(pa.chunked_array([uniques]), TEXT_TIMESTAMP[style], name)
            profile.moments = Moments.weighted(epoch_seconds(stamps), counts.to_numpy())
            profile.date_text = style
            return


def _merge_date_text(a: str, b: str) -> str:
    if a == "" or a == b:
        return b
    return a if b == "" else "no"


def profile_column(
    values: pa.ChunkedArray, name: str, role: str, max_distinct: int
) -> ColumnProfile:
    """Profile one chunk of one column for the given role (``"auto"`` or one of :data:`ROLES`)."""
    values = decoded(values)
    fam = family(values.type)
    profile = ColumnProfile(type_to_str(values.type), n_rows=len(values))
    if fam == "null":
        profile.n_missing = len(values)
        return profile
    if role == "numeric" and fam in ("datetime", "other"):
        raise FeatureParamError(f"numeric= names column {name!r}, which holds {values.type} values")
    if role == "categorical" and fam not in ("string", "int", "float", "bool"):
        raise FeatureParamError(
            f"categorical= names column {name!r}, which holds {values.type} values"
        )
    profile.n_missing = _count_true(_missing_mask(values))
    if role in ("exclude", "hash", "text"):
        return profile
    if role == "numeric" or (role == "auto" and fam in ("int", "float", "decimal")):
        # Text must parse; decimals (and huge integers) are encoded as the nearest float64.
        numbers = to_float64(values, name) if fam == "string" else values
        profile.n_missing = _count_true(_missing_mask(numbers))
        profile.moments = _moments_of(_as_numpy_float(numbers))
    if role == "categorical" or (role == "auto" and fam in ("int", "string", "bool")):
        # Work on distinct values: cheap for codes, no worse than per row for ids and text.
        uniques, counts = _distinct(values)
        unlimited = role == "categorical" or fam == "bool"
        profile.levels = _levels_of(uniques, counts, None if unlimited else max_distinct)
        if role == "auto" and fam == "int":
            ints = uniques.cast(pa.int64(), safe=False).to_numpy(zero_copy_only=False)
            profile.sketch = DistinctSketch().update(ints)
        if role == "auto" and fam == "string":
            words = pc.count_substring_regex(uniques, WORD).cast(pa.int64())
            profile.n_words = int(pc.sum(pc.multiply(words, counts)).as_py() or 0)
            _profile_date_text(profile, uniques, counts, name)
    if role == "auto" and fam == "datetime":
        profile.moments = _moments_of(epoch_seconds(values))
    return profile
