"""PostgreSQL source and sink against a real server (the ``pg`` fixture)."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import time
import uuid
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pytest

from skfleet.data import open_sink, open_source
from skfleet.data.postgres import PostgresSink, PostgresSource, SnapshotGoneError
from skfleet.data.testing import id_table
from skfleet.engine import get_engine
from skfleet.errors import (
    ConnectionFailedError,
    DataError,
    MissingColumnError,
    SkfleetError,
    SourceNotFoundError,
    TargetExistsError,
    UsageError,
)


# -- helpers ---------------------------------------------------------------------------------------
def write(url: str, table: pa.Table, if_exists: str = "fail", parts: int = 1) -> None:
    sink = open_sink(url)
    sink.open(table.schema, if_exists=if_exists, run_id=uuid.uuid4().hex[:8])
    step = max(1, -(-table.num_rows // parts))
    for i, offset in enumerate(range(0, max(table.num_rows, 1), step)):
        sink.write(f"p{i}", table.slice(offset, step))
    sink.commit()


def read_ids(source, parts) -> np.ndarray:
    return np.concatenate(
        [source.read(p, columns=["id"])["id"].to_numpy(zero_copy_only=False) for p in parts]
    )


def table_name(url: str) -> str:
    return url.rsplit("table=", 1)[1].replace("public.", "")


def fresh_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def read_partition_ids(item):
    """Top-level so a process pool can run it: read one partition in another process."""
    source, partition = item
    return source.read(partition, columns=["id"])["id"].to_pylist()


# -- snapshot --------------------------------------------------------------------------------------
def test_partitions_do_not_see_rows_written_after_planning(pg, pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(20_000), parts=4)
    name = table_name(url)
    source = open_source(url)
    parts = source.partitions(2_000)
    assert len(parts) > 3 and all(p.spec["kind"] == "blocks" for p in parts)
    with pg.connect() as conn:  # the table changes under the planned partitions
        conn.execute(f"INSERT INTO {name} SELECT g, 0, 'new' FROM generate_series(20000, 29999) g")
        conn.execute(f"UPDATE {name} SET x = -1 WHERE id < 5000")
        conn.execute(f"DELETE FROM {name} WHERE id >= 15000 AND id < 16000")
    got = pa.concat_tables([source.read(p) for p in parts])
    source.close()
    assert np.array_equal(np.sort(got["id"].to_numpy()), np.arange(20_000))
    assert (got["x"].to_numpy() >= 0).all()
    later = open_source(url).read_all(columns=["id"])
    assert later.num_rows == 29_000


def test_partitions_read_in_other_processes_share_the_snapshot(pg, pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(6_000))
    source = open_source(url)
    parts = source.partitions(1_000)
    with pg.connect() as conn:
        conn.execute(f"DELETE FROM {table_name(url)} WHERE id % 2 = 0")
    with get_engine("processes:2") as engine:
        ids = [
            i
            for _, chunk in engine.map_unordered(read_partition_ids, [(source, p) for p in parts])
            for i in chunk
        ]
    source.close()
    assert sorted(ids) == list(range(6_000))


def test_reading_after_close_raises_snapshot_gone(pg, pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(100))
    source = open_source(url)
    part = source.partitions(1_000)[0]
    source.close()
    with pytest.raises(SnapshotGoneError, match="plan them again") as info:
        source.read(part)
    assert pg.password not in str(info.value)
    # Planning again after close works and exports a new snapshot.
    assert sum(source.read(p).num_rows for p in source.partitions(1_000)) == 100
    source.close()


def test_snapshot_false_reads_current_state_without_snapshot(pg, pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(100))
    source = open_source(url + "&snapshot=false")
    parts = source.partitions(1_000)
    assert all(p.spec["snapshot"] is None for p in parts)
    with pg.connect() as conn:
        conn.execute(f"INSERT INTO {table_name(url)} VALUES (100, 0, 'x')")
    source.close()
    assert sum(source.read(p).num_rows for p in parts) == 101


def test_source_holds_no_lock_so_replace_can_commit_while_it_is_open(pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(10))
    source = open_source(url)
    part = source.partitions(1_000)[0]
    write(url, id_table(3, start=50), if_exists="replace")  # would hang if the snapshot locked t
    with pytest.raises(SourceNotFoundError, match="replaced after its partitions were planned"):
        source.read(part)
    source.close()
    assert sorted(open_source(url).read_all()["id"].to_pylist()) == [50, 51, 52]


# -- views, queries, keys --------------------------------------------------------------------------
@pytest.fixture
def keyed_table(pg):
    """A table of 10 000 ids with a few NULL keys, and a view on it."""
    name = fresh_name()
    with pg.connect() as conn:
        conn.execute(f"CREATE TABLE {name} (id bigint, k integer, g text)")
        conn.execute(
            f"INSERT INTO {name} SELECT i, CASE WHEN i % 500 = 0 THEN NULL ELSE (i * 7919) % 3000 END,"
            f" CASE WHEN i % 333 = 0 THEN NULL ELSE chr(97 + i % 5) END "
            "FROM generate_series(0, 9999) i"
        )
        conn.execute(f"CREATE VIEW {name}_v AS SELECT * FROM {name} WHERE id % 3 <> 0")
    return name


def test_view_is_split_by_key_ranges_covering_every_row_once(pg, keyed_table):
    source = open_source(pg.table_url(f"{keyed_table}_v", key="k"))
    assert source.count_estimate() == len([i for i in range(10_000) if i % 3])
    parts = source.partitions(1_000)
    assert len(parts) > 3 and all(p.spec["kind"] == "keys" for p in parts)
    assert len({p.id for p in parts}) == len(parts)
    ids = read_ids(source, parts)
    source.close()
    assert np.array_equal(np.sort(ids), [i for i in range(10_000) if i % 3])


def test_composite_key_with_nulls_covers_every_row_once(pg, keyed_table):
    source = open_source(
        pg.table_url(keyed_table, key="g,k")
        .replace("table=", "query=")
        .replace(keyed_table, quote(f"select * from {keyed_table}"))
    )
    parts = source.partitions(700)
    assert len(parts) > 3
    ids = read_ids(source, parts)
    source.close()
    assert np.array_equal(np.sort(ids), np.arange(10_000))


def test_query_without_key_is_one_partition_and_with_key_several(pg, keyed_table):
    query = f"SELECT id, id * 2 AS twice FROM {keyed_table} WHERE id < 5000;"
    whole = open_source(pg.url(query=query))
    (part,) = whole.partitions(100)
    assert part.id == "all"
    got = whole.read(part)
    assert got.schema == pa.schema([("id", pa.int64()), ("twice", pa.int64())])
    assert sorted(got["id"].to_pylist()) == list(range(5_000))
    split = open_source(pg.url(query=query, key="twice"))
    parts = split.partitions(1_000)
    assert len(parts) > 2
    assert np.array_equal(np.sort(read_ids(split, parts)), np.arange(5_000))
    whole.close(), split.close()


def test_query_ending_in_a_comment_still_reads(pg):
    source = open_source(pg.url(query="select 1 as one -- the answer"))
    assert source.read_all().to_pylist() == [{"one": 1}]


def test_partitioned_table_uses_key_ranges_or_one_partition(pg):
    name = fresh_name()
    with pg.connect() as conn:
        conn.execute(f"CREATE TABLE {name} (id bigint) PARTITION BY RANGE (id)")
        conn.execute(f"CREATE TABLE {name}_a PARTITION OF {name} FOR VALUES FROM (0) TO (3000)")
        conn.execute(f"CREATE TABLE {name}_b PARTITION OF {name} FOR VALUES FROM (3000) TO (9000)")
        conn.execute(f"INSERT INTO {name} SELECT generate_series(0, 8999)")
        conn.execute(f"ANALYZE {name}")
    plain = open_source(pg.table_url(name))
    assert [p.id for p in plain.partitions(1_000)] == ["all"]
    keyed = open_source(pg.table_url(name, key="id"))
    parts = keyed.partitions(1_000)
    assert len(parts) > 3
    assert np.array_equal(np.sort(read_ids(keyed, parts)), np.arange(9_000))
    plain.close(), keyed.close()


def test_libpq_parameters_pass_through_unix_socket(pg, keyed_table):
    url = (
        f"postgresql://postgres:{quote(pg.password, safe='')}@/postgres"
        f"?host={pg.socket_dir}&port={pg.port}&table={keyed_table}&sslmode=disable"
    )
    source = open_source(url)
    assert sum(source.read(p).num_rows for p in source.partitions(4_000)) == 10_000
    source.close()


def test_key_on_a_table_is_checked(pg, keyed_table):
    with pytest.raises(MissingColumnError, match="'idd'"):
        open_source(pg.table_url(keyed_table, key="idd")).partitions(1_000)


def test_iter_batches_streams_and_an_early_stop_leaves_no_trace(pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(5_000))
    source = open_source(url)
    part = source.partitions(100_000)[0]
    batches = source.iter_batches(part, columns=["x"], batch_rows=300)
    first = next(batches)
    assert first.num_rows == 300 and first.schema.names == ["x"]
    batches.close()
    assert sum(b.num_rows for b in source.iter_batches(part, batch_rows=700)) == 5_000
    source.close()


def test_types_beyond_the_kit(pg):
    name = fresh_name()
    with pg.connect() as conn:
        conn.execute(
            f"CREATE TABLE {name} (a smallint, b real, c date, d uuid, e jsonb, f varchar(4), "
            "g numeric, h numeric(40,3), i text[])"
        )
        conn.execute(
            f"INSERT INTO {name} VALUES (1, 1.5, '2020-02-29', '00000000-0000-0000-0000-000000000001',"
            " '{\"k\": 1}', 'ab', 1.25, 1234567890123456789012345678901234567.125, '{x,y}')"
        )
    source = open_source(pg.table_url(name))
    expected = pa.schema(
        [
            ("a", pa.int16()),
            ("b", pa.float32()),
            ("c", pa.date32()),
            ("d", pa.string()),
            ("e", pa.string()),
            ("f", pa.string()),
            ("g", pa.float64()),
            ("h", pa.decimal256(40, 3)),
            ("i", pa.string()),
        ]
    )
    assert source.schema() == expected
    row = source.read_all().to_pylist()[0]
    assert row["d"] == "00000000-0000-0000-0000-000000000001"
    assert row["e"] == '{"k": 1}' and row["g"] == 1.25 and row["i"] == "{x,y}"
    assert str(row["h"]) == "1234567890123456789012345678901234567.125"


def test_count_estimate_after_a_commit_is_exact(pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(12_345), parts=3)
    assert open_source(url).count_estimate() == 12_345


# -- the sink ----------------------------------------------------------------------------------
def test_concurrent_write_of_one_partition_waits_then_writes_nothing(pg, pg_new_table_url):
    url = pg_new_table_url()
    name = table_name(url)
    table = id_table(500)
    sink = open_sink(url)
    sink.open(table.schema, if_exists="append", run_id="race")
    target_key = f'"public"."{name}"'
    other = pg.connect()
    other.autocommit = False
    # Another writer is mid-way through the same partition: ledger row and data, uncommitted.
    other.execute(
        "INSERT INTO skfleet.skfleet_ledger (target, run_id, partition_id, rows) VALUES (%s, 'race', 'p0', 500)",
        [target_key],
    )
    other.execute(
        f"INSERT INTO {name} SELECT g, g * 0.5, (g % 7)::text FROM generate_series(0, 499) g"
    )
    result = {}
    writer = threading.Thread(target=lambda: result.setdefault("rows", sink.write("p0", table)))
    writer.start()
    with pg.connect() as watcher:  # our writer must be blocked on the other's ledger key
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name = 'skfleet'"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
    assert waiting == 1 and writer.is_alive()
    other.commit()
    other.close()
    writer.join(30)
    assert result["rows"] == 0
    assert sink.committed() == {"p0": 500}
    got = open_source(url).read_all()
    assert sorted(got["id"].to_pylist()) == list(range(500))


def test_aborted_run_cannot_resume(pg_new_table_url):
    url = pg_new_table_url()
    table = id_table(10)
    sink = open_sink(url)
    sink.open(table.schema, if_exists="fail", run_id="gone")
    sink.write("p0", table)
    sink.abort()
    with pytest.raises(UsageError, match="aborted"):
        open_sink(url).open(table.schema, if_exists="fail", run_id="gone")


def test_sink_creates_columns_with_mapped_types(pg, pg_new_table_url):
    url = pg_new_table_url()
    wide = decimal.Decimal("1234567890123456789012345678901234567.125")
    columns = {
        "u8": (pa.array([1], pa.uint8()), "smallint", 1),
        "f16": (pa.array([np.float16(1.5)], pa.float16()), "real", 1.5),
        "big": (pa.array([2**63 - 1], pa.uint64()), "numeric(20,0)", 2**63 - 1),
        "cat": (pa.array(["a"]).dictionary_encode(), "text", "a"),
        # 1500 ns after the epoch in Paris: the same instant, kept to the microsecond, in UTC.
        "ns": (
            pa.array([1_500], pa.timestamp("ns", tz="Europe/Paris")),
            "timestamp with time zone",
            dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        ),
        "nothing": (pa.nulls(1), "text", None),
        "ls": (pa.array(["long"], pa.large_string()), "text", "long"),
        "d64": (pa.array([86_400_000], pa.date64()), "date", dt.date(1970, 1, 2)),
        "t32": (pa.array([3_600], pa.time32("s")), "time without time zone", dt.time(1, 0)),
        "dur": (pa.array([1_000_000], pa.duration("us")), "interval", None),
        "bin": (pa.array([b"\x00\x01"], pa.binary()), "bytea", b"\x00\x01"),
        "wide": (pa.array([wide], pa.decimal256(40, 3)), "numeric(40,3)", wide),
    }
    write(url, pa.table({name: array for name, (array, _, _) in columns.items()}))
    with pg.connect() as conn:
        types = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0",
                [table_name(url)],
            ).fetchall()
        )
    assert types == {name: pg_type for name, (_, pg_type, _) in columns.items()}
    row = open_source(url).read_all().to_pylist()[0]
    for name, (_, _, value) in columns.items():
        if name != "dur":
            assert row[name] == value, name
    assert row["dur"].nanoseconds == 1_000_000_000  # 1 s, read back as a month-day-nano interval


def test_table_name_with_quotes_and_semicolons_is_a_name_not_sql(pg):
    with pg.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS y (v int)")
        conn.execute("INSERT INTO y VALUES (1)")
    evil = 'x";drop table y;--'
    url = pg.table_url(evil)
    with pytest.raises(SourceNotFoundError, match="does not exist") as info:
        open_source(url).partitions(100)
    assert evil in str(info.value)
    write(url, id_table(3))  # a table literally so named
    assert open_source(url).read_all().num_rows == 3
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM y").fetchone()[0] >= 1
        assert conn.execute('SELECT count(*) FROM "x"";drop table y;--"').fetchone()[0] == 3


# -- bad input -------------------------------------------------------------------------------------
def test_missing_table_names_it(pg):
    with pytest.raises(SourceNotFoundError, match="'public.no_such_table' does not exist"):
        open_source(pg.table_url("public.no_such_table")).schema()


def test_missing_key_column_names_it(pg, keyed_table):
    with pytest.raises(MissingColumnError, match="'nope'"):
        open_source(pg.table_url(f"{keyed_table}_v", key="nope")).partitions(100)


def test_wrong_password_is_a_connection_error_without_the_password(pg):
    url = f"postgresql://postgres:{quote('not-' + pg.password, safe='')}@{pg.host}:{pg.port}/postgres?table=t"
    with pytest.raises(ConnectionFailedError, match="password authentication failed") as info:
        open_source(url).schema()
    assert "not-" not in str(info.value) and pg.password not in str(info.value)


def test_unreachable_server_fails_fast_with_a_connection_error(pg):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres:pw@127.0.0.1:{port}/postgres?table=t&connect_timeout=2"
    with pytest.raises(ConnectionFailedError, match=f"127.0.0.1:{port}"):
        open_source(url).schema()


def test_missing_database_names_it(pg):
    with pytest.raises(SourceNotFoundError, match="nodb"):
        open_source(pg.table_url("t", database="nodb")).schema()


def test_malformed_query_is_a_usage_error(pg):
    with pytest.raises(UsageError, match="query .* not valid SQL: syntax error"):
        open_source(pg.url(query="selec 1")).schema()


def test_query_with_duplicate_column_names_is_refused(pg):
    with pytest.raises(UsageError, match="two columns named 'a'"):
        open_source(pg.url(query="select 1 as a, 2 as a")).schema()


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "names no table"),
        ("table=a&query=select%201", "both table= and query="),
        ("table=a&snapshot=maybe", "snapshot= must be"),
    ],
)
def test_bad_urls_are_usage_errors(pg, query, message):
    with pytest.raises(UsageError, match=message):
        open_source(pg.url() + "?" + query)


def test_sink_refuses_queries_and_bad_if_exists(pg, pg_new_table_url):
    with pytest.raises(UsageError, match="is a query"):
        open_sink(pg.url(query="select 1"))
    with pytest.raises(UsageError, match="--if-exists 'sometimes'"):
        open_sink(pg_new_table_url()).open(id_table(1).schema, if_exists="sometimes")


def test_if_exists_fail_names_the_target(pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(2))
    with pytest.raises(TargetExistsError, match=table_name(url)):
        open_sink(url).open(id_table(1).schema, if_exists="fail")


def test_append_needs_every_column_in_the_target(pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(2))
    wider = id_table(2).append_column("extra", pa.array([1, 2]))
    with pytest.raises(MissingColumnError, match="'extra'"):
        open_sink(url).open(wider.schema, if_exists="append")


def test_partition_missing_a_column_names_it(pg_new_table_url):
    sink = open_sink(pg_new_table_url())
    sink.open(id_table(1).schema, if_exists="fail", run_id="narrow")
    with pytest.raises(MissingColumnError, match="'tag'"):
        sink.write("p0", id_table(3).drop_columns(["tag"]))
    sink.abort()


def test_append_overflowing_an_integer_column_is_a_data_error(pg):
    name = fresh_name()
    with pg.connect() as conn:
        conn.execute(f"CREATE TABLE {name} (id integer)")
    sink = open_sink(pg.table_url(name))
    sink.open(pa.schema([("id", pa.int64())]), if_exists="append", run_id="big")
    with pytest.raises(DataError, match="'id'"):
        sink.write("p0", pa.table({"id": pa.array([2**40], pa.int64())}))
    assert sink.committed() == {}


def test_password_never_appears_in_messages_or_reprs(pg, pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(5))
    source = open_source(url)
    parts = source.partitions(100)
    shown = [repr(source), repr(open_sink(url)), repr(parts), source.display_name]
    failures = [
        lambda: source.read(parts[0], columns=["nope"]),
        lambda: open_source(pg.table_url("nope")).schema(),
        lambda: open_source(pg.url(query="selec 1")).schema(),
        lambda: open_source(pg.url(database="nodb", table="t")).schema(),
        lambda: open_sink(url).open(id_table(1).schema, if_exists="fail"),
    ]
    for fail in failures:
        with pytest.raises(SkfleetError) as info:
            fail()
        shown.append(str(info.value))
    source.close()
    with pytest.raises(SnapshotGoneError) as info:
        source.read(parts[0])
    shown.append(str(info.value))
    for text in shown:
        assert pg.password not in text and quote(pg.password, safe="") not in text, text
        assert "***" in text or "postgresql://" not in text


def test_backend_types(pg_new_table_url):
    url = pg_new_table_url()
    assert isinstance(open_source(url), PostgresSource)
    assert isinstance(open_sink(url.replace("postgresql://", "postgres://")), PostgresSink)


def test_failed_copy_with_replace_leaves_the_old_table_and_no_staging(
    pg, pg_new_table_url, tmp_path
):
    from skfleet.copy import copy

    url = pg_new_table_url()
    write(url, id_table(10))
    (tmp_path / "a.csv").write_text("id,x,tag\n100,0.5,a\n")
    (tmp_path / "b.csv").write_text("id,x,tag\n101,zero,b\n")
    with pytest.raises(DataError, match="b.csv"):
        copy(str(tmp_path), url, if_exists="replace", engine="local", retries=0)
    assert sorted(open_source(url).read_all()["id"].to_pylist()) == list(range(10))
    with pg.connect() as conn:
        staged = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE '\\_skfleet\\_stage\\_%%'"
        ).fetchall()
    assert staged == []


def test_table_name_longer_than_postgres_allows_is_refused(pg):
    name = "t" * 73  # the server would cut it to 63 characters without a word
    for url in [pg.table_url(name), pg.table_url(f"public.{name}")]:
        with pytest.raises(UsageError, match="73 bytes long; PostgreSQL names hold at most 63"):
            open_sink(url)
        with pytest.raises(UsageError, match="73 bytes long"):
            open_source(url)


def test_sink_refuses_duplicate_column_names_naming_one(pg_new_table_url):
    schema = pa.schema([("a", pa.int64()), ("a", pa.int64())])
    with pytest.raises(DataError, match="two columns named 'a'"):
        open_sink(pg_new_table_url()).open(schema)


# -- bookkeeping in its own schema ------------------------------------------------------------------
def _tables_in(pg, schema: str) -> list[str]:
    with pg.connect() as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 1",
            [schema],
        ).fetchall()
    return [r for (r,) in rows]


def test_bookkeeping_tables_stay_out_of_the_users_schema(pg):
    schema = f"user_{uuid.uuid4().hex[:8]}"
    with pg.connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    write(pg.table_url(f"{schema}.scores"), id_table(5))
    assert _tables_in(pg, schema) == ["scores"]
    assert {"skfleet_ledger", "skfleet_runs"} <= set(_tables_in(pg, "skfleet"))


def test_bookkeeping_schema_is_configurable_and_created_on_first_use(pg):
    books = f"books_{uuid.uuid4().hex[:8]}"
    url = pg.table_url(f"public.t_{uuid.uuid4().hex[:8]}", bookkeeping=books)
    write(url, id_table(5))
    assert _tables_in(pg, books) == ["skfleet_ledger", "skfleet_runs", "skfleet_watermarks"]
    assert open_source(url).read_all().num_rows == 5


def test_existing_target_names_the_cli_flag(pg_new_table_url):
    url = pg_new_table_url()
    write(url, id_table(2))
    with pytest.raises(TargetExistsError, match="pass --if-exists replace or append"):
        open_sink(url).open(id_table(1).schema, if_exists="fail")
