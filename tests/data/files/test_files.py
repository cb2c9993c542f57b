"""The file backend (local disk and S3): the CSV variants of the conformance kit, then
file-specific behaviour (the Parquet default runs in tests/data/test_conformance.py)."""

from __future__ import annotations

import gzip
import itertools
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from skfleet.data import open_sink, open_source
from skfleet.data.files import FileSink
from skfleet.data.files.store import FileStore
from skfleet.data.testing import SourceSinkConformance, id_table, typed_table
from skfleet.errors import (
    ConnectionFailedError,
    DataError,
    MissingColumnError,
    SourceNotFoundError,
    TargetExistsError,
    UsageError,
)
from tests.data.conftest import file_leftovers


# -- conformance ---------------------------------------------------------------------------------
class TestLocalCsv(SourceSinkConformance):
    # The manifest keeps the exact Arrow schema, so even decimals and UTC timestamps read back
    # as written: no lossy comparison needed.
    lossy_types = False

    def leftovers(self, url):
        return file_leftovers(url)

    @pytest.fixture
    def new_url(self, tmp_path):
        counter = itertools.count()
        return lambda: f"file://{tmp_path}/table{next(counter)}.csv/"


class TestS3Csv(SourceSinkConformance):
    lossy_types = False

    def leftovers(self, url):
        return file_leftovers(url)

    @pytest.fixture
    def new_url(self, s3):
        return lambda: s3.url(f"{uuid.uuid4().hex}/scores.csv.gz/")


def single_file_leftovers(url: str) -> list[str]:
    """A single-file run's bookkeeping beside the file: its staging folders and temp files."""
    store, path = FileStore.from_url(url)
    parent, name = path.rsplit("/", 1)
    return [n for n in store.names(parent) if n.startswith(f".{name}.") and "skfleet.json" not in n]


def plant_foreign_beside(url: str):
    """A file skfleet did not write, next to the single-file target."""
    store, path = FileStore.from_url(url)
    planted = path.rsplit("/", 1)[0] + "/notes.txt"
    store.put(planted, b"mine\n")
    return lambda: store.cat(planted) == b"mine\n"


class TestLocalCsvFile(SourceSinkConformance):
    """``--out scores.csv``: one plain CSV file, so types come back as CSV infers them."""

    lossy_types = True

    def leftovers(self, url):
        return single_file_leftovers(url)

    def plant_foreign(self, url):
        return plant_foreign_beside(url)

    @pytest.fixture
    def new_url(self, tmp_path):
        counter = itertools.count()
        return lambda: f"{tmp_path}/out{next(counter)}/scores.csv"

    def test_partitions_cover_every_row_once(self, new_url):
        pytest.skip("a CSV file is read as one partition (the source never splits a CSV file)")


class TestS3ParquetFile(SourceSinkConformance):
    """``--out s3://bucket/scores.parquet``: one Parquet object, exact types."""

    lossy_types = False

    def leftovers(self, url):
        return single_file_leftovers(url)

    def plant_foreign(self, url):
        return plant_foreign_beside(url)

    @pytest.fixture
    def new_url(self, s3):
        return lambda: s3.url(f"{uuid.uuid4().hex}/scores.parquet")


