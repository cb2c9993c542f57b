"""Dask fixtures: a LocalCluster engine, and a scheduler + workers started as separate processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def worker_env() -> dict[str, str]:
    """Scheduler and workers import test helper modules too (``tests.engine.tasks``): put the repo on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ProcessCluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, started by the test suite."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    log_dir: Path | None = None

    def add_worker(self) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                str(BIN / "dask"),
                "worker",
                self.address,
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--death-timeout",
                "30",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=worker_env(),
        )
        self.workers.append(proc)
        return proc

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker's whole process group (the nanny and its worker process)."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(10)

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)


def start_process_cluster(n_workers: int, log_dir: Path) -> ProcessCluster:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(log_dir / "scheduler.log", "w")  # noqa: SIM115
    scheduler = subprocess.Popen(
        [
            str(BIN / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=worker_env(),
    )
    cluster = ProcessCluster(address, scheduler, log_dir=log_dir)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() > deadline or scheduler.poll() is not None:
            cluster.stop()
            raise RuntimeError(f"dask scheduler did not start; see {log_dir / 'scheduler.log'}")
        time.sleep(0.2)
    for _ in range(n_workers):
        cluster.add_worker()
    cluster.wait_for_workers(n_workers)
    return cluster


@pytest.fixture(scope="session")
def dask_engine():
    """A two-worker LocalCluster, shared by the session."""
    from skfleet.engine.dask import DaskEngine

    engine = DaskEngine(None, n_workers=2)
    yield engine
    engine.close()


@pytest.fixture
def process_cluster(tmp_path):
    """A fresh ``dask scheduler`` with two ``dask worker`` processes, for one test."""
    cluster = start_process_cluster(2, tmp_path)
    yield cluster
    cluster.stop()
