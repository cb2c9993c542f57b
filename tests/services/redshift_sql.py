"""The Redshift stand-in's reading of SQL: which statements it refuses, rewrites or runs itself.

Only the statements skfleet's behaviour depends on are recognised (see ``tests/services/redshift.py``
for the list of what the stand-in reproduces and what it does not). ``UNLOAD`` and
``COPY ... FROM 's3://...'`` are parsed into small dataclasses following the AWS documentation of
the two statements: quoting (``\\'`` and ``''`` inside the UNLOAD query), ``IAM_ROLE`` /
``CREDENTIALS`` / ``ACCESS_KEY_ID``, ``FORMAT [AS] PARQUET``, ``MANIFEST [VERBOSE]``,
``PARALLEL``, ``MAXFILESIZE``, ``ALLOWOVERWRITE``, ``CLEANPATH``, ``REGION``.

>>> u = parse_unload("unload ('select * from t where s = \\\\'x\\\\'') to 's3://b/p/' "
...                  "iam_role 'arn:aws:iam::1:role/r' format as parquet manifest maxfilesize 8 mb")
>>> u.query, u.to, u.auth.role, u.manifest, u.maxfilesize
("select * from t where s = 'x'", 's3://b/p/', 'arn:aws:iam::1:role/r', True, 8388608)
>>> c = parse_copy('COPY "public"."sc""ores" (a, "B") FROM \\'s3://b/k.parquet\\' IAM_ROLE default FORMAT PARQUET')
>>> c.table, c.columns, c.source, c.auth.role
('"public"."sc""ores"', ['"a"', '"B"'], 's3://b/k.parquet', 'default')
>>> classify("SELECT ctid FROM t").kind, classify("select version()").text
('refuse', "select 'PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 (Red Hat 3.4.2-6.fc3), Redshift 1.0.80000'::text")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VERSION = (
    "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 "
    "(Red Hat 3.4.2-6.fc3), Redshift 1.0.80000"
)
#: What Redshift reports as ``server_version`` at startup (it is a fork of PostgreSQL 8.0.2).
SERVER_VERSION = "8.0.2"
MB = 1024 * 1024
MIN_FILE, MAX_FILE = 5 * MB, int(6.2 * 1024 * MB)


class StatementError(Exception):
    """A statement Redshift would reject: carries the SQLSTATE and Redshift's message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def syntax_error(near: str) -> StatementError:
    return StatementError("42601", f'syntax error at or near "{near}"')


@dataclass(frozen=True)
class Action:
    """What the proxy does with one statement: ``pass`` (``text`` possibly rewritten), ``refuse``
    (``error``), ``unload`` or ``copy`` (``statement``)."""

    kind: str
    text: str = ""
    error: StatementError | None = None
    statement: object = None


@dataclass
class Auth:
    role: str | None = None  # an ARN or "default"
    key_id: str | None = None
    secret: str | None = None
    token: str | None = None


@dataclass
class Unload:
    query: str
    to: str
    auth: Auth
    format: str = "TEXT"
    manifest: bool = False
    verbose: bool = False
    parallel: bool = True
    maxfilesize: int = MAX_FILE
    allowoverwrite: bool = False
    cleanpath: bool = False
    region: str | None = None
    text_options: list[str] = field(default_factory=list)  # options Parquet refuses


@dataclass
class Copy:
    table: str  # the quoted, possibly schema-qualified name
    columns: list[str] | None
    source: str
    auth: Auth
    format: str = "TEXT"
    manifest: bool = False
    region: str | None = None
    other: list[str] = field(default_factory=list)


