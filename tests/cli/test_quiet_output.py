"""A CLI run on ``dask:local`` with its output redirected (a log file, a scheduler's capture):
no log lines from Dask, a plain progress line at least every 10 s, and a one-line result."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from skfleet.store import ModelStore
from tests.predict.models import make_rows, save_classifier, write_parquet_dir


def _timed_lines(stream, into: list[tuple[float, str]]) -> None:
    for line in iter(stream.readline, ""):
        into.append((time.monotonic(), line.rstrip("\n")))


def test_redirected_run_on_dask_local_is_quiet_and_alive(tmp_path):
    rows = make_rows(40_000)
    source = write_parquet_dir(tmp_path / "in", rows, files=8, row_group_size=5_000)
    store = ModelStore(str(tmp_path / "models"))
    ref = save_classifier(store, rows)
    args = [sys.executable, "-m", "skfleet", "predict", ref, source, "--out", str(tmp_path / "o/"),
            "--store", store.uri, "--engine", "dask:local:2", "--partition-rows", "5000"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[tuple[float, str]] = []
    reader = threading.Thread(target=_timed_lines, args=(proc.stderr, err))
    reader.start()
    out = proc.stdout.read()
    proc.wait(300)
    reader.join()
    lines = [line for _, line in err]
    assert proc.returncode == 0, "\n".join(lines)
    # No log line from Dask (or anyone), no traceback, no bar drawn into a file.
    noisy = [line for line in lines if line.split(" ", 1)[0] in {"INFO", "WARNING", "DEBUG"}]
    assert not noisy and not any("Traceback" in line or "\r" in line for line in lines), lines
    # Plain progress lines, never more than 10 s apart while the run lasted (plus a little for
    # a busy machine), and the last one saying it is done.
    progress = [(t, line) for t, line in err if line.startswith("predict: ")]
    assert progress and "done in" in progress[-1][1] and "8/8 tasks" in progress[-1][1], progress
    # From the first line on (the run's plan), something is said at least every 10 s.
    stamps = [t for t, _ in err]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert max(gaps, default=0) < 10 + 5, list(zip(gaps, lines[1:], strict=False))
    # The result is one line on stdout.
    result = [line for line in out.splitlines() if line.strip()]
    assert len(result) == 1 and result[0].startswith("scored 40,000 rows"), out
