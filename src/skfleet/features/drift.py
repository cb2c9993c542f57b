"""What differed between the table being encoded and the table the contract was learned from.

A :class:`DriftReport` counts, per column: unseen category levels (with a few examples), type
coercions (``int32 -> int64``: rows), missing columns (rows filled), and missing values in columns
that had none at fit time; plus the rows holding at least one such missing value, and the extra
columns that were ignored. Reports of different partitions merge by adding counts, so the result
does not depend on how the table was split.

>>> a = DriftReport(n_rows=100, unseen_levels={"carrier": 3}, unseen_examples={"carrier": ["ZZ"]})
>>> b = DriftReport(n_rows=50, unseen_levels={"carrier": 1}, unseen_examples={"carrier": ["QQ"]})
>>> total = a.merge(b)
>>> total.n_rows, total.unseen_levels, total.unseen_examples, bool(total)
(150, {'carrier': 4}, {'carrier': ['QQ', 'ZZ']}, True)
>>> print(total.summary())
drift in 150 rows:
- unseen levels in 'carrier': 4 values (e.g. 'QQ', 'ZZ'), encoded as __other__
>>> DriftReport.from_dict(total.to_dict()) == total
True

What happens to an unseen level depends on the model's table step, which says so in
``unseen_as``: :class:`~skfleet.features.TableEncoder` encodes it as ``__other__``,
:class:`~skfleet.features.frame.TableFrame` hands it on unchanged to the model's own encoding, and
:class:`~skfleet.features.codes.TableCodes` gives it to the model as a missing value.

>>> DriftReport(n_rows=1, unseen_levels={"cut": 1}, unseen_examples={"cut": ["Fair"]},
...             unseen_as=UNSEEN_PASSED).lines()
["unseen levels in 'cut': 1 values (e.g. 'Fair'), passed on unchanged to the model's own encoding"]
>>> bool(DriftReport(n_rows=10, extra_columns=["note"]))
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: How many example unseen levels a report keeps per column (the smallest, so merges agree).
N_EXAMPLES = 5
#: What a table step does with a level never seen at fit time (:attr:`DriftReport.unseen_as`).
UNSEEN_OTHER = "encoded as __other__"
UNSEEN_PASSED = "passed on unchanged to the model's own encoding"
UNSEEN_MISSING = "given to the model as missing values"


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


@dataclass
class DriftReport:
    """Counts of drift found while encoding; see the module docstring."""

    n_rows: int = 0
    missing_columns: dict[str, int] = field(default_factory=dict)
    unseen_levels: dict[str, int] = field(default_factory=dict)
    unseen_examples: dict[str, list[str]] = field(default_factory=dict)
    coerced: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_values: dict[str, int] = field(default_factory=dict)
    rows_with_missing: int = 0
    extra_columns: list[str] = field(default_factory=list)
    #: What the table step did with the unseen levels (the same in every partition of a run).
    unseen_as: str = UNSEEN_OTHER

    def __bool__(self) -> bool:
        """True when anything drifted (extra columns alone are not drift: they are ignored)."""
        return bool(
            self.missing_columns or self.unseen_levels or self.coerced or self.missing_values
        )

    def merge(self, other: DriftReport) -> DriftReport:
        """Add ``other``'s counts into this report (in place) and return it."""
        self.n_rows += other.n_rows
        _add(self.missing_columns, other.missing_columns)
        _add(self.unseen_levels, other.unseen_levels)
        for column, examples in other.unseen_examples.items():
            merged = sorted(set(self.unseen_examples.get(column, [])) | set(examples))
            self.unseen_examples[column] = merged[:N_EXAMPLES]
        for column, changes in other.coerced.items():
            _add(self.coerced.setdefault(column, {}), changes)
        _add(self.missing_values, other.missing_values)
        self.rows_with_missing += other.rows_with_missing
        self.extra_columns = sorted(set(self.extra_columns) | set(other.extra_columns))
        return self

    # -- recording (used by the encoder) --------------------------------------------------------

    def add_unseen(self, column: str, count: int, examples: list[str]) -> None:
        if count:
            self.merge(
                DriftReport(unseen_levels={column: count}, unseen_examples={column: examples})
            )

    def add_coercion(self, column: str, change: str, rows: int) -> None:
        _add(self.coerced.setdefault(column, {}), {change: rows})

    # -- output ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "missing_columns": dict(self.missing_columns),
            "unseen_levels": dict(self.unseen_levels),
            "unseen_examples": {k: list(v) for k, v in self.unseen_examples.items()},
            "coerced": {k: dict(v) for k, v in self.coerced.items()},
            "missing_values": dict(self.missing_values),
            "rows_with_missing": self.rows_with_missing,
            "extra_columns": list(self.extra_columns),
            "unseen_as": self.unseen_as,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        return cls(
            n_rows=int(data.get("n_rows", 0)),
            missing_columns=dict(data.get("missing_columns", {})),
            unseen_levels=dict(data.get("unseen_levels", {})),
            unseen_examples={k: list(v) for k, v in data.get("unseen_examples", {}).items()},
            coerced={k: dict(v) for k, v in data.get("coerced", {}).items()},
            missing_values=dict(data.get("missing_values", {})),
            rows_with_missing=int(data.get("rows_with_missing", 0)),
            extra_columns=list(data.get("extra_columns", [])),
            unseen_as=str(data.get("unseen_as") or UNSEEN_OTHER),
        )

    def lines(self) -> list[str]:
        """One line per drifting column (what :meth:`summary` prints)."""
        out = []
        for column, rows in sorted(self.missing_columns.items()):
            out.append(f"missing column {column!r}: filled as missing in {rows:,} rows")
        for column, count in sorted(self.unseen_levels.items()):
            examples = ", ".join(repr(e) for e in self.unseen_examples.get(column, []))
            out.append(
                f"unseen levels in {column!r}: {count:,} values (e.g. {examples}), {self.unseen_as}"
            )
        for column, changes in sorted(self.coerced.items()):
            for change, rows in sorted(changes.items()):
                out.append(f"type of {column!r} coerced {change} in {rows:,} rows")
        for column, count in sorted(self.missing_values.items()):
            out.append(f"{count:,} missing values in {column!r}, which had none at fit time")
        if self.rows_with_missing:
            out.append(f"{self.rows_with_missing:,} rows hold at least one such missing value")
        return out

    def summary(self) -> str:
        """A short human-readable account."""
        if not self:
            text = f"no drift in {self.n_rows:,} rows"
        else:
            text = "\n".join([f"drift in {self.n_rows:,} rows:"] + [f"- {x}" for x in self.lines()])
        if self.extra_columns:
            text += f"\n(extra columns ignored: {', '.join(self.extra_columns)})"
        return text

    def __str__(self) -> str:
        return self.summary()
