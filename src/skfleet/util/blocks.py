"""Call a model on rows in whole blocks, so a row's score does not depend on where a batch ends.

BLAS computes a matrix-vector product a few rows at a time (4, 8 or 16, by CPU) and the last
``n % unroll`` rows of a call in a separate loop that adds its terms in another order. A row that
falls at the end of one call and in the middle of another gets a score a last bit apart: the
same rows split into other partitions or batches (another engine, another worker count, a
``--resume``) would then not score exactly alike, for float32 and float64 features, in
LogisticRegression, SGD and MLP models alike. :func:`call_in_blocks` hands the model the rows
in a first call of a multiple of :data:`BLOCK` rows (a view, no copy) and the rest padded to one
block with copies of the batch's last row (real input, valid wherever the batch is), so every
row is computed by the same kernels wherever it falls. What it costs: one more call of the model
per batch, on :data:`BLOCK` rows.

Sparse matrices are handed over as they are: scipy multiplies a CSR matrix one row at a time,
whatever the batch. Arrow tables and DataFrames (the input of a model whose pipeline encodes its
own rows) are blocked like arrays: the padding rows are copies of a real row.

>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(1000, 23)).astype(np.float32)
>>> model = LogisticRegression().fit(X, X[:, 0] > 0)
>>> slices = [(7, 1), (28, 3), (42, 37), (42, 101), (49, 399)]
>>> def same(score):  # the rows of each slice score as they do in the whole table
...     whole = score(X)
...     return [np.array_equal(score(X[s : s + n]), whole[s : s + n]) for s, n in slices]
>>> same(lambda rows: call_in_blocks(model.predict_proba, rows))
[True, True, True, True, True]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Rows per block: a multiple of every BLAS kernel's row unroll.
BLOCK = 64


def call_in_blocks(method: Callable[[Any], Any], data: Any) -> Any:
    """``method(data)`` for rows of a numpy array, pandas DataFrame or Arrow table, computed in
    whole blocks of :data:`BLOCK` rows.

    Anything else (a sparse matrix) is passed to ``method`` as it is.

    >>> import numpy as np
    >>> call_in_blocks(lambda rows: rows.sum(axis=1), np.arange(6.0).reshape(3, 2))
    array([1., 5., 9.])
    """
    rows = _rows(data)
    if rows is None or rows % BLOCK == 0:
        return method(data)
    whole = rows - rows % BLOCK
    tail = np.concatenate([np.arange(whole, rows), np.full(BLOCK - rows % BLOCK, rows - 1)])
    last = np.asarray(method(take_rows(data, tail)))[: rows - whole]
    if not whole:
        return last
    return np.concatenate([np.asarray(method(take_rows(data, slice(0, whole)))), last])


def take_rows(data: Any, rows: slice | np.ndarray) -> Any:
    """Rows ``rows`` (positions, or a slice: a view where the type has one) of a numpy array,
    Arrow table or pandas DataFrame.

    >>> import pyarrow as pa
    >>> take_rows(pa.table({"x": [1, 2, 3]}), np.array([2, 0]))["x"].to_pylist()
    [3, 1]
    """
    if isinstance(data, np.ndarray):
        return data[rows]
    if _is_arrow_table(data):
        if isinstance(rows, slice):
            start, stop, _ = rows.indices(data.num_rows)
            return data.slice(start, stop - start)
        import pyarrow as pa

        return data.take(pa.array(rows, type=pa.int64()))
    return data.iloc[rows]


def _rows(data: Any) -> int | None:
    if isinstance(data, np.ndarray):
        return len(data) if data.ndim == 2 else None
    if _is_arrow_table(data):
        return data.num_rows
    if type(data).__name__ == "DataFrame" and hasattr(data, "iloc"):
        return len(data)
    return None


def _is_arrow_table(data: Any) -> bool:
    # Checked by name: this module must not import pyarrow for numpy callers.
    return type(data).__name__ == "Table" and type(data).__module__.startswith("pyarrow")
