"""Output column names: ``proba_<class>`` in lower case for every sink, so PostgreSQL needs no
quotes (``SELECT proba_true``), and the same name whatever ``--out`` is."""

from __future__ import annotations

import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from skfleet.errors import UsageError
from skfleet.predict.api import predict
from skfleet.predict.scoring import plan_scoring

META = {"kind": "registered", "task": "classification", "input_columns": ["x"]}


def _model(labels):
    return LogisticRegression().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), labels)


def test_boolean_classes_give_lower_case_columns():
    plan = plan_scoring(
        _model([False, False, True, True]),
        {**META, "label_type": "bool"},
        pa.schema([("id", pa.int64()), ("x", pa.float64())]),
        keys=["id"],
    )
    assert plan.schema.names == ["id", "prediction", "proba_false", "proba_true"]


def test_classes_differing_only_in_case_are_refused():
    with pytest.raises(UsageError, match="collide as output columns.*lower case"):
        plan_scoring(
            _model(["a", "a", "A", "A"]),
            {**META, "label_type": "string"},
            pa.schema([("id", pa.int64()), ("x", pa.float64())]),
            keys=["id"],
        )


def test_postgres_scores_are_queried_without_quotes(pg, store, tmp_path):
    model = _model([False, False, True, True])
    ref = str(store.save("late", model, {**META, "label_type": "bool", "key_columns": ["id"]}))
    source = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "x": [0.0, 1.5, 3.0]}), source)
    name = f"scores_{uuid.uuid4().hex[:8]}"
    predict(ref, str(source), pg.table_url(f"public.{name}"), store=store.uri, engine="local")
    with pg.connect() as conn:
        got = conn.execute(f"SELECT id, proba_true FROM public.{name} ORDER BY id").fetchall()
    assert [i for i, _ in got] == [1, 2, 3]
    assert got[0][1] < 0.5 < got[2][1]