# -- tokens ------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s+|--[^\n]*|/\*.*?\*/
    |(?P<str>'(?:[^'\\]|\\.|'')*')
    |(?P<ident>"(?:[^"]|"")*")
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<punct>.)""",
    re.VERBOSE | re.DOTALL,
)


def tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind is None:
            continue
        value = m.group(kind)
        if kind == "str":
            value = _unquote(value[1:-1])
        elif kind == "word":
            value = value
        out.append((kind, value))
    return out


def _unquote(body: str) -> str:
    """Redshift string literals take ``\\'`` and ``''`` for a quote and ``\\\\`` for a backslash."""
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
        elif c == "'" and body[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Cursor:
    def __init__(self, toks: list[tuple[str, str]]):
        self.toks, self.i = toks, 0

    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise syntax_error("end of input")
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() in words:
            self.i += 1
            return True
        return False

    def punct(self, char: str) -> bool:
        tok = self.peek()
        if tok == ("punct", char):
            self.i += 1
            return True
        return False

    def string(self) -> str:
        kind, value = self.next()
        if kind != "str":
            raise syntax_error(value)
        return value

    def done(self) -> bool:
        while self.punct(";"):
            pass
        return self.peek() is None


def _auth_option(cur: _Cursor, auth: Auth) -> bool:
    if cur.word("IAM_ROLE"):
        auth.role = "default" if cur.word("DEFAULT") else cur.string()
    elif cur.word("CREDENTIALS"):
        cur.word("AS")
        for pair in cur.string().split(";"):
            name, _, value = pair.partition("=")
            name = name.strip().lower()
            if name == "aws_iam_role":
                auth.role = value.strip()
            elif name == "aws_access_key_id":
                auth.key_id = value.strip()
            elif name == "aws_secret_access_key":
                auth.secret = value.strip()
            elif name == "token":
                auth.token = value.strip()
    elif cur.word("ACCESS_KEY_ID"):
        auth.key_id = cur.string()
    elif cur.word("SECRET_ACCESS_KEY"):
        auth.secret = cur.string()
    elif cur.word("SESSION_TOKEN"):
        auth.token = cur.string()
    else:
        return False
    return True


def _size(cur: _Cursor) -> int:
    cur.word("AS")
    kind, value = cur.next()
    if kind != "num":
        raise syntax_error(value)
    unit = MB
    if cur.word("GB"):
        unit = 1024 * MB
    else:
        cur.word("MB")
    return int(float(value) * unit)


def parse_unload(text: str) -> Unload:
    cur = _Cursor(tokens(text))
    if not cur.word("UNLOAD") or not cur.punct("("):
        raise syntax_error("UNLOAD")
    query = cur.string()
    if not cur.punct(")") or not cur.word("TO"):
        raise syntax_error(cur.peek()[1] if cur.peek() else "end of input")
    unload = Unload(query=query, to=cur.string(), auth=Auth())
    while not cur.done():
        if _auth_option(cur, unload.auth):
            continue
        if cur.word("FORMAT"):
            cur.word("AS")
            unload.format = cur.next()[1].upper()
        elif cur.word("PARQUET", "CSV", "JSON"):
            unload.format = cur.toks[cur.i - 1][1].upper()
        elif cur.word("MANIFEST"):
            unload.manifest = True
            unload.verbose = cur.word("VERBOSE")
        elif cur.word("PARALLEL"):
            unload.parallel = not cur.word("OFF", "FALSE")
            cur.word("ON", "TRUE")
        elif cur.word("MAXFILESIZE"):
            unload.maxfilesize = _size(cur)
            if not MIN_FILE <= unload.maxfilesize <= MAX_FILE:
                raise StatementError(
                    "XX000", "MAXFILESIZE must be between 5 MB and 6.2 GB (6200 MB)"
                )
        elif cur.word("ROWGROUPSIZE"):
            _size(cur)
        elif cur.word("ALLOWOVERWRITE"):
            unload.allowoverwrite = True
        elif cur.word("CLEANPATH"):
            unload.cleanpath = True
        elif cur.word("REGION"):
            cur.word("AS")
            unload.region = cur.string()
        elif cur.word("ENCRYPTED"):
            cur.word("AUTO")
        elif cur.word("KMS_KEY_ID", "EXTENSION"):
            cur.string()
        elif cur.word("HEADER", "ADDQUOTES", "ESCAPE", "GZIP", "BZIP2", "ZSTD"):
            unload.text_options.append(cur.toks[cur.i - 1][1].upper())
        elif cur.word("DELIMITER", "FIXEDWIDTH", "NULL"):
            unload.text_options.append(cur.toks[cur.i - 1][1].upper())
            cur.word("AS")
            cur.string()
        elif cur.word("PARTITION"):
            raise StatementError("0A000", "the Redshift stand-in does not model PARTITION BY")
        else:
            raise syntax_error(cur.next()[1])
    if unload.allowoverwrite and unload.cleanpath:
        raise StatementError("XX000", "ALLOWOVERWRITE and CLEANPATH cannot be used together")
    return unload


def _identifier(kind: str, value: str) -> str:
    if kind == "ident":
        return value
    if kind == "word":
        return '"' + value.lower() + '"'  # unquoted identifiers fold to lower case
    raise syntax_error(value)


def parse_copy(text: str) -> Copy:
    cur = _Cursor(tokens(text))
    if not cur.word("COPY"):
        raise syntax_error("COPY")
    parts = [_identifier(*cur.next())]
    while cur.punct("."):
        parts.append(_identifier(*cur.next()))
    columns = None
    if cur.punct("("):
        columns = [_identifier(*cur.next())]
        while cur.punct(","):
            columns.append(_identifier(*cur.next()))
        if not cur.punct(")"):
            raise syntax_error(cur.next()[1])
    if not cur.word("FROM"):
        raise syntax_error(cur.next()[1])
    copy = Copy(".".join(parts), columns, cur.string(), Auth())
    while not cur.done():
        if _auth_option(cur, copy.auth):
            continue
        if cur.word("FORMAT"):
            cur.word("AS")
            copy.format = cur.next()[1].upper()
        elif cur.word("PARQUET", "CSV", "JSON", "AVRO", "ORC"):
            copy.format = cur.toks[cur.i - 1][1].upper()
        elif cur.word("MANIFEST"):
            copy.manifest = True
        elif cur.word("REGION"):
            cur.word("AS")
            copy.region = cur.string()
        elif cur.word("STATUPDATE", "COMPUPDATE"):
            copy.other.append(cur.toks[cur.i - 1][1].upper())
            cur.word("ON", "OFF", "TRUE", "FALSE")
        elif cur.word("ACCEPTINVCHARS", "FILLRECORD", "EXPLICIT_IDS", "SERIALIZETOJSON"):
            pass
        else:
            copy.other.append(cur.next()[1].upper())
    return copy


# -- what to do with a statement -------------------------------------------------------------
_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'", re.DOTALL)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_VERSION_CALL = re.compile(r"\b(?:pg_catalog\.)?version\s*\(\s*\)", re.IGNORECASE)
#: Functions Redshift lacks that skfleet's PostgreSQL backend would call.
_MISSING_FUNCTIONS = (
    "pg_export_snapshot",
    "to_regclass",
    "pg_advisory_xact_lock",
    "pg_advisory_lock",
)


def _code_only(text: str) -> str:
    """The statement without comments and string literals (what keyword checks look at)."""
    return _LITERAL.sub("''", _COMMENT.sub(" ", text))


def classify(text: str) -> Action:
    """Decide what the proxy does with the SQL text of one Query or Parse message."""
    code = _code_only(text)
    head = code.lstrip().split(None, 1)[0].upper() if code.strip() else ""
    try:
        if head == "UNLOAD":
            return Action("unload", statement=parse_unload(text))
        if head == "COPY":
            upper = " ".join(code.upper().split())
            if re.search(r"\bFROM STDIN\b", upper):
                raise syntax_error("STDIN")
            if upper.startswith("COPY ("):
                raise syntax_error("(")
            if re.search(r"\bTO\b", upper.split(" FROM ", 1)[0]):
                raise syntax_error("STDOUT" if "STDOUT" in upper else "TO")
            copy = parse_copy(text)
            if not copy.source.lower().startswith("s3://"):
                raise StatementError(
                    "0A000", "the Redshift stand-in loads only from 's3://' (no EMR, SSH, DynamoDB)"
                )
            return Action("copy", statement=copy)
        if head in ("SET", "BEGIN", "START") and re.search(r"\bSNAPSHOT\b", code, re.IGNORECASE):
            raise syntax_error("SNAPSHOT")
        if re.search(r"\bctid\b", code, re.IGNORECASE):
            raise StatementError("42703", 'column "ctid" does not exist')
        for name in _MISSING_FUNCTIONS:
            if re.search(rf"\b{name}\s*\(", code, re.IGNORECASE):
                raise StatementError("42883", f"function {name}() does not exist")
        if re.search(r"\bON\s+CONFLICT\b", code, re.IGNORECASE):
            raise syntax_error("ON")
    except StatementError as exc:
        return Action("refuse", error=exc)
    if _VERSION_CALL.search(code):
        # Rewrite only outside literals: split on them and substitute in the code pieces.
        pieces, last = [], 0
        for m in _LITERAL.finditer(text):
            pieces.append(_VERSION_CALL.sub(f"'{VERSION}'::text", text[last : m.start()]))
            pieces.append(m.group(0))
            last = m.end()
        pieces.append(_VERSION_CALL.sub(f"'{VERSION}'::text", text[last:]))
        return Action("pass", text="".join(pieces))
    return Action("pass", text=text)
