"""``predict --incremental``: runs over a growing PostgreSQL table and a growing folder of Parquet
files score every row exactly once; a run killed mid-way (a worker SIGKILLed while later
partitions commit) leaves the watermark where it was and resumes with no gap and no duplicate;
bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.base import BaseEstimator, RegressorMixin

from skfleet.cli import main
from skfleet.copy import copy
from skfleet.data import open_sink, open_source
from skfleet.errors import DataError, PartitionFailedError, UsageError
from skfleet.predict.api import predict
from skfleet.predict.incremental import stream_name
from skfleet.predict.runs import RunStore
from tests.predict.models import make_rows, save_custom, save_regressor

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def with_ts(table: pa.Table) -> pa.Table:
    """``make_rows`` plus ``ts``, a timestamp that grows with ``id`` (one second apart)."""
    ts = [T0 + dt.timedelta(seconds=int(i)) for i in table["id"].to_pylist()]
    return table.append_column("ts", pa.array(ts, pa.timestamp("us", tz="UTC")))


def scored(url: str) -> pa.Table:
    with open_source(url) as source:
        return source.read_all().sort_by("id")


def full_scores(store, ref: str, table: pa.Table, tmp_path: Path) -> pa.Table:
    """The same rows scored in one ordinary run, in this process (what the runs must add up to)."""
    src = tmp_path / f"all-{uuid.uuid4().hex[:6]}.parquet"
    pq.write_table(table, src)
    out = tmp_path / f"all-{uuid.uuid4().hex[:6]}"
    predict(ref, str(src), str(out), store=store.uri, key="id", engine="local")
    return scored(str(out))


def watermark_of(out: str, model: str, source: str) -> dict | None:
    return open_sink(out).watermark(stream_name(model, source))


def run_ids(store) -> set[str]:
    return {r.run_id for r in RunStore.for_model_store(store.uri).records()}


# -- Parquet files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("out_name", ["scores", "scores.parquet", "scores.csv"])
def test_parquet_folder_three_runs_score_every_row_once(tmp_path, store, out_name):
    """Into a folder of parts (the watermark in its manifest) and into one file (in its
    record, beside it)."""
    rows = make_rows(4_000)
    ref = save_regressor(store, rows)
    src, out = tmp_path / "in", str(tmp_path / out_name)
    src.mkdir()
    pq.write_table(rows.slice(0, 1_500), src / "day1.parquet", row_group_size=500)
    first = predict(
        ref,
        str(src),
        out,
        store=store.uri,
        key="id",
        engine="local",
        incremental="id",
        partition_rows=500,
    )
    assert first.rows_in == 1_500 and first.incremental["watermark"] == 1_499
    # Grown by one file; the old one is skipped by its statistics, not read and filtered.
    pq.write_table(rows.slice(1_500, 1_000), src / "day2.parquet", row_group_size=500)
    second = predict(
        ref,
        str(src),
        out,
        store=store.uri,
        key="id",
        engine="local",
        incremental="id",
        partition_rows=500,
    )
    assert second.rows_in == 1_000 and second.incremental["lower"] == 1_499
    record = RunStore.for_model_store(store.uri).load(second.run_id)
    assert all(p["id"].startswith("day2") for p in record.plan)
    # One file whose first row group is already scored: only the others are planned.
    pq.write_table(rows.slice(2_500, 1_500), src / "day3.parquet", row_group_size=500)
    third = predict(
        ref,
        str(src),
        out,
        store=store.uri,
        key="id",
        engine="local",
        incremental="id",
        partition_rows=500,
    )
    assert third.rows_in == 1_500 and third.incremental["watermark"] == 3_999
    result = scored(out)
    assert result["id"].to_pylist() == list(range(4_000))  # every row, once
    expected = full_scores(store, ref, rows, tmp_path)
    np.testing.assert_array_equal(result["prediction"], expected["prediction"])
    assert watermark_of(out, "reg", str(src))["rows"] == 4_000


def test_row_groups_straddling_the_watermark_are_filtered(tmp_path, store):
    rows = make_rows(1_000)
    ref = save_regressor(store, rows)
    src, out = tmp_path / "in", str(tmp_path / "scores")
    src.mkdir()
    pq.write_table(rows.slice(0, 300), src / "a.parquet", row_group_size=1_000)
    predict(ref, str(src), out, store=store.uri, key="id", engine="local", incremental="id")
    # A file whose one row group holds ids below and above the watermark is not new data
    # arriving below it only if those ids were scored: here 250..299 repeat, so it went back.
    pq.write_table(rows.slice(250, 750), src / "b.parquet", row_group_size=1_000)
    with pytest.raises(DataError, match=r"'id' .* went backwards: 50 row\(s\)"):
        predict(ref, str(src), out, store=store.uri, key="id", engine="local", incremental="id")
    os.remove(src / "b.parquet")
    pq.write_table(rows.slice(300, 700), src / "b.parquet", row_group_size=1_000)
    again = predict(ref, str(src), out, store=store.uri, key="id", engine="local", incremental="id")
    assert again.rows_in == 700
    assert scored(out)["id"].to_pylist() == list(range(1_000))


def test_nothing_new_is_a_quick_no_op(tmp_path, store):
    rows = make_rows(1_000)
    ref = save_regressor(store, rows)
    src, out = tmp_path / "in", tmp_path / "scores"
    src.mkdir()
    pq.write_table(rows, src / "a.parquet")
    predict(ref, str(src), str(out), store=store.uri, key="id", engine="local", incremental="id")
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    runs = run_ids(store)
    cli = CliRunner().invoke(
        main,
        [
            "predict",
            ref,
            str(src),
            "--out",
            str(out),
            "--store",
            store.uri,
            "--key",
            "id",
            "--incremental",
            "id",
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert cli.output.startswith("nothing new in") and "999" in cli.output
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert run_ids(store) == runs  # no run recorded, no cluster started


def test_new_model_version_needs_rescore_all(tmp_path, store):
    rows = make_rows(1_000)
    ref = save_regressor(store, rows)
    src, out = tmp_path / "in", str(tmp_path / "scores")
    src.mkdir()
    pq.write_table(rows.slice(0, 600), src / "a.parquet")
    predict(ref, str(src), out, store=store.uri, key="id", engine="local", incremental="id")
    pq.write_table(rows.slice(600, 400), src / "b.parquet")
    v2 = save_regressor(store, rows.slice(0, 500))  # reg@2
    with pytest.raises(UsageError, match=r"by reg@1, not reg@2; pass --rescore-all"):
        predict(v2, str(src), out, store=store.uri, key="id", engine="local", incremental="id")
    assert scored(out).num_rows == 600  # nothing written
    again = predict(
        v2,
        str(src),
        out,
        store=store.uri,
        key="id",
        engine="local",
        incremental="id",
        rescore_all=True,
    )
    assert again.rows_in == 1_000 and again.incremental["rescore_all"]
    assert scored(out).equals(full_scores(store, v2, rows, tmp_path))
    assert watermark_of(out, "reg", str(src))["model"]["version"] == 2


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("nope", "--incremental nope: column 'nope' is not in"),
        ("city", "column 'city' of .* is string, not orderable"),
        ("x0", "column 'x0' of .* is double, not orderable"),
    ],
)
def test_bad_column_is_one_line_and_writes_nothing(tmp_path, store, column, message):
    rows = make_rows(500)
    ref = save_regressor(store, rows)
    src, out = tmp_path / "in.parquet", tmp_path / "scores"
    pq.write_table(rows, src)
    cli = CliRunner().invoke(
        main,
        [
            "predict",
            ref,
            str(src),
            "--out",
            str(out),
            "--store",
            store.uri,
            "--incremental",
            column,
        ],
    )
    assert cli.exit_code == 2
    lines = cli.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), cli.output
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not out.exists() and not run_ids(store)


def test_nulls_in_the_column_are_refused(tmp_path, store):
    rows = make_rows(500)
    ref = save_regressor(store, rows)
    ids = pa.array([None if i % 100 == 0 else i for i in range(500)], pa.int64())
    table = rows.set_column(0, "id", ids)
    src, out = tmp_path / "in.parquet", tmp_path / "scores"
    pq.write_table(table, src)
    with pytest.raises(DataError, match=r"5 row\(s\) of .* have no 'id' value"):
        predict(ref, str(src), str(out), store=store.uri, engine="local", incremental="id")
    assert not out.exists()


def test_csv_and_flags_are_refused(tmp_path, store):
    rows = make_rows(100)
    ref = save_regressor(store, rows)
    src = tmp_path / "in.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(rows, src)
    with pytest.raises(UsageError, match="CSV files keep no column statistics"):
        predict(
            ref, str(src), str(tmp_path / "o"), store=store.uri, engine="local", incremental="id"
        )
    with pytest.raises(UsageError, match="--rescore-all goes with --incremental"):
        predict(ref, str(src), str(tmp_path / "o"), store=store.uri, rescore_all=True)
    with pytest.raises(UsageError, match="instead of --if-exists replace"):
        predict(
            ref,
            str(src),
            str(tmp_path / "o"),
            store=store.uri,
            incremental="id",
            if_exists="replace",
        )
    assert not (tmp_path / "o").exists()


# -- a run killed mid-way -----------------------------------------------------------------------


class KillsWhile(RegressorMixin, BaseEstimator):
    """``2 * x0``; while ``marker`` exists, a batch holding x0 == ``value`` waits ``delay``
    seconds (the other partitions commit meanwhile) and then SIGKILLs the process scoring it."""

    def __init__(self, marker: str = "", value: float = 0.0, delay: float = 0.0):
        self.marker = marker
        self.value = value
        self.delay = delay

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        x0 = np.asarray(X["x0"], dtype=np.float64)
        if os.path.exists(self.marker) and (x0 == self.value).any():
            time.sleep(self.delay)
            os.kill(os.getpid(), signal.SIGKILL)
        return x0 * 2.0


def _killer_rows(n: int, start: int, sentinel: float) -> pa.Table:
    table = make_rows(n, start=start)
    x0 = table["x0"].to_numpy().copy()
    x0[0] = sentinel  # in the first partition of the run
    return table.set_column(1, "x0", pa.array(x0))


def test_killed_run_keeps_the_watermark_and_resumes_exactly_once(tmp_path, store):
    marker = tmp_path / "kill"
    ref = save_custom(store, KillsWhile(str(marker), 1e6, delay=3.0), "killer")
    src, out = tmp_path / "in", str(tmp_path / "scores")
    src.mkdir()
    old, new = make_rows(1_000), _killer_rows(2_000, 1_000, 1e6)
    pq.write_table(old, src / "a.parquet")
    options = dict(store=store.uri, key="id", incremental="id", trust=True, partition_rows=500)
    predict(ref, str(src), out, engine="local", **options)
    pq.write_table(new, src / "b.parquet", row_group_size=500)
    marker.touch()
    with pytest.raises(PartitionFailedError, match="--resume"):
        predict(ref, str(src), out, engine="processes:2", retries=0, **options)
    (record,) = [r for r in RunStore.for_model_store(store.uri).records() if r.status == "failed"]
    # Later partitions committed while the first one's worker waited to be killed...
    staged = list(Path(out).glob("_staging-*/_rows/*"))
    assert staged, "no partition committed before the kill"
    assert not any("rg0-0" in p.name for p in staged)
    # ... and the stored watermark has not moved past the one that did not.
    assert watermark_of(out, "killer", str(src))["value"] == {"int": 999}
    assert scored(out).num_rows == 1_000
    with pytest.raises(UsageError, match=f"unfinished; finish it with --resume {record.run_id}"):
        predict(ref, str(src), out, engine="local", **options)
    marker.unlink()
    done = predict(ref, str(src), out, engine="processes:2", resume=record.run_id, **options)
    assert done.resumed and done.skipped_partitions == len(staged)
    result = scored(out)
    assert result["id"].to_pylist() == list(range(3_000))
    x0 = np.concatenate([old["x0"].to_numpy(), new["x0"].to_numpy()])
    np.testing.assert_allclose(result["prediction"].to_numpy(), x0 * 2.0)
    assert watermark_of(out, "killer", str(src))["value"] == {"int": 2_999}


# -- PostgreSQL ------------------------------------------------------------------------------------


def _append_pg(pg_url: str, table: pa.Table, tmp_path: Path) -> None:
    path = tmp_path / f"chunk-{uuid.uuid4().hex[:6]}.parquet"
    pq.write_table(table, path)
    copy(str(path), pg_url, engine="local", if_exists="append")


def test_postgres_three_runs_over_a_growing_table(pg, tmp_path, store):
    rows = with_ts(make_rows(5_000))
    ref = save_regressor(store, make_rows(5_000))
    name = f"public.events_{uuid.uuid4().hex[:8]}"
    src = pg.table_url(name)
    out = pg.table_url(f"public.scores_{uuid.uuid4().hex[:8]}")
    options = dict(store=store.uri, key="id", engine="local", incremental="ts", partition_rows=600)
    _append_pg(src, rows.slice(0, 2_000), tmp_path)
    first = predict(ref, src, out, **options)
    assert first.rows_in == 2_000 and first.partitions > 1
    _append_pg(src, rows.slice(2_000, 1_500), tmp_path)
    second = predict(ref, src, out, **options)
    assert second.rows_in == 1_500
    assert second.incremental["lower"] == (T0 + dt.timedelta(seconds=1_999)).isoformat()
    assert predict(ref, src, out, **options).run_id == ""  # nothing new
    _append_pg(src, rows.slice(3_500, 1_500), tmp_path)
    third = predict(ref, src, out, **options)
    assert third.rows_in == 1_500
    result = scored(out)
    assert result["id"].to_pylist() == list(range(5_000))
    expected = full_scores(store, ref, rows.drop_columns(["ts"]), tmp_path)
    # Equal to the last bit, though the runs' batches were not the full run's.
    np.testing.assert_array_equal(result["prediction"], expected["prediction"])
    state = watermark_of(out, "reg", src)
    assert state["rows"] == 5_000 and pg.password not in json.dumps(state)
    # A row arriving below the watermark is counted and refused; nothing is written.
    _append_pg(src, rows.slice(10, 3), tmp_path)
    _append_pg(src, rows.slice(4_999, 1), tmp_path)
    with pytest.raises(DataError, match=r"'ts' .* went backwards: 4 row\(s\)"):
        predict(ref, src, out, **options)
    assert scored(out).num_rows == 5_000


def test_postgres_query_with_key_ranges_covers_only_the_new_range(pg, tmp_path, store):
    rows = make_rows(3_000)
    ref = save_regressor(store, rows)
    name = f"events_{uuid.uuid4().hex[:8]}"
    table_url = pg.table_url(f"public.{name}")
    _append_pg(table_url, rows.slice(0, 1_000), tmp_path)
    src = pg.url(query=f"SELECT * FROM public.{name}", key="id")
    out = str(tmp_path / "scores")
    options = dict(store=store.uri, key="id", engine="local", incremental="id", partition_rows=400)
    predict(ref, src, out, **options)
    _append_pg(table_url, rows.slice(1_000, 2_000), tmp_path)
    second = predict(ref, src, out, **options)
    assert second.rows_in == 2_000 and second.partitions == 5
    assert scored(out)["id"].to_pylist() == list(range(3_000))


def test_postgres_killed_run_resumes_exactly_once(pg, tmp_path, store):
    """A later run into a PostgreSQL table stages its partitions: the ones committed before the
    kill are in the ledger but not in the table, the watermark has not moved, --resume adds
    the rest, and rows and watermark go in together."""
    marker = tmp_path / "kill"
    ref = save_custom(store, KillsWhile(str(marker), 1e6, delay=3.0), "killer")
    src = pg.table_url(f"public.events_{uuid.uuid4().hex[:8]}")
    out = pg.table_url(f"public.scores_{uuid.uuid4().hex[:8]}")
    old, new = make_rows(1_000), _killer_rows(2_000, 1_000, 1e6)
    options = dict(store=store.uri, key="id", incremental="id", trust=True, partition_rows=400)
    _append_pg(src, old, tmp_path)
    predict(ref, src, out, engine="local", **options)
    _append_pg(src, new, tmp_path)
    marker.touch()
    with pytest.raises(PartitionFailedError, match="--resume"):
        predict(ref, src, out, engine="processes:2", retries=0, **options)
    (record,) = [r for r in RunStore.for_model_store(store.uri).records() if r.status == "failed"]
    with pg.connect() as conn:
        done_ids = [
            r[0]
            for r in conn.execute(
                "SELECT partition_id FROM skfleet.skfleet_ledger WHERE run_id = %s",
                [record.run_id],
            )
        ]
    # Later partitions committed while the first one's worker waited to be killed...
    assert done_ids and not any(p.startswith("range-00000-") for p in done_ids)
    # ... and neither the rows nor the watermark moved past the one that did not.
    assert scored(out).num_rows == 1_000
    assert watermark_of(out, "killer", src)["value"] == {"int": 999}
    marker.unlink()
    done = predict(ref, src, out, engine="processes:2", resume=record.run_id, **options)
    assert done.resumed and done.skipped_partitions == len(done_ids) and done.rows_out == 2_000
    result = scored(out)
    assert result["id"].to_pylist() == list(range(3_000))
    x0 = np.concatenate([old["x0"].to_numpy(), new["x0"].to_numpy()])
    np.testing.assert_allclose(result["prediction"].to_numpy(), x0 * 2.0)
    assert watermark_of(out, "killer", src)["value"] == {"int": 2_999}


def test_cli_reports_the_range_and_refuses_backwards_rows_in_one_line(tmp_path, store):
    rows = make_rows(1_000)
    ref = save_regressor(store, rows)
    src, out = tmp_path / "in", tmp_path / "scores"
    src.mkdir()
    pq.write_table(rows.slice(0, 600), src / "a.parquet")
    args = [
        "predict",
        ref,
        str(src),
        "--out",
        str(out),
        "--store",
        store.uri,
        "--key",
        "id",
        "--engine",
        "local",
        "--incremental",
        "id",
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "incremental: id up to 599; watermark now 599" in first.output
    pq.write_table(rows.slice(600, 400), src / "b.parquet")
    second = CliRunner().invoke(main, [*args, "--json"])
    assert second.exit_code == 0, second.output
    inc = json.loads(second.output)["incremental"]
    assert inc == {
        "column": "id",
        "lower": 599,
        "upper": 999,
        "watermark": 999,
        "new_rows": 400,
        "rescore_all": False,
    }
    manifest = (out / "_manifest.json").read_bytes()
    runs = run_ids(store)
    pq.write_table(rows.slice(100, 7), src / "late.parquet")  # ids 100..106 arrive late
    third = CliRunner().invoke(main, args)
    assert third.exit_code == 2
    (line,) = third.output.strip().splitlines()
    assert "column 'id'" in line and "went backwards: 7 row(s)" in line, line
    assert (out / "_manifest.json").read_bytes() == manifest and run_ids(store) == runs
    assert not list(out.glob("_staging-*"))


def test_incremental_runs_on_dask_equal_in_process(pg, tmp_path, store, dask_engine):
    rows = with_ts(make_rows(3_000))
    ref = save_regressor(store, make_rows(3_000))
    src = pg.table_url(f"public.events_{uuid.uuid4().hex[:8]}")
    outs = {"local": str(tmp_path / "local"), "dask": str(tmp_path / "dask")}
    engines = {"local": "local", "dask": dask_engine}
    options = dict(store=store.uri, key="id", incremental="ts", partition_rows=500)
    for start, n in [(0, 1_800), (1_800, 1_200)]:
        _append_pg(src, rows.slice(start, n), tmp_path)
        for name, out in outs.items():
            result = predict(ref, src, out, engine=engines[name], **options)
            assert result.rows_in == n and result.partitions > 1
    assert scored(outs["dask"]).equals(scored(outs["local"]))
    assert scored(outs["dask"])["id"].to_pylist() == list(range(3_000))


def test_resuming_a_plain_run_with_incremental_is_refused(tmp_path, store):
    marker = tmp_path / "kill"
    marker.touch()
    ref = save_custom(store, KillsWhile(str(marker), 1e6), "killer")
    src, out = tmp_path / "in", str(tmp_path / "scores")
    src.mkdir()
    pq.write_table(_killer_rows(1_000, 0, 1e6), src / "a.parquet", row_group_size=250)
    options = dict(store=store.uri, key="id", trust=True, partition_rows=250)
    with pytest.raises(PartitionFailedError):
        predict(ref, str(src), out, engine="processes:2", retries=0, **options)
    with pytest.raises(UsageError, match="that run did not score --incremental"):
        predict(ref, str(src), out, engine="local", resume=True, incremental="id", **options)


def test_nanosecond_timestamps_keep_their_last_digit(tmp_path, store):
    """A watermark at ...20.000000001 must not become ...20.000000 (the row one nanosecond
    above it would be scored twice)."""
    rows = make_rows(4)
    ref = save_regressor(store, make_rows(100))
    base = 1_700_000_000_000_000_000
    ns = pa.array([base, base + 1, base + 2, base + 3], pa.timestamp("ns"))
    table = rows.append_column("ts", ns)
    src, out = tmp_path / "in", str(tmp_path / "scores")
    src.mkdir()
    pq.write_table(table.slice(0, 2), src / "a.parquet")
    options = dict(store=store.uri, key="id", engine="local", incremental="ts")
    assert predict(ref, str(src), out, **options).rows_in == 2
    pq.write_table(table.slice(2, 2), src / "b.parquet")
    assert predict(ref, str(src), out, **options).rows_in == 2
    assert predict(ref, str(src), out, **options).rows_in == 0
    assert scored(out)["id"].to_pylist() == [0, 1, 2, 3]
