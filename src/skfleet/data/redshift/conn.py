"""Connections to Redshift (psycopg only) and one-line error messages for what goes wrong.

Redshift speaks the PostgreSQL wire protocol, so libpq connects; but it has no ``COPY ... TO
STDOUT`` / ``FROM STDIN``, which is all ADBC's PostgreSQL driver reads and writes with. This
backend therefore uses psycopg for statements and S3 (s3fs, pyarrow) for the rows.

:func:`refuse_redshift` is the hook the PostgreSQL backend calls on each new connection: Redshift
reports ``server_version`` 8.0.2, far below anything the PostgreSQL backend supports, so only such
a server costs one extra ``SELECT version()`` to tell the user to use ``redshift://``.

>>> redshift_message("S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket,CanRetry 1")
'S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket'
"""

from __future__ import annotations

import re

from skfleet.data.postgres.conn import (
    connect_psycopg,
    driver_errors,
    message_of_driver_error,
    sqlstate_of,
    translate,
)
from skfleet.data.postgres.url import PgURL
from skfleet.errors import ConnectionFailedError, SkfleetError, SourceNotFoundError, UsageError

#: Servers below this version cannot be PostgreSQL servers skfleet supports; Redshift says 8.0.2.
_OLD_SERVER = 90000
_NOISE = re.compile(r",(?:Rid|ExtRid|CanRetry) [^,]*")
#: An error that quotes the statement must not carry the CREDENTIALS clause's keys along.
_SECRETS = re.compile(
    r"(CREDENTIALS\s+)'[^']*'|((?:SECRET_ACCESS_KEY|SESSION_TOKEN)\s+)'[^']*'|(token=)[^;'\s]+",
    re.IGNORECASE,
)


def redshift_message(message: str) -> str:
    """Redshift's S3 errors carry request ids and retry hints: keep what a reader needs (and
    never a credential).

    >>> redshift_message("bad: CREDENTIALS 'aws_access_key_id=A;aws_secret_access_key=S;token=T'")
    'bad: CREDENTIALS ***'
    """
    message = _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "***", message)
    return _NOISE.sub("", message)


def connect(target: PgURL, autocommit: bool = True):
    """A psycopg connection to Redshift (errors name the ``redshift://`` URL)."""
    return connect_psycopg(target, autocommit=autocommit)


def is_redshift(conn) -> bool:
    """Whether ``conn``'s server is Redshift (one round trip, only for pre-9.0 servers)."""
    if conn.info.server_version >= _OLD_SERVER:
        return False
    try:
        version = conn.execute("SELECT version()").fetchone()[0]
    except driver_errors():
        return False
    finally:
        if not conn.autocommit:
            conn.rollback()
    return "redshift" in str(version).lower()


def refuse_redshift(conn, target: PgURL) -> None:
    """Called by the PostgreSQL backend on a fresh connection: a Redshift server is refused with
    a pointer to the ``redshift://`` URL (the PostgreSQL backend's COPY and ctid paths cannot work
    there)."""
    if target.url.lower().startswith("redshift://"):
        return  # the Redshift backend's own connection
    if conn.info.server_version >= _OLD_SERVER or not is_redshift(conn):
        return
    conn.close()
    shown = target.display
    head, sep, _ = shown.partition("://")
    pointer = f"redshift://{shown[len(head) + len(sep) :]}" if sep else shown
    pointer += ("&" if "?" in pointer else "?") + "staging=s3://bucket/prefix&iam_role=..."
    raise UsageError(
        f"{shown} is Amazon Redshift, which the postgresql:// backend cannot read or write (no COPY "
        f"to or from the client); use {pointer} instead"
    )


def error_of(exc: BaseException, what: str, display: str) -> SkfleetError:
    """A driver error raised while working on ``what`` as a one-line skfleet error."""
    state = sqlstate_of(exc) or ""
    message = redshift_message(message_of_driver_error(exc))
    if "not authorized to assume IAM Role" in message or "Not authorized to get credentials" in (
        message
    ):
        return ConnectionFailedError(
            f"Redshift refused the IAM role for {what} ({display}): {message}"
        )
    if "S3ServiceException" in message:
        if "NoSuchBucket" in message or "does not exist" in message:
            return SourceNotFoundError(f"{what} in {display}: staging bucket: {message}")
        return ConnectionFailedError(f"{what} in {display}: S3 refused Redshift: {message}")
    if state == "42501":
        return SkfleetError(f"{what} in {display}: {message}")
    if state == "XX000":
        return SkfleetError(f"{what} in {display} failed: {message}")
    return translate(exc, what, display)
