"""Bad input to ``train_stream`` / ``skfleet train-stream``: one-line errors naming the culprit."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.errors import DataError, MissingColumnError, UsageError
from skfleet.train.stream.api import train_stream
from tests.train.stream.data import table, write_files

COMMON = dict(keys=["id"], exclude=["amount"], partition_rows=2_000, report=False)


def test_estimator_without_partial_fit_points_to_skfleet_train(parquet_20k):
    from sklearn.ensemble import RandomForestClassifier

    for model in ("RandomForestClassifier", "random-forest-classifier", RandomForestClassifier()):
        with pytest.raises(UsageError, match="has no partial_fit.*use `skfleet train`"):
            train_stream(model, parquet_20k, target="late", **COMMON)


def test_cli_without_partial_fit_exits_2_with_one_line(parquet_20k, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "train-stream",
            parquet_20k,
            "--target",
            "late",
            "--model",
            "hgb-classifier",
            "--store",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: HistGradientBoostingClassifier has no partial_fit")
    )
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_empty_partitions_are_skipped(tmp_path):
    rows = table(3_000).drop_columns(["amount"])
    parts = [rows.slice(0, 0), rows.slice(0, 1_500), rows.slice(0, 0), rows.slice(1_500)]
    folder = write_files(tmp_path / "in", parts)
    result = train_stream("sgd-logistic", folder, target="late", keys=["id"], report=False)
    assert result.metadata["partitions"] == 4
    assert result.metadata["rows"]["train"] + result.metadata["rows"]["holdout"] == 3_000


def test_only_empty_partitions_is_an_error(tmp_path):
    empty = table(10).drop_columns(["amount"]).slice(0, 0)
    folder = write_files(tmp_path / "in", [empty, empty])
    with pytest.raises(DataError, match="has no rows to train on"):
        train_stream("sgd-logistic", folder, target="late", keys=["id"], report=False)


def _with_missing_targets(tmp_path, n=6_000):
    rows = table(n)
    amount = rows.column("amount").to_numpy().copy()
    amount[::10] = np.nan  # NaN
    mask = np.zeros(n, dtype=bool)
    mask[5::10] = True  # null
    column = pa.array(amount, mask=mask)
    rows = rows.set_column(rows.column_names.index("amount"), "amount", column)
    path = tmp_path / "nan.parquet"
    pq.write_table(rows, path, row_group_size=1_000)
    return str(path)


def test_nan_and_null_targets_are_dropped_and_counted(tmp_path):
    path = _with_missing_targets(tmp_path)
    result = train_stream(
        "sgd-linear",
        path,
        target="amount",
        keys=["id"],
        exclude=["late"],
        partition_rows=1_000,
        report=False,
    )
    rows = result.metadata["rows"]
    assert rows["dropped_missing_target"] == 1_200
    assert rows["train"] + rows["holdout"] == 4_800
    assert np.isfinite(result.model.named_steps["model"].coef_).all()
    with pytest.raises(DataError, match="target column 'amount' is missing in 1200 of 6000 rows"):
        train_stream(
            "sgd-linear",
            path,
            target="amount",
            keys=["id"],
            exclude=["late"],
            missing_target="error",
            report=False,
        )


def test_all_targets_missing(tmp_path):
    rows = table(100).drop_columns(["amount"])
    rows = rows.set_column(rows.column_names.index("late"), "late", pa.nulls(100, pa.bool_()))
    path = tmp_path / "t.parquet"
    pq.write_table(rows, path)
    with pytest.raises(DataError, match="target column 'late' has no values"):
        train_stream("sgd-logistic", str(path), target="late", keys=["id"], report=False)


def test_label_absent_from_the_profile_means_the_table_changed(tmp_path):
    """By design every label is profiled; if the table changes between the profile and an epoch,
    the new label is refused with the partition named, not silently learned or dropped."""
    parts = []
    for seed in range(4):
        part = table(1_000, seed=seed).drop_columns(["amount"])
        late = np.where(part.column("late").to_numpy(zero_copy_only=False), "late", "on_time")
        parts.append(part.set_column(part.column_names.index("late"), "late", pa.array(late)))
    folder = write_files(tmp_path / "in", parts)
    changed = {}

    def rewrite_after_first_partition(event):
        if changed:
            return
        # Every file gets a label the profiling pass never saw.
        for i, part in enumerate(parts):
            late = pa.array(["maybe"] * part.num_rows)
            part = part.set_column(part.column_names.index("late"), "late", late)
            # Replaced atomically: the prefetch thread may be reading the next file right now.
            staged = tmp_path / f"staged-{i:03d}.parquet"
            pq.write_table(part, staged)
            os.replace(staged, tmp_path / "in" / f"part-{i:03d}.parquet")
        changed["done"] = True

    with pytest.raises(DataError, match="target label 'maybe' in partition part-0.* was not seen"):
        train_stream(
            "sgd-logistic",
            folder,
            target="late",
            keys=["id"],
            epochs=2,
            report=False,
            callback=rewrite_after_first_partition,
        )


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(target="nope"), MissingColumnError, "target column 'nope' is missing from .*t20k"),
        (dict(target="late", keys=["key"]), MissingColumnError, "--key column 'key' is missing"),
        (dict(target="late", holdout_key="k"), MissingColumnError, "--holdout-key column 'k'"),
        (dict(target=None), UsageError, "--target is required"),
        (dict(target="late", epochs=0), UsageError, "--epochs must be a positive integer"),
        (dict(target="late", holdout=1.0), UsageError, r"--holdout must be a fraction in \[0, 1\)"),
        (dict(target="late", holdout=0, early_stopping=True), UsageError, "--early-stopping needs"),
        (dict(target="late", checkpoint_every=2), UsageError, "--checkpoint-every needs --name"),
        (dict(target="late", params={"alpah": 1}), UsageError, "--param alpah"),
        (dict(target="late", workers=2, model="bernoulli-nb"), UsageError, "--workers 2"),
        (dict(target="x"), DataError, "holds continuous values"),
        (dict(target="carrier", model="sgd-linear"), DataError, "is string, not numeric"),
        (
            dict(target="late", encoder={"max_levels": 0}),
            UsageError,
            "max_levels must be a positive",
        ),
    ],
)
def test_bad_arguments(parquet_20k, kwargs, error, message):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", "sgd-logistic")
    target = kwargs.pop("target")
    options = {**COMMON, **kwargs}
    if target in options["exclude"]:
        options["exclude"] = []
    with pytest.raises(error, match=message):
        train_stream(model, parquet_20k, target=target, **options)


def test_target_for_an_unsupervised_model(parquet_20k):
    with pytest.raises(UsageError, match="MiniBatchKMeans learns without a target"):
        train_stream("minibatch-kmeans", parquet_20k, target="late", **COMMON)


def test_single_class(tmp_path):
    rows = table(500).drop_columns(["amount"])
    rows = rows.set_column(rows.column_names.index("late"), "late", pa.array([True] * 500))
    path = tmp_path / "one.parquet"
    pq.write_table(rows, path)
    with pytest.raises(DataError, match="has a single class"):
        train_stream("sgd-logistic", str(path), target="late", keys=["id"], report=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_data_in_partial_fit_is_one_line_and_not_retried(parquet_20k, tmp_path, workers):
    """The learning step is shared by the sequential loop and the data-parallel workers: the same
    DataError whatever --workers is, raised at the first refusal (a retry would refuse it again)."""
    from tests.train.stream.estimators import RejectsLargeValues

    attempts = tmp_path / "attempts"
    attempts.mkdir()
    model = RejectsLargeValues(limit=4.0, attempts=str(attempts))
    with pytest.raises(DataError) as caught:
        train_stream(
            model,
            parquet_20k,
            target="late",
            workers=workers,
            engine="processes:2",
            epochs=1,
            **COMMON,
        )
    assert str(caught.value) == (
        "RejectsLargeValues.partial_fit failed: Input X contains a value above 4.0"
    )
    # One refusal per learner at most: never a second attempt at a refused batch.
    assert 1 <= len(list(attempts.iterdir())) <= workers


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_bad_data_in_partial_fit_exits_2(parquet_20k, tmp_path, workers):
    result = CliRunner().invoke(
        main,
        [
            "train-stream",
            parquet_20k,
            "--target",
            "late",
            "--model",
            "tests.train.stream.estimators.RejectsLargeValues",
            "--key",
            "id",
            "--exclude",
            "amount",
            "--partition-rows",
            "2000",
            "--workers",
            workers,
            "--engine",
            "processes:2",
            "--store",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "error: RejectsLargeValues.partial_fit failed: Input X contains a value above 4.0"
    )
