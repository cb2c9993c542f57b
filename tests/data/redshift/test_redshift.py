"""The Redshift backend against the Redshift stand-in (``tests/services/redshift.py``).

**The stand-in is not Redshift** (see that module): a real PostgreSQL behind a wire proxy that
refuses what Redshift refuses and runs UNLOAD / COPY FROM S3 against moto's S3. What is tested
here: the UNLOAD is the consistent view, staging is run-scoped and removed, partition ids follow
the table, the slow path without ``staging=``, the ``postgresql://`` pointer, and bad input (no
staging, a missing bucket, a refused IAM role, UNLOAD / COPY permission denied, names with quotes
or semicolons, text too wide): one line naming the thing at fault, exit status 2 from the CLI,
target untouched, staging cleaned up.
"""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.copy import copy
from skfleet.data import open_sink, open_source
from skfleet.data.redshift import RedshiftSource, SlowReadWarning
from skfleet.data.testing import id_table
from skfleet.errors import (
    ConnectionFailedError,
    DataError,
    SkfleetError,
    SourceNotFoundError,
    UsageError,
)
from tests.services.redshift import ANALYST


def write(url: str, table: pa.Table, parts: int = 1, if_exists: str = "fail") -> None:
    sink = open_sink(url)
    sink.open(table.schema, if_exists=if_exists, run_id=uuid.uuid4().hex[:8])
    step = max(1, -(-table.num_rows // parts))
    for i, offset in enumerate(range(0, max(table.num_rows, 1), step)):
        sink.write(f"p{i}", table.slice(offset, step))
    sink.commit()


def staged(url: str) -> list[str]:
    """Every object under the URL's staging= prefix."""
    prefix = url.split("staging=", 1)[1].split("&", 1)[0].removeprefix("s3://")
    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    return fs.find(prefix)


def name_of(url: str) -> str:
    return url.split("table=", 1)[1].split("&", 1)[0].split(".", 1)[1]


def with_param(url: str, name: str, value: str) -> str:
    import re

    return re.sub(rf"{name}=[^&]*", f"{name}={value}", url)


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def filled(redshift_new_table_url):
    """A 20,000-row table on the stand-in."""
    url = redshift_new_table_url()
    write(url, id_table(20_000), parts=4)
    return url


# -- reading ---------------------------------------------------------------------------------------
def test_unload_is_the_consistent_view(redshift, filled):
    source = open_source(filled)
    parts = source.partitions(2_000)
    assert len(parts) > 1 and all(p.spec["kind"] == "file" for p in parts)
    with redshift.direct() as conn:  # the table changes under the planned partitions
        conn.execute(f"DELETE FROM {name_of(filled)} WHERE id < 5000")
        conn.execute(
            f"INSERT INTO {name_of(filled)} SELECT g, 0, 'new' FROM generate_series(1, 99) g"
        )
    got = pa.concat_tables([source.read(p) for p in parts])
    source.close()
    assert np.array_equal(np.sort(got["id"].to_numpy()), np.arange(20_000))


def test_staging_is_run_scoped_and_removed_at_close(filled):
    before = set(staged(filled))
    with open_source(filled) as source:
        source.partitions(5_000)
        during = set(staged(filled)) - before
        assert any(p.endswith("/manifest") for p in during)
        assert all("/skfleet-unload-" in p for p in during)
    assert set(staged(filled)) == before
    kept = filled + "&keep_staging=true"
    with open_source(kept) as source:
        source.partitions(5_000)
    assert set(staged(kept)) - before, "keep_staging=true kept nothing"


def test_partition_ids_follow_the_table(redshift, filled):
    def ids() -> list[str]:
        with open_source(filled) as source:
            return [p.id for p in source.partitions(5_000)]

    first = ids()
    assert first == ids(), "an unchanged table must plan the same partitions (for --resume)"
    with redshift.direct() as conn:
        conn.execute(f"UPDATE {name_of(filled)} SET tag = 'changed' WHERE id % 3 = 0")
    assert ids() != first, "a changed table must not plan the same partition ids"


def test_a_query_reads_through_unload(redshift, filled):
    from urllib.parse import quote

    name = name_of(filled)
    base = filled.split("?", 1)[0]
    staging = filled.split("staging=", 1)[1].split("&", 1)[0]
    query = f"SELECT id, x * 2 AS x2 FROM public.{name} WHERE tag = '3'"
    url = f"{base}?query={quote(query)}&staging={staging}&iam_role=default"
    with open_source(url) as source:
        table = source.read_all(target_rows=1_000)
    assert table.column_names == ["id", "x2"]
    assert table.num_rows == len([i for i in range(20_000) if i % 7 == 3])


def test_without_staging_reads_with_selects_and_says_it_is_slow(redshift, filled):
    url = redshift.url(table=f"public.{name_of(filled)}", staging=False, key="id")
    source = open_source(url)
    with pytest.warns(SlowReadWarning, match="no staging=.*leader node"):
        parts = source.partitions(4_000)
    assert len(parts) > 2 and all(p.spec["kind"] == "select" for p in parts)
    ids = np.concatenate([source.read(p, columns=["id"])["id"].to_numpy() for p in parts])
    assert np.array_equal(np.sort(ids), np.arange(20_000))
    assert source.read(parts[0]).schema == open_source(filled).schema()


def test_postgresql_url_to_redshift_is_refused_with_a_pointer(redshift, filled):
    url = redshift.url(scheme="postgresql", table=f"public.{name_of(filled)}")
    with pytest.raises(UsageError, match=r"is Amazon Redshift.*use redshift://") as caught:
        open_source(url).schema()
    assert redshift.password not in str(caught.value)
    with pytest.raises(UsageError, match="use redshift://"):
        open_sink(url).open(id_table(1).schema, if_exists="append")


# -- bad input -------------------------------------------------------------------------------------
def test_sink_without_staging_is_refused(redshift):
    url = redshift.url(table=f"public.t_{uuid.uuid4().hex[:8]}", staging=False)
    with pytest.raises(UsageError, match="needs staging=s3://bucket/prefix"):
        open_sink(url).open(id_table(1).schema)


@pytest.mark.parametrize("name", ['x";drop table y', "a;b", "it's"])
def test_table_names_with_quotes_or_semicolons_are_refused(redshift, name):
    url = redshift.url(table=f"public.{name}")  # url() percent-encodes it
    with pytest.raises(UsageError, match="holds a quote or a semicolon"):
        open_source(url)
    with pytest.raises(UsageError, match="holds a quote or a semicolon"):
        open_sink(url)


def test_names_longer_than_127_bytes_are_refused(redshift):
    with pytest.raises(UsageError, match="127 bytes"):
        open_sink(redshift.url(table="public." + "é" * 64))


def test_names_up_to_127_bytes_work(redshift):
    # Longer than PostgreSQL's 63 bytes: the stand-in's server is PostgreSQL, so only parsing
    # and quoting are exercised here, up to the server's own limit.
    url = redshift.url(table="public.t_" + "a" * 40 + uuid.uuid4().hex[:8])
    write(url, id_table(10))
    with open_source(url) as source:
        assert source.read_all().num_rows == 10
    assert open_sink(redshift.url(table="public." + "b" * 127))  # parses


def test_missing_staging_bucket(redshift, filled):
    url = with_param(filled, "staging", "s3://no-such-bucket/x")
    with pytest.raises(SourceNotFoundError, match="no-such-bucket") as caught:
        open_source(url).partitions(1_000)
    assert redshift.password not in str(caught.value)
    target = redshift.url(table=f"public.t_{uuid.uuid4().hex[:8]}", staging="s3://no-such-bucket/x")
    with pytest.raises(SourceNotFoundError, match="no-such-bucket"):
        open_sink(target).open(id_table(1).schema)
    with pytest.raises(SourceNotFoundError):
        open_source(target).schema()  # nothing was created


def test_refused_iam_role_reading(filled):
    url = with_param(filled, "iam_role", "arn:aws:iam::123456789012:role/not-attached")
    before = set(staged(filled))
    with pytest.raises(ConnectionFailedError, match="not authorized to assume IAM Role"):
        open_source(url).partitions(1_000)
    assert set(staged(filled)) == before


def test_refused_iam_role_writing_leaves_no_target_and_no_staging(redshift, tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(id_table(3_000), src)
    url = redshift.url(
        table=f"public.t_{uuid.uuid4().hex[:8]}",
        iam_role="arn:aws:iam::123456789012:role/not-attached",
    )
    with pytest.raises(SkfleetError, match="not authorized to assume IAM Role"):
        copy(str(src), url, engine="local", partition_rows=1_000)
    assert staged(url) == []
    with pytest.raises(SourceNotFoundError):
        open_source(url).schema()


def test_unload_permission_denied(redshift, filled):
    url = redshift.url(user=ANALYST, table=f"public.{name_of(filled)}")
    with pytest.raises(SkfleetError, match="permission denied") as caught:
        open_source(url).partitions(1_000)
    assert "\n" not in str(caught.value) and redshift.analyst_password not in str(caught.value)
    assert staged(url) == []


def test_copy_permission_denied_leaves_target_untouched(redshift, filled, tmp_path):
    name = name_of(filled)
    with redshift.direct() as conn:  # analyst may read the table and keep the books, not insert
        conn.execute(f"GRANT SELECT ON {name} TO {ANALYST}")
        conn.execute(f"GRANT ALL ON skfleet_runs, skfleet_ledger TO {ANALYST}")
    src = tmp_path / "more.parquet"
    pq.write_table(id_table(500, start=20_000), src)
    url = redshift.url(user=ANALYST, table=f"public.{name}")
    with pytest.raises(SkfleetError, match=f"permission denied for table {name}"):
        copy(str(src), url, if_exists="append", engine="local")
    assert staged(url) == []
    with redshift.direct() as conn:
        assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (20_000,)


def test_text_wider_than_varchar_is_refused_naming_the_column(redshift_new_table_url):
    url = redshift_new_table_url()
    sink = open_sink(url)
    table = pa.table({"id": [1], "note": ["é" * 40_000]})  # 80,000 bytes
    sink.open(table.schema, run_id="wide")
    with pytest.raises(DataError, match="column 'note'.*80,000 bytes"):
        sink.write("p0", table)
    sink.abort()


def test_cli_bad_input_is_one_line_and_exit_status_2(redshift, tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(id_table(100), src)
    no_staging = redshift.url(table=f"public.t_{uuid.uuid4().hex[:8]}", staging=False)
    code, _, err = run_cli("copy", str(src), "--out", no_staging, "--engine", "local")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "staging=" in err
    assert redshift.password not in err
    quoted = redshift.url(table="public.a;drop")
    code, _, err = run_cli("copy", str(src), "--out", quoted, "--engine", "local")
    assert code == 2 and "semicolon" in err and len(err.strip().splitlines()) == 1


def test_source_pickles_without_its_staging_ownership(filled):
    import pickle

    source = open_source(filled)
    parts = source.partitions(5_000)
    clone = pickle.loads(pickle.dumps(source))
    assert isinstance(clone, RedshiftSource)
    clone.close()  # a worker's copy never removes the run's files
    assert sum(clone.read(p).num_rows for p in parts) == 20_000
    source.close()


def test_cli_says_the_select_path_is_slow_and_why(redshift, filled, tmp_path):
    import subprocess
    import sys

    url = redshift.url(table=f"public.{name_of(filled)}", staging=False)
    out = str(tmp_path / "o.parquet")
    done = subprocess.run(
        [sys.executable, "-m", "skfleet", "copy", url, "--out", out, "--engine", "local"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no staging=" in done.stderr and "leader node" in done.stderr
    assert redshift.password not in done.stderr + done.stdout
