"""The Redshift stand-in's bulk statements: ``UNLOAD`` to S3 and ``COPY ... FROM 's3://'``.

The proxy (``redshift_proxy.py``) runs the inner SELECT of an UNLOAD on the client's own backend
connection (so it sees the client's transaction) and hands the rows here as CSV; this module writes
them to S3 as Redshift does: Parquet files named ``<prefix><slice>_part_<nn>.parquet`` (one or more
per slice with ``PARALLEL ON``, ``<prefix>000.parquet``... with ``PARALLEL OFF``), none larger than
``MAXFILESIZE``, and with ``MANIFEST`` a ``<prefix>manifest`` JSON file listing
``entries[].url`` and ``entries[].meta.content_length`` (``VERBOSE`` adds ``record_count``, the
schema and the author). For COPY it lists and reads the Parquet objects (a prefix or a manifest)
and turns them into CSV that the proxy streams into the target table on the client's connection.

Credentials: ``IAM_ROLE`` must be one of the roles "attached" to the stand-in (``StandInConfig.
roles``), optionally limited to some users (like ``GRANT ASSUMEROLE``); the stand-in then uses its
own S3 credentials. ``CREDENTIALS 'aws_access_key_id=...;aws_secret_access_key=...'`` and
``ACCESS_KEY_ID``/``SECRET_ACCESS_KEY`` are passed to S3 as given.
"""

from __future__ import annotations

import io
import json
import math
import threading
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.services.redshift_sql import Auth, Copy, StatementError, Unload

UTC_US = pa.timestamp("us", tz="UTC")


@dataclass
class StandInConfig:
    """How the stand-in reaches S3 and which IAM roles are attached to the "cluster"."""

    endpoint_url: str
    key_id: str
    secret: str
    region: str = "us-east-1"
    #: role ARN -> users allowed to assume it (None: every user).
    roles: dict[str, set[str] | None] = field(default_factory=dict)
    default_role: str | None = None
    slices: int = 4
    account: str = "123456789012"
    cluster: str = "skfleet-standin"


# -- types -------------------------------------------------------------------------------------
def arrow_type(oid: int, typmod: int) -> pa.DataType:
    """The Parquet (Arrow) type Redshift's UNLOAD writes for a column of type ``oid``."""
    if oid == 1700:
        if typmod >= 4:
            precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
            return pa.decimal128(precision, scale)
        return pa.float64()  # Redshift has no unconstrained NUMERIC; not modelled
    return {
        16: pa.bool_(),
        20: pa.int64(),
        21: pa.int16(),
        23: pa.int32(),
        700: pa.float32(),
        701: pa.float64(),
        1082: pa.date32(),
        1114: pa.timestamp("us"),
        1184: UTC_US,
    }.get(oid, pa.string())


def select_expression(name: str, oid: int) -> str:
    """How the proxy selects a column so that its CSV text does not depend on session settings
    (TimeZone, DateStyle)."""
    ident = '"' + name.replace('"', '""') + '"'
    if oid == 1184:
        return f"to_char({ident} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    if oid == 1114:
        return f"to_char({ident}, 'YYYY-MM-DD HH24:MI:SS.US')"
    if oid == 1082:
        return f"to_char({ident}, 'YYYY-MM-DD')"
    if oid in (16, 20, 21, 23, 700, 701, 1700):
        return ident
    return f"{ident}::text"


def csv_to_table(data: bytes, names: list[str], types: list[pa.DataType]) -> pa.Table:
    """Rows the server sent as CSV (``COPY (...) TO STDOUT (FORMAT csv)``) as an Arrow table."""
    read_types = [pa.timestamp("us") if t == UTC_US else t for t in types]
    if not data:
        return pa.schema(list(zip(names, types, strict=True))).empty_table()
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(names))]),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={f"c{i}": t for i, t in enumerate(read_types)},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    arrays = [table.column(i).cast(t) for i, t in enumerate(types)]
    return pa.Table.from_arrays(arrays, names=names)


