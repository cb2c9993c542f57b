"""The worker image, built and used: ``images/build.py`` (``make image``) builds the Dockerfile
with buildah; two workers started from it score PostgreSQL -> PostgreSQL and S3 -> PostgreSQL
from an ``s3://`` store exactly as in-process scoring does; an image whose scikit-learn differs
from the client's is refused at connect time in one line.

Needs root (buildah, debootstrap; installed with apt-get when missing). Skipped otherwise, but
failed under ``CI=true``, where the image must be tested. The base image is cached in buildah's
storage and the dependency layer in buildah's layer cache, so only the first run on a machine
pays for them (about 90 s + 75 s on a quiet 2-core machine, minutes on a busy one); later builds,
after a change under src/, take 15-25 s.

    .venv/bin/pytest tests/image -m slow
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sklearn

import skfleet
from skfleet.store import ModelStore
from tests.image.workers import (
    drift_note,
    start_image_worker,
    start_scheduler,
    wait_for_workers,
)
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import make_rows, save_classifier, write_parquet_dir
from tests.predict.test_predict import expected_scores

# The first build on a machine bootstraps the base image and installs every dependency.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def rows():
    return make_rows(ROWS)


def aws_env() -> dict[str, str]:
    """What a deployment's environment hands the workers to reach S3 (the test endpoint)."""
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


class ImageCluster:
    """A ``dask scheduler`` on the host's loopback and ``n`` workers from ``image``."""

    def __init__(self, image: str, n: int, log_dir: Path):
        self.image = image
        self.cluster = start_scheduler(log_dir)
        self.workers = []
        try:
            self.workers = [
                start_image_worker(image, self.cluster.address, log_dir, aws_env())
                for _ in range(n)
            ]
            wait_for_workers(self.cluster.address, self.workers)
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> str:
        return self.cluster.address

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.cluster.stop()


@pytest.fixture
def image_cluster(worker_image, tmp_path):
    cluster = ImageCluster(worker_image, 2, tmp_path)
    yield cluster
    cluster.stop()


def skfleet_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed ``skfleet`` command, as a user runs it."""
    return subprocess.run(
        [str(BIN / "skfleet"), *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_image_workers_score_postgres_and_s3_into_postgres(image_cluster, pg, s3, rows, tmp_path):
    store = ModelStore(s3.new_prefix() + "models")
    ref = save_classifier(store, rows)
    parquet_in = write_parquet_dir(tmp_path / "in", rows, files=3, row_group_size=500)
    pg_in = pg.table_url(f"public.image_rows_{uuid.uuid4().hex[:8]}")
    skfleet.copy(parquet_in, pg_in, engine="local")
    s3_in = s3.new_prefix() + "rows.parquet/"
    skfleet.copy(parquet_in, s3_in, engine="local", partition_rows=1_000)
    expected = expected_scores(store, ref, rows)

    for name, source in (("postgres", pg_in), ("s3", s3_in)):
        out = pg.table_url(f"public.image_scores_{name}_{uuid.uuid4().hex[:6]}")
        done = skfleet_cli(
            "predict",
            ref,
            source,
            "--out",
            out,
            "--store",
            store.uri,
            "--engine",
            image_cluster.address,
            "--partition-rows",
            "1000",
            "--json",
        )
        assert done.returncode == 0, f"{name}: {done.stderr}{drift_note(image_cluster.image)}"
        summary = json.loads(done.stdout)
        assert summary["rows_out"] == ROWS and summary["partitions"] > 1, summary
        assert read_sorted(out).equals(expected), f"{name}{drift_note(image_cluster.image)}"

    # The tasks ran in the containers: each worker fetched the model from the store itself.
    from distributed import Client

    with Client(image_cluster.address, timeout="20s") as client:
        paths = client.run(lambda: __import__("skfleet").__file__)
    assert len(paths) == 2
    assert all(path.startswith("/usr/local/lib/") for path in paths.values()), paths


def test_image_without_client_pins_fails_in_one_line(skewed_image, tmp_path, rows):
    image, version = skewed_image
    cluster = ImageCluster(image, 1, tmp_path)
    try:
        parquet_in = write_parquet_dir(tmp_path / "in", rows, files=1, row_group_size=500)
        store = ModelStore(str(tmp_path / "models"))
        ref = save_classifier(store, rows)
        out = tmp_path / "scores"
        done = skfleet_cli(
            "predict",
            ref,
            parquet_in,
            "--out",
            str(out),
            "--store",
            store.uri,
            "--engine",
            cluster.address,
        )
    finally:
        cluster.stop()
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and done.stderr.strip().endswith(errors[0]), done.stderr
    assert errors[0].startswith("error: worker tcp://127.0.0.1:"), errors[0]
    assert f"has sklearn {version} but this client has {sklearn.__version__}" in errors[0]
    # Nothing was scored. (An empty output pending --resume may be left behind: the output is
    # opened before the engine connects.)
    assert not list(out.glob("part-*")), sorted(p.name for p in out.iterdir())
