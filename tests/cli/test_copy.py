"""``skfleet copy`` end to end, through the CLI, on real files, S3 and PostgreSQL."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.copy import copy
from skfleet.data import open_source


def sample(n: int = 5_000) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
            "city": pa.array(rng.choice(["Zürich", "O'Hare", 'say "hi"'], size=n)),
        }
    )


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def read_sorted(url: str) -> pa.Table:
    with open_source(url) as source:
        return source.read_all().sort_by("id")


@pytest.fixture
def parquet_in(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(sample(), path, row_group_size=1_000)
    return str(path)


@pytest.mark.parametrize("engine", ["local", "processes:2"])
def test_parquet_to_csv_and_back(tmp_path, parquet_in, engine):
    csv_dir = str(tmp_path / "out.csv")
    back = str(tmp_path / "back.parquet")
    first = copy(parquet_in, csv_dir, engine=engine, partition_rows=1_000)
    second = copy(csv_dir, back, engine=engine, partition_rows=1_000)
    assert first.rows == second.rows == 5_000
    assert first.partitions == 5
    assert read_sorted(back).cast(sample().schema).equals(sample())


def test_cli_json_summary(tmp_path, parquet_in):
    code, out, err = run_cli(
        "copy",
        parquet_in,
        "--out",
        str(tmp_path / "o.parquet"),
        "--partition-rows",
        "2000",
        "--engine",
        "local",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rows"] == 5_000 and summary["partitions"] == 3
    assert set(summary) == {"rows", "partitions", "seconds", "engine"}
    assert summary["engine"] == "local"


def test_cli_if_exists_fail_leaves_target_untouched(tmp_path, parquet_in):
    out = str(tmp_path / "o.parquet")
    assert run_cli("copy", parquet_in, "--out", out, "--engine", "local")[0] == 0
    before = read_sorted(out)
    other = tmp_path / "other.parquet"
    pq.write_table(sample(10), other)
    code, _, err = run_cli("copy", str(other), "--out", out, "--engine", "local")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "exists" in err
    assert read_sorted(out).equals(before)


def test_cli_replace_and_append(tmp_path, parquet_in):
    out = str(tmp_path / "o.parquet")
    run_cli("copy", parquet_in, "--out", out, "--engine", "local")
    assert (
        run_cli("copy", parquet_in, "--out", out, "--engine", "local", "--if-exists", "append")[0]
        == 0
    )
    assert read_sorted(out).num_rows == 10_000
    assert (
        run_cli("copy", parquet_in, "--out", out, "--engine", "local", "--if-exists", "replace")[0]
        == 0
    )
    assert read_sorted(out).num_rows == 5_000


@pytest.mark.parametrize(
    "args, names",
    [
        (["copy", "ftp://host/x.csv", "--out", "o.parquet"], "ftp"),
        (["copy", "/no/such/file.parquet", "--out", "o.parquet"], "/no/such/file.parquet"),
        (["copy", "x.parquet", "--out", "o.parquet", "--engine", "yarn"], "--engine"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, args, names):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert names in err
    assert not (tmp_path / "o.parquet").exists()


def test_cli_bad_partition_rows_is_exit_2(parquet_in, tmp_path):
    code, _, err = run_cli(
        "copy", parquet_in, "--out", str(tmp_path / "o"), "--partition-rows", "0"
    )
    assert code == 2 and "--partition-rows" in err


def test_postgres_round_trip_through_cli(pg, tmp_path, parquet_in):
    url = pg.table_url("copy_round_trip")
    code, _, err = run_cli(
        "copy", parquet_in, "--out", url, "--engine", "processes:2", "--partition-rows", "1000"
    )
    assert code == 0, err
    back = str(tmp_path / "back.parquet")
    code, _, err = run_cli(
        "copy", url, "--out", back, "--engine", "processes:2", "--partition-rows", "1000"
    )
    assert code == 0, err
    assert read_sorted(back).cast(sample().schema).equals(sample())


def test_s3_to_postgres(pg, s3, parquet_in):
    s3_url = s3.url("copy-test/flights.parquet/")
    assert copy(parquet_in, s3_url, engine="local").rows == 5_000
    pg_url = pg.table_url("from_s3")
    assert copy(s3_url, pg_url, engine="processes:2", partition_rows=1_000).rows == 5_000
    assert read_sorted(pg_url).cast(sample().schema).equals(sample())


def test_password_never_printed(pg, parquet_in):
    from urllib.parse import quote

    bad = pg.table_url("nope").replace(quote(pg.password, safe=""), "wrong-secret-pw")
    assert "wrong-secret-pw" in bad
    code, out, err = run_cli("copy", parquet_in, "--out", bad, "--engine", "local")
    assert code == 2
    assert "wrong-secret-pw" not in out + err


def test_output_under_a_file_is_one_line_exit_2(tmp_path, parquet_in):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(
        "copy", parquet_in, "--out", str(blocker / "sub" / "out.parquet"), "--engine", "local"
    )
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: cannot use")
    assert "a-file" in err
    assert blocker.read_text() == "not a directory"
