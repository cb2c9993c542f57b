"""Which rows of a table a feature contract refuses, and why: for ``--bad-rows skip|quarantine``.

The table steps (:class:`~skfleet.features.TableEncoder`, ``TableCodes``, ``TableFrame``) refuse a
whole table for one value they cannot encode. :func:`find_bad_rows` names those rows instead:
a boolean mask over the table plus, for every refused value, its column and a reason from a small
fixed vocabulary (:data:`REASONS`):

- ``unparseable_number``: text that is not a number where the contract expects one;
- ``unparseable_date``: text that is not an ISO 8601 date or time where it expects a timestamp;
- ``unparseable_boolean``: text that is not ``true``/``false``/``1``/``0`` where it expects a
  boolean;
- ``not_whole_number``: a fraction where the contract expects an integer;
- ``inexact_number``: a decimal or an integer beyond 2**53 that float64 cannot hold exactly;
- ``type_refused``: any other value that would change when converted to the contract's type
  (``2`` as a boolean, an integer out of the target's range);
- ``unseen_level``: a category level never seen at fit time, when the contract's
  ``on_unseen_level`` is ``error``;
- ``missing_required``, ``non_finite``: a missing value in a column that had none at fit time,
  an infinite number, for a model that takes the checked table unfilled and refused it
  (:func:`find_missing_rows`).

A refusal that does not depend on the values (a missing column, a column whose type the contract's
``on_type_drift='error'`` refuses, timestamps in the wrong time zone) is no row's fault: it is
left to the table step, which fails the whole table as before. The common reasons are found with
vectorised Arrow compute; whatever the table step still refuses after them is narrowed down to
single values by halving (exact whatever the cause, and rare). Callers run this only after the
table step has refused a table, so tables without bad rows pay nothing for it.

>>> import pyarrow as pa
>>> from skfleet.features import TableEncoder
>>> enc = TableEncoder(on_unseen_level="error").fit(
...     pa.table({"fare": [1.5, 2.0, 3.5], "seats": [1, 2, 3], "cabin": ["A", "B", "A"]}))
>>> table = pa.table({"fare": ["2.5", "n/a", "1"], "seats": [1.0, 2.0, 2.5],
...                   "cabin": ["A", "B", "Z"]})
>>> bad = find_bad_rows(enc.contract_, table)
>>> bad.mask.tolist(), bad.counts()
([False, True, True], {'not_whole_number': 1, 'unparseable_number': 1, 'unseen_level': 1})
>>> [(p.column, p.reason, p.rows.tolist()) for p in bad.problems]
[('cabin', 'unseen_level', [2]), ('fare', 'unparseable_number', [1]), ('seats', 'not_whole_number', [2])]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skfleet.errors import DataError
from skfleet.features.coerce import _NUMBER, _blank_to_null, decoded
from skfleet.features.contract import ColumnSpec, FeatureContract
from skfleet.features.drift import DriftReport
from skfleet.features.dtypes import family, is_representation_change, type_from_str
from skfleet.features.encode import _conform
from skfleet.util.choices import BAD_ROW_REASONS

#: The reasons a row is refused, in the order of the module docstring.
REASONS: tuple[str, ...] = BAD_ROW_REASONS

#: Below this many values, halving tests each value alone.
_SINGLES = 8

#: An ISO 8601 date or time on the clock, with or without a zone (the target type decides which
#: it needs; a zone where none is wanted is left to halving).
_ANY_ISO = (
    r"^\d{4}-\d{2}-\d{2}([T ]([01]\d|2[0-3])(:[0-5]\d(:([0-5]\d|60)(\.\d{1,9})?)?)?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?$"
)

#: 2**53: integers beyond it have no exact float64 value.
_EXACT_INT = 2**53

_PARSE_REASON = {
    "float": "unparseable_number",
    "int": "unparseable_number",
    "decimal": "unparseable_number",
    "datetime": "unparseable_date",
    "bool": "unparseable_boolean",
}


@dataclass
class Problem:
    """Rows (positions in the table) whose value in ``column`` is refused for ``reason``."""

    column: str
    reason: str
    rows: np.ndarray


@dataclass
class BadRows:
    """The refused rows of a table: ``mask`` (True: bad) and every refused value."""

    mask: np.ndarray
    problems: list[Problem] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def extend(self, other: BadRows, positions: np.ndarray) -> BadRows:
        """These rows plus ``other``'s, found in the rows at ``positions`` of this table."""
        mask = self.mask.copy()
        mask[positions[other.mask]] = True
        moved = [Problem(p.column, p.reason, positions[p.rows]) for p in other.problems]
        return BadRows(mask, self.problems + moved)

    def counts(self) -> dict[str, int]:
        """Refused values per reason (a row bad in two columns counts under both)."""
        total: Counter[str] = Counter()
        for problem in self.problems:
            total[problem.reason] += len(problem.rows)
        return dict(sorted(total.items()))


