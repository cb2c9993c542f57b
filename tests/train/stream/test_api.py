"""``train_stream`` end to end on local Parquet: the stored model, the loop's semantics, estimators."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.utils import murmurhash3_32

from skfleet.data import open_source
from skfleet.train.stream.api import train_stream
from skfleet.train.stream.data import PartitionReader, epoch_order
from skfleet.train.stream.holdout import HOLDOUT_HASH_SEED
from tests.train.stream.data import table

COMMON = dict(target="late", keys=["id"], exclude=["amount"], partition_rows=2_000)


def test_stored_model_json_and_predictions(parquet_20k, store):
    result = train_stream(
        "sgd-logistic", parquet_20k, name="late", store=store.uri, epochs=2, **COMMON
    )
    meta = json.loads(store.read_file("late", "model.json"))
    assert meta["kind"] == "stream" and meta["task"] == "classification"
    assert meta["target"] == "late" and meta["label_type"] == "bool"
    assert meta["classes"] == [False, True]
    assert meta["key_columns"] == ["id"]
    assert sorted(meta["input_columns"]) == ["carrier", "city", "x", "z"]
    assert meta["features"]["columns"]
    assert meta["estimator"]["class"].endswith("SGDClassifier")
    assert meta["epochs"] == {
        "requested": 2,
        "completed": 2,
        "stopped_early": False,
        "best_epoch": None,
    }
    assert meta["holdout"]["fraction"] == 0.1
    assert meta["rows"]["train"] + meta["rows"]["holdout"] == 20_000
    assert meta["rows"]["learned"] == 2 * meta["rows"]["train"]
    assert meta["metrics"]["holdout"]["n"] == meta["rows"]["holdout"]
    assert meta["metrics"]["holdout"]["roc_auc"] > 0.75
    assert meta["main_metric"]["name"] == "roc_auc"
    curve = meta["learning_curve"]
    assert [row["epoch"] for row in curve] == [1, 2]
    assert {"progressive_accuracy", "holdout_roc_auc", "holdout_log_loss"} <= set(curve[1])
    assert "report.html" in meta["files"]
    html = store.read_file("late", "report.html").decode()
    assert "Learning curve" in html
    # The stored artifact takes a table and predicts the training label type.
    loaded = store.load("late")
    rows = table(500, seed=7)
    assert loaded.model.predict(rows).dtype == bool
    np.testing.assert_array_equal(loaded.model.predict(rows), result.model.predict(rows))


def test_holdout_is_the_hashed_keys(parquet_20k):
    """The holdout is every row whose key hashes below the fraction, computed independently."""
    result = train_stream(
        "sgd-logistic", parquet_20k, holdout=0.25, holdout_key="id", report=False, **COMMON
    )
    ids = range(20_000)
    expected = sum(
        murmurhash3_32(i.to_bytes(8, "little", signed=True), seed=HOLDOUT_HASH_SEED, positive=True)
        < 0.25 * 2**32
        for i in ids
    )
    assert result.metadata["rows"]["holdout"] == expected
    assert result.metrics["holdout"]["n"] == expected
    assert result.metadata["holdout"]["key"] == "id"


def test_loop_is_seeded_partition_order_and_row_shuffle(parquet_20k):
    """Replaying the documented order by hand gives the identical model: partitions in
    ``epoch_order(seed, e)``, rows shuffled per (seed, epoch, partition), batches of batch_rows,
    one estimator across epochs (progressive scoring does not touch the model)."""
    result = train_stream(
        "sgd-logistic", parquet_20k, epochs=2, seed=5, batch_rows=700, report=False, **COMMON
    )
    encoder = result.model.named_steps["encode"]
    source = open_source(parquet_20k)
    partitions = source.partitions(2_000)
    columns = ["x", "z", "carrier", "city", "late"]
    reader = PartitionReader(
        source,
        partitions,
        columns,
        "late",
        encoder,
        holdout=0.1,
        holdout_key=None,
        seed=5,
        classes=[False, True],
    )
    est = clone(result.model.named_steps["model"])
    assert epoch_order(5, 0, 10) != epoch_order(5, 1, 10)
    for epoch in range(2):
        for index in epoch_order(5, epoch, len(partitions)):
            part = reader.prepare(index, epoch)
            for start in range(0, part.rows, 700):
                est.partial_fit(
                    part.X[start : start + 700],
                    part.y[start : start + 700],
                    classes=np.array([False, True]),
                )
    np.testing.assert_array_equal(est.coef_, result.model.named_steps["model"].coef_)


def test_learning_rate_schedule_continues_across_epochs(parquet_20k):
    """SGD's update counter t_ counts every row learned in every epoch (it starts at 1)."""
    result = train_stream("sgd-logistic", parquet_20k, epochs=3, report=False, **COMMON)
    sgd = result.model.named_steps["model"]
    assert (
        sgd.t_ == 1 + result.metadata["rows"]["learned"] == 1 + 3 * result.metadata["rows"]["train"]
    )


