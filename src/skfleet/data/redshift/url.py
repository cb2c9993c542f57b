"""Parse ``redshift://`` data URLs: what skfleet needs, what libpq needs, where to stage on S3.

``redshift://user[:password]@host[:5439]/db?table=schema.name`` names a table (``?query=<SQL>`` a
query). Staging options: ``staging=s3://bucket/prefix`` (required by the bulk paths: UNLOAD for
reading, COPY for writing), ``iam_role=arn:aws:iam::<account>:role/<name>`` (or ``default``; without
it the credentials of the standard AWS chain are handed to Redshift), ``region=`` (of the staging
bucket, for UNLOAD), ``keep_staging=true`` (leave the staged files for inspection), and ``key=col``
(key ranges for the slow path without ``staging=``). Every other parameter (``sslmode``,
``connect_timeout``, ...) goes to libpq.

Redshift identifiers are at most 127 bytes; skfleet quotes every identifier, and refuses names
holding quotes or semicolons outright (they also end up inside the UNLOAD's quoted query).

>>> u = parse_redshift_url("redshift://ana:s3cret@wh.example:5439/dev?table=sales.orders"
...                        "&staging=s3://bucket/tmp/&iam_role=arn:aws:iam::123456789012:role/load")
>>> u.table, u.staging, u.iam_role, u.pg.conninfo.split("?")[0]
(('sales', 'orders'), 's3://bucket/tmp', 'arn:aws:iam::123456789012:role/load', 'postgresql://ana:s3cret@wh.example:5439/dev')
>>> u.display
'redshift://ana:***@wh.example:5439/dev?table=sales.orders&staging=s3://bucket/tmp/&iam_role=arn:aws:iam::123456789012:role/load'
>>> parse_redshift_url('redshift://h/dev?table=x";drop table y')
Traceback (most recent call last):
...
skfleet.errors.UsageError: table= 'x";drop table y' in redshift://h/dev?table=x";drop table y holds a quote or a semicolon, which skfleet does not send to Redshift
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlunsplit

from skfleet.data.postgres.url import PgURL, parse_pg_url, split_url
from skfleet.errors import UsageError
from skfleet.util.redact import redact_url

SCHEME = "redshift"
DEFAULT_PORT = 5439
#: Query parameters the Redshift backend consumes itself (the rest goes to libpq).
OWN_PARAMS = ("staging", "iam_role", "region", "keep_staging")
MAX_IDENTIFIER_BYTES = 127
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class RedshiftURL:
    """A parsed ``redshift://`` URL. ``pg.conninfo`` holds the password: never print it."""

    url: str
    pg: PgURL  # the connection (libpq speaks Redshift's wire protocol) and table/query/key
    staging: str | None  # s3://bucket/prefix without a trailing slash
    iam_role: str | None
    region: str | None
    keep_staging: bool

    @property
    def display(self) -> str:
        return redact_url(self.url)

    @property
    def table(self) -> tuple[str | None, str] | None:
        return self.pg.table

    @property
    def query(self) -> str | None:
        return self.pg.query

    @property
    def key(self) -> tuple[str, ...]:
        return self.pg.key

    @property
    def relation_label(self) -> str:
        return self.pg.relation_label


def check_identifier(name: str, what: str, display: str) -> str:
    """Refuse identifiers Redshift cannot hold or skfleet will not quote into SQL text."""
    if any(c in name for c in "\"';\\") or "\0" in name:
        raise UsageError(
            f"{what} {name!r} in {display} holds a quote or a semicolon, which skfleet does not "
            "send to Redshift"
        )
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(
            f"{what} {name[:40]!r}... in {display} is longer than Redshift's "
            f"{MAX_IDENTIFIER_BYTES} bytes"
        )
    return name


def _split_table(value: str, display: str) -> tuple[str | None, str]:
    """``schema.name`` -> ``("schema", "name")`` (the first dot separates), names checked."""
    schema, dot, name = value.partition(".")
    if not dot:
        schema, name = None, value
    elif not schema or not name:
        raise UsageError(f"table={value!r} in {display} is not schema.name")
    check_identifier(name, "table=", display)
    if schema is not None:
        check_identifier(schema, "schema", display)
    return schema, name


def parse_redshift_url(url: str) -> RedshiftURL:
    """Split a ``redshift://`` URL into the connection, the staging options and the table."""
    display, parts, own, rest = split_url(url, (SCHEME,), OWN_PARAMS)
    # table= is parsed here, not by the PostgreSQL URL parser: Redshift's names hold 127 bytes,
    # PostgreSQL's 63.
    table = None
    tables = [value for name, value in rest if name == "table"]
    if tables and tables[0]:
        if len(tables) > 1:
            raise UsageError(f"{display} gives table= twice")
        table = _split_table(tables[0], display)
        rest = [(name, value) for name, value in rest if name != "table"]
        rest.append(("query", "SELECT 1"))  # a stand-in, so that the connection part parses
    netloc = parts.netloc
    if parts.port is None and parts.hostname:
        netloc = f"{netloc}:{DEFAULT_PORT}"
    postgres_form = urlunsplit(
        ("postgresql", netloc, parts.path, urlencode(rest, quote_via=quote, safe="/,:"), "")
    )
    try:
        pg = parse_pg_url(postgres_form)
    except UsageError as exc:
        raise UsageError(str(exc).replace(redact_url(postgres_form), display)) from None
    if not pg.snapshot:
        raise UsageError(f"{display}: snapshot= does not apply to Redshift (UNLOAD is the view)")
    for column in pg.key:
        check_identifier(column, "key column", display)
    staging = own.get("staging") or None
    if staging is not None:
        if not staging.lower().startswith("s3://") or len(staging.rstrip("/")) <= 5:
            raise UsageError(f"staging={staging!r} in {display} must be s3://bucket/prefix")
        if any(c in staging for c in "'\\;"):
            raise UsageError(f"staging={staging!r} in {display} holds a quote or a semicolon")
        staging = staging.rstrip("/")
    role = own.get("iam_role") or None
    if role is not None and role != "default" and not _ROLE.match(role):
        raise UsageError(
            f"iam_role={role!r} in {display} is not an IAM role ARN "
            "(arn:aws:iam::<account>:role/<name>) or 'default'"
        )
    region = own.get("region") or None
    if region is not None and not _REGION.match(region):
        raise UsageError(f"region={region!r} in {display} is not an AWS region name")
    keep = own.get("keep_staging", "false").lower()
    if keep not in _TRUE | _FALSE:
        raise UsageError(f"{display}: keep_staging= must be true or false, not {keep!r}")
    if table is not None:
        if pg.query != "SELECT 1" or any(name == "query" for name, _ in rest[:-1]):
            raise UsageError(f"{display} gives both table= and query=; pick one")
        pg = dataclasses.replace(pg, table=table, query=None)
    pg = dataclasses.replace(pg, url=url)  # messages name the redshift:// URL
    return RedshiftURL(url, pg, staging, role, region, keep in _TRUE)
