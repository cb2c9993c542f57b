"""Every kind of model skfleet stores, end to end: trained (or registered), scored to Parquet and to
PostgreSQL, and equal to calling the stored model on the same rows.

The kinds are read from the code (the ``kind`` values written into ``model.json`` next to a
``task``), so a new kind without a case here fails :func:`test_every_kind_in_the_code_has_a_case`.
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import skops.io
from sklearn.linear_model import LinearRegression, LogisticRegression

import skfleet
from skfleet.predict.api import predict
from skfleet.store import ModelStore
from skfleet.store.register import register_model
from skfleet.train.stream.api import train_stream
from tests.predict.conftest import read_sorted
from tests.predict.models import make_rows, write_parquet_dir

SRC = Path(skfleet.__file__).parent
ROWS = 1_500
FEATURES = ["x0", "x1", "x2", "city"]
NUMERIC = ["x0", "x1", "x2"]
TARGETS = ["label", "n_class", "price", "y"]
#: ``task_of`` may also answer ``transform`` (IncrementalPCA): such a model has no ``predict``,
#: and ``predict`` refuses it (tests/predict/test_predict.py), so it has no case here.
NOT_SCORED_TASKS = {"transform"}
#: The encoder hands float32 features to the model: a partition scored alone may differ from the
#: whole table in the last float32 bit (BLAS blocks by batch size), never by more.
FLOAT32 = 4 * float(np.finfo(np.float32).eps)


def rows(n: int = ROWS, seed: int = 3) -> pa.Table:
    """The predict suite's rows plus a 3-class int target, an int64 price and a float target."""
    table = make_rows(n, seed=seed)
    x0 = table["x0"].to_numpy()
    table = table.append_column("n_class", pa.array((np.arange(n) % 3).astype(np.int64)))
    # An int64 target with large values: a prediction cast back to int64 would be truncated.
    price = np.round(3_000 + 1_000 * x0 - 400 * table["x1"].to_numpy()).astype(np.int64)
    table = table.append_column("price", pa.array(price))
    return table.append_column("y", pc.add(pc.multiply(table["x0"], 2.5), 0.25))


def _without(*keep: str) -> list[str]:
    return [t for t in TARGETS if t not in keep]


def _batch(model: str, target: str, **options) -> Callable:
    def fit(table, store, name, tmp):
        skfleet.train(
            model,
            table,
            target=target,
            keys=["id"],
            exclude=_without(target),
            cv=0,
            report=False,
            name=name,
            store=store,
            **options,
        )

    return fit


def _stream(model: str, target: str | None) -> Callable:
    def fit(table, store, name, tmp):
        path = tmp / "stream-train.parquet"
        pq.write_table(table.drop_columns(_without(target)), path)
        train_stream(
            model,
            str(path),
            target,
            name=name,
            store=store,
            keys=["id"],
            epochs=2,
            partition_rows=500,
            report=False,
        )

    return fit


def _registered(estimator, target: str, features: list[str]) -> Callable:
    def fit(table, store, name, tmp):
        frame = table.select(features).to_pandas()
        path = tmp / f"{name}.skops"
        skops.io.dump(estimator.fit(frame, table[target].to_numpy()), path)
        register_model(path, name, features, target=target, store=store)

    return fit


@dataclass(frozen=True)
class Case:
    kind: str
    task: str
    fit: Callable
    #: The Arrow type the prediction column must have.
    prediction_type: pa.DataType


CASES = {
    "binary": Case("batch", "classification", _batch("logistic", "label"), pa.string()),
    "multiclass": Case("batch", "classification", _batch("logistic", "n_class"), pa.int64()),
    "regression-int": Case("batch", "regression", _batch("ridge", "price"), pa.float64()),
    "regression-float": Case(
        "batch", "regression", _batch("hgb-regressor", "y", params={"max_iter": 20}), pa.float64()
    ),
    "segmented-int": Case(
        "segmented", "regression", _batch("ridge", "price", group_by="city"), pa.float64()
    ),
    "segmented-binary": Case(
        "segmented", "classification", _batch("logistic", "label", group_by="city"), pa.string()
    ),
    "stream-int": Case("stream", "regression", _stream("sgd-linear", "price"), pa.float64()),
    "stream-multiclass": Case(
        "stream", "classification", _stream("sgd-logistic", "n_class"), pa.int64()
    ),
    "stream-clusters": Case("stream", "clustering", _stream("minibatch-kmeans", None), pa.int64()),
    "registered-binary": Case(
        "registered",
        "classification",
        _registered(LogisticRegression(), "label", NUMERIC),
        pa.string(),
    ),
    "registered-int": Case(
        "registered", "regression", _registered(LinearRegression(), "price", NUMERIC), pa.float64()
    ),
}


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def kinds_in_code() -> set[str]:
    """Every ``kind`` value the package writes into model metadata (a dict that also has a task)."""
    kinds: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Dict):
                continue
            keys = {
                k.value: v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant)
            }
            if "kind" in keys and "task" in keys:
                kinds |= _strings(keys["kind"])
    return kinds


