"""The client plans a prediction from ``model.json`` alone: the same plan as from the model, no
scikit-learn or skops import in the client of a pool, and the checks the user relies on kept."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from skfleet.errors import MissingColumnError, UntrustedModelError
from skfleet.predict.api import predict
from skfleet.predict.scoring import plan_scoring
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import Explodes, save_classifier, save_custom, save_regressor


@pytest.mark.parametrize("save", [save_classifier, save_regressor])
def test_plan_from_model_json_equals_plan_from_the_model(store, rows, save):
    loaded = store.load(save(store, rows))
    assert "interface" in loaded.metadata
    for columns in (None, ["prediction"]):
        from_model = plan_scoring(loaded.model, loaded.metadata, rows.schema, columns=columns)
        from_json = plan_scoring(None, loaded.metadata, rows.schema, columns=columns)
        assert from_json == from_model


def test_checks_without_the_model(store, rows):
    meta = store.load(save_classifier(store, rows)).metadata
    with pytest.raises(MissingColumnError, match="city"):
        plan_scoring(None, meta, rows.drop_columns(["city"]).schema)
    with pytest.raises(Exception, match="unknown output column"):
        plan_scoring(None, meta, rows.schema, columns=["proba_maybe"])


def test_untrusted_model_is_refused_before_a_pool_starts(tmp_path, store, parquet_in):
    ref = save_custom(store, Explodes(), "boom")
    with pytest.raises(UntrustedModelError, match="Explodes") as e:
        predict(ref, parquet_in, str(tmp_path / "o"), store=store.uri, engine="processes:2")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()


def test_model_json_without_interface_still_scores(tmp_path, store, rows, parquet_in):
    # A model stored before model.json recorded its interface: the client loads it to plan.
    ref = save_classifier(store, rows)
    (path,) = Path(store.root).rglob("model.json")
    meta = json.loads(path.read_text())
    del meta["interface"]
    path.write_text(json.dumps(meta))
    result = predict(ref, parquet_in, str(tmp_path / "o"), store=store.uri, engine="local")
    assert result.rows_out == ROWS
    assert read_sorted(str(tmp_path / "o")).column_names[:2] == ["id", "prediction"]


def trained_with_contract(store, rows) -> str:
    """A model skfleet trained: its workers return drift reports and run profiles, which the
    client unpickles and merges."""
    from skfleet.train import train

    result = train("logistic", rows, "label", keys=["id"], cv=0, name="trained", store=store.uri,
                   report=False)  # fmt: skip
    return str(result.ref)


@pytest.mark.parametrize("save", [save_classifier, trained_with_contract])
def test_client_of_a_pool_imports_neither_sklearn_nor_skops(
    tmp_path, store, rows, parquet_in, save
):
    ref = save(store, rows)
    script = textwrap.dedent(
        f"""
        import json, sys
        from skfleet.predict.api import predict
        result = predict({ref!r}, {parquet_in!r}, {str(tmp_path / "o")!r}, store={store.uri!r},
                         engine="processes:2", partition_rows=1_000)
        heavy = sorted(m for m in ("sklearn", "skops") if m in sys.modules)
        print(json.dumps({{"rows": result.rows_out, "loads": result.model_loads, "heavy": heavy}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["heavy"] == [] and summary["rows"] == ROWS
    assert 1 <= summary["loads"] <= 2  # once per worker process
    scores = read_sorted(str(tmp_path / "o"))
    assert scores.schema.field("prediction").type == pa.string()
