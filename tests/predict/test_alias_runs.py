"""A prediction run resolves ``NAME@champion`` once, at planning, and keeps to that version: moving
the alias does not switch the model of a run being resumed."""

from __future__ import annotations

import numpy as np
import pytest

from skfleet.errors import PartitionFailedError
from skfleet.predict.api import predict
from skfleet.predict.runs import RunStore
from tests.predict.conftest import read_sorted
from tests.predict.models import FailsOnce, save_custom, save_regressor


def test_a_resumed_run_keeps_the_version_the_alias_meant_at_planning(
    tmp_path, store, rows, parquet_in
):
    markers = tmp_path / "markers"
    markers.mkdir()
    save_custom(store, FailsOnce(str(markers)), "score")  # score@1: 2 * x0, failing once a batch
    store.set_alias("score@1", "champion")
    out = str(tmp_path / "out")
    options = {"store": store.uri, "engine": "local", "trust": True, "partition_rows": 1_000}
    with pytest.raises(PartitionFailedError, match="--resume"):
        predict("score@champion", parquet_in, out, retries=0, **options)
    (record,) = RunStore.for_model_store(store.uri).records()
    assert record.status == "failed" and record.model["version"] == 1

    save_regressor(store, rows, name="score")  # score@2: 3 * x0 + 1
    store.set_alias("score@2", "champion")
    result = predict("score@champion", parquet_in, out, resume=record.run_id, **options)
    assert result.model == "score@1" and result.resumed
    got = read_sorted(out)
    assert got["id"].equals(rows["id"])
    np.testing.assert_array_equal(got["prediction"].to_numpy(), rows["x0"].to_numpy() * 2.0)
    # A new run takes the alias as it is now.
    fresh = predict("score@champion", parquet_in, str(tmp_path / "fresh"), **options)
    assert fresh.model == "score@2"
    assert RunStore.for_model_store(store.uri).load(fresh.run_id).model["version"] == 2
