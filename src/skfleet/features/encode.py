"""Turn a table into the contract's features: column by column, vectorised, into one output.

Each column is conformed to the contract's type (counting and checking type drift), encoded with
Arrow compute and numpy, and written straight into the preallocated float32 output (dense) or
collected as coordinates (CSR), so the peak memory is the output plus one column's temporaries.

>>> from skfleet.features.contract import ColumnSpec, FeatureContract
>>> from skfleet.features.tables import as_input_table
>>> contract = FeatureContract.build([
...     ColumnSpec("carrier", "categorical", "large_string", levels=["UA", "AA"], other_levels=[],
...                fill_value="UA"),
...     ColumnSpec("delay", "numeric", "double", fill_value=2.0, center=2.0, scale=1.0,
...                indicator=True, n_missing=1),
... ])
>>> table = as_input_table(pa.table({"delay": [1.0, None, 4.0], "carrier": ["AA", "UA", "ZZ"]}))
>>> out, report = encode_table(contract, table)
>>> out
array([[ 0.,  1.,  0., -1.,  0.],
       [ 1.,  0.,  0.,  0.,  1.],
       [ 0.,  0.,  1.,  2.,  0.]], dtype=float32)
>>> report.unseen_levels, report.unseen_examples
({'carrier': 1}, {'carrier': ['ZZ']})
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from skfleet.errors import DataError, MissingColumnError
from skfleet.features.coerce import (
    decoded,
    epoch_seconds,
    float64_numpy,
    nan_to_null,
    to_float64,
    to_type,
)
from skfleet.features.contract import ColumnSpec, FeatureContract
from skfleet.features.drift import N_EXAMPLES, DriftReport
from skfleet.features.dtypes import family, is_representation_change, type_from_str, type_to_str
from skfleet.features.hashing import bucket_strings
from skfleet.features.tables import InputTable

#: Separators between the words of a text column (anything but letters, digits, underscore).
WORD_SEPARATOR = r"[^\pL\pN_]+"


def _standardized(x: np.ndarray, center: float | None, scale: float | None, out=None):
    """``(x - center) / scale`` computed in float64 and stored as float32 (into ``out`` if given,
    which may be a strided column of the feature array): the same values as
    ``((x - center) / scale).astype(np.float32)`` without the two full-size temporaries.

    >>> _standardized(np.array([1.0, 3.0]), 2.0, 0.5).tolist()
    [-2.0, 2.0]
    """
    if out is None:
        out = np.empty(len(x), dtype=np.float32)
    if center is None:
        out[...] = x
    else:
        np.divide(np.subtract(x, center), scale, out=out, casting="unsafe")
    return out


class _DenseOut:
    """Writes features into a preallocated C-ordered float32 array.

    Writing one feature at a time into a row-major array strides through all of memory once per
    feature (seconds per million rows). So encoded columns are queued (as they come, with the
    centre and scale still to apply, or as int32 one-hot codes) and written in row blocks that
    stay in cache, each value standardized on its way in; the queue is flushed whenever it holds
    more than a quarter of the output's size, which bounds the extra memory.
    """

    BLOCK_BYTES = 4 << 20

    def __init__(self, n_rows: int, width: int):
        self.array = np.zeros((n_rows, width), dtype=np.float32)
        self.pending: list[tuple[bool, int, np.ndarray, float | None, float | None]] = []
        self.pending_bytes = 0
        self.budget = max(self.array.nbytes // 4, 1 << 20)

    def _queue(self, is_hot: bool, offset: int, data: np.ndarray, center=None, scale=None) -> None:
        self.pending.append((is_hot, offset, data, center, scale))
        self.pending_bytes += data.nbytes
        if self.pending_bytes > self.budget:
            self.flush()

    def column(self, offset: int, values: np.ndarray, center=None, scale=None) -> None:
        """Feature ``offset`` is ``values``, or ``(values - center) / scale`` given both."""
        self._queue(False, offset, np.asarray(values), center, scale)

    def one_hot(self, offset: int, codes: np.ndarray) -> None:
        self._queue(True, offset, codes.astype(np.int32))

    def entries(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        np.add.at(self.array, (rows, cols), values.astype(np.float32))

    def flush(self) -> None:
        n, width = self.array.shape
        step = max(1024, self.BLOCK_BYTES // max(width * 4, 1))
        for start in range(0, n, step):
            block = self.array[start : start + step]
            for is_hot, offset, data, center, scale in self.pending:
                part = data[start : start + step]
                if is_hot:
                    rows = np.flatnonzero(part >= 0)
                    block[rows, offset + part[rows]] = 1.0
                else:
                    _standardized(part, center, scale, out=block[:, offset])
        self.pending.clear()
        self.pending_bytes = 0

    def result(self) -> np.ndarray:
        self.flush()
        return self.array


class _SparseOut:
    """Builds a canonical CSR matrix (sorted indices, no duplicates, no explicit zeros).

    Columns arrive in the contract's order, each at a higher offset than the last, and most give
    at most one entry per row (a number, a one-hot level, a hashed bucket). Those are kept as one
    ``(rows, slots)`` grid of column indices and values, and the CSR arrays are read straight off
    the grid in row-major order: already sorted, with no COO sort. A text column (several words
    per row, possibly in the same bucket) sends coordinates instead, and then everything goes
    through COO, which sorts and sums duplicates.
    """

    def __init__(self, n_rows: int, width: int):
        self.shape = (n_rows, width)
        self.index_type = np.int32 if width < 2**31 else np.int64
        self.slots: list[tuple[np.ndarray | int, np.ndarray | float, np.ndarray]] = []
        self.coordinates: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def entries(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        rows = rows.astype(np.int64, copy=False)
        cols = np.broadcast_to(cols, rows.shape).astype(np.int64)
        self.coordinates.append((rows, cols, np.broadcast_to(values, rows.shape)))

    def column(self, offset: int, values: np.ndarray, center=None, scale=None) -> None:
        values = _standardized(values, center, scale)
        self.slots.append((offset, values, values != 0))

    def one_hot(self, offset: int, codes: np.ndarray) -> None:
        valid = codes >= 0
        self.slots.append((offset + np.where(valid, codes, 0), np.float32(1.0), valid))

    def result(self) -> sp.csr_matrix:
        n, width = self.shape
        if self.coordinates:
            return self._from_coordinates()
        k = len(self.slots)
        cols = np.empty((n, k), dtype=self.index_type)
        vals = np.empty((n, k), dtype=np.float32)
        valid = np.empty((n, k), dtype=bool)
        for j, (col, value, keep) in enumerate(self.slots):
            cols[:, j], vals[:, j], valid[:, j] = col, value, keep
        counts = valid.sum(axis=1)
        indptr = np.zeros(n + 1, dtype=self.index_type if counts.sum() < 2**31 else np.int64)
        np.cumsum(counts, out=indptr[1:])
        # Boolean indexing walks the grid row by row: each row's columns in ascending order.
        return sp.csr_matrix((vals[valid], cols[valid], indptr), shape=self.shape)

    def _from_coordinates(self) -> sp.csr_matrix:
        for col, value, keep in self.slots:
            rows = np.flatnonzero(keep)
            col = np.broadcast_to(col, keep.shape)[rows]
            self.entries(rows, col, np.broadcast_to(value, keep.shape)[rows])
        rows, cols, vals = (np.concatenate(parts) for parts in zip(*self.coordinates, strict=True))
        out = sp.coo_matrix(
            (vals.astype(np.float32), (rows, cols)), shape=self.shape, dtype=np.float32
        ).tocsr()
        out.sum_duplicates()
        out.eliminate_zeros()
        out.sort_indices()
        return out


def encode_table(contract: FeatureContract, table: InputTable):
    """Features of ``table`` under ``contract`` and the :class:`DriftReport` of this call.

    Error policies raise here; ``warn`` policies are left to the caller (the report says what to
    warn about), so this function has no side effects and is safe to call from many threads.
    """
    n = table.n_rows
    report = DriftReport(n_rows=n)
    known = {c.name for c in contract.columns}
    report.extra_columns = sorted(c for c in table.names if c not in known)
    missing = [c for c in contract.input_columns if c not in table.columns]
    if missing and contract.on_missing_column == "error":
        also = f" (also missing: {', '.join(repr(c) for c in missing[1:])})" if missing[1:] else ""
        raise MissingColumnError(
            f"column {missing[0]!r} is missing from the table; the feature contract needs it{also}"
        )
    out = (
        _SparseOut(n, contract.n_features) if contract.sparse else _DenseOut(n, contract.n_features)
    )
    required_missing = np.zeros(n, dtype=bool)
    offset = 0
    for spec in contract.columns:
        if spec.kind == "excluded":
            continue
        target = type_from_str(spec.arrow_type)
        if spec.parsed_type is not None:
            target = type_from_str(spec.parsed_type)
        if spec.name in table.columns:
            values = table.columns[spec.name]
        else:
            values = pa.chunked_array([pa.nulls(n)], pa.null())
            report.missing_columns[spec.name] = n
        values = _conform(values, spec, target, contract, report)
        miss = _encode_column(spec, values, offset, out, report, contract.on_unseen_level)
        if spec.n_missing == 0:  # a "required" column: it had no missing value at fit time
            if spec.name in table.columns:
                count = int(miss.sum())
                if count:
                    report.missing_values[spec.name] = count
            required_missing |= miss
        offset += spec.width
    report.rows_with_missing = int(required_missing.sum())
    return out.result(), report


def _conform(values, spec: ColumnSpec, target, contract: FeatureContract, report: DriftReport):
    """The column in the contract's type (numeric kinds: float64), recording any coercion."""
    values = decoded(values)
    src = values.type
    declared = type_from_str(spec.arrow_type)
    drift = family(src) != "null" and not is_representation_change(src, declared)
    if drift:
        change = f"{type_to_str(src)} -> {spec.arrow_type}"
        if contract.on_type_drift == "error":
            raise DataError(
                f"column {spec.name!r} holds {type_to_str(src)} values but the feature contract "
                f"expects {spec.arrow_type} (on_type_drift='error')"
            )
    if spec.kind == "numeric":
        fam = family(target)
        if drift or fam == "string":
            # Drift must be lossless against the contract's type (whole numbers for integers).
            out = to_float64(values, spec.name, integral=fam == "int", expected=spec.arrow_type)
        else:
            # The contract's own type: float64 is the encoding (as at fit), not a coercion.
            out = values.cast(pa.float64(), safe=False)
    elif spec.hashed or spec.kind == "text":
        values = nan_to_null(values)  # NaN is missing, not the word "nan"
        out = to_type(values, pa.large_string(), spec.name) if drift else values
        out = out.cast(pa.large_string(), safe=False)
    else:
        out = to_type(values, target, spec.name)
    if drift:
        report.add_coercion(spec.name, change, len(values))
    return out