def find_bad_rows(contract: FeatureContract, table: pa.Table) -> BadRows:
    """The rows of ``table`` that ``contract`` cannot encode (see the module docstring)."""
    n = table.num_rows
    mask = np.zeros(n, dtype=bool)
    problems: list[Problem] = []
    names = set(table.column_names)
    for spec in sorted(contract.columns, key=lambda s: s.name):
        if spec.kind == "excluded" or spec.name not in names:
            continue
        found: dict[str, list[np.ndarray]] = {}
        for reason, rows in _column_problems(spec, decoded(table.column(spec.name)), contract):
            if len(rows):
                found.setdefault(reason, []).append(rows)
        for reason, parts in found.items():
            rows = np.sort(np.concatenate(parts))
            problems.append(Problem(spec.name, reason, rows))
            mask[rows] = True
    return BadRows(mask, problems)


def find_missing_rows(contract: FeatureContract, table: pa.Table) -> BadRows:
    """Rows with a missing value (null, NaN) in a column that had none at fit time
    (``missing_required``) or an infinite number (``non_finite``), once conformed to the contract.

    skfleet's encoders fill both; a model that takes the checked table as it is
    (:class:`~skfleet.features.frame.TableFrame`) gets them unfilled, and scikit-learn refuses
    them unless the model imputes. :func:`~skfleet.predict.scoring.score_table` asks for these
    only once such a model has refused a table.

    >>> import pyarrow as pa
    >>> from skfleet.features.frame import TableFrame
    >>> frame = TableFrame().fit(pa.table({"x": [1.0, 2.0], "y": [None, 1.0]}))
    >>> bad = find_missing_rows(frame.contract_, pa.table({"x": [None, float("inf"), 3.0],
    ...                                                    "y": [1.0, None, 2.0]}))
    >>> bad.mask.tolist(), bad.counts()
    ([True, True, False], {'missing_required': 1, 'non_finite': 1})
    """
    mask = np.zeros(table.num_rows, dtype=bool)
    problems: list[Problem] = []
    names = set(table.column_names)
    for spec in sorted(contract.columns, key=lambda s: s.name):
        if spec.name not in names:
            continue
        values = decoded(table.column(spec.name))
        if spec.kind != "excluded":  # TableFrame hands on excluded columns (ids) as they are
            values = _conformer(spec, contract)(values)
        missing = pc.is_null(values, nan_is_null=True)
        found = [("missing_required", _np(missing))] if spec.n_missing == 0 else []
        if family(values.type) == "float":
            infinite = pc.and_(pc.invert(pc.is_finite(values)), pc.invert(pc.is_nan(values)))
            found.append(("non_finite", _np(infinite)))
        for reason, rows in found:
            rows = np.flatnonzero(rows)
            if len(rows):
                problems.append(Problem(spec.name, reason, rows))
                mask[rows] = True
    return BadRows(mask, problems)


def _conformer(spec: ColumnSpec, contract: FeatureContract) -> Callable[[pa.ChunkedArray], object]:
    target = type_from_str(spec.parsed_type or spec.arrow_type)

    def conform(values: pa.ChunkedArray):
        return _conform(values, spec, target, contract, DriftReport(n_rows=len(values)))

    return conform


def _column_problems(spec: ColumnSpec, values: pa.ChunkedArray, contract: FeatureContract):
    """(reason, row positions) for one column; nothing when the column is refused as a whole."""
    declared = type_from_str(spec.arrow_type)
    drift = family(values.type) != "null" and not is_representation_change(values.type, declared)
    if drift and contract.on_type_drift == "error":
        return []  # the column's type is refused, whatever its values
    conform = _conformer(spec, contract)
    try:
        conform(values.slice(0, 0))
    except DataError:
        return []  # refused with no values at all: a column-level refusal
    found = _vectorised(spec, values, drift)
    bad = np.zeros(len(values), dtype=bool)
    for _, rows in found:
        bad[rows] = True
    rest = np.flatnonzero(~bad)
    leftover = _refused(conform, values.take(pa.array(rest)), rest)
    if len(leftover):
        reason = "type_refused"
        if family(values.type) == "string":
            reason = _PARSE_REASON.get(family(type_from_str(spec.parsed_type or spec.arrow_type)))
            reason = reason or "type_refused"
        found.append((reason, leftover))
        bad[leftover] = True
    levelled = spec.kind == "categorical" and spec.levels is not None and not spec.hashed
    if levelled and contract.on_unseen_level == "error":
        good = np.flatnonzero(~bad)
        unseen = _unseen(spec, conform(values.take(pa.array(good))))
        found.append(("unseen_level", good[unseen]))
    return found