def test_progressive_validation_scores_each_batch_before_learning_it(parquet_20k):
    result = train_stream(
        "sgd-logistic", parquet_20k, epochs=2, batch_rows=500, report=False, **COMMON
    )
    train_rows = result.metadata["rows"]["train"]
    # The stored progressive metrics are the last epoch's: every batch was scored.
    assert result.metrics["progressive"]["n"] == train_rows
    no_progressive = train_stream(
        "sgd-logistic",
        parquet_20k,
        epochs=1,
        batch_rows=500,
        progressive=False,
        report=False,
        **COMMON,
    )
    assert "progressive" not in no_progressive.metrics
    one_epoch = train_stream(
        "sgd-logistic", parquet_20k, epochs=1, batch_rows=500, report=False, **COMMON
    )
    # In the first epoch the very first batch cannot be scored: there is no model yet.
    assert one_epoch.metrics["progressive"]["n"] == train_rows - 500


def test_early_stopping_keeps_the_best_epoch(parquet_20k):
    """With a tolerance no epoch can beat, training stops after ``patience`` epochs without
    improvement and keeps epoch 1's model: equal to a one-epoch run."""
    stopped = train_stream(
        "sgd-logistic",
        parquet_20k,
        epochs=5,
        early_stopping=True,
        patience=1,
        tol=1.0,
        report=False,
        **COMMON,
    )
    assert stopped.metadata["epochs"] == {
        "requested": 5,
        "completed": 2,
        "stopped_early": True,
        "best_epoch": 1,
    }
    one = train_stream("sgd-logistic", parquet_20k, epochs=1, report=False, **COMMON)
    np.testing.assert_array_equal(
        stopped.model.named_steps["model"].coef_, one.model.named_steps["model"].coef_
    )
    assert stopped.metrics["holdout"]["roc_auc"] == one.metrics["holdout"]["roc_auc"]


def test_process_pool_gives_the_same_model_as_in_process(parquet_20k):
    """Profiling merges in partition order and data-parallel epochs average in task order, so
    where the tasks ran (and in which order they finished) does not change the model."""
    run = dict(epochs=2, workers=2, report=False, **COMMON)
    local = train_stream("sgd-logistic", parquet_20k, engine="local", **run)
    pooled = train_stream("sgd-logistic", parquet_20k, engine="processes:2", **run)
    assert pooled.metadata["engine"] == "processes:2"
    np.testing.assert_array_equal(
        local.model.named_steps["model"].coef_, pooled.model.named_steps["model"].coef_
    )


