"""Stage one partition as a Parquet object and ``COPY`` it into a table.

A worker writes its partition as ``part-<partition id>-<random>.parquet`` under the run's load
prefix (a retried attempt never overwrites an object another attempt's COPY may be reading), then
loads it with::

    COPY "schema"."table" FROM 's3://.../part-p00001-1f2e3d4c.parquet' IAM_ROLE '...' FORMAT AS PARQUET

A columnar COPY matches the file's columns to the table's *by position* and needs as many of them
as the table has (AWS: "COPY from columnar data formats"), so the object holds the table's
columns in the table's order: columns the data lacks are staged as NULLs. ``REGION`` is not
accepted for a Parquet COPY; the staging bucket must be in the cluster's region.

>>> copy_sql('"public"."scores"', "s3://b/p/part-p0-1.parquet", "IAM_ROLE default")
'COPY "public"."scores" FROM \\'s3://b/p/part-p0-1.parquet\\' IAM_ROLE default FORMAT AS PARQUET'
"""

from __future__ import annotations

import io
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from skfleet.data.redshift.staging import Staging, literal


def copy_sql(table: str, url: str, auth: str) -> str:
    """The COPY of one staged Parquet object into ``table`` (a quoted name)."""
    return f"COPY {table} FROM {literal(url)} {auth} FORMAT AS PARQUET"


def stage_partition(staging: Staging, partition_id: str, table: pa.Table) -> str:
    """Write ``table`` as one Parquet object for the COPY; returns its ``s3://`` URL."""
    out = io.BytesIO()
    # Microsecond timestamps, as Redshift's TIMESTAMP(TZ) holds them.
    pq.write_table(table, out, compression="snappy", coerce_timestamps="us")
    return staging.put(f"part-{partition_id}-{uuid.uuid4().hex[:8]}.parquet", out.getvalue())