# -- helpers -------------------------------------------------------------------------------------
def write_table(url: str, table: pa.Table, if_exists: str = "fail", parts: int = 1, **options):
    sink = open_sink(url, **options)
    sink.open(table.schema, if_exists=if_exists, run_id=uuid.uuid4().hex[:8])
    step = max(1, -(-table.num_rows // parts))
    for i, offset in enumerate(range(0, max(table.num_rows, 1), step)):
        sink.write(f"p{i}", table.slice(offset, step))
    sink.commit()
    return sink


def listing(root) -> list[str]:
    """Every file under a local directory, hidden ones included (what 'untouched' compares)."""
    out = []
    for folder, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    return sorted(out)


def s3_listing(url: str) -> list[str]:
    store, path = FileStore.from_url(url)
    return sorted(store.fs.find(path)) if store.fs.exists(path) else []


def ids_of(source) -> np.ndarray:
    parts = source.partitions(1_000)
    return np.sort(np.concatenate([source.read(p, ["id"])["id"].to_numpy() for p in parts]))


# -- reading: what a URL means -------------------------------------------------------------------
def test_glob_reads_matching_files_only(tmp_path):
    for i in range(3):
        pacsv.write_csv(id_table(10, start=10 * i), tmp_path / f"day{i}.csv")
    pacsv.write_csv(id_table(5, start=100), tmp_path / "other.csv")
    source = open_source(str(tmp_path / "day*.csv"))
    parts = source.partitions(1_000)
    assert [p.id for p in parts] == ["day0", "day1", "day2"]
    assert np.array_equal(ids_of(source), np.arange(30))


def test_relative_glob_and_file_url(tmp_path, monkeypatch):
    pq.write_table(id_table(7), tmp_path / "a.parquet")
    monkeypatch.chdir(tmp_path)
    assert open_source("*.parquet").read_all().num_rows == 7
    assert open_source(f"file://{tmp_path}/a.parquet").read_all().num_rows == 7


def test_directory_skips_hidden_underscore_and_temp_files(tmp_path):
    pq.write_table(id_table(10), tmp_path / "part-0.parquet")
    (tmp_path / "year=2014").mkdir()
    pq.write_table(id_table(10, start=10), tmp_path / "year=2014" / "part-1.parquet")
    # Bookkeeping a reader must ignore: Spark's marker, a temp file, a staging folder.
    (tmp_path / "_SUCCESS").write_bytes(b"")
    pq.write_table(id_table(3, start=500), tmp_path / ".part-2.parquet.tmp-123")
    (tmp_path / "_staging-x").mkdir()
    pq.write_table(id_table(3, start=900), tmp_path / "_staging-x" / "part-9.parquet")
    source = open_source(str(tmp_path))
    assert sorted(p.id for p in source.partitions(1_000)) == ["part-0", "year=2014__part-1"]
    assert np.array_equal(ids_of(source), np.arange(20))


def test_directory_format_detection(tmp_path):
    pacsv.write_csv(id_table(4), tmp_path / "a.csv")
    (tmp_path / "README.md").write_text("not data")
    assert open_source(str(tmp_path)).read_all().num_rows == 4
    pq.write_table(id_table(4), tmp_path / "b.parquet")
    with pytest.raises(UsageError, match="--format"):
        open_source(str(tmp_path))
    assert open_source(str(tmp_path), format="parquet").read_all().num_rows == 4


def test_explicit_format_reads_files_without_extension(tmp_path):
    pacsv.write_csv(id_table(6), tmp_path / "export.txt")
    with pytest.raises(UsageError, match="--format"):
        open_source(str(tmp_path / "export.txt"))
    assert open_source(str(tmp_path / "export.txt"), format="csv").read_all().num_rows == 6
    assert open_source(str(tmp_path), format="csv").read_all().num_rows == 6


def test_gzip_csv_file_and_sink(tmp_path):
    table = id_table(2_000)
    plain = tmp_path / "plain.csv"
    pacsv.write_csv(table, plain)
    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    source = open_source(str(tmp_path / "data.csv.gz"))
    assert source.read_all().equals(open_source(str(plain)).read_all())
    # The size estimate uses the uncompressed size from the gzip trailer.
    assert 0.5 * 2_000 < source.count_estimate() < 2 * 2_000

    target = tmp_path / "out"
    write_table(str(target), table, parts=3, format="csv.gz")
    parts = sorted(p for p in os.listdir(target) if p.startswith("part-"))
    assert parts == ["part-p0.csv.gz", "part-p1.csv.gz", "part-p2.csv.gz"]
    assert gzip.decompress((target / parts[0]).read_bytes()).startswith(b'"id","x","tag"')
    assert open_source(str(target)).read_all().sort_by("id").equals(table)


def test_csv_with_delimiter(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("id;name\n1;a,b\n2;c\n")
    got = open_source(str(path), delimiter=";").read_all()
    assert got.to_pylist() == [{"id": 1, "name": "a,b"}, {"id": 2, "name": "c"}]


def test_foreign_csv_round_trip_is_lossy_but_value_exact(tmp_path):
    """A CSV without our manifest has its types inferred; values survive a cast back."""
    table = typed_table()
    pacsv.write_csv(table, tmp_path / "typed.csv")
    got = open_source(str(tmp_path / "typed.csv")).read_all()
    assert got.schema.field("amount").type == pa.float64()  # CSV has no decimal type
    assert got.cast(table.schema).to_pylist() == table.to_pylist()


# -- reading: schemas, partitions, estimates -------------------------------------------------------
def test_csv_schema_from_first_file_applies_to_all(tmp_path):
    (tmp_path / "a.csv").write_text("id,score\n1,0.5\n2,1.5\n")
    # On its own this file would infer score as null (empty) and id as int64.
    (tmp_path / "b.csv").write_text("id,score\n3,\n4,\n")
    source = open_source(str(tmp_path))
    schemas = {source.read(p).schema for p in source.partitions(10)}
    assert schemas == {pa.schema([("id", pa.int64()), ("score", pa.float64())])}


def test_parquet_schemas_are_unified(tmp_path):
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32())}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [3], "extra": ["x"]}), tmp_path / "b.parquet")
    source = open_source(str(tmp_path))
    assert source.schema() == pa.schema([("id", pa.int64()), ("extra", pa.string())])
    got = source.read_all().sort_by("id")
    assert got.to_pylist() == [
        {"id": 1, "extra": None},
        {"id": 2, "extra": None},
        {"id": 3, "extra": "x"},
    ]