def _missing(values: pa.ChunkedArray) -> np.ndarray:
    """Where ``values`` is missing: null, or for floats NaN or infinite."""
    mask = pc.is_null(values)
    if family(values.type) == "float":
        mask = pc.or_(mask, pc.invert(pc.fill_null(pc.is_finite(values), False)))
    return _np(mask, bool)


def _np(values, dtype) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray) and values.num_chunks == 0:
        return np.zeros(0, dtype=dtype)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=dtype)


def _encode_column(spec: ColumnSpec, values, offset: int, out, report, unseen_policy):
    """Write one column's features at ``offset``; return its missing-value mask."""
    if spec.kind == "numeric":
        # NaN here also stands for null, so one numpy pass over (usually) Arrow's own buffer
        # finds what _missing's five Arrow kernels would.
        x = float64_numpy(values)
        miss = ~np.isfinite(x)
        if miss.any():
            x = np.where(miss, spec.fill_value, x)
        out.column(offset, x, spec.center, spec.scale)
        width = 1
    else:
        miss = _missing(values)
        width = _encode_non_numeric(spec, values, miss, offset, out, report, unseen_policy)
    if spec.indicator:
        out.column(offset + width, miss.astype(np.float32))
    return miss


def _encode_non_numeric(spec, values, miss, offset, out, report, unseen_policy) -> int:
    """Write the features of a boolean, datetime, text or categorical column; return how many."""
    if spec.kind == "boolean":
        out.column(offset, _np(pc.fill_null(values, bool(spec.fill_value)), np.float64))
        return 1
    if spec.kind == "datetime":
        return _encode_datetime(spec, values, offset, out)
    if spec.kind == "text":
        _encode_text(spec, values, offset, out)
        return spec.hash.n_features
    if spec.hashed:
        codes = bucket_strings(values, spec.hash.n_features, spec.hash.seed)
        codes[miss] = -1
        out.one_hot(offset, codes)
        return spec.hash.n_features
    _encode_levels(spec, values, miss, offset, out, report, unseen_policy)
    return len(spec.levels) + 1


