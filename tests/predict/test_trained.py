"""``predict`` with models trained by ``skfleet.train``: the encoder's drift report is merged over
partitions, stored with the run and printed; label dtypes follow the training target."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.predict.api import predict
from skfleet.predict.runs import RunStore
from skfleet.train import train
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import make_rows, write_parquet_dir

INPUTS = ["id", "x0", "x1", "x2", "city"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classifier and a per-city segmented regressor, trained by skfleet into one store."""
    store = str(tmp_path_factory.mktemp("trained") / "models")
    table = make_rows(2_000, seed=1)
    table = table.append_column("n_int", pa.array((np.arange(2_000) % 3).astype(np.int32)))
    train(
        "logistic",
        table,
        target="label",
        keys=["id"],
        exclude=["n_int"],
        cv=0,
        report=False,
        name="late",
        store=store,
    )
    train(
        "logistic",
        table,
        target="n_int",
        keys=["id"],
        exclude=["label"],
        cv=0,
        report=False,
        name="three",
        store=store,
    )
    train(
        "linear",
        table.drop_columns(["label", "n_int"]).append_column("y", pc.multiply(table["x0"], 2.0)),
        target="y",
        keys=["id"],
        cv=0,
        report=False,
        group_by="city",
        name="per_city",
        store=store,
    )
    return store


def drifting_rows() -> pa.Table:
    """The usual rows, with an unseen city in 300 rows and missing x1 in 200 others."""
    table = make_rows(ROWS).select(INPUTS)
    city = table["city"].to_pylist()
    for i in range(0, 3_000, 10):
        city[i] = "Atlantis"
    x1 = table["x1"].to_pylist()
    for i in range(3_001, 5_000, 10):
        x1[i] = None
    table = table.set_column(4, "city", pa.array(city, pa.string()))
    return table.set_column(2, "x1", pa.array(x1, pa.float64()))


def test_drift_merged_over_partitions_equals_whole_table(tmp_path, trained, dask_engine):
    table = drifting_rows()
    src = write_parquet_dir(tmp_path / "in", table, files=3, row_group_size=500)
    result = predict(
        "late", src, str(tmp_path / "o"), store=trained, engine=dask_engine, partition_rows=500
    )
    assert result.partitions == 12 and result.drift_partitions == 12
    from skfleet.store import ModelStore

    encoder = ModelStore(trained).load("late").model.named_steps["encode"]
    _, whole = encoder.transform_with_drift(table.drop_columns(["id"]))
    assert result.drift == whole.to_dict()
    assert result.drift["unseen_levels"] == {"city": 300}
    assert result.drift["missing_values"] == {"x1": 200}
    assert result.drift["rows_with_missing"] == 200
    stored = RunStore.for_model_store(trained).load(result.run_id)
    assert stored.drift == whole.to_dict()


def test_cli_prints_and_reports_drift(tmp_path, trained):
    src = tmp_path / "in.parquet"
    pq.write_table(drifting_rows(), src)
    out = str(tmp_path / "o")
    run = CliRunner().invoke(
        main, ["predict", "late", str(src), "--out", out, "--store", trained, "--engine", "local"]
    )
    assert run.exit_code == 0, run.stderr
    assert "unseen levels in 'city': 300 values (e.g. 'Atlantis')" in run.stdout
    run = CliRunner().invoke(
        main,
        [
            "predict",
            "late",
            str(src),
            "--out",
            out + "2",
            "--store",
            trained,
            "--engine",
            "local",
            "--json",
        ],
    )
    assert json.loads(run.stdout)["drift"]["unseen_levels"] == {"city": 300}


def test_trained_classifier_matches_model_and_keeps_label_dtypes(tmp_path, trained):
    table = make_rows(3_000, seed=5).select(INPUTS)
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    from skfleet.store import ModelStore

    for name, label_type in [("late", pa.string()), ("three", pa.int32())]:
        out = str(tmp_path / name)
        predict(name, str(src), out, store=trained, engine="local", partition_rows=1_000)
        got = read_sorted(out)
        model = ModelStore(trained).load(name).model
        assert got.schema.field("prediction").type == label_type
        assert got["prediction"].to_pylist() == model.predict(table).tolist()
        assert got.column_names[2:] == [f"proba_{c}" for c in model.classes_]
        np.testing.assert_array_equal(
            got["proba_" + str(model.classes_[0])].to_numpy(), model.predict_proba(table)[:, 0]
        )


def test_segmented_model(tmp_path, trained):
    table = drifting_rows()
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    out = str(tmp_path / "seg")
    result = predict("per_city", str(src), out, store=trained, engine="local", partition_rows=1_000)
    got = read_sorted(out)
    assert got.column_names == ["id", "prediction"]
    assert result.drift["missing_values"] == {"x1": 200}  # measured by the global pipeline
    from skfleet.store import ModelStore

    model = ModelStore(trained).load("per_city").model
    np.testing.assert_allclose(got["prediction"].to_numpy(), model.predict(table))


def test_the_client_keeps_no_drift_report_per_partition(tmp_path, trained, monkeypatch):
    """Each partition's report is merged as it arrives; the results the engine session keeps
    until the run ends no longer hold theirs (a report per partition grew with the partitions)."""
    from skfleet.engine.session import EngineSession

    kept = []
    real_run = EngineSession.run

    def run(self, fn, items, **options):
        results = real_run(self, fn, items, **options)
        kept.extend(results)
        return results

    monkeypatch.setattr(EngineSession, "run", run)
    src = write_parquet_dir(tmp_path / "in", drifting_rows(), files=3, row_group_size=500)
    result = predict("late", src, str(tmp_path / "o"), store=trained, partition_rows=500)
    assert result.drift["unseen_levels"] == {"city": 300} and result.drift_partitions == 12
    predicted = [r for r in kept if hasattr(r, "drift")]
    assert len(predicted) == 12 and all(r.drift is None for r in predicted)
