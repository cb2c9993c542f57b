"""A ``skfleet copy`` SIGKILLed mid-run leaves nothing readable, blocks nothing, and --resume
finishes it without writing its committed partitions again."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.data import open_source
from skfleet.errors import SourceNotFoundError

ROWS = 600_000
PARTS = 30


def staged_parts(out: Path) -> dict[str, int]:
    """Parts the run has committed to its staging (it has their receipts), with their inodes."""
    found = {}
    for receipt in glob.glob(str(out / "_staging-*" / "_rows" / "*")):
        name = Path(receipt).name.split("-", 1)[1]
        found[name] = (Path(receipt).parent.parent / f"part-{name}.csv").stat().st_ino
    return found


@pytest.mark.slow
def test_sigkilled_copy_leaves_no_readable_output_and_resumes(tmp_path):
    src = tmp_path / "in.parquet"
    ids = np.arange(ROWS, dtype=np.int64)
    pq.write_table(
        pa.table({"id": ids, "x": ids * 0.5, "tag": (ids % 97).astype(str)}),
        src,
        row_group_size=ROWS // PARTS,
    )
    out = tmp_path / "out.csv"
    # A folder of parts (the trailing /): the test watches the parts appear one by one.
    args = ["copy", str(src), "--out", f"{out}/", "--engine", "local"]
    args += ["--partition-rows", str(ROWS // PARTS)]
    client = subprocess.Popen(
        [sys.executable, "-m", "skfleet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while len(staged_parts(out)) < 3 and client.poll() is None:
            assert time.monotonic() < deadline, "no partition was committed in time"
            time.sleep(0.01)
        client.send_signal(signal.SIGKILL)
        client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == -signal.SIGKILL, "the copy finished before it could be killed"
    before = staged_parts(out)
    assert 3 <= len(before) < PARTS
    (staging,) = glob.glob(str(out / "_staging-*"))
    run_id = Path(staging).name.removeprefix("_staging-")

    # Nothing readable: not an empty table, and `skfleet copy` of it says why in one line.
    assert not (out / "_manifest.json").exists()
    assert not glob.glob(str(out / "part-*"))
    with pytest.raises(SourceNotFoundError, match=f"unfinished run {run_id}"):
        open_source(str(out))
    again = CliRunner().invoke(main, ["copy", str(out), "--out", str(tmp_path / "x.parquet")])
    assert again.exit_code == 2 and f"unfinished run {run_id}" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    done = CliRunner().invoke(main, [*args, "--resume", run_id])
    assert done.exit_code == 0, done.stderr
    got = open_source(str(out)).read_all().sort_by("id")
    assert np.array_equal(got["id"].to_numpy(), ids)  # nothing lost, nothing twice
    # The partitions committed before the kill were moved in, not written again.
    assert {n: (out / f"part-{n}.csv").stat().st_ino for n in before} == before
    assert not glob.glob(str(out / "_staging-*"))


@pytest.mark.slow
def test_sigkilled_copy_into_postgres_leaves_no_table_and_resumes(tmp_path, pg, pg_new_table_url):
    src = tmp_path / "in.parquet"
    ids = np.arange(ROWS, dtype=np.int64)
    pq.write_table(
        pa.table({"id": ids, "x": ids * 0.5, "tag": (ids % 97).astype(str)}),
        src,
        row_group_size=ROWS // PARTS,
    )
    url = pg_new_table_url()
    name = url.rsplit("table=", 1)[1]
    key = '"public"."{}"'.format(name.split(".", 1)[1])
    args = ["copy", str(src), "--out", url, "--engine", "local"]
    args += ["--partition-rows", str(ROWS // PARTS)]

    def ledger() -> tuple[str | None, int]:
        with pg.connect() as conn:
            if conn.execute("SELECT to_regclass('skfleet.skfleet_ledger')").fetchone()[0] is None:
                return None, 0
            row = conn.execute(
                "SELECT max(run_id), count(*) FROM skfleet.skfleet_ledger WHERE target = %s", [key]
            ).fetchone()
            return row[0], row[1]

    client = subprocess.Popen(
        [sys.executable, "-m", "skfleet", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while ledger()[1] < 3 and client.poll() is None:
            assert time.monotonic() < deadline, "no partition was committed in time"
            time.sleep(0.02)
        client.send_signal(signal.SIGKILL)
        client.wait(60)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == -signal.SIGKILL, "the copy finished before it could be killed"
    run_id, committed = ledger()
    assert 3 <= committed < PARTS
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        open_source(url).schema()

    done = CliRunner().invoke(main, [*args, "--resume", run_id])
    assert done.exit_code == 0, done.stderr
    got = open_source(url).read_all(columns=["id"]).sort_by("id")
    assert np.array_equal(got["id"].to_numpy(), ids)
    with pg.connect() as conn:
        stages = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_skfleet\\_stage\\_%%' "
            "AND relname IN (SELECT stage FROM skfleet.skfleet_runs WHERE target = %s)",
            [key],
        ).fetchone()[0]
    assert stages == 0
