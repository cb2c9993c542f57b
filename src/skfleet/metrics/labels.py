"""Labels and scalars shared by the metrics and the report: labels to class indices, plain JSON
scalars, probability matrices.

>>> encode_labels(["b", "a", "b"], ["a", "b"], "target label").tolist()
[1, 0, 1]
>>> plain(np.int64(3)), plain(np.float32(0.5)), plain("x")
(3, 0.5, 'x')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from skfleet.errors import DataError

# How many class labels an error message may list before it is cut (messages stay one line).
_MAX_LISTED = 20


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar :mod:`json` understands; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def plain_classes(classes: Sequence[Any]) -> list[Any]:
    """Class labels as a list of plain Python scalars."""
    return [plain(c) for c in np.asarray(classes, dtype=object).tolist()]


def encode_labels(y: Any, classes: Sequence[Any], what: str) -> np.ndarray:
    """Indices of ``y``'s labels in ``classes`` (int64); :class:`DataError` for a label outside.

    ``what`` names the array in the message ("target label", "predicted label").
    """
    values = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if values.ndim != 1:
        values = values.ravel()
    codes = _numeric_codes(values, classes)
    if codes is None:
        codes = pd.Index(np.asarray(classes, dtype=object)).get_indexer(values)
    unknown = codes < 0
    if unknown.any():
        bad = plain(values[np.flatnonzero(unknown)[0]])
        listed = plain_classes(classes)
        shown = listed[:_MAX_LISTED] + (["..."] if len(listed) > _MAX_LISTED else [])
        raise DataError(f"{what} {bad!r} is not one of the model's classes {shown}")
    return codes.astype(np.int64, copy=False)


def _numeric_codes(values: np.ndarray, classes: Sequence[Any]) -> np.ndarray | None:
    """Codes by binary search when labels and classes are numbers (or booleans) and the classes
    are sorted, as a fitted model's are: the per-batch path of streamed scoring. -1 where a
    label is not a class; None when this shortcut does not apply."""
    if values.dtype.kind not in "biuf":
        return None
    known = np.asarray(classes)
    if known.dtype.kind not in "biuf" or len(known) == 0:
        return None
    if known.dtype.kind == "b":
        known = known.astype(np.int8)  # np.diff of booleans says "differs", not "increases"
    if (np.diff(known) <= 0).any():
        return None
    codes = np.minimum(np.searchsorted(known, values), len(known) - 1)
    return np.where(known[codes] == values, codes, -1)


def as_proba(proba: Any, n: int, k: int) -> np.ndarray:
    """``proba`` as a float64 (n, k) matrix; a 1-d array for two classes is P(second class).

    Non-finite values are refused: a log loss of NaN would poison every merged result.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1 and k == 2:
        p = np.column_stack([1.0 - p, p])
    if p.shape != (n, k):
        raise ValueError(f"proba has shape {p.shape}, expected ({n}, {k}): one column per class")
    if not np.isfinite(p).all():
        raise DataError("predicted probabilities contain NaN or infinite values")
    return p


def as_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 (one per row, finite, at least 0), or None when not given.

    >>> as_weights([1, 0, 2], 3).tolist(), as_weights(None, 3)
    ([1.0, 0.0, 2.0], None)
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).ravel()
    if len(w) != n:
        raise ValueError(f"{n} rows but {len(w)} sample weights")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError("sample weights must be finite numbers >= 0")
    return w


#: The note a weighted result carries (what the weights change, and what still counts rows).
WEIGHTED_NOTE = "weighted by the sample weights (n and confusion_matrix count rows)"
#: The note of a weighted result whose rows all weigh 0.
ZERO_WEIGHT_NOTE = "every sample weight is 0: nothing to score"