def _encode_levels(spec, values, miss, offset, out, report, unseen_policy) -> None:
    known = pa.array(list(spec.levels) + list(spec.other_levels or []), type=values.type)
    codes = _np(pc.fill_null(pc.index_in(values, value_set=known), -1), np.int64)
    n_kept = len(spec.levels)
    unseen = (codes < 0) & ~miss
    codes[codes >= n_kept] = n_kept
    n_unseen = int(unseen.sum())
    if n_unseen:
        distinct = pc.unique(values.filter(pa.array(unseen)))
        examples = sorted(str(v) for v in distinct.to_pylist())[:N_EXAMPLES]
        if unseen_policy == "error":
            shown = ", ".join(repr(e) for e in examples)
            raise DataError(
                f"column {spec.name!r} has {n_unseen:,} values never seen at fit time (e.g. "
                f"{shown}) (on_unseen_level='error')"
            )
        report.add_unseen(spec.name, n_unseen, examples)
        codes[unseen] = n_kept
    if miss.any():
        codes[miss] = (
            spec.levels.index(spec.fill_value) if spec.fill_value in spec.levels else n_kept
        )
    out.one_hot(offset, codes)


def _encode_datetime(spec, values, offset, out) -> int:
    filled = pc.fill_null(values, pa.scalar(spec.fill_value, type=values.type))
    for i, part in enumerate(spec.parts):
        if part == "epoch":
            out.column(offset + i, epoch_seconds(filled), spec.center, spec.scale)
        else:
            fn = {"year": pc.year, "month": pc.month, "dayofweek": pc.day_of_week, "hour": pc.hour}
            out.column(offset + i, _np(fn[part](filled), np.float64))
    return len(spec.parts)


def _encode_text(spec, values, offset, out) -> None:
    strings = values.combine_chunks() if values.num_chunks else pa.array([], pa.large_string())
    words = pc.split_pattern_regex(pc.utf8_lower(strings), WORD_SEPARATOR)
    flat = pc.list_flatten(words)
    rows = pc.list_parent_indices(words)
    keep = pc.not_equal(flat, "")
    flat, rows = flat.filter(keep), _np(rows.filter(keep), np.int64)
    buckets = bucket_strings(flat, spec.hash.n_features, spec.hash.seed)
    out.entries(rows, offset + buckets, np.ones(len(rows), dtype=np.float32))
