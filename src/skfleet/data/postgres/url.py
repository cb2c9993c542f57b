"""Parse ``postgresql://`` data URLs into what skfleet needs and what libpq needs.

``postgresql://[user[:password]@][host][:port]/db?table=schema.name`` names a table,
``?query=<url-encoded SQL>`` a query; ``key=col`` (or ``key=a,b``) names the columns to split
views and queries by, ``snapshot=false`` turns the exported snapshot off, and ``bookkeeping=``
names the schema of a sink's run records (default ``skfleet``). Every other query
parameter (``sslmode``, ``host=/socket/dir``, ``connect_timeout``, ...) goes to libpq untouched.

>>> u = parse_pg_url("postgres://ana:s3cret@db:5432/sales?table=public.orders&sslmode=require")
>>> u.table, u.query, u.key
(('public', 'orders'), None, ())
>>> u.conninfo
'postgresql://ana:s3cret@db:5432/sales?sslmode=require&connect_timeout=10&application_name=skfleet'
>>> u.relation_label
'public.orders'
>>> parse_pg_url("postgresql:///db?query=select%201%20as%20x&key=x").query
'select 1 as x'
>>> parse_pg_url("postgresql://h/db").table
Traceback (most recent call last):
...
skfleet.errors.UsageError: postgresql://h/db names no table: add ?table=schema.name or ?query=<SQL>

A password holding ``@``, ``/``, ``?`` or ``#`` must be percent-encoded: libpq and urllib would
each read a different user, password and host out of it (and libpq would quote a piece of the
password back as a host or port), so such a URL is refused, masked:

>>> parse_pg_url("postgresql://postgres:Qx7@Zz9@db/postgres?table=t")
Traceback (most recent call last):
...
skfleet.errors.UsageError: postgresql://postgres:***@db/postgres?table=t cannot be read unambiguously: its user name or password holds '@', '/', '?' or '#'; percent-encode them (%40, %2F, %3F, %23)
>>> parse_pg_url("postgresql://postgres:Qx7%40Zz9@db/postgres?table=t").table
(None, 't')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from skfleet.errors import UsageError
from skfleet.util.redact import redact_url

SCHEMES = ("postgresql", "postgres")
#: Query parameters skfleet consumes; everything else is a libpq connection parameter.
OWN_PARAMS = ("table", "query", "key", "snapshot", "bookkeeping")
#: Where a sink keeps its run and partition records (``bookkeeping=`` changes it).
BOOKKEEPING_SCHEMA = "skfleet"
#: Short by default: an unreachable host should fail in seconds, not minutes (libpq waits forever).
DEFAULT_CONNECT_TIMEOUT = "10"
#: NAMEDATALEN - 1: the server truncates longer identifiers without an error.
MAX_IDENTIFIER_BYTES = 63
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class PgURL:
    """A parsed ``postgresql://`` data URL. ``conninfo`` holds the password: never print it."""

    url: str
    conninfo: str
    table: tuple[str | None, str] | None
    query: str | None
    key: tuple[str, ...]
    snapshot: bool
    #: The schema of the sinks' bookkeeping tables (see :mod:`skfleet.data.postgres.ledger`).
    bookkeeping: str = BOOKKEEPING_SCHEMA

    @property
    def display(self) -> str:
        """The URL with the password masked."""
        return redact_url(self.url)

    @property
    def relation_label(self) -> str:
        """How messages name the table (or ``query``)."""
        if self.table is None:
            return "query"
        schema, name = self.table
        return name if schema is None else f"{schema}.{name}"


def split_table(value: str) -> tuple[str | None, str]:
    """``schema.name`` -> ``("schema", "name")``; a name without a dot has no schema.

    Only the first dot separates: ``public.my.table`` is table ``my.table`` in ``public``. Quotes,
    semicolons and spaces are part of the name (it is always quoted as an identifier, never run).

    >>> split_table("public.orders"), split_table('x";drop table y;--')
    (('public', 'orders'), (None, 'x";drop table y;--'))
    >>> split_table("t" * 64)
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: table='tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt': 'tttttttttttttttttttt'... is 64 bytes long; PostgreSQL names hold at most 63
    """
    schema, dot, name = value.partition(".")
    if not dot:
        schema, name = None, value
    elif not schema or not name:
        raise UsageError(f"table={value!r} is not schema.name")
    for part in filter(None, (schema, name)):
        if len(part.encode()) > MAX_IDENTIFIER_BYTES:
            # The server would silently cut it to 63 bytes and read or write another table.
            raise UsageError(
                f"table={value!r}: {part[:20]!r}... is {len(part.encode())} bytes long; "
                f"PostgreSQL names hold at most {MAX_IDENTIFIER_BYTES}"
            )
    return schema, name


