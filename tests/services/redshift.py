"""A stand-in for Amazon Redshift built from real parts, for the suite and the benchmarks.

**This is not Redshift.** Redshift itself was not available where this was written. The stand-in is
the suite's real PostgreSQL (``tests/services/postgres.py``) behind a small PostgreSQL-wire proxy
(``redshift_proxy.py``) plus the suite's S3 endpoint (moto's server, ``tests/services/s3.py``). It
behaves like Redshift where skfleet's Redshift backend depends on it, and nowhere else.

What it reproduces:

* no ``COPY ... TO STDOUT`` / ``COPY (query) TO STDOUT`` / ``COPY ... FROM STDIN`` (Redshift's
  ``syntax error at or near "STDIN"`` ...), so binary-COPY drivers such as ADBC fail as on Redshift;
* no ``ctid`` column, no ``pg_export_snapshot()``, no ``SET TRANSACTION SNAPSHOT``, no
  ``to_regclass()``, no advisory locks, no ``ON CONFLICT`` (Redshift's errors and SQLSTATEs);
* ``server_version`` 8.0.2 at startup and a Redshift ``version()`` string;
* ``UNLOAD ('select ...') TO 's3://...'`` with ``IAM_ROLE 'arn' | default``, ``CREDENTIALS
  'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'`` or ``ACCESS_KEY_ID`` /
  ``SECRET_ACCESS_KEY``, ``FORMAT [AS] PARQUET``, ``MANIFEST [VERBOSE]``, ``PARALLEL ON|OFF``,
  ``MAXFILESIZE`` (5 MB to 6.2 GB), ``ALLOWOVERWRITE``, ``CLEANPATH``, ``REGION``: file names
  ``<prefix><slice>_part_<nn>.parquet`` (4 slices), the ``<prefix>manifest`` JSON with
  ``entries[].url`` and ``entries[].meta.content_length``, "destination not empty" refused;
* ``COPY table [(cols)] FROM 's3://prefix' | 's3://manifest' MANIFEST`` with the same
  authorization and ``FORMAT [AS] PARQUET``: columns matched by position, ``REGION`` refused for
  Parquet as Redshift refuses it, loaded inside the client's transaction;
* IAM roles attached to the "cluster" (``ROLE``, ``LIMITED_ROLE`` only for the ``postgres`` user,
  like ``GRANT ASSUMEROLE``); any other role is refused with Redshift's "not authorized to assume
  IAM Role" error; S3 errors come back as Redshift's ``S3ServiceException:...`` errors;
* privileges are PostgreSQL's own (a user without SELECT cannot UNLOAD a table, without INSERT
  cannot COPY into it): the ``analyst`` user has SELECT on nothing it was not granted.

What it does not reproduce: MPP execution (slices are a split of one result, not data
distribution), sort and distribution keys, Redshift's SQL dialect beyond the refusals above (it
accepts most PostgreSQL 16 SQL that Redshift would reject), ``VARCHAR`` lengths counted in bytes,
non-enforced primary keys (PostgreSQL enforces them), serializable-only isolation and Redshift's
locking, concurrency scaling, WLM queues, IAM and S3 policies themselves (moto checks no
credentials), UNLOAD formats other than Parquet, ``PARTITION BY``, encryption, ``COPY`` from text
formats, Redshift's Parquet type-compatibility checks, and timing of any kind.

Plain use (benchmarks)::

    standin = start_redshift(pg_service, s3_service)
    ... standin.url(table="public.t") ...
    standin.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.services.redshift_bulk import StandInConfig
from tests.services.redshift_proxy import RedshiftProxy

DATABASE = "dev"  # Redshift's default database name
ROLE = "arn:aws:iam::123456789012:role/skfleet-standin"
LIMITED_ROLE = "arn:aws:iam::123456789012:role/skfleet-standin-postgres-only"
ANALYST = "analyst"


@dataclass
class RedshiftStandIn:
    """A running stand-in: the proxy's address, the users, the S3 staging bucket."""

    host: str
    port: int
    user: str
    password: str
    bucket: str
    pg: Any = field(repr=False)
    analyst_password: str = field(default="", repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _proxy: RedshiftProxy | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def staging(self) -> str:
        """A fresh staging prefix ``s3://<bucket>/redshift-staging/<uuid>``."""
        return f"s3://{self.bucket}/redshift-staging/{uuid.uuid4().hex[:12]}"

    def url(
        self,
        *,
        user: str | None = None,
        scheme: str = "redshift",
        staging: str | bool = True,
        iam_role: str | None = ROLE,
        **query: str,
    ) -> str:
        """``redshift://user:password@host:port/dev?...``; ``staging=True`` picks a fresh prefix."""
        user = user or self.user
        password = self.analyst_password if user == ANALYST else self.password
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"
        params = dict(query)
        if scheme == "redshift":
            if staging is True:
                staging = self.staging()
            if staging:
                params["staging"] = staging
            if iam_role and staging:
                params["iam_role"] = iam_role
        tail = f"?{urlencode(params, safe='/,:')}" if params else ""
        return f"{scheme}://{netloc}/{DATABASE}{tail}"

    def connect(self, user: str | None = None):
        """A psycopg connection *through the proxy* (what a Redshift client sees)."""
        import psycopg

        user = user or self.user
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=self.analyst_password if user == ANALYST else self.password,
            dbname=DATABASE,
            autocommit=True,
        )

    def direct(self):
        """A psycopg connection to the PostgreSQL behind the proxy (setup and inspection)."""
        return self.pg.connect(DATABASE)

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._proxy.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None