def table_to_csv(table: pa.Table) -> bytes:
    """An Arrow table as CSV text that ``COPY ... FROM STDIN (FORMAT csv)`` reads back exactly:
    NULL unquoted and empty, every other value quoted."""
    arrays = []
    for column in table.columns:
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            column = pa.array(
                [None if v is None else "\\x" + v.hex() for v in column.to_pylist()], pa.string()
            )
        arrays.append(pc.cast(column, pa.string()))
    text = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    out = io.BytesIO()
    pacsv.write_csv(text, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return out.getvalue()


# -- S3 ----------------------------------------------------------------------------------------
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def split_s3(url: str) -> tuple[str, str]:
    if not url.lower().startswith("s3://"):
        raise StatementError("XX000", f"Invalid S3 location: {url}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def s3_client(config: StandInConfig, auth: Auth, user: str, command: str):
    """A boto3 client with the credentials the statement's authorization gives."""
    import boto3
    from botocore.config import Config

    if auth.role is not None:
        role = config.default_role if auth.role.lower() == "default" else auth.role
        if role is None:
            raise StatementError("XX000", "Default IAM role is not set for the cluster")
        allowed = config.roles.get(role, ())
        if role not in config.roles or (allowed is not None and user not in allowed):
            raise StatementError(
                "XX000",
                f"User arn:aws:redshift:{config.region}:{config.account}:dbuser:{config.cluster}/"
                f"{user} is not authorized to assume IAM Role {role}",
            )
        key_id, secret, token = config.key_id, config.secret, None
    elif auth.key_id and auth.secret:
        key_id, secret, token = auth.key_id, auth.secret, auth.token
    else:
        raise StatementError(
            "XX000", f"Invalid credentials. Must be of the format: credentials for {command}"
        )
    key = (key_id, secret, token)
    with _clients_lock:  # a client costs a good part of a second to build: one per identity
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = boto3.client(
                "s3",
                endpoint_url=config.endpoint_url,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                aws_session_token=token,
                region_name=config.region,
                config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
            )
    return client


def _s3_error(exc: BaseException) -> StatementError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = error.get("Message") or code
        return StatementError(
            "XX000", f"S3ServiceException:{message},Status {status},Error {code},CanRetry 1"
        )
    return StatementError("XX000", f"S3ServiceException:{type(exc).__name__}: {exc}")


def _listing(client, bucket: str, prefix: str) -> list[dict]:
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Contents", []))
    return found


# -- UNLOAD ------------------------------------------------------------------------------------
def _parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="snappy")
    return out.getvalue()


def _files_of(table: pa.Table, maxfilesize: int) -> list[bytes]:
    """One slice's rows as Parquet files of at most ``maxfilesize`` bytes."""
    if table.num_rows == 0:
        return []
    whole = _parquet_bytes(table)
    if len(whole) <= maxfilesize:
        return [whole]
    pieces = math.ceil(len(whole) / maxfilesize) + 1  # a little under the cap, like Redshift
    step = math.ceil(table.num_rows / pieces)
    files = []
    for offset in range(0, table.num_rows, step):
        files.extend(_files_of(table.slice(offset, step), maxfilesize))
    return files


def check_unload(unload: Unload) -> None:
    if unload.format != "PARQUET":
        raise StatementError(
            "0A000", f"the Redshift stand-in unloads FORMAT PARQUET only, not {unload.format}"
        )
    if unload.text_options:
        raise StatementError(
            "XX000", f"{unload.text_options[0]} is not supported with the PARQUET format"
        )


def run_unload(config: StandInConfig, unload: Unload, table: pa.Table, user: str) -> int:
    """Write ``table`` (the query's rows) where ``unload`` says. Returns the rows unloaded."""
    client = s3_client(config, unload.auth, user, "UNLOAD")
    bucket, prefix = split_s3(unload.to)
    try:
        existing = _listing(client, bucket, prefix)
        if existing and unload.cleanpath:
            for item in existing:
                client.delete_object(Bucket=bucket, Key=item["Key"])
        elif existing and not unload.allowoverwrite:
            raise StatementError(
                "XX000",
                "Specified unload destination on S3 is not empty. Consider using a different "
                "bucket / prefix, manually removing the target files in S3, or using the "
                "ALLOWOVERWRITE option.",
            )
        named: list[tuple[str, bytes, int]] = []
        if unload.parallel:
            n = table.num_rows
            for s in range(config.slices):
                lo, hi = s * n // config.slices, (s + 1) * n // config.slices
                for part, data in enumerate(
                    _files_of(table.slice(lo, hi - lo), unload.maxfilesize)
                ):
                    rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
                    named.append((f"{prefix}{s:04d}_part_{part:02d}.parquet", data, rows))
        else:
            for part, data in enumerate(_files_of(table, unload.maxfilesize)):
                rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
                named.append((f"{prefix}{part:03d}.parquet", data, rows))
        entries = []
        for key, data, rows in named:
            client.put_object(Bucket=bucket, Key=key, Body=data)
            meta = {"content_length": len(data)}
            if unload.verbose:
                meta["record_count"] = rows
            entries.append({"url": f"s3://{bucket}/{key}", "meta": meta})
        if unload.manifest:
            manifest: dict = {"entries": entries}
            if unload.verbose:
                manifest["schema"] = {
                    "elements": [
                        {"name": f.name, "type": {"base": str(f.type)}} for f in table.schema
                    ]
                }
                manifest["meta"] = {
                    "content_length": sum(e["meta"]["content_length"] for e in entries),
                    "record_count": table.num_rows,
                }
                manifest["author"] = {"name": "Amazon Redshift", "version": "1.0.0"}
            client.put_object(
                Bucket=bucket, Key=f"{prefix}manifest", Body=json.dumps(manifest).encode()
            )
    except StatementError:
        raise
    except Exception as exc:  # botocore errors, connection errors
        raise _s3_error(exc) from None
    return table.num_rows


# -- COPY FROM S3 ------------------------------------------------------------------------------
def check_copy(copy: Copy) -> None:
    if copy.format != "PARQUET":
        raise StatementError(
            "0A000", f"the Redshift stand-in loads FORMAT PARQUET only, not {copy.format}"
        )
    if copy.region is not None:
        raise StatementError("XX000", "REGION argument is not supported for PARQUET based COPY")
    if copy.other:
        raise StatementError(
            "XX000", f"{copy.other[0]} argument is not supported for PARQUET based COPY"
        )


def read_copy_files(config: StandInConfig, copy: Copy, user: str) -> list[tuple[str, pa.Table]]:
    """The Parquet objects ``copy`` loads (a prefix, or the entries of a manifest), read."""
    client = s3_client(config, copy.auth, user, "COPY")
    bucket, key = split_s3(copy.source)
    try:
        if copy.manifest:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            try:
                entries = json.loads(body)["entries"]
            except (ValueError, KeyError, TypeError):
                raise StatementError(
                    "XX000", f"Manifest file is not in correct json format: {copy.source}"
                ) from None
            urls = []
            for entry in entries:
                url = entry["url"]
                b, k = split_s3(url)
                try:
                    client.head_object(Bucket=b, Key=k)
                except Exception:
                    if entry.get("mandatory", False):
                        raise StatementError(
                            "XX000", f"Manifest file entry {url} was not found"
                        ) from None
                    continue
                urls.append(url)
        else:
            urls = [
                f"s3://{bucket}/{item['Key']}"
                for item in _listing(client, bucket, key)
                if not item["Key"].endswith("/")
            ]
        if not urls:
            raise StatementError("XX000", f"The specified S3 prefix '{key}' does not exist")
        tables = []
        for url in urls:
            b, k = split_s3(url)
            data = client.get_object(Bucket=b, Key=k)["Body"].read()
            try:
                tables.append((url, pq.read_table(io.BytesIO(data))))
            except (pa.ArrowInvalid, OSError) as exc:
                raise StatementError(
                    "XX000", f"Spectrum Scan Error: {url} is not a Parquet file: {exc}"
                ) from None
    except StatementError:
        raise
    except Exception as exc:
        raise _s3_error(exc) from None
    return tables
