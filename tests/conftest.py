"""Test fixtures: real services started by the suite itself.

Each service lives in its own plugin module under ``tests/services`` (PostgreSQL from the
``pgserver`` package's binaries, an S3 endpoint from moto's threaded server, Dask clusters).
"""

import os

# Matplotlib must not look for a display in CI.
os.environ.setdefault("MPLBACKEND", "Agg")

pytest_plugins = [
    "tests.services.postgres",
    "tests.services.s3",
    "tests.services.dask",
    "tests.services.redshift",
    "tests.cluster.testbed",
]
