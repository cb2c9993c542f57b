"""A real S3 endpoint for the suite: moto's threaded server on 127.0.0.1.

Fixtures:

* ``s3`` (session): the running service, with ``.endpoint_url``, ``.bucket`` and ``.url(key)``.
  While it runs, ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
  ``AWS_DEFAULT_REGION`` are set in ``os.environ`` so that subprocesses and Dask workers started
  later reach it through the standard AWS credential chain; the environment is restored at the end.
* ``s3_new_prefix`` (function): a fresh ``s3://<bucket>/<uuid>/`` for each test
  (``s3.new_prefix()`` makes more).

The variables are set from the start of the session (``pytest_configure``), for a port reserved
then; the server itself starts on that port when a test first asks for ``s3``.

Outside pytest: ``service = start_s3()`` ... ``service.stop()``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

_ENV = {
    "AWS_ACCESS_KEY_ID": "skfleet-test",
    "AWS_SECRET_ACCESS_KEY": "skfleet-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never wait for the EC2 metadata service when looking for credentials.
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Variables that could point boto elsewhere than the test server; unset while it runs.
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3")


@dataclass
class S3Service:
    """A running moto S3 server and the bucket created on it."""

    endpoint_url: str
    bucket: str
    _server: Any = field(repr=False)
    _saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)

    def url(self, key: str = "") -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def new_prefix(self) -> str:
        """A fresh, empty ``s3://<bucket>/<uuid>/``."""
        return self.url(f"{uuid.uuid4().hex}/")

    def stop(self) -> None:
        """Stop the server and put the environment back as it was."""
        self._server.stop()
        restore_env(self._saved_env)
        self._saved_env = {}


def set_s3_env(endpoint_url: str) -> dict[str, str | None]:
    """Point the standard AWS variables at ``endpoint_url``; returns what to restore."""
    wanted = {**_ENV, "AWS_ENDPOINT_URL": endpoint_url}
    saved = {n: os.environ.get(n) for n in [*wanted, *_CLEARED]}
    for name in _CLEARED:
        os.environ.pop(name, None)
    os.environ.update(wanted)
    return saved


def restore_env(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_s3(bucket: str = "skfleet-test", *, port: int = 0, set_env: bool = True) -> S3Service:
    """Start moto's S3 server on 127.0.0.1 (a free port unless ``port``) and create ``bucket``.

    With ``set_env`` the AWS variables point at it (restored by :meth:`S3Service.stop`).
    """
    from moto.server import ThreadedMotoServer

    # moto logs every request through werkzeug; the suite's output is not the place for that.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    service = S3Service(endpoint, bucket, server)
    if set_env:
        service._saved_env = set_s3_env(endpoint)
    try:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=_ENV["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=bucket)
    except BaseException:
        service.stop()
        raise
    return service


# The AWS variables are set when the suite starts, for a port reserved then, and the server is
# started on that port only when a test asks for it. Worker processes forked earlier in the session
# (a multiprocessing forkserver keeps the environment it started with) thus still reach it.
_reserved: dict[str, object] = {}


def pytest_configure(config) -> None:
    port = free_port()
    _reserved["port"] = port
    _reserved["saved"] = set_s3_env(f"http://127.0.0.1:{port}")


def pytest_unconfigure(config) -> None:
    saved = _reserved.pop("saved", None)
    if saved is not None:
        restore_env(saved)


@pytest.fixture(scope="session")
def s3():
    port = _reserved.get("port")
    if port is None:
        service = start_s3()
    else:
        try:
            service = start_s3(port=port, set_env=False)
        except OSError:
            # Something took the reserved port meanwhile: any free port, announced anew.
            service = start_s3()
        # A test may have changed the variables (monkeypatch restores them, but be sure).
        if os.environ.get("AWS_ENDPOINT_URL") != service.endpoint_url:
            service._saved_env = set_s3_env(service.endpoint_url)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def s3_new_prefix(s3) -> str:
    return s3.new_prefix()
