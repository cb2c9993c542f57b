"""Bring what the user passes (Arrow table, pandas DataFrame, 2-D array) to named Arrow columns.

Positional input (a numpy array, a DataFrame with non-string column labels) gets the names
``x0, x1, ...`` so the rest of the encoder can always match columns by name.

>>> t = as_input_table(pd.DataFrame({"carrier": ["AA", "UA"], "distance": [1089, 719]}))
>>> t.names, t.n_rows, t.positional, str(t.columns["carrier"].type)
(['carrier', 'distance'], 2, False, 'large_string')
>>> as_input_table(np.zeros((3, 2))).names
['x0', 'x1']
>>> as_input_table(pd.DataFrame({"zip": [10001, "K1A 0B6"]}))
Traceback (most recent call last):
...
skfleet.features.errors.FeatureInputError: column 'zip' mixes value types (int, str); convert it to one type first (e.g. .astype(str))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from skfleet.features.errors import FeatureInputError

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


@dataclass
class InputTable:
    """Columns by name, their input order, the row count, and whether names were made up."""

    columns: dict[str, pa.ChunkedArray]
    names: list[str]
    n_rows: int
    positional: bool = False


def positional_names(n: int) -> list[str]:
    return [f"x{i}" for i in range(n)]


def as_input_table(X) -> InputTable:
    """Normalise ``X``; raise :class:`FeatureInputError` naming the column at fault."""
    if isinstance(X, pa.RecordBatch):
        X = pa.Table.from_batches([X])
    if isinstance(X, pa.Table):
        return _from_arrow(X)
    if isinstance(X, pd.DataFrame):
        return _from_pandas(X)
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise FeatureInputError(
            "sparse input is not supported: pass a pyarrow Table, a pandas DataFrame or a dense array"
        )
    if isinstance(X, (pa.Array, pa.ChunkedArray, pd.Series)):
        raise FeatureInputError(
            "expected a table (pyarrow Table, pandas DataFrame or 2-D array), got a single column; "
            "wrap it in a table"
        )
    return _from_array(X)


def _check_names(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FeatureInputError(f"column {name!r} appears more than once in the table")
        seen.add(name)


def _from_arrow(table: pa.Table) -> InputTable:
    names = list(table.column_names)
    _check_names(names)
    if not names:
        raise FeatureInputError("the table has no columns")
    columns = {name: table.column(i) for i, name in enumerate(names)}
    return InputTable(columns, names, table.num_rows)


def _from_pandas(df: pd.DataFrame) -> InputTable:
    labels = list(df.columns)
    if not labels:
        raise FeatureInputError("the table has no columns")
    are_str = [isinstance(c, str) for c in labels]
    if all(are_str):
        names, positional = [str(c) for c in labels], False
    elif not any(are_str):
        names, positional = positional_names(len(labels)), True
    else:
        raise FeatureInputError(
            "column labels mix strings and other types "
            f"({', '.join(repr(c) for c in labels[:4])}); use string column names"
        )
    _check_names(names)
    columns: dict[str, pa.ChunkedArray] = {}
    for i, name in enumerate(names):
        series = df.iloc[:, i]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":
            # Zero copy; NaN stays NaN, which the encoder reads as missing just like null.
            columns[name] = pa.chunked_array([pa.array(series.to_numpy(copy=False))])
            continue
        try:
            array = pa.Table.from_pandas(series.to_frame(name=name), preserve_index=False)[0]
        except _ARROW_ERRORS as exc:
            raise _mixed_types_error(name, series.to_numpy(dtype=object), exc) from exc
        columns[name] = array
    return InputTable(columns, names, len(df), positional)


def _from_array(X) -> InputTable:
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise FeatureInputError(f"cannot read the input as a table: {exc}") from exc
    if arr.ndim != 2:
        raise FeatureInputError(
            f"expected a 2-D table, got an array with {arr.ndim} dimension(s). Reshape your data "
            "with array.reshape(-1, 1) for one feature or array.reshape(1, -1) for one sample"
        )
    if arr.shape[1] == 0:
        raise FeatureInputError(
            f"the table has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if np.iscomplexobj(arr):
        raise FeatureInputError("Complex data not supported: convert complex numbers first")
    names = positional_names(arr.shape[1])
    columns: dict[str, pa.ChunkedArray] = {}
    for j, name in enumerate(names):
        col = arr[:, j]
        try:
            if col.dtype == object:
                array = pa.array(col, from_pandas=True)
            else:
                array = pa.array(np.ascontiguousarray(col))
        except _ARROW_ERRORS as exc:
            raise _mixed_types_error(name, col.astype(object), exc) from exc
        columns[name] = pa.chunked_array([array])
    return InputTable(columns, names, arr.shape[0], True)


def _mixed_types_error(name: str, values: np.ndarray, exc: Exception) -> FeatureInputError:
    kinds = sorted({type(v).__name__ for v in values if v is not None and v == v})
    if len(kinds) > 1:
        return FeatureInputError(
            f"column {name!r} mixes value types ({', '.join(kinds[:4])}); convert it to one type "
            "first (e.g. .astype(str))"
        )
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return FeatureInputError(f"column {name!r} cannot be read as a table column: {detail}")
