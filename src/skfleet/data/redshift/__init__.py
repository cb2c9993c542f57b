"""Amazon Redshift tables and queries as skfleet sources and sinks, through S3.

``redshift://user[:password]@host[:5439]/db?table=schema.name&staging=s3://bucket/prefix``
(``?query=<SQL>`` for a query; ``iam_role=``, ``region=``, ``keep_staging=``, ``key=``). Redshift
has none of the bulk paths the PostgreSQL backend uses (COPY to or from the client, ctid ranges,
exported snapshots); its bulk interfaces are UNLOAD to S3 and COPY from S3, so this backend is the
composition of skfleet's S3 files and a PostgreSQL-style ledger:

==============  ===========================================================================
``url``         the URL: connection, table/query, staging options
``conn``        psycopg connections, Redshift's errors as one line, the ``postgresql://`` hook
``staging``     the run's S3 prefix and the IAM_ROLE / CREDENTIALS clause
``types``       Arrow <-> Redshift column types
``unload``      the UNLOAD statement and its manifest
``copy``        a partition staged as Parquet and its COPY statement
``source``      :class:`RedshiftSource`: one UNLOAD, the files as partitions
``sink``        :class:`RedshiftSink`: COPY + ledger row per partition, staged replace
==============  ===========================================================================

>>> source = RedshiftBackend.source("redshift://ana:s3cret@wh.example/dev?table=public.orders")
>>> source
RedshiftSource('redshift://ana:***@wh.example/dev?table=public.orders')
"""

from __future__ import annotations

from skfleet.data.redshift.sink import RedshiftSink
from skfleet.data.redshift.source import RedshiftSource, SlowReadWarning
from skfleet.data.registry import Backend


class RedshiftBackend(Backend):
    """Opens ``redshift://`` URLs (connections are made lazily)."""

    source_class = RedshiftSource
    sink_class = RedshiftSink


__all__ = ["RedshiftBackend", "RedshiftSink", "RedshiftSource", "SlowReadWarning"]
