"""``skfleet.predict.api`` on files: outputs, dtypes, engines, retries, model shipping, run records."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from skfleet.errors import PartitionFailedError, UntrustedModelError
from skfleet.predict.api import predict
from skfleet.predict.runs import RunStore
from skfleet.predict.scoring import plan_scoring
from skfleet.predict.task import ModelHandle, PredictTask
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import (
    Dies,
    Explodes,
    FailsOnce,
    frame,
    save_classifier,
    save_custom,
    save_regressor,
)


def expected_scores(store, ref, rows) -> pa.Table:
    """What the model itself says for every row, computed here in one call."""
    loaded = store.load(ref)
    x = frame(rows)
    proba = loaded.model.predict_proba(x)
    return pa.table(
        {
            "id": rows["id"],
            "prediction": pa.array(loaded.model.predict(x).tolist(), pa.string()),
            **{f"proba_{c}": proba[:, i] for i, c in enumerate(loaded.model.classes_)},
        }
    )


def test_classifier_output_columns_dtypes_and_values(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    out = str(tmp_path / "scores")
    result = predict(ref, parquet_in, out, store=store.uri, engine="local", partition_rows=1_000)
    assert (result.rows_in, result.rows_out, result.partitions) == (ROWS, ROWS, 6)
    got = read_sorted(out)
    assert got.schema.names == ["id", "prediction", "proba_late", "proba_on_time"]
    assert got.schema.field("prediction").type == pa.string()
    assert got.schema.field("proba_late").type == pa.float64()
    assert got.equals(expected_scores(store, ref, rows))


def test_dask_equals_in_process_row_for_row(tmp_path, store, rows, parquet_in, dask_engine):
    ref = save_classifier(store, rows)
    local = str(tmp_path / "local")
    dist = str(tmp_path / "dist")
    predict(ref, parquet_in, local, store=store.uri, engine="local", partition_rows=500)
    result = predict(ref, parquet_in, dist, store=store.uri, engine=dask_engine, partition_rows=500)
    assert result.partitions == 12 and result.rows_out == ROWS
    assert read_sorted(dist).equals(read_sorted(local))
    assert read_sorted(dist).equals(expected_scores(store, ref, rows))


def test_model_travels_by_reference_and_loads_once_per_worker(
    tmp_path, store, rows, parquet_in, dask_engine
):
    ref = save_classifier(store, rows, name="shipped")
    loaded = store.load(ref)
    result = predict(
        ref,
        parquet_in,
        str(tmp_path / "a"),
        store=store.uri,
        engine=dask_engine,
        partition_rows=500,
    )
    # At most one load per worker process, although 12 tasks ran there.
    assert 1 <= result.model_loads <= dask_engine.workers
    # The next run on the same workers finds the model in their cache.
    again = predict(
        ref,
        parquet_in,
        str(tmp_path / "b"),
        store=store.uri,
        engine=dask_engine,
        partition_rows=500,
    )
    assert again.model_loads == 0
    # And a task is small: it names the model, it does not hold it.
    from skfleet.data import open_sink, open_source

    source = open_source(parquet_in)
    plan = plan_scoring(loaded.model, loaded.metadata, source.schema())
    handle = ModelHandle(store.root, "shipped", 1, loaded.content_hash)
    task = PredictTask(
        handle, source, open_sink(str(tmp_path / "c")), source.partitions(500)[0], plan, "warn"
    )
    assert len(pickle.dumps(task)) < len(pickle.dumps(loaded.model))
    assert b"LogisticRegression" not in pickle.dumps(task)


def test_regression_prediction_is_float64(tmp_path, store, rows, parquet_in):
    ref = save_regressor(store, rows)
    out = str(tmp_path / "reg")
    predict(ref, parquet_in, out, store=store.uri, engine="local")
    got = read_sorted(out)
    assert got.schema.names == ["id", "prediction"]
    assert got.schema.field("prediction").type == pa.float64()
    np.testing.assert_allclose(got["prediction"].to_numpy(), rows["x0"].to_numpy() * 3 + 1)


def test_columns_subset_and_extra_key(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    out = str(tmp_path / "subset")
    predict(
        ref,
        parquet_in,
        out,
        store=store.uri,
        engine="local",
        key=["id", "city"],
        columns=["proba_late"],
    )
    got = read_sorted(out)
    assert got.schema.names == ["id", "city", "proba_late"]
    assert got["city"].equals(rows["city"])
    assert got["proba_late"].equals(expected_scores(store, ref, rows)["proba_late"])


def test_failing_partition_is_retried(tmp_path, store, rows, parquet_in, dask_engine):
    markers = tmp_path / "markers"
    markers.mkdir()
    ref = save_custom(store, FailsOnce(str(markers)), "flaky")
    out = str(tmp_path / "flaky")
    result = predict(
        ref,
        parquet_in,
        out,
        store=store.uri,
        engine=dask_engine,
        trust=True,
        partition_rows=1_000,
        retries=1,
    )
    assert result.rows_out == ROWS
    assert len(list(markers.iterdir())) == 6  # each partition failed once, then committed once
    got = read_sorted(out)
    assert got["id"].equals(rows["id"])
    np.testing.assert_array_equal(got["prediction"].to_numpy(), rows["x0"].to_numpy() * 2)


def test_partition_failing_every_retry_names_partition_and_cause(tmp_path, store, rows, parquet_in):
    ref = save_custom(store, Explodes(), "boom")
    with pytest.raises(
        PartitionFailedError, match=r"partition part-0\d.* failed after 2 attempt"
    ) as e:
        predict(
            ref,
            parquet_in,
            str(tmp_path / "o"),
            store=store.uri,
            engine="local",
            trust=True,
            retries=1,
            partition_rows=1_000,
        )
    assert "the model exploded" in str(e.value) and "--resume" in str(e.value)
    record = RunStore.for_model_store(store.uri).records()[-1]
    assert record.status == "failed" and "exploded" in record.error


def test_untrusted_model_needs_trust(tmp_path, store, rows, parquet_in):
    ref = save_custom(store, Explodes(), "boom")
    with pytest.raises(UntrustedModelError, match="Explodes"):
        predict(ref, parquet_in, str(tmp_path / "o"), store=store.uri, engine="local")
    assert not (tmp_path / "o").exists()


def test_run_record_holds_plan_and_result(tmp_path, store, rows, parquet_in):
    # (That a stored record never holds a password: test_predict_postgres, with a real one.)
    ref = save_classifier(store, rows)
    result = predict(
        ref, parquet_in, str(tmp_path / "o"), store=store.uri, engine="local", partition_rows=1_000
    )
    record = RunStore.for_model_store(store.uri).load(result.run_id)
    assert record.status == "committed"
    assert len(record.plan) == 6 and record.plan_ids[0] == "part-00.rg0-1"
    assert record.model["content_hash"] == store.load(ref).content_hash
    assert record.result["rows_out"] == ROWS
    payload = result.to_dict()
    assert set(payload) >= {
        "run_id",
        "rows_in",
        "rows_out",
        "partitions",
        "seconds",
        "rows_per_second",
        "drift",
    }
    json.dumps(payload)


def test_broken_engine_is_one_line_and_resumable(tmp_path, store, rows, parquet_in):
    ref = save_custom(store, Dies(), "dies")
    with pytest.raises(PartitionFailedError, match=r"processes:1 engine failed: BrokenProcessPool"):
        predict(
            ref,
            parquet_in,
            str(tmp_path / "o"),
            store=store.uri,
            engine="processes:1",
            trust=True,
            retries=0,
            partition_rows=1_000,
        )
    record = RunStore.for_model_store(store.uri).records()[-1]
    assert record.status == "failed" and "BrokenProcessPool" in record.error


def test_one_partition_on_a_local_cluster_runs_in_process(tmp_path, store, rows):
    """Starting worker processes cannot speed up one partition: it is scored right here."""
    from skfleet.util.progress import NullProgress

    class Notes(NullProgress):
        def __init__(self):
            self.notes = []

        def note(self, message: str) -> None:
            self.notes.append(message)

    import pyarrow.parquet as pq

    ref = save_classifier(store, rows)
    one_file = str(tmp_path / "one.parquet")
    pq.write_table(rows, one_file)
    notes = Notes()
    out = str(tmp_path / "scores")
    result = predict(
        ref,
        one_file,
        out,
        store=store.uri,
        engine="dask:local:2",
        progress=notes,
        partition_rows=10 * ROWS,
    )
    assert result.partitions == 1 and result.rows_out == ROWS
    assert any("in this process" in n for n in notes.notes), notes.notes
    assert not any(n.startswith("dashboard") for n in notes.notes)
    assert read_sorted(out).equals(expected_scores(store, ref, rows))
