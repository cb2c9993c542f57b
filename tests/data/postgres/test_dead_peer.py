"""Connections to PostgreSQL give up on a silent peer on both ends (see
``skfleet.data.postgres.conn.DEAD_PEER_LIBPQ``); the multi-host test that needs it is
``tests/cluster/test_faults.py::test_worker_link_cut_mid_write``."""

from __future__ import annotations

from skfleet.data.postgres.conn import adbc_cursor, connect_psycopg
from skfleet.data.postgres.url import parse_pg_url


def test_writing_connections_set_the_servers_side(pg):
    target = parse_pg_url(pg.table_url("public.any"))
    with adbc_cursor(target) as cursor:
        cursor.execute(
            "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_user_timeout')"
        )
        assert cursor.fetchall() == [("10", "30000")]  # seconds, milliseconds


def test_libpq_side_and_a_url_value_wins(pg):
    target = parse_pg_url(pg.table_url("public.any", keepalives_idle="60"))
    with connect_psycopg(target) as conn:
        # Every libpq option of this connection, with its value.
        values = {o.keyword.decode(): (o.val or b"").decode() for o in conn.pgconn.info}
    assert values["keepalives_idle"] == "60"  # the URL's own value
    assert values["keepalives_interval"] == "5" and values["tcp_user_timeout"] == "30000"
