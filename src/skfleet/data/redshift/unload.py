"""``UNLOAD`` a table or query to the staging prefix, and read back what it wrote.

One statement per run::

    UNLOAD ('SELECT ...') TO 's3://bucket/prefix/skfleet-unload-<id>/' IAM_ROLE '...'
    FORMAT AS PARQUET PARALLEL ON MANIFEST VERBOSE MAXFILESIZE <n> MB [REGION '...']

Every slice writes its share of the result at once (``PARALLEL ON``); the files are the source's
partitions and the manifest (``entries[].url``, ``entries[].meta.content_length``) is the
authoritative list of them: a file under the prefix that the manifest does not list is not read.
The UNLOAD is the consistent view: it runs as one statement, so every partition comes from the
same state of the table. ``MAXFILESIZE`` is chosen from the rows a task should read (a few
seconds' work) and an estimate of a row's Parquet size, within Redshift's 5 MB to 6.2 GB.

>>> print(unload_sql("SELECT 'a' AS tag", "s3://b/p/u1", "IAM_ROLE default", 16, None))
UNLOAD ('SELECT \\'a\\' AS tag') TO 's3://b/p/u1/' IAM_ROLE default FORMAT AS PARQUET PARALLEL ON MANIFEST VERBOSE MAXFILESIZE 16 MB
>>> max_file_mb(200_000, pa.schema([("id", pa.int64()), ("x", pa.float64())]))
5
>>> max_file_mb(10_000_000, pa.schema([("id", pa.int64()), ("label", pa.string())]))
153
"""

from __future__ import annotations

import json
import math

import pyarrow as pa

from skfleet.data.redshift.staging import Staging, literal
from skfleet.errors import DataError

MIN_MB, MAX_MB = 5, 6200
#: Rough compressed Parquet bytes per value, by type (text: a short label).
_WIDTH = {"bool": 0.2, "int16": 1.0, "int32": 2.0, "date32[day]": 2.0, "string": 8.0}


def max_file_mb(target_rows: int, schema: pa.Schema) -> int:
    """``MAXFILESIZE`` (MB) for files of about ``target_rows`` rows."""
    per_row = sum(
        _WIDTH.get(str(f.type), 8.0 if not pa.types.is_decimal(f.type) else 6.0) for f in schema
    )
    megabytes = math.ceil(target_rows * max(per_row, 1.0) / (1024 * 1024))
    return min(max(megabytes, MIN_MB), MAX_MB)


def unload_sql(select: str, to: str, auth: str, max_mb: int, region: str | None) -> str:
    """The UNLOAD statement writing ``select``'s rows under ``to`` (a prefix URL)."""
    statement = (
        f"UNLOAD ({literal(select)}) TO {literal(to.rstrip('/') + '/')} {auth} "
        f"FORMAT AS PARQUET PARALLEL ON MANIFEST VERBOSE MAXFILESIZE {int(max_mb)} MB"
    )
    if region:
        statement += f" REGION {literal(region)}"
    return statement


def read_manifest(staging: Staging) -> list[tuple[str, int]]:
    """``(url, content_length)`` of every file the UNLOAD under ``staging`` wrote."""
    raw = staging.cat("manifest")
    if raw is None:
        raise DataError(f"the UNLOAD to {staging.url}/ wrote no manifest")
    try:
        entries = json.loads(raw)["entries"]
        return [(e["url"], int(e.get("meta", {}).get("content_length", -1))) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"the manifest of the UNLOAD to {staging.url}/ is not valid: {exc}"
        ) from None
