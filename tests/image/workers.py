"""Dask workers running inside the worker image, started with ``buildah run``.

A container's filesystem is the image: the workers see none of the client's files, only what the
image installed, and reach PostgreSQL, S3 and the scheduler over the host's network
(``--network host``, so 127.0.0.1 is the host's loopback).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tests.services.dask import BIN, ProcessCluster, free_port, worker_env

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "images" / "build.py"


def load_build_script() -> ModuleType:
    """``images/build.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("skfleet_image_build", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def buildah(*args: str) -> str:
    done = subprocess.run(
        ["buildah", *args],
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args[:3])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


@dataclass
class ImageWorker:
    """One ``dask worker`` in a working container of ``image``."""

    container: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(RuntimeError):
            buildah("rm", self.container)


def start_image_worker(
    image: str, scheduler: str, log_dir: Path, env: dict[str, str] | None = None
) -> ImageWorker:
    """Start ``dask worker SCHEDULER --nthreads 1`` in a new container of ``image``.

    ``env`` is what a deployment's environment would hand the worker (AWS credentials, ...).
    """
    name = f"skfleet-test-worker-{uuid.uuid4().hex[:8]}"
    container = buildah("from", "--pull=never", "--name", name, image)
    config = [arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")]
    if config:
        buildah("config", *config, container)
    log = log_dir / f"{name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                "buildah",
                "run",
                "--network",
                "host",
                container,
                "--",
                "dask",
                "worker",
                scheduler,
                "--nthreads",
                "1",
                "--no-dashboard",
                # A worker left behind by a crashed test run exits on its own.
                "--death-timeout",
                "30",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
            start_new_session=True,
        )
    return ImageWorker(container, process, log)


def wait_for_workers(address: str, workers: list[ImageWorker], timeout: float = 120) -> None:
    """Wait until ``len(workers)`` workers registered; fail with their logs if one exits."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    with Client(address, timeout="20s") as client:
        while len(client.scheduler_info()["workers"]) < len(workers):
            for worker in workers:
                if worker.process.poll() is not None:
                    raise RuntimeError(
                        f"image worker exited ({worker.process.returncode}): "
                        f"{worker.log.read_text()[-3000:]}"
                    )
            if time.monotonic() > deadline:
                logs = "\n".join(w.log.read_text()[-1500:] for w in workers)
                raise RuntimeError(f"image workers did not register in {timeout:.0f} s:\n{logs}")
            time.sleep(0.5)


def start_scheduler(log_dir: Path) -> ProcessCluster:
    """A ``dask scheduler`` on the host's 127.0.0.1 with no workers yet (the containers join it)."""
    port = free_port()
    log = open(log_dir / "scheduler.log", "w")  # noqa: SIM115
    scheduler = subprocess.Popen(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
        + ["--dashboard-address", ":0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=worker_env(),
    )
    cluster = ProcessCluster(f"tcp://127.0.0.1:{port}", scheduler, log_dir=log_dir)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return cluster
        if time.monotonic() > deadline or scheduler.poll() is not None:
            cluster.stop()
            raise RuntimeError(f"dask scheduler did not start; see {log_dir / 'scheduler.log'}")
        time.sleep(0.2)


#: Image name -> :func:`source_digest` of the checkout when the suite built it.
BUILT_FROM: dict[str, str] = {}


def source_digest(root: Path = REPO / "src") -> str:
    """A hash of skfleet's sources: the image holds a copy of them, the client imports them."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def drift_note(image: str) -> str:
    """For a failing test's message: whether the checkout changed after ``image`` was built.

    Both sides report skfleet 0.1.0 then, so the connect-time version check passes, but the
    client pickles tasks and models with code the workers do not have.
    """
    if image in BUILT_FROM and BUILT_FROM[image] != source_digest():
        return f"\nnote: src/ changed after {image} was built: the workers run other code"
    return ""
