"""A real PostgreSQL server for the test suite and the benchmarks.

The server binaries come from the ``pgserver`` wheel (``pgserver/pginstall/bin``); we only use its
files, not its Python API, so that we control the port, password auth and the data directory.
PostgreSQL refuses to run as root, so under root (CI containers) the server runs as an unprivileged
system user (``skfleet``, created with ``useradd`` if missing, else ``nobody``) via
``subprocess.run(user=...)``, the same approach ``pgserver`` itself takes.

Plain use (benchmarks)::

    with start_postgres(tempfile.mkdtemp()) as pg:
        print(pg.url(table="t"))

pytest use: the session fixture ``pg`` and the function fixture ``pg_new_table_url``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import itertools
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

SUPERUSER = "postgres"
_RUN_AS = "skfleet"


def pgserver_bin_dir() -> Path:
    """The ``bin`` folder of the PostgreSQL build shipped in the ``pgserver`` wheel."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package is not installed: pip install pgserver")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise RuntimeError(f"no postgres binary under {bin_dir}")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_user() -> pwd.struct_passwd | None:
    """None when we are not root; else the unprivileged user the server runs as."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(_RUN_AS)
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _RUN_AS],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(_RUN_AS)
    except (OSError, subprocess.CalledProcessError, KeyError):
        return pwd.getpwnam("nobody")


def _make_traversable(path: Path) -> None:
    """Let the service user reach ``path``: add o+x to it and to every parent lacking it.

    Only called as root; most systems already allow this, CI images with 0700 homes do not.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _make_readable(tree: Path) -> None:
    """Let the service user read the PostgreSQL install (only needed if pip ran with umask 077)."""
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode
        wanted = mode | stat.S_IROTH
        if path.is_dir() or mode & stat.S_IXUSR:
            wanted |= stat.S_IXOTH
        if wanted != mode and not path.is_symlink():
            path.chmod(wanted)


@dataclass
class PostgresService:
    """A running server: where it listens, how to log in, how to stop it."""

    host: str
    port: int
    password: str
    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    user: str = SUPERUSER
    _run_as: pwd.struct_passwd | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def url(self, database: str = "postgres", **query: str) -> str:
        """A full ``postgresql://user:password@host:port/db?...`` URL."""
        netloc = (
            f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}"
        )
        tail = f"?{urlencode(query, safe='/,:')}" if query else ""
        return f"postgresql://{netloc}/{database}{tail}"

    def table_url(self, table: str, database: str = "postgres", **query: str) -> str:
        return self.url(database, table=table, **query)

    def connect(self, database: str = "postgres"):
        """A psycopg connection in autocommit mode."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
        )

    def psql(self, *args: str, database: str = "postgres") -> subprocess.CompletedProcess:
        """Run the bundled ``psql`` against this server (password through the environment)."""
        env = {**os.environ, "PGPASSWORD": self.password}
        cmd = [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database, *args]
        return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for mode in ("fast", "immediate"):
            try:
                _run(
                    self,
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "stop",
                        "-D",
                        str(self.data_dir),
                        "-m",
                        mode,
                        "-w",
                    ],
                    timeout=30,
                )
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                continue

    def __enter__(self) -> PostgresService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(service_or_user, cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    run_as = (
        service_or_user._run_as if isinstance(service_or_user, PostgresService) else service_or_user
    )
    kwargs = {}
    if run_as is not None:
        kwargs = {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    # Files, not pipes: pg_ctl's server child inherits the handles and would keep a pipe open.
    with tempfile.TemporaryFile("w+") as out:
        try:
            return subprocess.run(
                cmd,
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout,
                text=True,
                **kwargs,
            )
        except subprocess.CalledProcessError as exc:
            out.seek(0)
            exc.add_note(out.read()[-4000:])
            raise


def start_postgres(
    tmpdir: str | os.PathLike, settings: dict[str, str] | None = None
) -> PostgresService:
    """Initialise a data directory under ``tmpdir`` and start a server on 127.0.0.1:<free port>.

    Password auth (scram-sha-256) for every connection, TCP and socket alike. ``fsync`` is off:
    this server holds throwaway test data only.
    """
    bin_dir = pgserver_bin_dir()
    base = Path(tmpdir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    run_as = _service_user()
    data_dir, socket_dir = base / "data", base / "sock"
    socket_dir.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(12) + "#@:/%"
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if run_as is not None:
        _make_traversable(bin_dir.parent)
        if not (bin_dir / "postgres").stat().st_mode & stat.S_IXOTH:
            _make_readable(bin_dir.parent)
        _make_traversable(base)
        for path in (base, socket_dir, pwfile):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    try:
        _run(
            run_as,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
    finally:
        pwfile.unlink()
    options = {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        "shared_buffers": "256MB",
        "max_wal_size": "4GB",
        "unix_socket_permissions": "0777",
        **(settings or {}),
    }
    last_error: Exception | None = None
    for _ in range(5):
        port = _free_port()
        opts = f"-p {port} -k {socket_dir} " + " ".join(f"-c {k}={v}" for k, v in options.items())
        service = PostgresService("127.0.0.1", port, password, bin_dir, data_dir, socket_dir)
        service._run_as = run_as
        try:
            _run(
                run_as,
                [
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "-D",
                    str(data_dir),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(base / "server.log"),
                    "-o",
                    opts,
                ],
            )
            atexit.register(service.stop)  # a safety net; stop() is idempotent
            return service
        except subprocess.CalledProcessError as exc:  # most likely the port was taken meanwhile
            last_error = exc
            time.sleep(0.2)
    raise RuntimeError(f"could not start PostgreSQL under {base}") from last_error


@pytest.fixture(scope="session")
def pg():
    """A real PostgreSQL server for the whole test session."""
    base = tempfile.mkdtemp(prefix="skfleet-pg-")
    service = start_postgres(base)
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(base, ignore_errors=True)


_counter = itertools.count()


@pytest.fixture
def pg_new_table_url(pg):
    """A callable giving the URL of a fresh, not-yet-existing table each time it is called."""

    def new_url(**query: str) -> str:
        name = f"t_{uuid.uuid4().hex[:10]}_{next(_counter)}"
        return pg.table_url(f"public.{name}", **query)

    return new_url
