"""A real S3 endpoint for the suite: moto's threaded server on 127.0.0.1.

Fixtures:

* ``s3`` (session): the running service, with ``.endpoint_url``, ``.bucket`` and ``.url(key)``.
  While it runs, ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
  ``AWS_DEFAULT_REGION`` are set in ``os.environ`` so that subprocesses and Dask workers started
  later reach it through the standard AWS credential chain; the environment is restored at the end.
* ``s3_new_prefix`` (function): a fresh ``s3://<bucket>/<uuid>/`` for each call.

Outside pytest: ``service = start_s3()`` ... ``service.stop()``.
"""

from __future__ import annotations

import logging
import os
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
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}


def start_s3(bucket: str = "skfleet-test", *, set_env: bool = True) -> S3Service:
    """Start moto's S3 server on a free port of 127.0.0.1 and create ``bucket``.

    With ``set_env`` the AWS variables point at it (restored by :meth:`S3Service.stop`).
    """
    from moto.server import ThreadedMotoServer

    # moto logs every request through werkzeug; the suite's output is not the place for that.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    service = S3Service(endpoint, bucket, server)
    if set_env:
        wanted = {**_ENV, "AWS_ENDPOINT_URL": endpoint}
        service._saved_env = {n: os.environ.get(n) for n in [*wanted, *_CLEARED]}
        for name in _CLEARED:
            os.environ.pop(name, None)
        os.environ.update(wanted)
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


@pytest.fixture(scope="session")
def s3():
    service = start_s3()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def s3_new_prefix(s3) -> str:
    return s3.new_prefix()