#: ``host[:port]``, comma-separated for several hosts; a host may be a bracketed IPv6 address.
_HOSTS = re.compile(r"(?:\[[^\]]*\]|[^:\[\]@,]*)(?::\d*)?(?:,(?:\[[^\]]*\]|[^:\[\]@,]*)(?::\d*)?)*")


def _check_authority(netloc: str, path: str, display: str) -> None:
    """Refuse user info that libpq and urllib would split differently (see the module doc)."""
    hosts = netloc.rpartition("@")[2]
    if netloc.count("@") > 1 or "@" in path or not _HOSTS.fullmatch(hosts):
        raise UsageError(
            f"{display} cannot be read unambiguously: its user name or password holds "
            "'@', '/', '?' or '#'; percent-encode them (%40, %2F, %3F, %23)"
            if "@" in netloc + path or ":" in hosts
            else f"{display} is not a valid URL: {hosts!r} is not host[:port]"
        )


def split_url(url: str, schemes: tuple[str, ...], own_params: tuple[str, ...]):
    """``(display, parts, own, rest)``: the URL as messages show it (no password), its
    :func:`~urllib.parse.urlsplit` parts, skfleet's own query parameters (each at most once) and
    the others in their order, for the driver. The Redshift URL parser starts with this too.

    >>> split_url("postgres://h/db?table=t&sslmode=require", SCHEMES, OWN_PARAMS)[2:]
    ({'table': 't'}, [('sslmode', 'require')])
    >>> split_url("redshift://u:p@ss@h:5439/db?table=t", ("redshift",), OWN_PARAMS)
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: redshift://u:***@h:5439/db?table=t cannot be read unambiguously: its user name or password holds '@', '/', '?' or '#'; percent-encode them (%40, %2F, %3F, %23)
    """
    display = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"{display} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in schemes:
        raise UsageError(f"{display} is not a {schemes[0]}:// URL")
    _check_authority(parts.netloc, parts.path, display)
    own: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in own_params:
            if name in own:
                raise UsageError(f"{display} gives {name}= twice")
            own[name] = value
        else:
            rest.append((name, value))
    return display, parts, own, rest


def parse_pg_url(url: str) -> PgURL:
    """Split a data URL into skfleet's parameters and a libpq connection URI."""
    display, parts, own, libpq = split_url(url, SCHEMES, OWN_PARAMS)
    if "table" in own and "query" in own:
        raise UsageError(f"{display} gives both table= and query=; pick one")
    table = query = None
    if own.get("table"):
        table = split_table(own["table"])
    elif own.get("query", "").strip():
        query = own["query"].strip().rstrip(";").strip()
    else:
        raise UsageError(f"{display} names no table: add ?table=schema.name or ?query=<SQL>")
    key = tuple(k.strip() for k in own.get("key", "").split(",") if k.strip())
    snapshot_text = own.get("snapshot", "true").lower()
    if snapshot_text not in _TRUE | _FALSE:
        raise UsageError(f"{display}: snapshot= must be true or false, not {snapshot_text!r}")
    names = {k for k, _ in libpq}
    if "connect_timeout" not in names:
        libpq.append(("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
    if "application_name" not in names:
        libpq.append(("application_name", "skfleet"))
    conninfo = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(libpq, quote_via=quote, safe="/"), "")
    )
    bookkeeping = own.get("bookkeeping", BOOKKEEPING_SCHEMA).strip()
    if not bookkeeping:
        raise UsageError(f"{display}: bookkeeping= names no schema")
    return PgURL(url, conninfo, table, query, key, snapshot_text in _TRUE, bookkeeping)
