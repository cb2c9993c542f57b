"""Runs that are cut short: the client gets SIGINT and is resumed; a Dask worker is SIGKILLed."""

from __future__ import annotations

import glob
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.errors import SkfleetError, UsageError
from skfleet.predict.api import predict
from skfleet.predict.runs import RunStore
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import Sleepy, make_rows, save_custom, write_parquet_dir
from tests.services.dask import worker_env


def committed_parts(out: Path) -> dict[str, int]:
    """Part files that a run has committed (the file sink's receipts), with their mtimes."""
    receipts = glob.glob(str(out / "_staging-*" / "_rows" / "*"))
    staged = {Path(r).name.split("-", 1)[1]: Path(r).parent.parent for r in receipts}
    # Parts wait in the run's staging folder until the commit moves them in.
    return {n: (run / f"part-{n}.parquet").stat().st_mtime_ns for n, run in staged.items()}


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def expected(rows):
    return rows["x0"].to_numpy() * 2.0


@pytest.mark.slow
def test_sigint_then_resume_finishes_without_recomputing(tmp_path, store, rows, parquet_in):
    ref = save_custom(store, Sleepy(delay=0.25), "sleepy")
    out = tmp_path / "scores"
    args = [
        sys.executable,
        "-m",
        "skfleet",
        "predict",
        ref,
        parquet_in,
        "--out",
        str(out),
        "--store",
        store.uri,
        "--trust",
        "--engine",
        "local",
        "--partition-rows",
        "500",
        "--json",
    ]
    client = subprocess.Popen(
        args,
        cwd=tmp_path,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: len(committed_parts(out)) >= 2 or client.poll() is not None,
            what="two committed partitions",
        )
        seen = sorted(committed_parts(out))
        finished_first = client.poll() is not None  # then the signal could not interrupt it
        client.send_signal(signal.SIGINT)
        stdout, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    # Once (1 run in ~10, fresh clone) the client exited 0 with no stderr: say what was seen.
    assert client.returncode == 130, (
        f"exit {client.returncode}; parts committed when signalled: {seen}; "
        f"finished before the signal: {finished_first}; stdout: {stdout[-300:]!r}; stderr: {err!r}"
    )
    run_id = RunStore.for_model_store(store.uri).records()[-1].run_id
    assert f"--resume {run_id}" in err
    assert RunStore.for_model_store(store.uri).load(run_id).status == "interrupted"
    before = committed_parts(out)
    assert 2 <= len(before) < 12  # interrupted mid-run, its staging kept

    # Resuming with other options than the run's is refused, not silently mixed.
    with pytest.raises(UsageError, match="--partition-rows"):
        predict(
            ref,
            parquet_in,
            str(out),
            store=store.uri,
            engine="local",
            trust=True,
            resume=run_id,
            partition_rows=1_000,
        )

    # The same command line with --resume (in this process: the CLI code is the same, and it
    # spares a second interpreter start).
    done = CliRunner().invoke(main, [*args[3:-3], "--resume", "--json"])
    assert done.exit_code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["run_id"] == run_id and summary["resumed"] is True
    assert summary["skipped_partitions"] == len(before)
    assert summary["rows_in"] == summary["rows_out"] == ROWS and summary["partitions"] == 12
    # Committed partitions were not recomputed: their parts were not written again.
    after = {n: (out / f"part-{n}.parquet").stat().st_mtime_ns for n in before}
    assert after == before
    got = read_sorted(str(out))
    assert got["id"].to_pylist() == list(range(ROWS))  # nothing lost, nothing twice
    np.testing.assert_array_equal(got["prediction"].to_numpy(), expected(rows))
    assert RunStore.for_model_store(store.uri).load(run_id).status == "committed"


def test_resume_refuses_a_changed_source(tmp_path, store, rows):
    ref = save_custom(store, Sleepy(delay=0.0), "quick")
    src = write_parquet_dir(tmp_path / "in", rows, files=3, row_group_size=500)
    out = tmp_path / "scores"
    result = predict(
        ref, src, str(out), store=store.uri, engine="local", trust=True, partition_rows=500
    )
    record = RunStore.for_model_store(store.uri).load(result.run_id)
    record.status = "interrupted"  # pretend it stopped early
    RunStore.for_model_store(store.uri).save(record)
    write_parquet_dir(tmp_path / "in", make_rows(100, start=ROWS), files=1, row_group_size=500)
    Path(tmp_path / "in" / "part-00.parquet").rename(tmp_path / "in" / "part-07.parquet")
    with pytest.raises(SkfleetError, match="other partitions than run"):
        predict(ref, src, str(out), store=store.uri, engine="local", trust=True, resume=True)


@pytest.mark.slow
def test_worker_killed_mid_run_loses_nothing(tmp_path, store, process_cluster):
    rows = make_rows(ROWS)
    src = write_parquet_dir(tmp_path / "in", rows, files=3, row_group_size=500)
    ref = save_custom(store, Sleepy(delay=0.4), "sleepy")
    out = tmp_path / "scores"
    outcome: dict = {}

    def run() -> None:  # the CLI, in this process (a thread), against the separate cluster
        args = [
            "predict",
            ref,
            src,
            "--out",
            str(out),
            "--store",
            store.uri,
            "--trust",
            "--engine",
            process_cluster.address,
            "--partition-rows",
            "500",
            "--json",
        ]
        outcome["cli"] = CliRunner().invoke(main, args)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(
            lambda: len(committed_parts(out)) >= 1 or not thread.is_alive(),
            what="a committed partition",
        )
        at_kill = len(committed_parts(out))
        process_cluster.kill_worker(0)
    finally:
        thread.join(180)
    assert at_kill < 12, "the run finished before the worker was killed"
    cli = outcome["cli"]
    assert cli.exit_code == 0, (cli.stderr, cli.exception)
    result = json.loads(cli.stdout)
    assert result["rows_in"] == result["rows_out"] == ROWS and result["partitions"] == 12
    got = read_sorted(str(out))
    assert got["id"].to_pylist() == list(range(ROWS))
    np.testing.assert_array_equal(got["prediction"].to_numpy(), expected(rows))
