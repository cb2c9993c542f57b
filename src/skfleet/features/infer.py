"""Decide each column's kind and encoding from its profile and the user's overrides.

Rules without an override: booleans are ``boolean``; integers and floats ``numeric``, except
integer columns unique per row (ids), which are excluded with a warning; strings with at most
``options.max_distinct`` distinct values are ``categorical`` (``max_levels`` most frequent levels,
the rest in ``__other__``), above that hashed, or ``text`` when they average
``options.text_min_words`` words or more; dates and timestamps ``datetime`` (also strings that all read as ISO dates, e.g.
``2013-01-01 05:00:00``); columns with no value
at all, and types the encoder cannot use (lists, structs, binary), are excluded with a warning.

Output order is canonical: columns sorted by name (numbers inside names compare as numbers), so a
fit does not depend on the column order of the table either.

>>> natural_key("x10") > natural_key("x9")
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from skfleet.errors import MissingColumnError
from skfleet.features.coerce import TEXT_TIMESTAMP
from skfleet.features.contract import ColumnSpec, FeatureContract, HashSpec
from skfleet.features.dtypes import type_from_str, type_to_str
from skfleet.features.options import EncoderOptions
from skfleet.features.profile import ColumnProfile, TableProfile

_EPS = float(np.finfo(np.float64).eps)
_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: An integer column past the level limit counts as an id when its estimated number of distinct
#: values reaches this share of the rows (the estimate is within a few percent).
ID_SHARE = 0.95


@dataclass
class Plan:
    """The encoder settings that shape the contract."""

    roles: dict[str, str] = field(default_factory=dict)
    max_levels: int = 32
    hash_features: int = 64
    sparse: str | bool = "auto"
    options: EncoderOptions = field(default_factory=EncoderOptions)
    policies: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    settings: dict = field(default_factory=dict)


def natural_key(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t]


def build_contract(profile: TableProfile, plan: Plan) -> tuple[FeatureContract, list[str]]:
    """The contract for ``profile``, and warnings about columns set aside."""
    for name, role in plan.roles.items():
        if name not in profile.columns:
            raise MissingColumnError(f"column {name!r} named in {role}= is not in the table")
    warnings: list[str] = []
    specs = []
    for name in sorted(profile.columns, key=natural_key):
        spec, warning = _infer(name, profile.columns[name], profile, plan)
        specs.append(spec)
        if warning:
            warnings.append(warning)
    width = sum(s.width for s in specs)
    sparse = plan.sparse if isinstance(plan.sparse, bool) else width > plan.options.sparse_above
    contract = FeatureContract.build(
        specs,
        sparse=bool(sparse),
        target=plan.target,
        n_rows=profile.n_rows,
        settings=plan.settings,
        **plan.policies,
    )
    return contract, warnings


def _indicator(n_missing: int, options: EncoderOptions) -> bool:
    return options.indicators == "always" or (options.indicators == "auto" and n_missing > 0)


def _excluded(name: str, col: ColumnProfile, reason: str, n_missing: int) -> ColumnSpec:
    return ColumnSpec(name, "excluded", col.arrow_type, reason=reason, n_missing=n_missing)


def _infer(name: str, col: ColumnProfile, profile: TableProfile, plan: Plan):
    role = plan.roles.get(name, "auto")
    options = plan.options
    n_rows = profile.n_rows
    n_missing = profile.missing_in(name)
    fam = col.family
    if role == "exclude":
        return _excluded(name, col, "exclude=", n_missing), None
    if n_missing >= n_rows:
        reason = "no values: every row is missing"
        return _excluded(name, col, reason, n_missing), f"column {name!r} excluded: {reason}"
    common = {"n_missing": n_missing, "indicator": _indicator(n_missing, options)}
    if role == "numeric" or (role == "auto" and fam in ("int", "float", "decimal")):
        if role == "auto" and fam == "int" and _looks_like_id(col, n_rows, n_missing, options):
            reason = "integer id: a distinct value in every row"
            return _excluded(name, col, reason, n_missing), (
                f"column {name!r} excluded: {reason} (pass numeric=[{name!r}] to keep it)"
            )
        why = "numeric=" if role == "numeric" else f"inferred: {fam} values"
        return _numeric(name, col, why, options, common), None
    if role == "auto" and col.date_text in TEXT_TIMESTAMP and col.moments and col.moments.n:
        return _datetime(name, col, options, common), None
    if role == "categorical" or (
        role == "auto" and fam == "string" and col.levels is not None and not col.levels.overflowed
    ):
        why = (
            "categorical="
            if role == "categorical"
            else f"inferred: {len(col.levels)} distinct strings"
        )
        return _categorical(name, col, why, plan.max_levels, common), None
    if role == "auto" and fam == "bool":
        return _boolean(name, col, common), None
    if role in ("hash", "text") or (role == "auto" and fam == "string"):
        n_values = max(col.n_rows - col.n_missing, 1)
        words = col.n_words / n_values
        text = role == "text" or (role == "auto" and words >= options.text_min_words)
        if role == "auto":
            why = (
                f"inferred: more than {options.max_distinct} distinct strings, "
                f"{words:.1f} words per value"
            )
        else:
            why = f"{role}="
        hashing = HashSpec(plan.hash_features, options.hash_seed)
        kind = "text" if text else "categorical"
        return ColumnSpec(name, kind, col.arrow_type, reason=why, hash=hashing, **common), None
    if role == "auto" and fam == "datetime":
        return _datetime(name, col, options, common), None
    reason = f"unsupported type {col.arrow_type}"
    return _excluded(name, col, reason, n_missing), f"column {name!r} excluded: {reason}"


def _looks_like_id(col: ColumnProfile, n_rows: int, n_missing: int, options) -> bool:
    if n_missing or n_rows < options.id_min_rows or n_rows < 2:
        return False
    if col.levels is not None and not col.levels.overflowed:
        return len(col.levels) == n_rows
    if col.sketch is None:
        return False
    return col.sketch.estimate() >= ID_SHARE * n_rows


def _is_constant(moments) -> bool:
    """Variance indistinguishable from rounding noise (the bound scikit-learn's scaler uses)."""
    n, mean, var = moments.n, moments.mean, moments.variance
    return var <= n * _EPS * var + (n * mean * _EPS) ** 2


def _center_scale(moments, options: EncoderOptions) -> tuple[float | None, float | None]:
    if not options.scale:
        return None, None
    scale = 1.0 if _is_constant(moments) else float(moments.std)
    return float(moments.mean), scale


def _numeric(name, col, why, options, common) -> ColumnSpec:
    center, scale = _center_scale(col.moments, options)
    fill = float(col.moments.mean)
    return ColumnSpec(
        name,
        "numeric",
        col.arrow_type,
        reason=why,
        fill_value=fill,
        center=center,
        scale=scale,
        **common,
    )


def _py_level(value, fam: str):
    if fam == "float":
        return float(value)
    if fam == "int":
        return int(value)
    if fam == "bool":
        return bool(value)
    return str(value)


def _categorical(name, col, why, max_levels, common) -> ColumnSpec:
    fam = col.family
    ranked = [_py_level(v, fam) for v, _ in col.levels.ranked()]
    return ColumnSpec(
        name,
        "categorical",
        col.arrow_type,
        reason=why,
        fill_value=ranked[0],
        levels=ranked[:max_levels],
        other_levels=ranked[max_levels:],
        **common,
    )


def _boolean(name, col, common) -> ColumnSpec:
    counts = dict(zip(col.levels.values, col.levels.counts, strict=True))
    fill = counts.get(True, 0) > counts.get(False, 0)
    return ColumnSpec(
        name, "boolean", col.arrow_type, reason="inferred: booleans", fill_value=fill, **common
    )


def _datetime(name, col, options, common) -> ColumnSpec:
    arrow_type = type_from_str(col.arrow_type)
    parsed = None
    if col.date_text in TEXT_TIMESTAMP:
        arrow_type = TEXT_TIMESTAMP[col.date_text]
        parsed = type_to_str(arrow_type)
    parts = list(options.datetime_parts)
    if pa.types.is_date(arrow_type):
        parts = [p for p in parts if p != "hour"]
    center, scale = _center_scale(col.moments, options) if "epoch" in parts else (None, None)
    reason = "inferred: dates and times" + (" written as text" if parsed else "")
    mean = col.moments.mean
    if pa.types.is_timestamp(arrow_type):
        fill = round(mean * _UNITS_PER_SECOND[arrow_type.unit])
    elif pa.types.is_date32(arrow_type):
        fill = round(mean / 86_400)
    else:  # date64: milliseconds, whole days
        fill = round(mean / 86_400) * 86_400_000
    return ColumnSpec(
        name,
        "datetime",
        col.arrow_type,
        reason=reason,
        fill_value=int(fill),
        parts=parts,
        center=center,
        scale=scale,
        parsed_type=parsed,
        **common,
    )
