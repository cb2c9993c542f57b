"""Keep passwords out of everything skfleet prints or stores.

A URL may carry a password (``postgresql://user:secret@host/db``) or a libpq ``password=`` query
parameter. Whatever goes into a log line, an error message, ``model.json`` or a report passes
through :func:`redact_url` or :func:`redact_text` first.

>>> redact_url("postgresql://ana:s3cret@db.example:5432/sales?table=public.orders")
'postgresql://ana:***@db.example:5432/sales?table=public.orders'
>>> redact_url("postgresql:///db?password=hunter2&table=t")
'postgresql:///db?password=***&table=t'
>>> redact_text("could not connect to postgresql://u:pw@h/db: timeout")
'could not connect to postgresql://u:***@h/db: timeout'

A password the user did not percent-encode may hold ``@``, ``:``, ``/`` or ``?``. The user info
ends at the *last* ``@`` of the URL, so all of it is masked (a little too much at worst, such as a
query that quotes an ``@``, but never too little):

>>> redact_url("postgresql://postgres:Qx7@Zz9@/postgres?table=t")
'postgresql://postgres:***@/postgres?table=t'
>>> redact_url("postgresql://postgres:Ab:Cd/Ef99@127.0.0.1:5432/postgres?table=public.t")
'postgresql://postgres:***@127.0.0.1:5432/postgres?table=public.t'
>>> redact_url("postgresql://me@corp.example:pa?ss@db/sales")
'postgresql://me@corp.example:***@db/sales'
>>> redact_url("s3://bucket/a:b/c@d.parquet"), redact_url("postgresql://ana@db:5432/sales")
('s3://bucket/a:b/c@d.parquet', 'postgresql://ana@db:5432/sales')
"""

from __future__ import annotations

import re

MASK = "***"
_SECRET_KEYS = {"password", "passwd", "pwd", "secret", "aws_secret_access_key", "sslpassword"}
# The user name runs to the first ``:`` (it may hold an unencoded ``@``, never a ``/``); the
# password from there to the last ``@`` before the next blank, greedily: libpq and urllib disagree
# about where an unencoded password ends, and masking to the last ``@`` covers both readings.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/\s]*):(?P<pw>\S*)@")
_KEYVALUE = re.compile(
    r"(?P<key>\b(?:"
    + "|".join(sorted(_SECRET_KEYS))
    + r"))(?P<sep>\s*=\s*)(?P<val>'[^']*'|[^\s&;]+)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """Return ``url`` with any password in its user info or query string replaced by ``***``.

    Works on the text rather than re-assembling a parsed URL, so everything else stays byte for
    byte as the user wrote it (``postgresql:///db`` keeps its three slashes).
    """
    return redact_text(url)


def redact_text(text: str) -> str:
    """Mask passwords in free text: URLs with user info and ``password=...`` pairs."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _KEYVALUE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
