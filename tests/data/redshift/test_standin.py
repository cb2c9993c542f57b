"""The Redshift stand-in does what its docstring says (``tests/services/redshift.py``).

**The stand-in is not Redshift**: a real PostgreSQL 16 behind a small wire proxy, with moto's S3.
Redshift itself was not available. These tests pin down the Redshift behaviours the stand-in
reproduces (refused COPY to/from the client, no ctid, no exported snapshots, Redshift's version,
UNLOAD and COPY FROM S3 per the AWS documentation, IAM roles), so that the backend's tests
against it mean something; what it does not reproduce is listed in that docstring and in
docs/redshift.md.
"""

from __future__ import annotations

import json
import re
import uuid

import psycopg
import pyarrow.parquet as pq
import pytest
import s3fs

from tests.services.redshift import ANALYST, LIMITED_ROLE, ROLE


@pytest.fixture
def fs(s3):
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


@pytest.fixture
def table(redshift):
    name = f"standin_{uuid.uuid4().hex[:8]}"
    with redshift.connect() as conn:
        conn.execute(
            f"CREATE TABLE {name} (id BIGINT, label VARCHAR(65535), at TIMESTAMPTZ, "
            "amount DECIMAL(10,2), flag BOOLEAN)"
        )
        conn.execute(
            f"INSERT INTO {name} SELECT g, 'row ' || g, TIMESTAMPTZ '2020-01-01 00:00:00+00' "
            "+ g * INTERVAL '1 second', g / 4.0, g % 2 = 0 FROM generate_series(1, 2000) g"
        )
        conn.execute(f"INSERT INTO {name} VALUES (NULL, '', NULL, NULL, NULL)")
    return name


def test_reports_redshift(redshift):
    with redshift.connect() as conn:
        assert conn.info.server_version == 80002
        assert "Redshift" in conn.execute("SELECT version()").fetchone()[0]
        # Only the call is rewritten, not a literal that happens to say version().
        assert conn.execute("SELECT 'version()'").fetchone()[0] == "version()"


@pytest.mark.parametrize(
    ("statement", "sqlstate", "message"),
    [
        ("SELECT ctid FROM pg_class LIMIT 1", "42703", 'column "ctid" does not exist'),
        ("SELECT pg_export_snapshot()", "42883", "pg_export_snapshot() does not exist"),
        ("SELECT to_regclass('pg_class')", "42883", "to_regclass() does not exist"),
        ("COPY pg_class TO STDOUT", "42601", 'syntax error at or near "STDOUT"'),
        ("COPY (SELECT 1) TO STDOUT", "42601", 'syntax error at or near "("'),
        ("COPY t FROM STDIN", "42601", 'syntax error at or near "STDIN"'),
    ],
)
def test_refuses_what_redshift_refuses(redshift, statement, sqlstate, message):
    with redshift.connect() as conn:
        with pytest.raises(psycopg.Error, match=re.escape(message)) as caught:
            conn.execute(statement)
        assert caught.value.sqlstate == sqlstate
        # Also through the extended protocol (binary results force Parse/Bind/Execute).
        with pytest.raises(psycopg.Error, match=re.escape(message)):
            conn.cursor(binary=True).execute(statement)
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the session goes on


def test_a_refusal_aborts_the_transaction_like_a_server_error(redshift):
    with redshift.connect() as conn:
        conn.autocommit = False
        with pytest.raises(psycopg.Error, match="ctid"):
            conn.execute("SELECT ctid FROM pg_class")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()


