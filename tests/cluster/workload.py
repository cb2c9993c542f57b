"""What the bed's tests do on the client host: make input rows, train a model, compare outputs.

All of it runs as programs on the client host (``skfleet ...``, ``python -c ...``), since only
the bed's hosts can reach its PostgreSQL and S3; the test process reads their printed JSON.
"""

from __future__ import annotations

import json
import uuid

from tests.cluster.testbed import BUCKET, TestBed

#: The model store every host can read.
S3_STORE = f"s3://{BUCKET}/models"
MODEL = "late"

#: Rows like the predict suite's: a unique id, three floats, a text column, a string label.
_MAKE_ROWS = """
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
n, path, group = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(7)
x = rng.normal(size=(n, 3))
city = rng.choice(["Zürich", "O'Hare", 'say "hi"', "Köln"], size=n)
score = x[:, 0] - 0.5 * x[:, 1] + (city == "Köln") + rng.normal(scale=0.5, size=n)
pq.write_table(pa.table({
    "id": np.arange(n, dtype=np.int64), "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2],
    "city": city.tolist(), "label": np.where(score > 0.3, "late", "on_time").tolist(),
}), path, row_group_size=group)  # row groups: a file source splits into partitions
"""

#: Compare two tables row by row, keyed by id; prints what a test asserts on.
_COMPARE = """
import json, sys
from collections import Counter
from skfleet.data import open_source
def rows(url):
    with open_source(url) as source:
        return source.read_all().to_pylist()
got, want = rows(sys.argv[1]), rows(sys.argv[2])
ids = Counter(r["id"] for r in got)
by_id = {r["id"]: r for r in want}
diff = [r for r in got if by_id.get(r["id"]) != r]
print(json.dumps({
    "rows": len(got), "expected_rows": len(want), "distinct_ids": len(ids),
    "repeated_ids": sum(1 for c in ids.values() if c > 1),
    "missing_ids": len(set(by_id) - set(ids)), "different": len(diff),
    "example": diff[0] if diff else None,
}, default=str))
"""


def new_table(prefix: str) -> str:
    return f"public.{prefix}_{uuid.uuid4().hex[:8]}"


def load_rows(bed: TestBed, n: int, table: str = "public.rows", s3: bool = True) -> dict[str, str]:
    """``n`` rows as a PostgreSQL table and (``s3``) as Parquet files on S3; their data URLs."""
    group = str(max(1, n // 8))
    bed.client.run(["python", "-c", _MAKE_ROWS, str(n), "rows.parquet", group])  # in /tmp/work
    urls = {"pg": bed.pg.url(table)}
    if s3:
        urls["s3"] = f"s3://{BUCKET}/rows-{uuid.uuid4().hex[:6]}/"
    for url in urls.values():
        done = bed.skfleet("copy", "rows.parquet", "--out", url, "--partition-rows", str(n // 4))
        assert done.returncode == 0, done.stderr
    return urls


def train(bed: TestBed, data: str, store: str = S3_STORE, name: str = MODEL) -> str:
    """Train a logistic model on ``data`` into ``store`` (on the client, in-process)."""
    done = bed.skfleet(
        "train", data, "--target", "label", "--model", "logistic", "--key", "id", "--cv", "0",
        "--name", name, "--store", store, "--no-report", "--engine", "local",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return name


def predict_args(model: str, data: str, out: str, *extra: str, store: str = S3_STORE) -> list[str]:
    """``skfleet predict`` arguments (without the engine)."""
    return ["predict", model, data, "--out", out, "--store", store, *extra]


def compare(bed: TestBed, got: str, want: str) -> dict:
    """Row-by-row comparison of table ``got`` with ``want`` (see ``_COMPARE``)."""
    return json.loads(bed.python(_COMPARE, got, want).strip().splitlines()[-1])


def assert_same_rows(bed: TestBed, got: str, want: str, rows: int) -> None:
    """Every row of ``want`` is in ``got`` exactly once, and equal."""
    found = compare(bed, got, want)
    wanted = {
        "rows": rows,
        "expected_rows": rows,
        "distinct_ids": rows,
        "repeated_ids": 0,
        "missing_ids": 0,
        "different": 0,
        "example": None,
    }
    # An explicit message: pytest rewrites assertions in test modules only.
    assert found == wanted, f"{got.split('?')[-1]} vs {want.split('?')[-1]}: {found}"


def tasks_per_worker(bed: TestBed) -> dict[str, int]:
    """How many tasks each connected worker has run since it started (worker host -> count)."""
    code = (
        "import json, socket, sys\n"
        "from distributed import Client\n"
        "def count(dask_worker):\n"
        "    return [socket.gethostname(), dask_worker.state.executed_count]\n"
        "with Client(sys.argv[1], timeout='30s') as c:\n"
        "    print(json.dumps(dict(c.run(count).values())))\n"
    )
    return json.loads(bed.python(code, bed.scheduler_address).strip().splitlines()[-1])


class WriteGate:
    """Holds ``LOCK TABLE <table> IN SHARE MODE`` in an open transaction (a psql session on the
    client): every partition written to ``table`` waits inside its write transaction, ledger row
    inserted, COPY not yet started, until :meth:`open` commits. So a fault can be inflicted
    while every worker is provably in the middle of writing, on a machine of any speed."""

    APP = "skfleet-gate"

    def __init__(self, bed: TestBed, table: str):
        import subprocess

        self.bed, self.table = bed, table
        psql = [str(bed.pg.service.bin_dir / "psql"), "-X", "-q", "-d", bed.pg.url()]
        self.proc = bed.client.spawn(
            psql, log="gate", stdin=subprocess.PIPE, env={"PGAPPNAME": self.APP}
        )
        self.proc.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN SHARE MODE;\n")
        self.proc.stdin.flush()
        wait_until(lambda: self._held(), 30, f"the lock on {table}")

    def _held(self) -> bool:
        rows = self.bed.sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            f"WHERE a.application_name = '{self.APP}' AND l.granted AND l.mode = 'ShareLock' "
            f"AND l.relation = '{self.table}'::regclass"
        )
        return rows == [["1"]]

    def waiting(self) -> list[str]:
        """Addresses of the hosts whose writes wait at the gate."""
        rows = self.bed.sql(
            "SELECT host(client_addr) FROM pg_stat_activity WHERE application_name = 'skfleet' "
            "AND wait_event_type = 'Lock' ORDER BY 1"
        )
        return [r[0] for r in rows]

    def open(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("COMMIT;\n")
                self.proc.stdin.close()
                self.proc.wait(30)
            except (BrokenPipeError, OSError):
                pass  # the database host went down, and the lock with it


def wait_until(condition, timeout: float, what: str, interval: float = 0.2, detail=None):
    """Poll ``condition`` until it returns something true; its value. Fails naming ``what`` (and
    what ``detail()`` says then)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f":\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)
