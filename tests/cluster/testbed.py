"""The multi-host test bed: a client, a Dask scheduler, two workers, PostgreSQL and S3, each on a
host of its own (Linux namespaces, see :mod:`tests.cluster.hosts`) that shares nothing with the
others but the installed environment.

Fixtures (a pytest plugin, registered in ``tests/conftest.py``):

* ``testbed`` (module): one bed for a test module whose tests leave it as they found it;
* ``healed_testbed`` (function): the module's bed for a test that breaks things, healed after it
  (links restored, killed hosts rebooted with their service, every worker connected again);
* ``fresh_testbed`` (function): a bed of its own for a test that breaks things.

Both skip with the reason where namespaces cannot be made (not root, no ``ip``), and fail instead
under ``CI=true``, where a skip would hide that the tests never ran. Every process is killed and
every namespace and link removed at teardown, whatever the test did; a bed left behind by a killed
run is removed when the next one starts.

Hosts (``/etc/hosts`` of every host names them all)::

    scheduler 10.250.0.2    dask scheduler on :8786
    db        10.250.0.3    PostgreSQL (password auth), data on the host's disk
    s3        10.250.0.4    moto's S3 server on :9000, bucket "skfleet"
    client    10.250.0.10   runs the skfleet CLI, in its private /tmp/work
    worker1   10.250.0.11   dask worker (1 process, 1 thread)
    worker2   10.250.0.12   dask worker
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster import services
from tests.cluster.hosts import Host, Network, namespaces_unavailable

SUBNET = "10.250.0.0/24"
HOSTS = {
    "scheduler": "10.250.0.2",
    "db": "10.250.0.3",
    "s3": "10.250.0.4",
    "client": "10.250.0.10",
    "worker1": "10.250.0.11",
    "worker2": "10.250.0.12",
}
BUCKET = "skfleet"
#: The S3 credentials moto accepts; every host gets them the standard AWS way.
AWS = {
    "AWS_ACCESS_KEY_ID": "skfleet-testbed",
    "AWS_SECRET_ACCESS_KEY": "skfleet-testbed-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": f"http://s3:{services.S3_PORT}",
}


def host_env() -> dict[str, str]:
    """The whole environment of every bed process (``env -i``: nothing else is inherited)."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/tmp/home",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",  # the environment is read-only in the hosts
        # One BLAS/OpenMP thread per process: Dask supplies the parallelism (as in the image).
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **AWS,
    }