def _vectorised(spec: ColumnSpec, values: pa.ChunkedArray, drift: bool) -> list:
    """The common refusals of a numeric column, found in a few passes of Arrow compute."""
    target_family = family(type_from_str(spec.parsed_type or spec.arrow_type))
    fam = family(values.type)
    if fam == "string" and target_family == "datetime" and spec.kind == "datetime":
        return [("unparseable_date", np.flatnonzero(_not_dates(values)))]
    if target_family == "bool" and spec.kind == "boolean" and drift:
        return _not_booleans(values, fam)
    if spec.kind != "numeric" or not (drift or target_family == "string"):
        return []
    found = []
    numbers = None
    if fam == "string":
        clean = _blank_to_null(values)
        text = pc.match_substring_regex(clean, _NUMBER, ignore_case=True)
        unparseable = _np(pc.and_(pc.is_valid(clean), pc.invert(pc.fill_null(text, True))))
        found.append(("unparseable_number", np.flatnonzero(unparseable)))
        numbers = pc.if_else(pa.array(unparseable), pa.scalar(None, clean.type), clean)
        try:
            numbers = numbers.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            numbers = None  # something else is wrong: halving finds it
    elif fam == "float":
        numbers = values
    elif fam == "decimal":
        back = values.cast(pa.float64()).cast(values.type, safe=False)
        found.append(("inexact_number", np.flatnonzero(_np(pc.not_equal(back, values)))))
    elif fam == "int" and pa.types.is_integer(values.type):
        big = pc.greater(pc.abs(values.cast(pa.int64(), safe=False)), _EXACT_INT)
        found.append(("inexact_number", np.flatnonzero(_np(big))))
    if numbers is not None and target_family == "int":
        finite = pc.and_(pc.is_finite(numbers), pc.is_valid(numbers))
        fraction = pc.and_(finite, pc.not_equal(pc.floor(numbers), numbers))
        found.append(("not_whole_number", np.flatnonzero(_np(fraction))))
    return found


def _not_dates(values: pa.ChunkedArray) -> np.ndarray:
    """Text that is not an ISO 8601 date or time: the wrong shape, a time off the clock
    (``25:00``) or a day the calendar lacks (``2013-02-30``)."""
    clean = _blank_to_null(values)
    shaped = pc.fill_null(pc.match_substring_regex(clean, _ANY_ISO), False)
    day = pc.utf8_slice_codeunits(clean, 0, 10)
    parsed = pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2013-02-30 over to March 2: a real day keeps its day of the month.
    written = pc.utf8_slice_codeunits(day, 8, 10)
    written = pc.if_else(pc.fill_null(shaped, False), written, pa.scalar(None, written.type))
    real = pc.fill_null(pc.equal(pc.day(parsed), written.cast(pa.int64())), False)
    return _np(pc.and_(pc.is_valid(clean), pc.invert(pc.and_(shaped, real))))


def _not_booleans(values: pa.ChunkedArray, fam: str) -> list:
    """Text other than true/false/1/0 (any case), numbers other than 0 and 1."""
    if fam == "string":
        clean = _blank_to_null(values)
        words = pc.is_in(pc.utf8_lower(clean), value_set=pa.array(["true", "false", "1", "0"]))
        refused = pc.and_(pc.is_valid(clean), pc.invert(words))  # a blank is a missing value
        return [("unparseable_boolean", np.flatnonzero(_np(refused)))]
    if fam not in ("int", "float"):
        return []
    numbers = values.cast(pa.float64())
    finite = pc.and_(pc.is_finite(numbers), pc.is_valid(numbers))
    whole = pc.equal(pc.floor(numbers), numbers)
    found = [("not_whole_number", np.flatnonzero(_np(pc.and_(finite, pc.invert(whole)))))]
    other = pc.and_(pc.and_(finite, whole), pc.invert(pc.is_in(numbers, pa.array([0.0, 1.0]))))
    return found + [("type_refused", np.flatnonzero(_np(other)))]


def _unseen(spec: ColumnSpec, values) -> np.ndarray:
    """Positions of valid values outside the levels seen at fit time."""
    known = pa.array(list(spec.levels) + list(spec.other_levels or []), type=values.type)
    return _np(pc.and_(pc.invert(pc.is_in(values, value_set=known)), pc.is_valid(values)))


def _np(mask) -> np.ndarray:
    mask = pc.fill_null(mask, False)
    if isinstance(mask, pa.ChunkedArray):
        if mask.num_chunks == 0:
            return np.zeros(0, dtype=bool)
        mask = mask.combine_chunks()
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _refused(conform, values: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """The positions (from ``rows``) of the values ``conform`` refuses, by halving: a conversion
    is value by value, so a slice is refused if and only if one of its values is."""
    try:
        conform(values)
        return np.zeros(0, dtype=np.int64)
    except DataError:
        pass
    if len(values) <= _SINGLES:
        return np.asarray(
            [rows[i] for i in range(len(values)) if _refuses(conform, values.slice(i, 1))],
            dtype=np.int64,
        )
    half = len(values) // 2
    return np.concatenate(
        [
            _refused(conform, values.slice(0, half), rows[:half]),
            _refused(conform, values.slice(half), rows[half:]),
        ]
    )


def _refuses(conform, values: pa.ChunkedArray) -> bool:
    try:
        conform(values)
    except DataError:
        return True
    return False