def test_adbc_cannot_write_through_it(redshift):
    """Why the backend exists: ADBC's PostgreSQL driver ingests with COPY FROM STDIN (its reads
    try COPY TO STDOUT first, then fall back to a row-by-row query)."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa

    name = f"adbc_{uuid.uuid4().hex[:8]}"
    with (
        adbc.connect(redshift.url(scheme="postgresql")) as conn,
        conn.cursor() as cur,
        pytest.raises(adbc_driver_manager.Error, match="STDIN"),
    ):
        cur.adbc_ingest(name, pa.table({"x": [1, 2]}), mode="create")


def test_unload_writes_slices_and_a_manifest(redshift, table, fs):
    prefix = redshift.staging() + "/u/venue_"
    with redshift.connect() as conn:
        conn.execute(
            f"UNLOAD ('SELECT * FROM {table} WHERE label <> \\'row 7\\'') TO '{prefix}' "
            f"IAM_ROLE '{ROLE}' FORMAT AS PARQUET PARALLEL ON MANIFEST VERBOSE MAXFILESIZE 5 MB"
        )
    names = sorted(
        p.rsplit("/", 1)[1] for p in fs.ls(prefix.rsplit("/", 1)[0].removeprefix("s3://"))
    )
    assert names == [f"venue_000{i}_part_00.parquet" for i in range(4)] + ["venue_manifest"]
    manifest = json.loads(fs.cat(prefix.removeprefix("s3://") + "manifest"))
    assert [e["url"].rsplit("/", 1)[1] for e in manifest["entries"]] == names[:4]
    for entry in manifest["entries"]:
        assert entry["meta"]["content_length"] == fs.size(entry["url"])
    rows = sum(pq.read_table(fs.open(e["url"])).num_rows for e in manifest["entries"])
    assert rows == manifest["meta"]["record_count"] == 2000  # 2001 minus 'row 7'; NULL <> x is NULL
    first = pq.read_table(fs.open(manifest["entries"][0]["url"]))
    assert str(first.schema.field("at").type) == "timestamp[us, tz=UTC]"
    assert str(first.schema.field("amount").type) == "decimal128(10, 2)"


def test_unload_refuses_a_destination_that_is_not_empty(redshift, table):
    prefix = redshift.staging() + "/u/"
    statement = f"UNLOAD ('SELECT id FROM {table}') TO '{prefix}' IAM_ROLE default FORMAT PARQUET"
    with redshift.connect() as conn:
        conn.execute(statement)
        with pytest.raises(psycopg.Error, match="unload destination on S3 is not empty"):
            conn.execute(statement)
        conn.execute(statement + " ALLOWOVERWRITE")


def test_unload_parallel_off_writes_serially(redshift, table, fs):
    prefix = redshift.staging() + "/serial/"
    with redshift.connect() as conn:
        conn.execute(
            f"UNLOAD ('SELECT id FROM {table}') TO '{prefix}' IAM_ROLE default "
            "FORMAT PARQUET PARALLEL OFF"
        )
    assert [p.rsplit("/", 1)[1] for p in fs.ls(prefix.removeprefix("s3://"))] == ["000.parquet"]


def test_iam_roles_and_users(redshift, table):
    prefix = redshift.staging() + "/roles/"
    with redshift.connect() as conn:
        conn.execute(f"GRANT SELECT ON {table} TO {ANALYST}")
        with pytest.raises(psycopg.Error, match="is not authorized to assume IAM Role"):
            conn.execute(
                f"UNLOAD ('SELECT 1') TO '{prefix}a/' IAM_ROLE "
                "'arn:aws:iam::123456789012:role/not-attached' FORMAT PARQUET"
            )
        conn.execute(
            f"UNLOAD ('SELECT 1') TO '{prefix}b/' IAM_ROLE '{LIMITED_ROLE}' FORMAT PARQUET"
        )
    denied = f"dbuser:skfleet-standin/{ANALYST} is not authorized"
    with redshift.connect(ANALYST) as conn, pytest.raises(psycopg.Error, match=denied):
        conn.execute(
            f"UNLOAD ('SELECT id FROM {table}') TO '{prefix}c/' IAM_ROLE '{LIMITED_ROLE}' "
            "FORMAT PARQUET"
        )


def test_unload_needs_select_privilege(redshift, table):
    with redshift.connect(ANALYST) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            f"UNLOAD ('SELECT * FROM {table}') TO '{redshift.staging()}/' IAM_ROLE default "
            "FORMAT PARQUET"
        )


def test_unload_to_a_missing_bucket(redshift):
    missing = "S3ServiceException:The specified bucket does not exist"
    with redshift.connect() as conn, pytest.raises(psycopg.Error, match=missing):
        conn.execute(
            "UNLOAD ('SELECT 1') TO 's3://no-such-bucket/x/' IAM_ROLE default FORMAT PARQUET"
        )


def test_copy_loads_inside_the_transaction(redshift, table):
    prefix = redshift.staging() + "/copy/"
    with redshift.connect() as conn:
        conn.execute(
            f"UNLOAD ('SELECT * FROM {table}') TO '{prefix}' IAM_ROLE default FORMAT PARQUET MANIFEST"
        )
        conn.execute(f"CREATE TABLE {table}_copy (LIKE {table})")
        copy = (
            f"COPY {table}_copy FROM '{prefix}manifest' IAM_ROLE default FORMAT AS PARQUET MANIFEST"
        )
        conn.autocommit = False
        conn.execute(copy)
        assert conn.execute(f"SELECT count(*) FROM {table}_copy").fetchone() == (2001,)
        conn.rollback()
        assert conn.execute(f"SELECT count(*) FROM {table}_copy").fetchone() == (0,)
        conn.execute(copy)
        conn.commit()
        conn.autocommit = True
        same = conn.execute(
            f"SELECT count(*) FROM (SELECT * FROM {table} EXCEPT SELECT * FROM {table}_copy) d"
        ).fetchone()
        assert same == (0,)
        assert conn.execute(f"SELECT count(*) FROM {table}_copy WHERE label = ''").fetchone() == (
            1,
        )
        # A prefix COPY (no manifest) reads every object under it; REGION is refused for Parquet.
        with pytest.raises(psycopg.Error, match="REGION argument is not supported"):
            conn.execute(
                f"COPY {table}_copy FROM '{prefix}0000' IAM_ROLE default FORMAT PARQUET "
                "REGION 'us-east-1'"
            )
        conn.execute(f"COPY {table}_copy FROM '{prefix}0000' IAM_ROLE default FORMAT PARQUET")
        assert conn.execute(f"SELECT count(*) FROM {table}_copy").fetchone()[0] > 2001


def test_copy_needs_insert_privilege_and_matching_columns(redshift, table):
    prefix = redshift.staging() + "/priv/"
    with redshift.connect() as conn:
        conn.execute(
            f"UNLOAD ('SELECT * FROM {table}') TO '{prefix}' IAM_ROLE default FORMAT PARQUET"
        )
        conn.execute(f"CREATE TABLE {table}_narrow (id BIGINT)")
        conn.execute(f"GRANT SELECT ON {table} TO {ANALYST}")
        with pytest.raises(psycopg.Error, match="columnar COPY matches columns by position"):
            conn.execute(f"COPY {table}_narrow FROM '{prefix}' IAM_ROLE default FORMAT PARQUET")
    with redshift.connect(ANALYST) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"COPY {table} FROM '{prefix}' IAM_ROLE default FORMAT PARQUET")


def test_copy_with_credentials_instead_of_a_role(redshift, table):
    import os

    prefix = redshift.staging() + "/creds/"
    creds = (
        f"aws_access_key_id={os.environ['AWS_ACCESS_KEY_ID']};"
        f"aws_secret_access_key={os.environ['AWS_SECRET_ACCESS_KEY']}"
    )
    with redshift.connect() as conn:
        conn.execute(
            f"UNLOAD ('SELECT * FROM {table}') TO '{prefix}' CREDENTIALS '{creds}' FORMAT PARQUET"
        )
        conn.execute(f"CREATE TABLE {table}_c (LIKE {table})")
        conn.execute(f"COPY {table}_c FROM '{prefix}' CREDENTIALS '{creds}' FORMAT AS PARQUET")
        assert conn.execute(f"SELECT count(*) FROM {table}_c").fetchone() == (2001,)