def tasks_in_code() -> set[str]:
    """Every answer of the package's ``task_of``/``_task`` functions (what ``task`` can hold)."""
    tasks: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and node.name in ("task_of", "_task"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and inner.value is not None:
                        tasks |= _strings(inner.value)
                    if isinstance(inner, ast.Tuple) and len(inner.elts) == 2:
                        tasks |= _strings(inner.elts[0])
    return tasks & {"classification", "regression", "clustering", "transform"}


def test_every_kind_in_the_code_has_a_case():
    kinds = kinds_in_code()
    assert {"batch", "segmented", "stream", "registered"} <= kinds  # the scan sees them
    missing = kinds - {case.kind for case in CASES.values()}
    assert not missing, f"model kinds with no end-to-end case: {sorted(missing)}"
    tasks = tasks_in_code()
    assert {"classification", "regression", "clustering"} <= tasks
    missing = tasks - NOT_SCORED_TASKS - {case.task for case in CASES.values()}
    assert not missing, f"tasks with no end-to-end case: {sorted(missing)}"


@pytest.fixture(scope="module")
def scoring_input(tmp_path_factory):
    """Rows the models never saw, as three Parquet files (several partitions)."""
    table = rows(2_400, seed=11).drop_columns(TARGETS)
    return table, write_parquet_dir(tmp_path_factory.mktemp("kinds-in"), table, 3, 400)


def _expected(loaded, table: pa.Table) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (and probabilities) of the stored model called directly on ``table``."""
    model, meta = loaded.model, loaded.metadata
    data = table.select(meta["input_columns"])
    if meta["kind"] == "registered":
        data = data.to_pandas()
    proba = model.predict_proba(data) if meta["task"] == "classification" else None
    return np.asarray(model.predict(data)), proba


@pytest.mark.parametrize("name", sorted(CASES))
def test_trained_scored_everywhere_equals_the_stored_model(name, tmp_path, pg, scoring_input):
    case = CASES[name]
    store = str(tmp_path / "models")
    train_rows = rows()
    case.fit(train_rows, store, name, tmp_path)
    loaded = ModelStore(store).load(name)
    assert (loaded.metadata["kind"], loaded.metadata["task"]) == (case.kind, case.task)

    table, src = scoring_input
    expected, proba = _expected(loaded, table)
    parquet_out = str(tmp_path / "scores")
    pg_out = pg.table_url(f"public.kind_{name.replace('-', '_')}_{uuid.uuid4().hex[:6]}")
    for out in (parquet_out, pg_out):
        result = predict(
            name, src, out, store=store, key=["id"], engine="local", partition_rows=400
        )
        assert result.partitions > 1 and result.rows_out == table.num_rows
        got = read_sorted(out)
        assert got["id"].to_pylist() == table["id"].to_pylist()
        assert got.schema.field("prediction").type == case.prediction_type, out
        predicted = got["prediction"].to_numpy(zero_copy_only=False)
        if pa.types.is_floating(case.prediction_type):
            np.testing.assert_allclose(predicted, expected.astype(np.float64), rtol=FLOAT32)
            assert not np.array_equal(predicted, np.round(predicted))  # never truncated
        else:
            assert predicted.tolist() == expected.tolist()
        probas = [c for c in got.column_names if c.startswith("proba_")]
        if proba is not None:
            assert len(probas) == proba.shape[1]
            stacked = np.column_stack([got[c].to_numpy() for c in probas])
            np.testing.assert_allclose(stacked, proba, rtol=FLOAT32, atol=FLOAT32)
        else:
            assert probas == []
