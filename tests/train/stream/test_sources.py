"""``train_stream`` from PostgreSQL, S3 and local CSV, with checkpoints and the model in S3 too."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.csv as pacsv
import pytest

from skfleet.copy import copy
from skfleet.store import ModelStore
from skfleet.train.stream.api import train_stream
from skfleet.train.stream.checkpoint import CheckpointStore
from tests.train.stream.data import table

COMMON = dict(target="late", keys=["id"], exclude=["amount"], holdout_key="id", report=False)


class Interrupted(Exception):
    pass


def test_from_postgres(pg, pg_new_table_url, parquet_20k, tmp_path):
    url = pg_new_table_url()
    copy(parquet_20k, url, engine="local", partition_rows=5_000)
    store = ModelStore(str(tmp_path / "models"))
    # Averaged SGD: its result barely depends on the partition plan (ctid ranges here, row
    # groups for Parquet), so the two runs can be compared closely.
    run = dict(partition_rows=4_000, epochs=2, params={"average": True}, **COMMON)
    result = train_stream("sgd-logistic", url, name="pg", store=store.uri, **run)
    assert result.metadata["partitions"] > 1
    rows = result.metadata["rows"]
    assert rows["train"] + rows["holdout"] == 20_000
    # The holdout is chosen by key, so it is the same rows as from the Parquet file.
    from_parquet = train_stream("sgd-logistic", parquet_20k, **run)
    assert rows["holdout"] == from_parquet.metadata["rows"]["holdout"]
    assert result.metrics["holdout"]["roc_auc"] == pytest.approx(
        from_parquet.metrics["holdout"]["roc_auc"], abs=0.01
    )
    # No password in model.json or the error-free source name.
    text = store.read_file("pg", "model.json").decode()
    assert pg.password not in text
    assert json.loads(text)["source"].startswith("postgresql://")


def test_from_s3_with_store_and_checkpoints_in_s3(s3, parquet_20k):
    prefix = s3.new_prefix()
    data = f"{prefix}data/"
    copy(parquet_20k, data, engine="local", partition_rows=4_000)
    store = f"{prefix}models"
    run = dict(name="s3", store=store, partition_rows=5_000, epochs=2, checkpoint_every=2, **COMMON)

    def stop(event):
        if (event["epoch"], event["step"]) == (1, 3):
            raise Interrupted

    with pytest.raises(Interrupted):
        train_stream("sgd-logistic", data, callback=stop, **run)
    assert CheckpointStore(store, "s3").load()["state"]["step"] == 3
    resumed = train_stream("sgd-logistic", data, resume=True, **run)
    assert resumed.metadata["resumed"] is True
    full = train_stream("sgd-logistic", data, **{**run, "name": "s3full", "checkpoint_every": None})
    assert np.array_equal(
        resumed.model.named_steps["model"].coef_, full.model.named_steps["model"].coef_
    )
    loaded = ModelStore(store).load("s3")
    assert loaded.metadata["kind"] == "stream"
    assert CheckpointStore(store, "s3").load() is None


def test_from_local_csv(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for i in range(3):
        pacsv.write_csv(table(3_000, seed=i), folder / f"day{i}.csv")
    result = train_stream("sgd-logistic", str(folder / "day*.csv"), epochs=2, **COMMON)
    assert result.metadata["partitions"] == 3
    assert result.metadata["rows"]["train"] + result.metadata["rows"]["holdout"] == 9_000
    assert result.metrics["holdout"]["roc_auc"] > 0.75
