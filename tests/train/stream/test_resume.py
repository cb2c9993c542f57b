"""Checkpoints and ``resume``: an interrupted run continues to the very same model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from skfleet.errors import UsageError
from skfleet.store import ModelStore
from skfleet.train.stream.api import train_stream
from skfleet.train.stream.checkpoint import CheckpointStore

COMMON = dict(target="late", keys=["id"], exclude=["amount"], partition_rows=2_000, report=False)


class Interrupted(Exception):
    pass


def interrupt_at(epoch: int, step: int):
    def callback(event):
        if (event["epoch"], event["step"]) == (epoch, step):
            raise Interrupted

    return callback


def weights(result):
    est = result.model.named_steps["model"]
    return est.coefs_ + est.intercepts_ if hasattr(est, "coefs_") else [est.coef_, est.intercept_]


@pytest.mark.parametrize(
    "model, params",
    [("sgd-logistic", None), ("mlp-classifier", {"hidden_layer_sizes": [8]})],
)
def test_resume_reaches_the_uninterrupted_model_bit_for_bit(parquet_20k, store, model, params):
    """Interrupted in epoch 2 after 3 partitions; resumed from the checkpoint of partition 3. The
    MLP also checks that the estimator's own random state (batch shuffles) is checkpointed."""
    run = dict(epochs=2, checkpoint_every=1, params=params, store=store.uri, **COMMON)
    full = train_stream(model, parquet_20k, name="full", **run)
    with pytest.raises(Interrupted):
        train_stream(model, parquet_20k, name="cut", callback=interrupt_at(1, 3), **run)
    saved = CheckpointStore(store, "cut").load()
    assert (saved["state"]["epoch"], saved["state"]["step"]) == (1, 3)
    resumed = train_stream(model, parquet_20k, name="cut", resume=True, **run)
    assert resumed.metadata["resumed_from"] == {"epoch": 1, "step": 3}
    for a, b in zip(weights(full), weights(resumed), strict=True):
        assert np.array_equal(a, b)
    assert resumed.learning_curve == full.learning_curve
    assert resumed.metrics == full.metrics
    assert resumed.metadata["rows"] == full.metadata["rows"]
    # The run is over: its checkpoint is gone and never was a model.
    assert CheckpointStore(store, "cut").load() is None
    assert store.names() == ["cut", "full"]


def test_checkpoint_between_epochs_and_after_last_partition(parquet_20k, store):
    """Interrupted right after the last partition of epoch 1 (before its holdout score)."""
    run = dict(epochs=2, checkpoint_every=5, store=store.uri, **COMMON)
    full = train_stream("sgd-logistic", parquet_20k, name="full", **run)
    with pytest.raises(Interrupted):
        train_stream("sgd-logistic", parquet_20k, name="cut", callback=interrupt_at(0, 10), **run)
    resumed = train_stream("sgd-logistic", parquet_20k, name="cut", resume=True, **run)
    assert resumed.metadata["resumed_from"] == {"epoch": 0, "step": 10}
    assert np.array_equal(weights(full)[0], weights(resumed)[0])
    assert resumed.learning_curve == full.learning_curve


def test_data_parallel_run_resumes_from_the_last_epoch(parquet_20k, store):
    run = dict(epochs=3, workers=2, checkpoint_every=1, store=store.uri, **COMMON)
    full = train_stream("sgd-logistic", parquet_20k, name="full", **run)
    with pytest.raises(Interrupted):
        train_stream("sgd-logistic", parquet_20k, name="cut", callback=interrupt_at(1, 10), **run)
    resumed = train_stream("sgd-logistic", parquet_20k, name="cut", resume=True, **run)
    assert resumed.metadata["resumed_from"] == {"epoch": 1, "step": 0}
    assert np.array_equal(weights(full)[0], weights(resumed)[0])
    assert resumed.learning_curve == full.learning_curve


def test_resume_with_other_settings_is_refused(parquet_20k, store):
    run = dict(epochs=2, checkpoint_every=1, store=store.uri, **COMMON)
    with pytest.raises(Interrupted):
        train_stream("sgd-logistic", parquet_20k, name="m", callback=interrupt_at(0, 2), **run)
    with pytest.raises(UsageError, match="--resume: .* another seed"):
        train_stream("sgd-logistic", parquet_20k, name="m", resume=True, **{**run, "seed": 9})
    with pytest.raises(UsageError, match="--resume: .* another --model or --param"):
        train_stream("perceptron", parquet_20k, name="m", resume=True, **run)
    with pytest.raises(UsageError, match="--resume: .* another partition plan"):
        train_stream(
            "sgd-logistic",
            parquet_20k,
            name="m",
            resume=True,
            **{**run, "partition_rows": 4_000},
        )


def test_resume_without_checkpoint_starts_over(parquet_20k, store):
    fresh = train_stream("sgd-logistic", parquet_20k, name="a", store=store.uri, **COMMON)
    resumed = train_stream(
        "sgd-logistic", parquet_20k, name="b", store=store.uri, resume=True, **COMMON
    )
    assert resumed.metadata["resumed"] is False
    assert np.array_equal(weights(fresh)[0], weights(resumed)[0])


def test_checkpoint_is_replaced_atomically(store):
    """A checkpoint is one object renamed into place: no temp files stay behind, and a reader
    sees the old or the new state, never a mix."""
    cp = CheckpointStore(store, "x")
    cp.save({"position": 1})
    cp.save({"position": 2})
    assert cp.load()["position"] == 2
    assert sorted(os.listdir(cp.folder)) == ["checkpoint.skops"]


@pytest.mark.slow
def test_killed_cli_run_resumes_to_the_same_model(tmp_path):
    """SIGKILL a ``skfleet train-stream`` process once a checkpoint exists, then ``--resume``."""
    from tests.train.stream.data import write_parquet

    data = write_parquet(tmp_path / "d.parquet", 40_000, row_group_size=4_000)
    store = str(tmp_path / "models")
    base = [
        sys.executable,
        "-m",
        "skfleet",
        "train-stream",
        data,
        "--target",
        "late",
        "--key",
        "id",
        "--exclude",
        "amount",
        "--model",
        "sgd-logistic",
        "--partition-rows",
        "4000",
        "--batch-rows",
        "500",
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
        "--store",
        store,
        "--no-report",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    # The uninterrupted reference runs in this process (same settings as the CLI's flags).
    train_stream(
        "sgd-logistic",
        data,
        target="late",
        keys=["id"],
        exclude=["amount"],
        name="full",
        store=store,
        partition_rows=4_000,
        batch_rows=500,
        epochs=2,
        report=False,
    )
    proc = subprocess.Popen(
        [*base, "--name", "cut"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    checkpoint = Path(CheckpointStore(store, "cut").path)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    out = subprocess.run(
        [*base, "--name", "cut", "--resume"], check=True, env=env, capture_output=True, text=True
    )
    assert json.loads(out.stdout)["resumed"] is True
    models = ModelStore(store)
    full = models.load("full").model.named_steps["model"]
    cut = models.load("cut").model.named_steps["model"]
    assert np.array_equal(full.coef_, cut.coef_) and full.t_ == cut.t_