def test_data_parallel_epochs_average_the_workers_models(parquet_20k):
    """workers=2: each epoch, partitions dealt round-robin (in the epoch's order) to two learners
    that start from the same model; their parameters are averaged, weighted by rows."""
    from skfleet.train.stream.parallel import average_models

    result = train_stream("sgd-logistic", parquet_20k, epochs=1, workers=2, report=False, **COMMON)
    encoder = result.model.named_steps["encode"]
    source = open_source(parquet_20k)
    partitions = source.partitions(2_000)
    reader = PartitionReader(
        source,
        partitions,
        ["x", "z", "carrier", "city", "late"],
        "late",
        encoder,
        holdout=0.1,
        holdout_key=None,
        seed=0,
        classes=[False, True],
    )
    order = epoch_order(0, 0, len(partitions))
    models, rows = [], []
    for share in (order[0::2], order[1::2]):
        est = clone(result.model.named_steps["model"])
        n = 0
        for index in share:
            part = reader.prepare(index, 0)
            for start in range(0, part.rows, 20_000):
                est.partial_fit(
                    part.X[start : start + 20_000],
                    part.y[start : start + 20_000],
                    classes=np.array([False, True]),
                )
            n += part.rows
        models.append(est)
        rows.append(n)
    expected = average_models(models, rows, t_base=1.0)
    got = result.model.named_steps["model"]
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-12)
    assert got.t_ == expected.t_ == 1 + result.metadata["rows"]["train"]
    sequential = train_stream("sgd-logistic", parquet_20k, epochs=1, report=False, **COMMON)
    assert (
        abs(result.metrics["holdout"]["roc_auc"] - sequential.metrics["holdout"]["roc_auc"]) < 0.03
    )


def test_regression(parquet_20k):
    result = train_stream(
        "sgd-linear",
        parquet_20k,
        target="amount",
        keys=["id"],
        exclude=["late"],
        partition_rows=2_000,
        epochs=2,
        report=False,
    )
    assert result.metadata["task"] == "regression" and result.metadata["label_type"] == "double"
    assert result.metrics["holdout"]["r2"] > 0.9
    assert result.metadata["main_metric"]["name"] == "r2"
    assert result.model.predict(table(10, seed=3)).dtype == np.float64


@pytest.mark.parametrize(
    "model, target, check",
    [
        ("perceptron", "late", "accuracy"),
        ("bernoulli-nb", "late", "roc_auc"),
        ("mlp-classifier", "late", "roc_auc"),
        ("mlp-regressor", "amount", "r2"),
        ("SGDClassifier", "late", "accuracy"),
    ],
)
def test_supervised_incremental_estimators(parquet_20k, model, target, check):
    other = "amount" if target == "late" else "late"
    result = train_stream(
        model,
        parquet_20k,
        target=target,
        keys=["id"],
        exclude=[other],
        partition_rows=2_000,
        params={"hidden_layer_sizes": [16], "learning_rate_init": 0.01}
        if model.startswith("mlp")
        else None,
        report=False,
    )
    value = result.metrics["holdout"][check]
    assert value > (0.6 if check != "r2" else 0.8), result.metrics["holdout"]
    assert len(result.learning_curve) == 1


def test_multinomial_nb_on_non_negative_features(parquet_20k):
    """MultinomialNB needs counts: one-hot categories only."""
    result = train_stream(
        "multinomial-nb",
        parquet_20k,
        target="late",
        keys=["id"],
        exclude=["amount", "x", "z"],
        partition_rows=2_000,
        report=False,
    )
    assert result.metrics["holdout"]["roc_auc"] > 0.55


def test_multinomial_nb_with_negative_features_is_a_one_line_error(parquet_20k):
    from skfleet.errors import DataError

    with pytest.raises(DataError, match="MultinomialNB.partial_fit failed: Negative values"):
        train_stream("multinomial-nb", parquet_20k, report=False, **COMMON)


def test_clustering_and_pca_learn_without_target(parquet_20k, store):
    kmeans = train_stream(
        "minibatch-kmeans",
        parquet_20k,
        keys=["id"],
        exclude=["late", "amount"],
        partition_rows=2_000,
        params={"n_clusters": 4},
        epochs=2,
        name="clusters",
        store=store.uri,
    )
    assert kmeans.metadata["task"] == "clustering" and kmeans.metadata["target"] is None
    assert kmeans.metrics["holdout"]["inertia"] > 0
    assert kmeans.metadata["main_metric"]["name"] == "inertia"
    assert set(np.unique(kmeans.model.predict(table(100, seed=2)))) <= {0, 1, 2, 3}
    pca = train_stream(
        "incremental-pca",
        parquet_20k,
        keys=["id"],
        exclude=["late", "amount", "city"],
        partition_rows=2_000,
        params={"n_components": 3},
        report=False,
    )
    assert pca.metadata["task"] == "transform"
    assert pca.model.transform(table(50, seed=2)).shape == (50, 3)
    assert 0 <= pca.metrics["holdout"]["reconstruction_mse"] < 1


