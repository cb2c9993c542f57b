"""The client's memory does not grow with the table: ``skfleet predict`` in a process of its own,
against a ``dask scheduler`` with two workers (so the scheduler is not in the client), scoring
N and 10N rows; the client's peak RSS (``VmHWM``) may differ by less than the 8 bytes per row
that keeping a key hash per row would cost."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from tests.predict.models import save_regressor, write_parquet_dir
from tests.services.dask import worker_env

SMALL = 100_000
LARGE = 10 * SMALL
PARTITION_ROWS = 50_000

#: Runs the CLI in this child process, then prints the process's peak resident set (kB).
_CLIENT = """
import sys
from skfleet.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    print("PEAK_KB", peak.split()[1], file=sys.stderr)
"""


def table(n: int) -> pa.Table:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3))
    return pa.table(
        {"id": np.arange(n, dtype=np.int64), "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2]}
    )


def client_peak_kb(args: list[str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, *args],
        capture_output=True,
        text=True,
        env=worker_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stderr.splitlines() if x.startswith("PEAK_KB"))
    return int(line.split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_client_peak_memory_does_not_grow_with_rows(tmp_path, store, process_cluster):
    ref = save_regressor(store, table(1_000))
    peaks = {}
    for n in (SMALL, LARGE):
        data = write_parquet_dir(tmp_path / f"in{n}", table(n), files=4, row_group_size=25_000)
        args = ["predict", ref, data, "--out", str(tmp_path / f"out{n}"), "--store", store.uri]
        args += ["--engine", process_cluster.address, "--partition-rows", str(PARTITION_ROWS)]
        peaks[n] = client_peak_kb(args)
    growth_mb = (peaks[LARGE] - peaks[SMALL]) / 1024
    print(f"client peak RSS: {peaks} kB, growth {growth_mb:.1f} MB")
    per_row_mb = (LARGE - SMALL) * 8 / 2**20  # what one key hash per row would take
    assert growth_mb < per_row_mb / 2, (peaks, f"{growth_mb:.1f} MB growth")
