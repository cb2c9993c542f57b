"""Memory stays flat: peak RSS training on 200k and on 2M rows differs by at most 20%.

Each run is its own process (so neither inherits the other's peak), reading a Parquet file in
partitions of 50,000 rows; the child reports its own peak RSS (``ru_maxrss``). A loop that held
all rows would need well over 100 MB more for 2M rows than for 200k.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.stream.data import write_parquet

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import json, resource, sys
from skfleet.train.stream.api import train_stream
result = train_stream(
    "sgd-logistic", sys.argv[1], target="late", keys=["id"], exclude=["amount"],
    partition_rows=50_000, encoder={"hash": ["city"], "hash_features": 256}, report=False,
    progressive=False, batch_rows=50_000,
)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kib": peak_kib, "learned": result.metadata["rows"]["learned"]}))
"""


def peak_rss(*paths: str) -> list[dict]:
    """Train on each path in its own process (concurrently); their reports, in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for path in paths
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_rows(tmp_path):
    small = write_parquet(tmp_path / "200k.parquet", 200_000, row_group_size=50_000)
    large = write_parquet(tmp_path / "2m.parquet", 2_000_000, row_group_size=50_000)
    a, b = peak_rss(small, large)
    assert b["learned"] > 9 * a["learned"]  # the large run really learned 10x the rows
    growth = b["peak_kib"] / a["peak_kib"] - 1
    assert abs(growth) <= 0.20, (a, b, growth)