def test_parquet_conflicting_types_name_the_files(tmp_path):
    pq.write_table(pa.table({"id": [1]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": pa.array([[1]])}), tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"'id'.*a\.parquet.*b\.parquet"):
        open_source(str(tmp_path)).schema()


def test_big_parquet_file_splits_by_row_groups(tmp_path):
    pq.write_table(id_table(10_000), tmp_path / "big.parquet", row_group_size=1_000)
    source = open_source(str(tmp_path / "big.parquet"))
    parts = source.partitions(2_500)
    assert [p.id for p in parts] == ["big.rg0-2", "big.rg3-5", "big.rg6-8", "big.rg9-9"]
    assert [p.rows_estimate for p in parts] == [3_000, 3_000, 3_000, 1_000]
    assert source.read(parts[1])["id"].to_pylist() == list(range(3_000, 6_000))
    batches = list(source.iter_batches(parts[3], columns=["x"], batch_rows=300))
    assert [b.num_rows for b in batches] == [300, 300, 300, 100]
    assert batches[0].schema.names == ["x"]
    # Below the threshold the file stays one partition.
    assert [p.id for p in source.partitions(10_000)] == ["big"]


def test_mixed_partitions_cover_each_row_once(tmp_path):
    pq.write_table(id_table(8_000), tmp_path / "big.parquet", row_group_size=500)
    for i in range(3):
        pq.write_table(id_table(100, start=8_000 + 100 * i), tmp_path / f"small{i}.parquet")
    source = open_source(str(tmp_path))
    parts = source.partitions(2_000)
    assert len(parts) == 4 + 3
    assert len({p.id for p in parts}) == len(parts)
    assert sum(p.rows_estimate for p in parts) == 8_300 == source.count_estimate()
    assert np.array_equal(ids_of_parts(source, parts), np.arange(8_300))


def ids_of_parts(source, parts) -> np.ndarray:
    return np.sort(np.concatenate([source.read(p, ["id"])["id"].to_numpy() for p in parts]))


def test_csv_count_estimate_is_close(tmp_path):
    for i in range(4):
        pacsv.write_csv(id_table(5_000, start=5_000 * i), tmp_path / f"f{i}.csv")
    estimate = open_source(str(tmp_path)).count_estimate()
    assert 0.8 * 20_000 < estimate < 1.25 * 20_000


def test_csv_iter_batches_stream_in_small_batches(tmp_path):
    pacsv.write_csv(id_table(50_000), tmp_path / "f.csv")
    source = open_source(str(tmp_path / "f.csv"))
    (part,) = source.partitions(1_000_000)
    batches = list(source.iter_batches(part, columns=["id"], batch_rows=4_096))
    assert max(b.num_rows for b in batches) <= 4_096
    assert np.array_equal(np.concatenate([b["id"].to_numpy() for b in batches]), np.arange(50_000))


def test_source_pickles_and_reads_in_another_process(s3, tmp_path):
    """A worker process inherits the S3 settings from the environment and reads by itself."""
    url = s3.new_prefix()
    write_table(url, id_table(3_000), parts=3)
    source = open_source(url)
    payload = tmp_path / "task.pkl"
    payload.write_bytes(pickle.dumps((source, source.partitions(1_000))))
    code = (
        "import pickle, sys; source, parts = pickle.load(open(sys.argv[1], 'rb')); "
        "print(sum(source.read(p).num_rows for p in parts))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(payload)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "3000"


# -- reading: errors -----------------------------------------------------------------------------
def test_missing_file_dir_and_glob_name_the_path(tmp_path):
    with pytest.raises(SourceNotFoundError, match="nope.parquet"):
        open_source(str(tmp_path / "nope.parquet"))
    with pytest.raises(SourceNotFoundError, match="no_dir"):
        open_source(str(tmp_path / "no_dir"))
    with pytest.raises(SourceNotFoundError, match=r"no file matches .*\*\.csv"):
        open_source(str(tmp_path / "*.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="--format"):
        open_source(str(tmp_path / "empty"))
    with pytest.raises(SourceNotFoundError, match="no csv files"):
        open_source(str(tmp_path / "empty"), format="csv")


def test_s3_missing_key_and_bucket(s3):
    with pytest.raises(SourceNotFoundError, match=f"s3://{s3.bucket}/missing/x.csv"):
        open_source(s3.url("missing/x.csv"))
    for url in ["s3://no-such-bucket-x/a.csv", "s3://no-such-bucket-x/p/*.csv"]:
        with pytest.raises(SourceNotFoundError, match="bucket 'no-such-bucket-x'"):
            open_source(url)
    with pytest.raises(SourceNotFoundError, match="bucket 'no-such-bucket-x'"):
        open_sink("s3://no-such-bucket-x/out/").open(id_table(1).schema)


def test_unknown_format_names_the_flag(tmp_path):
    pq.write_table(id_table(1), tmp_path / "a.parquet")
    with pytest.raises(UsageError, match="--format 'xlsx'"):
        open_source(str(tmp_path / "a.parquet"), format="xlsx")
    with pytest.raises(UsageError, match="--format"):
        open_sink(str(tmp_path / "out"), format="json").open(id_table(1).schema)
    assert not (tmp_path / "out").exists()


def test_malformed_csv_row_names_file_and_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4,5\n6,7\n")
    source = open_source(str(path))
    with pytest.raises(DataError, match=r"bad\.csv.*Row #3: Expected 2 columns, got 3"):
        source.read_all()


def test_csv_value_of_wrong_type_names_file_row_and_column(tmp_path):
    (tmp_path / "a.csv").write_text("id,n\n1,10\n2,20\n")
    (tmp_path / "b.csv").write_text("id,n\n3,30\n4,forty\n")
    source = open_source(str(tmp_path))
    first, second = source.partitions(10)
    assert source.read(first).num_rows == 2
    with pytest.raises(DataError, match=r"b\.csv: row 3: column 'n' .*int64.*'forty'"):
        source.read(second)
    with pytest.raises(DataError, match=r"b\.csv: row 3"):
        list(source.iter_batches(second))


def test_csv_files_with_different_headers(tmp_path):
    (tmp_path / "a.csv").write_text("id,n\n1,10\n")
    (tmp_path / "b.csv").write_text("id,m\n3,30\n")
    source = open_source(str(tmp_path))
    with pytest.raises(DataError, match=r"b\.csv does not have the columns"):
        source.read_all()


def test_missing_column_is_named(tmp_path):
    pq.write_table(id_table(3), tmp_path / "a.parquet")
    source = open_source(str(tmp_path / "a.parquet"))
    with pytest.raises(MissingColumnError, match="'dep_delay'"):
        source.read(source.partitions(10)[0], columns=["dep_delay"])


def test_not_a_parquet_file(tmp_path):
    (tmp_path / "a.parquet").write_text("hello")
    with pytest.raises(DataError, match=r"a\.parquet is not a readable Parquet file"):
        open_source(str(tmp_path / "a.parquet")).schema()


@pytest.fixture(scope="module")
def strict_s3():
    """A second moto server, in its own process, that checks credentials (the session server
    does not: moto accepts any key unless INITIAL_NO_AUTH_ACTION_COUNT is set, a process-wide
    setting)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("strict moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_wrong_s3_credentials(strict_s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", strict_s3)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    with pytest.raises(ConnectionFailedError, match="s3://data/flights.csv") as info:
        open_source("s3://data/flights.csv")
    assert "wrong-secret-value" not in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ConnectionFailedError, match="credentials"):
        open_sink("s3://data/out/").open(id_table(1).schema)


# -- writing ---------------------------------------------------------------------------------------
def test_sink_layout_and_manifest(tmp_path):
    target = tmp_path / "scores"
    write_table(str(target), id_table(100), parts=2)
    assert listing(target) == ["_manifest.json", "part-p0.parquet", "part-p1.parquet"]
    source = open_source(str(target))
    assert source.count_estimate() == 100
    assert [p.id for p in source.partitions(1_000)] == ["part-p0", "part-p1"]
    meta = pq.ParquetFile(target / "part-p0.parquet").metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_directory_suffix_picks_the_format(tmp_path):
    write_table(str(tmp_path / "out.csv") + "/", id_table(5))
    assert listing(tmp_path / "out.csv") == ["_manifest.json", "part-p0.csv"]
    text = (tmp_path / "out.csv" / "part-p0.csv").read_text()
    assert text.splitlines()[:2] == ['"id","x","tag"', '0,0,"0"']


def test_replace_never_mixes_old_and_new(tmp_path):
    target = str(tmp_path / "t")
    write_table(target, id_table(100), parts=2)
    stale = open_source(target)  # a reader that planned before the replace committed
    stale_parts = stale.partitions(1_000)
    write_table(target, id_table(30, start=1_000), if_exists="replace", parts=2)
    # The new parts never take the old names, so the stale plan finds nothing rather than
    # new rows under old names.
    for part in stale_parts:
        with pytest.raises(SourceNotFoundError):
            stale.read(part)
    assert np.array_equal(ids_of(open_source(target)), np.arange(1_000, 1_030))
    assert not [n for n in listing(target) if "staging" in n]
    # A further replace can use the plain names again.
    write_table(target, id_table(5), if_exists="replace")
    assert listing(target) == ["_manifest.json", "part-p0.parquet"]


def test_replace_refuses_a_folder_skfleet_did_not_write(tmp_path):
    """``mkdir -p v/sub && echo a > v/sub/x.csv && skfleet copy d.parquet --out v --if-exists
    replace`` removed v/sub; replacing a model store folder deleted a model's oof.parquet."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.csv").write_text("a\n")
    pq.write_table(id_table(5), tmp_path / "oof.parquet")
    before = listing(tmp_path)
    with pytest.raises(UsageError, match=r"replace refused: .* \(oof\.parquet, sub/x\.csv\)"):
        write_table(str(tmp_path), id_table(3, start=50), if_exists="replace")
    assert listing(tmp_path) == before


def test_replace_refuses_files_next_to_a_skfleet_output(tmp_path):
    target = tmp_path / "t"
    write_table(str(target), id_table(10))
    (target / "notes.txt").write_text("kept")
    with pytest.raises(UsageError, match=r"files skfleet did not write \(notes\.txt\)"):
        write_table(str(target), id_table(3, start=50), if_exists="replace")
    assert (target / "notes.txt").read_text() == "kept"
    assert open_source(str(target)).read_all().num_rows == 10


def test_append_to_foreign_directory(tmp_path):
    pacsv.write_csv(id_table(5), tmp_path / "old.csv")
    sink = open_sink(str(tmp_path), format="csv")
    table = open_source(str(tmp_path)).read_all()
    sink.open(table.schema, if_exists="append", run_id="r2")
    sink.write("p0", id_table(5, start=5).cast(table.schema))
    # Staged until commit: the directory still reads as before.
    assert open_source(str(tmp_path)).read_all().num_rows == 5
    sink.commit()
    assert np.array_equal(ids_of(open_source(str(tmp_path))), np.arange(10))
    assert listing(tmp_path) == ["_manifest.json", "old.csv", "part-p0-r2.csv"]


def test_abort_of_append_keeps_old_content(tmp_path):
    target = tmp_path / "t"
    write_table(str(target), id_table(10))
    before = listing(target)
    sink = open_sink(str(target))
    sink.open(id_table(0).schema, if_exists="append", run_id="r9")
    sink.write("p0", id_table(5, start=10))
    sink.abort()
    assert listing(target) == before
    assert open_source(str(target)).read_all().num_rows == 10


def test_lost_receipt_is_rebuilt_from_the_part(tmp_path):
    target = tmp_path / "t"
    table = id_table(50)
    sink = open_sink(str(target), format="csv")
    sink.open(table.schema, run_id="r1")
    sink.write("p0", table)
    # A worker died after publishing its part but before its receipt.
    os.remove(target / "_staging-r1" / "_rows" / "50-p0")
    assert sink.committed() == {}
    assert sink.write("p0", table) == 0
    assert sink.committed() == {"p0": 50}


# -- writing: errors leave the target untouched ---------------------------------------------------
def test_csv_sink_refuses_nested_columns_before_writing(tmp_path):
    target = tmp_path / "t.csv"
    schema = pa.schema([("id", pa.int64()), ("tags", pa.list_(pa.string()))])
    with pytest.raises(DataError, match="column 'tags'.*--format parquet"):
        open_sink(str(target)).open(schema)
    assert not target.exists()


def test_bad_partition_tables_write_nothing(tmp_path):
    target = tmp_path / "t"
    sink = open_sink(str(target))
    sink.open(id_table(0).schema, run_id="r1")
    before = listing(target)
    with pytest.raises(MissingColumnError, match="'tag'"):
        sink.write("p0", id_table(3).drop_columns(["tag"]))
    with pytest.raises(DataError, match="column 'x'"):
        sink.write("p0", id_table(3).set_column(1, "x", pa.array(["a", "b", "c"])))
    assert listing(target) == before
    # A compatible type is cast to the declared schema.
    assert sink.write("p0", id_table(3).set_column(1, "x", pa.array([1, 2, 3], pa.int32()))) == 3


def test_append_mismatches_leave_target_untouched(tmp_path):
    target = tmp_path / "t"
    write_table(str(target), id_table(10))
    before = listing(target)
    with pytest.raises(DataError, match="column 'x'"):
        write_table(str(target), id_table(1).set_column(1, "x", pa.array(["a"])), "append")
    with pytest.raises(DataError, match="columns"):
        write_table(str(target), id_table(1).drop_columns(["tag"]), "append")
    with pytest.raises(UsageError, match="--format"):
        write_table(str(target), id_table(1), "append", format="csv")
    assert listing(target) == before


def test_target_that_is_a_file(tmp_path):
    target = tmp_path / "scores.parquet"
    pq.write_table(id_table(2), target)
    with pytest.raises(TargetExistsError, match="scores.parquet"):
        open_sink(str(target)).open(id_table(0).schema)
    with pytest.raises(UsageError, match="is a file"):
        open_sink(str(target) + "/").open(id_table(0).schema, if_exists="replace")
    assert pq.read_table(target).num_rows == 2


# -- single-file outputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["scores.csv", "scores.parquet", "scores.csv.gz"])
def test_out_naming_a_file_writes_that_one_file(tmp_path, name):
    target = tmp_path / name
    write_table(str(target), id_table(30), parts=3)
    assert target.is_file()
    read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
    assert read(target)["id"].tolist() == list(range(30))  # partitions in order, header once
    assert sorted(os.listdir(tmp_path)) == sorted([name, f".{name}.skfleet.json"])


def test_single_file_replace_and_append(tmp_path):
    target = str(tmp_path / "scores.parquet")
    write_table(target, id_table(5))
    with pytest.raises(TargetExistsError, match="scores.parquet already exists"):
        write_table(target, id_table(5))
    write_table(target, id_table(3, start=10), "replace")
    write_table(target, id_table(2, start=20), "append")
    assert pq.read_table(target)["id"].to_pylist() == [10, 11, 12, 20, 21]


def test_existing_folder_without_slash_stays_a_folder(tmp_path):
    write_table(str(tmp_path / "out.csv") + "/", id_table(3))
    write_table(str(tmp_path / "out.csv"), id_table(2, start=3), "append")
    assert (tmp_path / "out.csv" / "_manifest.json").is_file()
    assert np.array_equal(np.sort(ids_of(open_source(str(tmp_path / "out.csv")))), np.arange(5))


def test_single_file_append_cut_short_after_the_file_is_not_applied_twice(tmp_path):
    target = tmp_path / "scores.csv"
    write_table(str(target), id_table(3))
    sink = open_sink(str(target))
    sink.open(id_table(0).schema, if_exists="append", run_id="late")
    sink.write("p0", id_table(2, start=3))
    staging = tmp_path / ".scores.csv.skfleet-staging-late"
    shutil.copytree(staging, tmp_path / "saved")
    sink.commit()
    # Killed after the file was written, before the staging was dropped: resume finds both.
    shutil.copytree(tmp_path / "saved", staging)
    shutil.rmtree(tmp_path / "saved")
    again = open_sink(str(target))
    again.open(id_table(0).schema, if_exists="append", run_id="late")
    assert again.committed() == {"p0": 2}
    again.commit()
    assert pd.read_csv(target)["id"].tolist() == [0, 1, 2, 3, 4]
    assert not staging.exists()


def test_unfinished_run_is_named_and_blocks_nothing(tmp_path):
    target = str(tmp_path / "t")
    crashed = open_sink(target)
    crashed.open(id_table(0).schema, run_id="crashed")
    crashed.write("p0", id_table(10))
    with pytest.raises(SourceNotFoundError, match="only the staging of unfinished run crashed"):
        open_source(target)
    write_table(target, id_table(3, start=100))
    assert np.array_equal(ids_of(open_source(target)), np.arange(100, 103))


def test_fail_run_does_not_publish_over_a_table_committed_meanwhile(tmp_path):
    target = str(tmp_path / "t")
    slow = open_sink(target)
    slow.open(id_table(0).schema, if_exists="fail", run_id="slow")
    slow.write("p0", id_table(10))
    write_table(target, id_table(3, start=100))
    with pytest.raises(TargetExistsError, match="nothing was published"):
        slow.commit()
    assert np.array_equal(ids_of(open_source(target)), np.arange(100, 103))


def test_sink_misuse(tmp_path):
    with pytest.raises(UsageError, match="glob"):
        FileSink(str(tmp_path / "*.csv"))
    sink = open_sink(str(tmp_path / "t"))
    with pytest.raises(UsageError, match="open"):
        sink.write("p0", id_table(1))
    with pytest.raises(UsageError, match="--if-exists"):
        sink.open(id_table(0).schema, if_exists="overwrite")
    sink.open(id_table(0).schema)
    with pytest.raises(UsageError, match="partition id"):
        sink.write("../evil", id_table(1))


@pytest.mark.parametrize("mode", ["replace", "append"])
def test_resume_over_an_existing_target(mode, tmp_path):
    target = str(tmp_path / "t")
    write_table(target, id_table(10))
    new = id_table(20, start=10)
    first = open_sink(target)
    first.open(new.schema, if_exists=mode, run_id="again")
    first.write("p0", new.slice(0, 8))
    # A new process resumes the run: p0 is known, only p1 remains.
    second = open_sink(target)
    second.open(new.schema, if_exists=mode, run_id="again")
    assert second.committed() == {"p0": 8}
    assert second.write("p0", new.slice(0, 8)) == 0
    assert second.write("p1", new.slice(8)) == 12
    assert open_source(target).read_all().num_rows == 10
    second.commit()
    expected = np.arange(10, 30) if mode == "replace" else np.arange(30)
    assert np.array_equal(ids_of(open_source(target)), expected)


def test_manifest_format_and_corruption(tmp_path):
    target = tmp_path / "t"
    write_table(str(target), id_table(4))
    with pytest.raises(UsageError, match="--format csv does not match the parquet files"):
        open_source(str(target), format="csv")
    (target / "_manifest.json").write_text("{not json")
    with pytest.raises(DataError, match=r"_manifest\.json is not a valid skfleet manifest"):
        open_source(str(target))


def test_target_rows_must_be_positive(tmp_path):
    pq.write_table(id_table(4), tmp_path / "a.parquet")
    with pytest.raises(UsageError, match="target_rows"):
        open_source(str(tmp_path)).partitions(0)


def test_resume_with_another_format_is_refused(tmp_path):
    target = str(tmp_path / "t")
    open_sink(target).open(id_table(0).schema, run_id="r1")
    with pytest.raises(UsageError, match="same --format"):
        open_sink(target, format="csv").open(id_table(0).schema, run_id="r1")


# -- bad files: one line naming the file, never a traceback ---------------------------------------
def test_truncated_gzip_csv_is_a_data_error(tmp_path):
    text = b"id,x\n" + b"".join(f"{i},{i * 0.5}\n".encode() for i in range(50_000))
    packed = gzip.compress(text)
    (tmp_path / "t.csv.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"t\.csv\.gz cannot be read: .*[Tt]runcated"):
        open_source(str(tmp_path / "t.csv.gz")).read_all()


def test_duplicate_header_csv_names_the_column(tmp_path):
    (tmp_path / "dup.csv").write_text("a,a,b\n1,2,3\n")
    with pytest.raises(DataError, match=r"dup\.csv has two columns named 'a'"):
        open_source(str(tmp_path / "dup.csv")).schema()


def test_duplicate_parquet_columns_name_the_column_not_incompatible_schemas(tmp_path):
    table = pa.table([pa.array([1]), pa.array([2])], names=["a", "a"])
    pq.write_table(table, tmp_path / "x.parquet")
    pq.write_table(pa.table({"a": [3]}), tmp_path / "y.parquet")
    with pytest.raises(DataError, match=r"x\.parquet has two columns named 'a'"):
        open_source(str(tmp_path)).schema()


def test_sink_refuses_duplicate_column_names_naming_one(tmp_path):
    schema = pa.schema([("a", pa.int64()), ("a", pa.int64())])
    with pytest.raises(DataError, match="two columns named 'a'"):
        open_sink(str(tmp_path / "t")).open(schema)
    assert not (tmp_path / "t").exists()


def test_csv_format_on_a_parquet_file_says_so_without_its_bytes(tmp_path):
    pq.write_table(id_table(5_000), tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet is a Parquet file, not CSV") as info:
        open_source(str(tmp_path / "p.parquet"), format="csv").schema()
    assert str(info.value).isprintable()


@pytest.mark.parametrize("mode", ["fail", "replace"])
def test_a_commit_cut_short_is_finished_by_resume(mode, tmp_path):
    target = tmp_path / "t"
    if mode == "replace":
        write_table(str(target), id_table(5, start=500), parts=2)
    sink = open_sink(str(target))
    sink.open(id_table(0).schema, if_exists=mode, run_id="r1")
    sink.write("p0", id_table(10))
    sink.write("p1", id_table(10, start=10))
    # Killed while the commit moved the parts in: p0 is in, p1 still staged, no manifest yet.
    final = "part-p0-r1.parquet" if mode == "replace" else "part-p0.parquet"
    os.replace(target / "_staging-r1" / "part-p0.parquet", target / final)
    again = open_sink(str(target))
    again.open(id_table(0).schema, if_exists=mode, run_id="r1")
    assert again.committed() == {"p0": 10, "p1": 10}
    again.commit()
    assert np.array_equal(ids_of(open_source(str(target))), np.arange(20))
    assert file_leftovers(str(target)) == []
    # A run resumes as it was opened.
    open_sink(str(target)).open(id_table(0).schema, if_exists="replace", run_id="r3")
    with pytest.raises(UsageError, match="opened with --if-exists replace"):
        open_sink(str(target)).open(id_table(0).schema, if_exists="append", run_id="r3")
