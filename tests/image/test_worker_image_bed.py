"""The worker image on the multi-host test bed (``tests/cluster/testbed.py``): the bed's two
worker hosts run ``dask worker`` inside containers of the image (``buildah run --network host`` in
the host's network namespace) instead of the virtualenv's, and the client host scores PostgreSQL
-> PostgreSQL and S3 -> PostgreSQL from the S3 model store through them. The containers see
neither the client's files nor the checkout; they reach the scheduler, PostgreSQL and S3 by the
bed's host names, as workers of a real deployment would.

    .venv/bin/pytest tests/image/test_worker_image_bed.py -m slow
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cluster.testbed import AWS
from tests.cluster.workload import (
    assert_same_rows,
    load_rows,
    new_table,
    predict_args,
    train,
)
from tests.image.workers import buildah, drift_note

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ROWS = 4_000
PARTITION_ROWS = "500"

#: Run on the client host: per worker, the tasks it ran and where its skfleet is installed.
_WORKERS = """
import json, sys
from distributed import Client
def probe(dask_worker):
    import skfleet
    return [dask_worker.state.executed_count, skfleet.__file__]
with Client(sys.argv[1], timeout="30s") as c:
    print(json.dumps(c.run(probe)))
"""


def workers(bed) -> dict[str, list]:
    """{worker address: [tasks executed, skfleet's path]} as the client host sees them."""
    return json.loads(bed.python(_WORKERS, bed.scheduler_address).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def image_bed(testbed, worker_image):
    """The module's bed with its worker hosts rebooted to run image workers."""
    containers = {}
    try:
        for name in testbed.worker_names:
            host = testbed.host(name)
            host.kill()
            host.boot()
            container = buildah(
                "from", "--pull=never", "--name", f"skfleet-bed-{uuid.uuid4().hex[:8]}",
                worker_image,
            )  # fmt: skip
            containers[name] = container
            env = [arg for key, value in AWS.items() for arg in ("--env", f"{key}={value}")]
            buildah("config", *env, container)
            host.spawn(
                ["buildah", "run", "--network", "host", container, "--"]
                + ["dask", "worker", testbed.scheduler_address, "--nthreads", "1"]
                + ["--no-dashboard", "--death-timeout", "30"],
                log="image-worker",
                env={"BUILDAH_ISOLATION": "chroot"},
            )
        try:
            testbed.wait_for_workers()
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{testbed.logs()}") from None
        yield testbed
    finally:
        for name, container in containers.items():
            testbed.host(name).kill()  # every process of the host, the container's included
            buildah("rm", container)


@pytest.fixture(scope="module")
def bed_data(image_bed):
    urls = load_rows(image_bed, ROWS)
    return urls, train(image_bed, urls["pg"])


@pytest.mark.parametrize("source", ["pg", "s3"])
def test_image_workers_on_bed_hosts(image_bed, bed_data, worker_image, source):
    bed, (urls, model) = image_bed, bed_data
    before = workers(bed)
    out = bed.pg.url(new_table("image_scores"))
    args = predict_args(model, urls[source], out, "--partition-rows", PARTITION_ROWS)
    done = bed.skfleet(*args, "--engine", bed.scheduler_address)
    assert done.returncode == 0, f"{done.stderr}\n{bed.logs()}{drift_note(worker_image)}"
    after = workers(bed)
    # Both worker hosts ran tasks, from the skfleet installed in the image.
    assert sorted(a.split("//")[1].split(":")[0] for a in after) == ["10.250.0.11", "10.250.0.12"]
    assert all(after[a][0] > before[a][0] for a in after), (before, after)
    assert all(path.startswith("/usr/local/lib/") for _, path in after.values()), after
    reference = bed.pg.url(new_table("reference"))
    local = predict_args(model, urls[source], reference, "--partition-rows", PARTITION_ROWS)
    done = bed.skfleet(*local, "--engine", "local")
    assert done.returncode == 0, done.stderr
    assert_same_rows(bed, out, reference, ROWS)