def start_redshift(pg, s3) -> RedshiftStandIn:
    """Start the proxy in front of ``pg`` (a ``PostgresService``), staging in ``s3``'s bucket."""
    import os

    with pg.connect() as conn:
        if (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
            is None
        ):
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        analyst_password = secrets.token_urlsafe(12)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ANALYST]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(f"{verb} ROLE {ANALYST} LOGIN PASSWORD '{analyst_password}'")
    with pg.connect(DATABASE) as conn:
        conn.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {ANALYST}")
    config = StandInConfig(
        endpoint_url=s3.endpoint_url,
        key_id=os.environ.get("AWS_ACCESS_KEY_ID", "skfleet-test"),
        secret=os.environ.get("AWS_SECRET_ACCESS_KEY", "skfleet-test-secret"),
        roles={ROLE: None, LIMITED_ROLE: {pg.user}},
        default_role=ROLE,
    )
    proxy = RedshiftProxy((pg.host, pg.port), config)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port_box: dict[str, int] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        port_box["port"] = loop.run_until_complete(proxy.start())
        started.set()
        loop.run_forever()
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="redshift-standin", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the Redshift stand-in did not start")
    return RedshiftStandIn(
        "127.0.0.1",
        port_box["port"],
        pg.user,
        pg.password,
        s3.bucket,
        pg,
        analyst_password,
        loop,
        proxy,
        thread,
    )


@pytest.fixture(scope="session")
def redshift(pg, s3):
    """The Redshift stand-in for the whole session."""
    service = start_redshift(pg, s3)
    try:
        yield service
    finally:
        service.stop()


_counter = itertools.count()


@pytest.fixture
def redshift_new_table_url(redshift):
    """A callable giving the ``redshift://`` URL of a fresh, not-yet-existing table (each with its
    own staging prefix)."""

    def new_url(**query: str) -> str:
        name = f"t_{uuid.uuid4().hex[:10]}_{next(_counter)}"
        return redshift.url(table=f"public.{name}", **query)

    return new_url


@pytest.fixture
def conformance_url_redshift(redshift, redshift_new_table_url):
    """The conformance kit's target for ``redshift://`` (``tests/data/test_conformance.py``):
    fresh tables on the stand-in, with what a run may leave behind (staging tables in the
    database, staged objects under the URL's ``staging=`` prefix)."""
    from psycopg import sql

    from skfleet.data.redshift.url import parse_redshift_url
    from skfleet.data.testing import ConformanceTarget

    def parts(url: str):
        target = parse_redshift_url(url)
        return sql.Identifier("public", target.table[1]).as_string(None), target.staging

    def leftovers(url: str) -> list[str]:
        key, staging = parts(url)
        found = []
        with redshift.direct() as conn:
            if conn.execute("SELECT to_regclass('public.skfleet_runs')").fetchone()[0]:
                stages = conn.execute(
                    "SELECT stage FROM skfleet_runs WHERE target = %s AND stage IS NOT NULL",
                    [key],
                ).fetchall()
                found += [
                    s
                    for (s,) in stages
                    if conn.execute("SELECT to_regclass(%s)", [f"public.{s}"]).fetchone()[0]
                ]
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
        found += [f"s3://{p}" for p in fs.find(staging.removeprefix("s3://"))]
        return found

    def plant_foreign(url: str):
        key, _ = parts(url)
        view = f"v_{uuid.uuid4().hex[:10]}"
        with redshift.direct() as conn:
            conn.execute(f"CREATE VIEW {view} AS SELECT id FROM {key}")

        def intact() -> bool:
            with redshift.direct() as conn:
                return conn.execute("SELECT to_regclass(%s)", [view]).fetchone()[0] is not None

        return intact

    return ConformanceTarget(
        redshift_new_table_url, leftovers=leftovers, plant_foreign=plant_foreign
    )