@dataclass
class TestBed:
    """A running bed, and the faults a test can inflict on it."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    network: Network
    pg: services.BedPostgres | None = None
    s3_endpoint: str = ""
    worker_names: list[str] = field(default_factory=list)
    #: What was broken since the last :meth:`heal` (host names; what heal checks is the same).
    faults: set[str] = field(default_factory=set)

    @property
    def scheduler_address(self) -> str:
        return f"tcp://scheduler:{services.SCHEDULER_PORT}"

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    @property
    def client(self) -> Host:
        return self.host("client")

    # -- running things on the client --------------------------------------------------------
    def skfleet(self, *args: str, timeout: float = 180, check: bool = False):
        """``skfleet ARGS`` on the client host, to completion."""
        return self.client.run(["skfleet", *args], timeout=timeout, check=check)

    def spawn_skfleet(self, *args: str, log: str = "skfleet") -> subprocess.Popen:
        """``skfleet ARGS`` on the client host in the background (output in its log)."""
        return self.client.spawn(["skfleet", *args], log=log)

    def python(self, code: str, *args: str, timeout: float = 120) -> str:
        """Run Python ``code`` on the client host; its stdout."""
        return self.client.run(["python", "-c", code, *args], timeout=timeout).stdout

    def sql(self, statement: str, timeout: float = 30) -> list[list[str]]:
        """Rows of ``statement`` (text, tab-separated) through psql on the client host."""
        assert self.pg is not None
        done = self.client.run(
            [str(self.pg.service.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-F", "\t"]
            + ["-v", "ON_ERROR_STOP=1", "-d", self.pg.url(), "-c", statement],
            timeout=timeout,
        )
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def log(self, host: str, name: str) -> str:
        return services.log_tail(self.host(host), name)

    def logs(self) -> str:
        """The tails of every service log, for a failing test's message."""
        parts = []
        for name, host in self.network.hosts.items():
            for path in sorted(host.log_dir.glob("*.log")):
                text = path.read_text(errors="replace")[-1500:]
                parts.append(f"--- {name}/{path.name}\n{text}")
        return "\n".join(parts)

    # -- faults ------------------------------------------------------------------------------
    def kill_host(self, name: str) -> None:
        """SIGKILL every process of host ``name`` at once (it stays down until rebooted)."""
        self.faults.add(name)
        self.host(name).kill()

    def cut(self, name: str) -> None:
        """Take host ``name``'s link down (``ip link set DEV down``); nobody is told."""
        self.faults.add(name)
        self.network.cut(name)

    def restore(self, name: str) -> None:
        self.network.restore(name)

    def restart_scheduler(self) -> None:
        """Kill the scheduler host and start a new, empty scheduler on it."""
        self.faults.add("scheduler")
        host = self.host("scheduler")
        host.kill()
        host.boot()
        services.start_scheduler(host)

    def restart_worker(self, name: str) -> None:
        host = self.host(name)
        if host.pid is not None:
            host.kill()
        host.boot()
        services.start_worker(host, self.scheduler_address)

    def restart_postgres(self, down_seconds: float = 0) -> None:
        """Kill the database host (server and backends at once), and bring it back on its data
        after ``down_seconds`` (crash recovery, as after a power cut)."""
        assert self.pg is not None
        self.faults.add("db")
        host = self.host("db")
        host.kill()
        time.sleep(down_seconds)
        host.boot()
        self.pg.restart()

    def connected_workers(self) -> list[str]:
        """Host names of the workers connected to the scheduler now."""
        code = (
            "import socket, sys\n"
            "from distributed import Client\n"
            "with Client(sys.argv[1], timeout='20s') as c:\n"
            "    print(' '.join(sorted(c.run(socket.gethostname).values())))\n"
        )
        return self.python(code, self.scheduler_address).split()

    def heal(self) -> None:
        """Undo what a test broke: links up, dead hosts rebooted with their service, every
        worker connected again. Costs nothing when nothing was broken."""
        if not self.faults:
            return
        for name in self.network.hosts:
            self.restore(name)
        if not self.host("db").alive:
            self.host("db").boot()
            self.pg.restart()
        if not self.host("scheduler").alive:
            self.restart_scheduler()
        connected = set(self.connected_workers())
        for name in self.worker_names:
            if name not in connected:
                self.restart_worker(name)
        self.wait_for_workers()
        self.faults.clear()

    def wait_for_workers(self, n: int | None = None, timeout: float = 90) -> None:
        n = len(self.worker_names) if n is None else n
        services.wait_for_workers(self.client, self.scheduler_address, n, timeout)

    def destroy(self) -> None:
        self.network.destroy()


def start_testbed(workers: int = 2) -> TestBed:
    """Build and start a bed with ``workers`` worker hosts; :meth:`TestBed.destroy` removes it."""
    names = dict(HOSTS)
    for i in range(3, workers + 1):
        names[f"worker{i}"] = f"10.250.0.{10 + i}"
    network = Network.create(names)
    bed = TestBed(network)
    try:
        env = host_env()
        for name in ("db", "s3", "scheduler", "client"):
            network.start_host(name, names[name], env)
        bed.pg = services.start_postgres(bed.host("db"), "db", SUBNET)
        bed.s3_endpoint = services.start_s3(bed.host("s3"), "s3", BUCKET)
        services.start_scheduler(bed.host("scheduler"))
        for i in range(1, workers + 1):
            name = f"worker{i}"
            services.start_worker(network.start_host(name, names[name], env), bed.scheduler_address)
            bed.worker_names.append(name)
        bed.wait_for_workers()
    except BaseException:
        logs = bed.logs()
        bed.destroy()
        raise RuntimeError(f"the test bed did not start:\n{logs}") from None
    return bed


def _require_namespaces() -> None:
    reason = namespaces_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def testbed():
    """A bed shared by a module's tests (they must not break it)."""
    _require_namespaces()
    bed = start_testbed()
    try:
        yield bed
    finally:
        bed.destroy()


@pytest.fixture
def healed_testbed(testbed):
    """The module's bed, for a test that breaks it: healed afterwards for the next test."""
    yield testbed
    testbed.heal()


@pytest.fixture
def fresh_testbed():
    """A bed for one test, which may kill, cut and restart what it likes."""
    _require_namespaces()
    bed = start_testbed()
    try:
        yield bed
    finally:
        bed.destroy()
