"""``skfleet predict`` across hosts: the client, the scheduler, two workers, PostgreSQL and S3 each
on a host of its own (see ``tests/cluster/testbed.py``). The workers share no files with the
client, so they read the data, fetch the model and write the scores themselves; the scores equal
the client's in-process scoring of the same rows, row by row."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.cluster.workload import (
    S3_STORE,
    assert_same_rows,
    load_rows,
    new_table,
    predict_args,
    tasks_per_worker,
    train,
)

ROWS = 4_000
PARTITION_ROWS = "500"


@pytest.fixture(scope="module")
def bed_data(testbed):
    """Input rows in PostgreSQL and on S3, and a model trained on them in the S3 store."""
    urls = load_rows(testbed, ROWS)
    model = train(testbed, urls["pg"])
    return urls, model


def _score_both_ways(bed, model, data, out, *, store=S3_STORE):
    """Score ``data`` on the cluster into ``out`` and in-process on the client into a reference
    table; return the reference's URL."""
    before = tasks_per_worker(bed)
    args = predict_args(model, data, out, "--partition-rows", PARTITION_ROWS, store=store)
    done = bed.skfleet(*args, "--engine", bed.scheduler_address)
    assert done.returncode == 0, f"{done.stderr}\n{bed.logs()}"
    after = tasks_per_worker(bed)
    # Both worker hosts scored partitions (the client scored none: it has no worker).
    assert sorted(after) == ["worker1", "worker2"]
    assert all(after[w] > before.get(w, 0) for w in after), (before, after)
    reference = bed.pg.url(new_table("reference"))
    local = predict_args(model, data, reference, "--partition-rows", PARTITION_ROWS, store=store)
    done = bed.skfleet(*local, "--engine", "local")
    assert done.returncode == 0, done.stderr
    return reference


def test_postgres_to_postgres(testbed, bed_data):
    urls, model = bed_data
    out = testbed.pg.url(new_table("scores"))
    reference = _score_both_ways(testbed, model, urls["pg"], out)
    assert_same_rows(testbed, out, reference, ROWS)


def test_s3_to_postgres(testbed, bed_data):
    urls, model = bed_data
    out = testbed.pg.url(new_table("scores"))
    reference = _score_both_ways(testbed, model, urls["s3"], out)
    assert_same_rows(testbed, out, reference, ROWS)


def test_postgres_to_s3(testbed, bed_data):
    urls, model = bed_data
    out = f"{urls['s3'].rstrip('/')}-scores/"
    reference = _score_both_ways(testbed, model, urls["pg"], out)
    assert_same_rows(testbed, out, reference, ROWS)


def test_local_store_on_the_client(testbed, bed_data):
    """A model store in the client's own folder, which no worker can see: the client must ship
    the artifact's bytes to the workers."""
    urls, _ = bed_data
    store = "/tmp/work/models"
    model = train(testbed, urls["pg"], store=store)
    out = testbed.pg.url(new_table("scores"))
    reference = _score_both_ways(testbed, model, urls["pg"], out, store=store)
    assert_same_rows(testbed, out, reference, ROWS)


@pytest.mark.parametrize("case", ["relative output", "127.0.0.1 source"])
def test_urls_the_workers_cannot_reach_are_refused_before_any_task(testbed, bed_data, case):
    """A URL that would mean each worker's own folder or host: one line naming it, exit 2, no
    task run on any worker. (A loopback PostgreSQL URL is refused on the client already, which
    has no server on its own loopback either; the relative path is the case only the workers'
    view catches: the client could write it.)"""
    urls, model = bed_data
    data, out = urls["pg"], testbed.pg.url(new_table("scores"))
    if case == "relative output":
        out = "scores-here/"
    else:
        parts = urlsplit(data)
        userinfo = parts.netloc.rpartition("@")[0]
        data = urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{parts.port}"))
    before = tasks_per_worker(testbed)
    args = predict_args(model, data, out, "--partition-rows", PARTITION_ROWS)
    done = testbed.skfleet(*args, "--engine", testbed.scheduler_address)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    if case == "relative output":
        assert "the output scores-here/ cannot be used by the workers" in errors[0], errors[0]
        assert "relative path" in errors[0], errors[0]
    else:
        assert "127.0.0.1" in errors[0], errors[0]
    assert tasks_per_worker(testbed) == before
