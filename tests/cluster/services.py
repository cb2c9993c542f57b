"""The services of a test bed, each started inside its own host (see :mod:`tests.cluster.hosts`).

PostgreSQL is started by the suite's own :func:`tests.services.postgres.start_postgres`, run on
the database host: the module is copied onto that host's disk first, as one would provision a
machine (the host does not see the checkout). It listens on the host's address with password auth,
and accepts the bed's subnet in ``pg_hba.conf``. moto's S3 server, ``dask scheduler`` and
``dask worker`` are their usual command lines.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.hosts import DISK_MOUNT, Host
from tests.services import postgres as pg_module

SCHEDULER_PORT = 8786
S3_PORT = 9000
#: What the PostgreSQL host runs to start a fresh server with the suite's ``start_postgres``.
_PG_START = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import pgservice
address, subnet = sys.argv[2], sys.argv[3]
service = pgservice.start_postgres(sys.argv[4], {"listen_addresses": f"127.0.0.1,{address}"})
with open(service.data_dir / "pg_hba.conf", "a") as hba:
    hba.write(f"host all all {subnet} scram-sha-256\\n")
service.psql("-c", "select pg_reload_conf()")
print(json.dumps({"port": service.port, "password": service.password}), flush=True)
os._exit(0)  # not sys.exit: start_postgres registered an atexit hook that stops the server
"""
#: What it runs to start the server again on its existing data (after the host was killed).
_PG_RESTART = """
import os, shlex, sys
sys.path.insert(0, sys.argv[1])
import pgservice
base = sys.argv[2]
recorded = shlex.split(open(f"{base}/data/postmaster.opts").read())
options = recorded[recorded.index("-D") + 2 :]  # the port, socket folder and -c settings
pgservice._run(pgservice._service_user(), [
    str(pgservice.pgserver_bin_dir() / "pg_ctl"), "start", "-D", f"{base}/data", "-w",
    "-t", "60", "-l", f"{base}/server.log", "-o", shlex.join(options),
])
os._exit(0)
"""


def wait_for_port(host: Host, address: str, port: int, timeout: float = 60) -> None:
    """Wait until ``address:port`` accepts connections, as seen from ``host``."""
    code = (
        "import socket, sys, time\n"
        "deadline = time.monotonic() + float(sys.argv[3])\n"
        "while True:\n"
        "    try:\n"
        "        socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close(); break\n"
        "    except OSError:\n"
        "        if time.monotonic() > deadline: sys.exit(f'{sys.argv[1]}:{sys.argv[2]} closed')\n"
        "        time.sleep(0.1)\n"
    )
    host.run(["python", "-c", code, address, str(port), str(timeout)], timeout=timeout + 30)


@dataclass
class BedPostgres:
    """The bed's PostgreSQL server, as every bed host reaches it."""

    host: Host
    hostname: str
    service: pg_module.PostgresService

    @property
    def base(self) -> str:
        return f"{DISK_MOUNT}/pg"

    def url(self, table: str | None = None, **query: str) -> str:
        """``postgresql://postgres:PASSWORD@<hostname>:PORT/postgres[?table=...]``."""
        if table is not None:
            query = {"table": table, **query}
        return self.service.url(**query)

    def restart(self) -> None:
        """Start the server again on its data folder, in a host that was killed and rebooted."""
        # The kill left the server's lock file behind; pg_ctl would take its pid, reused in the
        # host's new PID namespace, for a server still running.
        (self.host.disk / "pg" / "data" / "postmaster.pid").unlink(missing_ok=True)
        self.host.run(["python", "-c", _PG_RESTART, f"{DISK_MOUNT}/provision", self.base])


def start_postgres(host: Host, hostname: str, subnet: str) -> BedPostgres:
    """Initialise and start PostgreSQL on ``host`` with the suite's ``start_postgres``."""
    provision = host.disk / "provision"
    provision.mkdir(exist_ok=True)
    shutil.copy(pg_module.__file__, provision / "pgservice.py")
    bin_dir = pg_module.pgserver_bin_dir()
    run_as = pg_module._service_user()
    if run_as is not None:
        # The host sees the environment read-only: fix permissions here, before it starts.
        pg_module._make_traversable(bin_dir.parent)
        pg_module._make_readable(bin_dir.parent)
    args = [f"{DISK_MOUNT}/provision", host.address, subnet, f"{DISK_MOUNT}/pg"]
    done = host.run(["python", "-c", _PG_START, *args], timeout=180)
    started = json.loads(done.stdout.strip().splitlines()[-1])
    service = pg_module.PostgresService(
        hostname,
        started["port"],
        started["password"],
        bin_dir,
        host.disk / "pg" / "data",
        host.disk / "pg" / "sock",
    )
    service._stopped = True  # it dies with its host; never pg_ctl it from outside the host
    return BedPostgres(host, hostname, service)


def start_s3(host: Host, hostname: str, bucket: str, port: int = S3_PORT) -> str:
    """moto's S3 server on ``host``, with ``bucket`` created; returns the endpoint URL."""
    host.spawn(["python", "-m", "moto.server", "-H", host.address, "-p", str(port)], log="s3")
    wait_for_port(host, host.address, port)
    endpoint = f"http://{hostname}:{port}"
    code = (
        "import boto3, sys\n"
        "boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])\n"
    )
    host.run(["python", "-c", code, endpoint, bucket])
    return endpoint


def scheduler_command(host: Host, port: int = SCHEDULER_PORT) -> list[str]:
    """``dask scheduler`` listening on the host's address (the command docs/deploy.md shows)."""
    return ["dask", "scheduler", "--host", host.address, "--port", str(port), "--no-dashboard"]


#: The scheduler runs without the Active Memory Manager's ReduceReplicas policy, as dask:local
#: does (a training table shared by many fits keeps its copies on the workers); docs/deploy.md
#: shows this command.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__POLICIES": "[]"}


def start_scheduler(host: Host, port: int = SCHEDULER_PORT) -> None:
    host.spawn(scheduler_command(host, port), log="scheduler", env=SCHEDULER_ENV)
    wait_for_port(host, host.address, port)


def worker_command(host: Host, scheduler: str) -> list[str]:
    """One single-threaded ``dask worker`` process (the command docs/deploy.md shows)."""
    return ["dask", "worker", scheduler, "--host", host.address, "--nworkers", "1"] + [
        "--nthreads",
        "1",
        "--no-dashboard",
    ]


def start_worker(host: Host, scheduler: str) -> None:
    host.spawn(worker_command(host, scheduler), log="worker")


def wait_for_workers(client: Host, scheduler: str, n: int, timeout: float = 90) -> None:
    """Wait, from the client host, until ``n`` workers are connected to ``scheduler``."""
    code = (
        "import sys, time\n"
        "from distributed import Client\n"
        "with Client(sys.argv[1], timeout='30s') as c:\n"
        "    c.wait_for_workers(int(sys.argv[2]), timeout=float(sys.argv[3]))\n"
    )
    client.run(["python", "-c", code, scheduler, str(n), str(timeout)], timeout=timeout + 60)


def log_tail(host: Host, name: str, chars: int = 3000) -> str:
    path = Path(host.log_dir / f"{name}.log")
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
