"""The default engine weighs the work: a small job runs in this process, a large one on the local
cluster; the run summary says which, and the scores are the same either way."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from skfleet.cli import main
from skfleet.engine import choice, session
from skfleet.predict.api import predict
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import save_classifier


def test_small_job_on_the_default_engine_runs_here(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    here = predict(ref, parquet_in, str(tmp_path / "here"), store=store.uri, partition_rows=1_000)
    given = predict(
        ref, parquet_in, str(tmp_path / "given"), store=store.uri, engine="local",
        partition_rows=1_000,
    )  # fmt: skip
    assert here.partitions == 6
    workers = os.cpu_count()
    assert here.engine == f"local ({ROWS:,} rows: faster here than starting {workers} workers)"
    assert here.model_loads == 0  # the model was loaded here once, before the first partition
    assert given.engine == "local"
    assert read_sorted(str(tmp_path / "here")).equals(read_sorted(str(tmp_path / "given")))


def test_large_job_goes_to_the_cluster_and_scores_the_same(
    tmp_path, store, rows, parquet_in, monkeypatch
):
    # What makes a job large: the cluster's start-up (0 here) and the hand-over (0) against the
    # work measured on the first partition. 5 partitions left: 2 workers finish them sooner than
    # this process running one at a time (with its usual two threads, 2 workers would be no
    # faster: on this 2-core machine a pool never pays, see the next test).
    monkeypatch.setattr(session, "POOL_START_SECONDS", 0.0)
    monkeypatch.setattr(choice, "HANDOVER_SECONDS", 0.0)
    monkeypatch.setattr("skfleet.predict.execution.STREAMS", 1)
    ref = save_classifier(store, rows)
    pooled = predict(ref, parquet_in, str(tmp_path / "pool"), store=store.uri, partition_rows=1_000)
    predict(ref, parquet_in, str(tmp_path / "here"), store=store.uri, engine="local",
            partition_rows=1_000)  # fmt: skip
    assert pooled.engine.startswith("dask:local:")
    assert pooled.engine.endswith("(1 of 6 partitions in this process while it started)")
    assert pooled.model_loads >= 1  # loaded by the workers that took the rest
    assert pooled.rows_out == ROWS
    assert read_sorted(str(tmp_path / "pool")).equals(read_sorted(str(tmp_path / "here")))


def test_cli_summary_and_json_say_where_it_ran(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    runner = CliRunner()
    base = ["predict", ref, parquet_in, "--store", store.uri, "--partition-rows", "2000"]
    text = runner.invoke(main, [*base, "--out", str(tmp_path / "a")])
    assert text.exit_code == 0, text.stderr
    assert f"on local ({ROWS:,} rows: faster here than starting" in text.stdout
    as_json = runner.invoke(main, [*base, "--out", str(tmp_path / "b"), "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout)["engine"].startswith(f"local ({ROWS:,} rows")


def test_client_of_a_pool_does_not_import_pandas(tmp_path, store, rows, parquet_in):
    # The client plans from model.json and hands partitions out: neither scikit-learn nor pandas
    # (0.3 s of a cold start) is needed there; a URL is not checked for being a DataFrame.
    import subprocess
    import sys
    import textwrap

    ref = save_classifier(store, rows)
    script = textwrap.dedent(
        f"""
        import sys
        from skfleet.predict.api import predict
        result = predict({ref!r}, {parquet_in!r}, {str(tmp_path / "o")!r}, store={store.uri!r},
                         engine="processes:2", partition_rows=1_000)
        print(result.rows_out, sorted(m for m in ("pandas", "sklearn") if m in sys.modules))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [str(ROWS), "[]"]


def test_a_pool_no_faster_than_two_threads_here_is_never_started(
    tmp_path, store, rows, parquet_in, monkeypatch
):
    # Even free to start, 2 workers finish no sooner than this process running two partitions at
    # once: the job stays here, and no cluster is started in the background either.
    from skfleet.predict import api

    started = []
    monkeypatch.setattr(session, "POOL_START_SECONDS", 0.0)
    monkeypatch.setattr(choice, "HANDOVER_SECONDS", 0.0)
    monkeypatch.setattr("skfleet.predict.plan.WARM_UP_CELLS", 0)
    monkeypatch.setattr(api, "warm_up", lambda *a, **k: started.append(a) or (lambda: None))
    ref = save_classifier(store, rows)
    result = predict(
        ref, parquet_in, str(tmp_path / "o"), store=store.uri, partition_rows=1_000, workers=2
    )
    assert result.engine == f"local ({ROWS:,} rows: faster here than starting 2 workers)"
    assert started == []
    given = predict(
        ref, parquet_in, str(tmp_path / "g"), store=store.uri, partition_rows=1_000,
        engine="dask:local:2",
    )  # fmt: skip
    assert given.engine == "dask:local:2"
    assert read_sorted(str(tmp_path / "o")).equals(read_sorted(str(tmp_path / "g")))


def test_partitions_are_sized_for_the_workers_a_running_cluster_has(tmp_path, store, dask_engine):
    # 400k rows on a cluster of 2 workers: 8 partitions of 50k (4 a worker), not the 32 planned
    # for a cluster of unknown size (8 workers); connected to while the run was planned.
    import numpy as np
    import pyarrow.parquet as pq

    from tests.predict.models import make_rows

    rows = make_rows(400_000)
    pq.write_table(rows, tmp_path / "in.parquet", row_group_size=10_000)
    ref = save_classifier(store, rows.slice(0, 5_000))
    address = dask_engine.client.scheduler.address
    result = predict(ref, str(tmp_path / "in.parquet"), str(tmp_path / "o"), store=store.uri,
                     engine=address)  # fmt: skip
    assert result.engine == address and result.partitions == 8 and result.rows_out == 400_000
    got = read_sorted(str(tmp_path / "o"))["id"].to_numpy()
    assert np.array_equal(got, np.arange(400_000))