def test_label_seen_only_in_holdout_of_the_last_partition_is_a_class(tmp_path):
    """The profile counts holdout rows' labels too, so classes= is complete by construction."""
    from skfleet.train.stream.holdout import holdout_mask
    from tests.train.stream.data import write_files

    parts = [table(1_000, seed=s).drop_columns(["amount"]) for s in range(3)]
    last = parts[-1].set_column(0, "id", pa.array(np.arange(1_000) + 10_000, pa.int64()))
    labels = np.where(last.column("late").to_numpy(zero_copy_only=False), "late", "on_time")
    held = holdout_mask(last, 0.1, key="id")
    rare_row = int(np.flatnonzero(held)[0])
    labels = labels.astype(object)
    labels[rare_row] = "cancelled"
    parts = [
        p.set_column(
            p.column_names.index("late"),
            "late",
            pa.array(np.where(p.column("late").to_numpy(zero_copy_only=False), "late", "on_time")),
        )
        for p in parts[:-1]
    ]
    parts.append(
        last.set_column(last.column_names.index("late"), "late", pa.array(labels.tolist()))
    )
    folder = write_files(tmp_path / "in", parts)
    result = train_stream(
        "sgd-logistic",
        folder,
        target="late",
        keys=["id"],
        holdout_key="id",
        report=False,
    )
    assert result.metadata["classes"] == ["cancelled", "late", "on_time"]
    assert result.model.named_steps["model"].classes_.tolist() == ["cancelled", "late", "on_time"]
    assert result.model.predict_proba(last).shape == (1_000, 3)


def test_profiled_encoder_equals_one_fit_on_the_training_rows(parquet_20k):
    """The profiling pass folds per-partition statistics into one encoder: the same contract as
    fitting the encoder on all training rows at once (holdout rows never shape the features)."""
    from skfleet.features import TableEncoder
    from skfleet.train.stream.holdout import holdout_mask
    from skfleet.train.stream.profile import row_offset

    result = train_stream(
        "sgd-logistic",
        parquet_20k,
        encoder={"hash": ["city"], "max_levels": 4},
        report=False,
        **COMMON,
    )
    source = open_source(parquet_20k)
    train_parts = []
    for part in source.partitions(2_000):
        rows = source.read(part)
        held = holdout_mask(rows, 0.1, start_row=row_offset(part.id))
        train_parts.append(rows.filter(pa.array(~held)))
    rows = pa.concat_tables(train_parts).drop_columns(["late", "amount"])
    direct = TableEncoder(target="late", exclude=("id",), hash=["city"], max_levels=4).fit(rows)
    streamed = result.model.named_steps["encode"]
    assert streamed.contract_.feature_names == direct.contract_.feature_names
    sample = table(300, seed=9).drop_columns(["late", "amount"])
    np.testing.assert_allclose(streamed.transform(sample), direct.transform(sample), rtol=1e-6)


def test_columns_the_encoder_sets_aside_are_noted(tmp_path):
    """An id-like column nobody declared is not learned from, and model.json says why."""
    import pyarrow.parquet as pq

    rows = (
        table(3_000)
        .drop_columns(["amount"])
        .rename_columns(["row_number", "x", "z", "carrier", "city", "late"])
    )
    path = tmp_path / "t.parquet"
    pq.write_table(rows, path)
    result = train_stream("sgd-logistic", str(path), target="late", report=False)
    assert "row_number" not in result.metadata["input_columns"]
    assert any(
        note.startswith("column 'row_number' is not a feature") for note in result.metadata["notes"]
    )
