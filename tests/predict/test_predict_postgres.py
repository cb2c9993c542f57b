"""``predict`` against a real PostgreSQL server (and S3): distributed equals in-process, a writer
killed with ``pg_terminate_backend`` mid-write is retried and writes once, passwords stay out."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from skfleet.copy import copy
from skfleet.predict.api import predict
from skfleet.predict.runs import RunStore
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import save_classifier
from tests.predict.test_predict import expected_scores


@pytest.fixture
def pg_in(pg, parquet_in):
    """The test rows as a PostgreSQL table."""
    url = pg.table_url(f"public.rows_{uuid.uuid4().hex[:8]}")
    copy(parquet_in, url, engine="local")
    return url


def test_postgres_to_postgres_dask_equals_in_process(pg, store, rows, pg_in, dask_engine):
    ref = save_classifier(store, rows)
    local_url = pg.table_url(f"public.scores_local_{uuid.uuid4().hex[:6]}")
    dask_url = pg.table_url(f"public.scores_dask_{uuid.uuid4().hex[:6]}")
    local = predict(ref, pg_in, local_url, store=store.uri, engine="local", partition_rows=1_000)
    dist = predict(ref, pg_in, dask_url, store=store.uri, engine=dask_engine, partition_rows=1_000)
    assert dist.partitions > 1 and dist.rows_out == local.rows_out == ROWS
    assert read_sorted(dask_url).equals(read_sorted(local_url))
    assert read_sorted(dask_url).equals(expected_scores(store, ref, rows))
    # Nothing the run stored holds the password.
    runs = RunStore.for_model_store(store.uri)
    for path in runs.fs.glob(f"{runs.root}/*.json"):
        text = runs.fs.cat_file(path).decode()
        assert pg.password not in text and "***" in text


def _set_env(values: dict[str, str]) -> None:
    os.environ.update(values)


def test_s3_to_postgres_dask_equals_in_process(pg, s3, store, rows, parquet_in, dask_engine):
    # The shared cluster may have started before the S3 fixture set the AWS variables: hand them
    # to its workers the way a deployment's environment would.
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    dask_engine.client.run(_set_env, aws)
    s3_in = s3.new_prefix() + "rows.parquet/"
    copy(parquet_in, s3_in, engine="local", partition_rows=1_000)
    ref = save_classifier(store, rows)
    local_url = pg.table_url(f"public.s3_local_{uuid.uuid4().hex[:6]}")
    dask_url = pg.table_url(f"public.s3_dask_{uuid.uuid4().hex[:6]}")
    predict(ref, s3_in, local_url, store=store.uri, engine="local", partition_rows=1_000)
    dist = predict(ref, s3_in, dask_url, store=store.uri, engine=dask_engine, partition_rows=1_000)
    assert dist.partitions > 1 and dist.rows_out == ROWS
    assert read_sorted(dask_url).equals(read_sorted(local_url))
    assert read_sorted(dask_url).equals(expected_scores(store, ref, rows))


def test_writer_killed_mid_write_is_retried_and_writes_once(
    pg, store, rows, parquet_in, dask_engine
):
    """Hold a lock on the output so the first partition's COPY blocks inside its transaction,
    kill that backend with pg_terminate_backend, release: the retry must write the rows once."""
    ref = save_classifier(store, rows)
    table = f"killed_{uuid.uuid4().hex[:8]}"
    url = pg.table_url(f"public.{table}")
    # Create the output (and the sink's bookkeeping) with a first run, then append to it.
    predict(
        ref,
        parquet_in,
        url,
        store=store.uri,
        engine="local",
        columns=["prediction"],
        partition_rows=2_000,
    )
    first = read_sorted(url)
    locker = pg.connect()
    locker.autocommit = False
    locker.execute(f"LOCK TABLE public.{table} IN SHARE MODE")  # blocks writers, not readers
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = predict(
                ref,
                parquet_in,
                url,
                store=store.uri,
                engine=dask_engine,
                if_exists="append",
                columns=["prediction"],
                partition_rows=1_000,
                retries=2,
            )
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    try:
        with pg.connect() as watcher:
            deadline = time.monotonic() + 60
            while killed is None and time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'COPY%%' AND pid <> pg_backend_pid() LIMIT 1"
                ).fetchone()
                if row is None:
                    time.sleep(0.05)
                    continue
                assert watcher.execute("SELECT pg_terminate_backend(%s)", [row[0]]).fetchone()[0]
                killed = row[0]
    finally:
        locker.rollback()
        locker.close()
        thread.join(120)
    assert killed is not None, "no blocked COPY showed up"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].rows_out == ROWS
    got = read_sorted(url)
    assert got.num_rows == 2 * ROWS
    ids = got["id"].to_numpy()
    assert (ids[::2] == ids[1::2]).all() and len(set(ids.tolist())) == ROWS  # each id exactly twice
    assert got.take(list(range(0, 2 * ROWS, 2))).equals(first)
