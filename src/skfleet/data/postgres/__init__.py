"""PostgreSQL tables and queries as skfleet sources and sinks.

``postgresql://[user[:password]@][host][:port]/db?table=schema.name`` (or ``?query=<SQL>``;
``postgres://`` is the same). The pieces live in small modules:

==========  ===============================================================================
``url``     the URL: skfleet's parameters vs libpq's
``types``   PostgreSQL <-> Arrow types
``conn``    connections (psycopg for catalog work, ADBC for bulk COPY) and error messages
``plan``    block and key ranges, and their WHERE clauses
``source``  :class:`PostgresSource`: partitions read in one exported snapshot
``ledger``  the sink's bookkeeping tables (runs, ledger) and staging names
``ingest``  the COPY of one partition (with the decimal detour)
``sink``    :class:`PostgresSink`: COPY + ledger row per partition, staged replace
==========  ===============================================================================

>>> source = PostgresBackend.source("postgresql://ana:s3cret@db.example/sales?table=public.orders")
>>> source
PostgresSource('postgresql://ana:***@db.example/sales?table=public.orders')
>>> import pickle; pickle.loads(pickle.dumps(source)).url == source.url
True
"""

from __future__ import annotations

from skfleet.data.postgres.conn import SnapshotGoneError
from skfleet.data.postgres.sink import PostgresSink
from skfleet.data.postgres.source import PostgresSource
from skfleet.data.registry import Backend


class PostgresBackend(Backend):
    """Opens ``postgresql://`` and ``postgres://`` URLs (connections are made lazily)."""

    source_class = PostgresSource
    sink_class = PostgresSink


__all__ = ["PostgresBackend", "PostgresSink", "PostgresSource", "SnapshotGoneError"]
