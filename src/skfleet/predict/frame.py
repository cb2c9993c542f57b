"""Scoring a table in memory (a pandas DataFrame or a pyarrow Table), for notebooks.

``skfleet.predict(model, frame)`` and :meth:`LoadedModel.scores
<skfleet.store.store.LoadedModel.scores>` return what ``skfleet predict`` writes for the same
rows — key columns, ``prediction``, ``proba_<class>`` — as a DataFrame with the input's index.
The same checks apply (every input column the model needs, its types and drift policies), and
the drift the encoder saw is in ``frame.attrs["drift"]``.

>>> import pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from skfleet.store import ModelStore
>>> import tempfile
>>> store = ModelStore(tempfile.mkdtemp())
>>> train = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> _ = store.save("clf", LogisticRegression().fit(train, [0, 0, 1, 1]),
...                {"kind": "registered", "task": "classification", "input_columns": ["x"]})
>>> scores = score_frame(store.load("clf"), pd.DataFrame({"x": [0.1, 2.9]}, index=[10, 11]))
>>> scores[["prediction"]]
    prediction
10           0
11           1
>>> list(scores.columns)
['prediction', 'proba_0', 'proba_1']
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from skfleet.errors import UsageError
from skfleet.predict.scoring import plan_scoring, score_table


def as_arrow(data: Any, what: str = "the table") -> pa.Table:
    """A pandas DataFrame or pyarrow Table (or RecordBatch) as a pyarrow Table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            dup = data.columns[data.columns.duplicated()][0]
            raise UsageError(f"{what} has column {dup!r} more than once")
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise UsageError(f"{what} cannot be converted to Arrow: {exc}") from None
    raise UsageError(
        f"{what} must be a pandas DataFrame or a pyarrow Table, not {type(data).__name__}"
    )


def is_in_memory(data: Any) -> bool:
    """Whether ``data`` is a table in memory rather than a URL or an open source."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return True
    # A DataFrame exists only once pandas is imported: a URL does not pay for importing it.
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def score_frame(
    loaded: Any,
    data: Any,
    *,
    key: Sequence[str] | str | None = None,
    columns: Sequence[str] | None = None,
) -> Any:
    """Score ``data`` with ``loaded`` (a :class:`~skfleet.store.store.LoadedModel`) in this
    process; a pandas DataFrame of the output columns, indexed like ``data`` if it had an index.

    Key columns (``key``, else the model's key columns the table has) lead the output.
    """
    table = as_arrow(data)
    keys = [key] if isinstance(key, str) else (list(key) if key else None)
    plan = plan_scoring(
        loaded.model,
        loaded.metadata,
        table.schema,
        keys=keys,
        columns=columns,
        model_name=f"model {loaded.ref}",
        source_name="the table",
        require_keys=keys is not None,
    )
    scored = score_table(loaded.model, table, plan)
    frame = scored.table.to_pandas()
    index = getattr(data, "index", None)
    if index is not None:
        frame.index = index
    if scored.drift is not None:
        frame.attrs["drift"] = scored.drift.to_dict()
    return frame
