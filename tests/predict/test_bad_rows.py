"""``predict --bad-rows``: rows the feature contract refuses are left out, counted per reason and
(``quarantine``) written once each to a second output, with a worker killed mid-run too.

The table has 0.1% malformed rows of six kinds (``bad_rows_data.MALFORMED``). What the tests
expect comes from how the table was made, not from the code under test: the scores of the good
rows are those of an in-process scoring of the good rows alone, and the quarantine holds exactly
the malformed rows, each with the reason it was made with.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.copy import copy
from skfleet.data import open_source
from skfleet.errors import DataError, PartitionFailedError, UsageError
from skfleet.predict.api import predict
from skfleet.predict.quarantine import SCHEMA, VALUE_CHARS, default_url
from skfleet.predict.runs import RunStore
from skfleet.predict.scoring import plan_scoring, score_table
from tests.predict.bad_rows_data import INPUTS, MALFORMED, FailsOnCall, model, scoring_table
from tests.services.dask import start_process_cluster

ROWS = 12_000  # 12 malformed rows: 0.1%
PARTITION_ROWS = 1_000


def _save(store, delay: float = 0.0, fail=None) -> tuple[str, object]:
    fitted = model(delay, fail)
    meta = {
        "kind": "batch",
        "task": "classification",
        "target": "late",
        "key_columns": ["id"],
        "input_columns": INPUTS,
        "classes": fitted.classes_.tolist(),
        "label_type": "string",
        "features": fitted[0].contract_.to_dict(),
    }
    name = "failing" if fail else "slow" if delay else "bad"
    return str(store.save(name, fitted, meta)), fitted


@pytest.fixture(scope="module")
def data():
    return scoring_table(ROWS)


@pytest.fixture
def parquet_in(tmp_path, data):
    table, _ = data
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        part = table.slice(i * 4_000, 4_000)
        pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=PARTITION_ROWS)
    return str(folder)


def _expected(fitted, data) -> pa.Table:
    """The scores of the good rows, scored in this process with the table alone."""
    table, bad = data
    good = table.filter(pc.invert(pc.is_in(table["id"], pa.array(list(bad), pa.int64()))))
    plan = plan_scoring(fitted, {"kind": "batch", "input_columns": INPUTS}, good.schema, ["id"])
    return score_table(fitted, good, plan).table.sort_by("id")


def _read(url: str) -> pa.Table:
    with open_source(url) as source:
        return source.read_all()


def _check_scores(url: str, expected: pa.Table) -> None:
    got = _read(url).sort_by("id")
    assert got["id"].to_pylist() == expected["id"].to_pylist()  # every good row, once
    assert got["prediction"].to_pylist() == expected["prediction"].to_pylist()
    for name in ("proba_late", "proba_on_time"):  # to the last bit, whatever the partitions
        np.testing.assert_array_equal(got[name].to_numpy(), expected[name].to_numpy())


def _check_quarantine(url: str, data, run_id: str) -> None:
    """Exactly the malformed rows, once each, with their column, value and reason."""
    _, bad = data
    got = _read(url)
    assert got.schema.names == SCHEMA.names
    rows = got.to_pylist()
    assert sorted(json.loads(r["key"])["id"] for r in rows) == sorted(bad)
    for row in rows:
        reason = bad[json.loads(row["key"])["id"]]
        column, value = MALFORMED[reason]
        assert (row["reason"], row["column"], row["value"]) == (reason, column, str(value))
        assert row["run_id"] == run_id and row["partition"]
    by_reason = {reason: sum(1 for r in bad.values() if r == reason) for reason in MALFORMED}
    assert len(by_reason) >= 5 and all(by_reason.values())


def _counts(data) -> dict[str, int]:
    _, bad = data
    counts: dict[str, int] = {}
    for reason in bad.values():
        counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items()))


def test_files_to_files_on_dask_quarantines_exactly_the_bad_rows(
    tmp_path, store, data, parquet_in, dask_engine
):
    ref, fitted = _save(store)
    out = str(tmp_path / "scores") + "/"
    result = predict(
        ref,
        parquet_in,
        out,
        store=store.uri,
        engine=dask_engine,
        trust=True,
        partition_rows=PARTITION_ROWS,
        bad_rows="quarantine",
    )
    assert result.partitions == 12
    assert result.rows_in == ROWS and result.rows_out == ROWS - len(data[1])
    assert result.bad_rows == _counts(data)
    assert result.to_dict()["bad_rows"] == _counts(data)
    assert result.quarantine == default_url(out) == str(tmp_path / "scores.quarantine") + "/"
    _check_scores(out, _expected(fitted, data))
    _check_quarantine(result.quarantine, data, result.run_id)
    record = RunStore.for_model_store(store.uri).load(result.run_id)
    assert record.bad_rows == _counts(data) and record.result["bad_rows"] == _counts(data)


def test_postgres_to_postgres_quarantines_in_a_table_beside_the_output(
    pg, store, data, parquet_in, dask_engine
):
    ref, fitted = _save(store)
    name = f"bad_in_{uuid.uuid4().hex[:8]}"
    src = pg.table_url(f"public.{name}")
    copy(parquet_in, src, engine="local")
    out = pg.table_url(f"public.scores_{uuid.uuid4().hex[:8]}")
    result = predict(
        ref,
        src,
        out,
        store=store.uri,
        engine=dask_engine,
        trust=True,
        partition_rows=PARTITION_ROWS,
        bad_rows="quarantine",
    )
    assert result.rows_out == ROWS - len(data[1]) and result.bad_rows == _counts(data)
    assert result.quarantine.endswith("_quarantine") and pg.password not in result.quarantine
    _check_scores(out, _expected(fitted, data))
    _check_quarantine(default_url(out), data, result.run_id)
    record = RunStore.for_model_store(store.uri).load(result.run_id)
    assert record.options["quarantine"] == result.quarantine
    assert pg.password not in json.dumps(record.to_dict())


def test_skip_scores_the_good_rows_and_writes_no_quarantine(tmp_path, store, data, parquet_in):
    ref, fitted = _save(store)
    out = str(tmp_path / "scores.parquet")
    result = predict(
        ref, parquet_in, out, store=store.uri, engine="local", trust=True,
        partition_rows=PARTITION_ROWS, bad_rows="skip",
    )  # fmt: skip
    assert result.bad_rows == _counts(data) and result.quarantine is None
    _check_scores(out, _expected(fitted, data))
    assert not [name for name in os.listdir(tmp_path) if "quarantine" in name]


def test_error_is_the_default_and_leaves_nothing(tmp_path, store, parquet_in):
    ref, _ = _save(store)
    out = tmp_path / "scores"
    with pytest.raises(DataError, match="column '.*; --bad-rows skip or quarantine leaves"):
        predict(
            ref, parquet_in, str(out) + "/", store=store.uri, engine="local", trust=True,
            partition_rows=PARTITION_ROWS,
        )  # fmt: skip
    assert not out.exists()
    assert not list((Path(store.root) / "_runs").glob("*.json"))


def test_a_refusal_that_is_no_rows_fault_still_fails_the_run(tmp_path, store, data):
    """A column the contract refuses as a whole (here: missing) is not a bad row."""
    ref, _ = _save(store)
    table, _ = data
    path = tmp_path / "in.parquet"
    pq.write_table(table.drop_columns(["cabin"]), path)
    with pytest.raises(Exception, match="cabin"):
        predict(
            ref, str(path), str(tmp_path / "out/"), store=store.uri, engine="local", trust=True,
            bad_rows="skip",
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def _kill_one_then_add(cluster, after: float, log: list) -> None:
    time.sleep(after)
    live = [i for i, proc in enumerate(cluster.workers) if proc.poll() is None]
    if live:
        cluster.kill_worker(live[0])
        log.append(time.monotonic())
    cluster.add_worker()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_sigkilled_mid_run_leaves_every_row_once_in_both_outputs(
    tmp_path, store, pg, data, parquet_in
):
    # 12 partitions of about a second each on two workers: the kill at 2.5 s lands mid-run.
    ref, fitted = _save(store, delay=1.0)
    (tmp_path / "cluster").mkdir()
    cluster = start_process_cluster(2, tmp_path / "cluster")
    try:
        out = pg.table_url(f"public.killed_{uuid.uuid4().hex[:8]}")
        quarantine = str(tmp_path / "quarantine") + "/"  # another scheme than the scores
        kills: list = []
        killer = threading.Thread(target=_kill_one_then_add, args=(cluster, 2.5, kills))
        killer.start()
        try:
            result = predict(
                ref, parquet_in, out, store=store.uri, engine=cluster.address, trust=True,
                partition_rows=PARTITION_ROWS, retries=4, bad_rows=f"quarantine={quarantine}",
            )  # fmt: skip
            finished = time.monotonic()
        finally:
            killer.join()
    finally:
        cluster.stop()
    assert kills and kills[0] < finished, "no worker was killed during the run"
    assert result.partitions == 12 and result.rows_out == ROWS - len(data[1])
    assert result.bad_rows == _counts(data)
    _check_scores(out, _expected(fitted, data))
    _check_quarantine(quarantine, data, result.run_id)


def test_a_failed_run_resumes_into_the_same_quarantine_once(tmp_path, store, data, parquet_in):
    markers = tmp_path / "calls"
    markers.mkdir()
    # Four calls of the model per partition (predict and predict_proba, each on whole blocks
    # and on the last rows padded): the 17th is in the fifth of twelve partitions.
    ref, fitted = _save(store, fail=FailsOnCall(str(markers), call=17))
    out = str(tmp_path / "scores") + "/"
    common = dict(store=store.uri, engine="local", trust=True, partition_rows=PARTITION_ROWS)
    with pytest.raises(PartitionFailedError, match="call 17 fails"):
        predict(ref, parquet_in, out, retries=0, bad_rows="quarantine", **common)
    record = RunStore.for_model_store(store.uri).latest_unfinished(out)
    assert record.status == "failed" and 0 < record.partitions_done < 12
    with pytest.raises(UsageError, match="--bad-rows"):
        predict(ref, parquet_in, out, resume=record.run_id, bad_rows="skip", **common)
    result = predict(ref, parquet_in, out, resume=record.run_id, **common)
    assert result.resumed and result.skipped_partitions == record.partitions_done
    assert result.bad_rows == _counts(data)  # the first attempt's counts kept, none twice
    _check_scores(out, _expected(fitted, data))
    _check_quarantine(default_url(out), data, record.run_id)


def _cli(*args: str):
    return CliRunner().invoke(main, ["predict", *args])


def test_cli_prints_counts_per_reason_and_json(tmp_path, store, data, parquet_in):
    ref, _ = _save(store)
    out = str(tmp_path / "scores") + "/"
    common = [ref, parquet_in, "--store", store.uri, "--engine", "local", "--trust"]
    done = _cli(*common, "--out", out, "--bad-rows", "skip", "--partition-rows", "4000")
    assert done.exit_code == 0, done.output
    line = [x for x in done.output.splitlines() if x.startswith("scored")]
    assert len(line) == 1 and "12 bad values (not_whole_number: 2," in line[0]
    assert "skipped (--bad-rows skip)" in line[0]
    shown = _cli(
        *common, "--out", str(tmp_path / "q.parquet"), "--bad-rows", "quarantine", "--json"
    )
    assert shown.exit_code == 0, shown.output
    payload = json.loads(shown.output)
    assert payload["bad_rows"] == _counts(data)
    assert payload["quarantine"] == str(tmp_path / "q.parquet.quarantine") + "/"


@pytest.mark.parametrize("value", ["drop", "quarantine=", "skip=x"])
def test_cli_refuses_a_bad_flag_value_in_one_line(value):
    done = _cli("m", "data/", "--out", "x/", "--bad-rows", value)
    assert done.exit_code == 2
    assert "--bad-rows" in done.output and len(done.output.strip().splitlines()) == 1


def test_cli_unwritable_quarantine_is_one_line_and_writes_nothing(tmp_path, store, parquet_in):
    ref, _ = _save(store)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the quarantine's parent folder should be")
    out = tmp_path / "scores"
    done = _cli(
        ref, parquet_in, "--store", store.uri, "--engine", "local", "--trust",
        "--out", str(out) + "/", "--bad-rows", f"quarantine={blocker}/bad/",
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and "--bad-rows quarantine" in lines[0] and "not-a-folder" in lines[0]
    assert not out.exists() and blocker.read_text().startswith("a file")
    assert not list((Path(store.root) / "_runs").glob("*.json"))  # no run record
    assert sorted(os.listdir(tmp_path)) == ["in", "models", "not-a-folder"]


def test_cli_unwritable_postgres_quarantine_masks_the_password(tmp_path, store, pg, parquet_in):
    ref, _ = _save(store)
    out = tmp_path / "scores"
    assert pg.password  # the message must not show it
    bad = pg.table_url("no_such_schema.bad")
    done = _cli(
        ref, parquet_in, "--store", store.uri, "--engine", "local", "--trust",
        "--out", str(out) + "/", "--bad-rows", f"quarantine={bad}",
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and "--bad-rows quarantine" in lines[0], done.output
    assert pg.password not in done.output and "***" in done.output
    assert not out.exists() and not list((Path(store.root) / "_runs").glob("*.json"))


def test_values_are_cut_to_a_fixed_length(tmp_path, store):
    ref, _ = _save(store)
    table, _ = scoring_table(20, every=1_000)
    long = "9" * 150 + "x" * 300
    table = table.set_column(1, "fare", pa.array([long] + table["fare"].to_pylist()[1:]))
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    result = predict(
        ref, str(path), str(tmp_path / "out/"), store=store.uri, engine="local", trust=True,
        bad_rows="quarantine",
    )  # fmt: skip
    assert result.bad_rows == {"unparseable_number": 1}
    (row,) = _read(result.quarantine).to_pylist()
    assert row["value"] == long[:VALUE_CHARS] and json.loads(row["key"]) == {"id": 7}


def test_missing_values_a_model_that_encodes_its_own_input_refuses(tmp_path, store):
    """``TableFrame`` hands the model its columns unfilled: scikit-learn refuses NaN and
    infinities, so those rows are the bad ones (and with ``error`` the run fails, as before)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from skfleet.features.frame import TableFrame

    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 2))
    train = pa.table({"x0": x[:, 0], "x1": x[:, 1]})
    fitted = Pipeline([("check", TableFrame()), ("model", LogisticRegression())])
    fitted.fit(train, np.where(x[:, 0] > 0, "yes", "no").tolist())
    meta = {
        "kind": "batch", "task": "classification", "key_columns": ["id"],
        "input_columns": ["x0", "x1"], "classes": ["no", "yes"], "label_type": "string",
    }  # fmt: skip
    ref = str(store.save("frame", fitted, meta))
    x0 = rng.normal(size=50)
    x1 = rng.normal(size=50)
    x0[[3, 30]] = np.nan
    x1[17] = np.inf
    table = pa.table({"id": np.arange(50, dtype=np.int64), "x0": x0, "x1": x1})
    pq.write_table(table, tmp_path / "in.parquet")
    result = predict(
        ref, str(tmp_path / "in.parquet"), str(tmp_path / "out/"), store=store.uri,
        engine="local", bad_rows="quarantine",
    )  # fmt: skip
    assert result.bad_rows == {"missing_required": 2, "non_finite": 1}
    reasons = {
        (json.loads(r["key"])["id"], r["column"], r["reason"])
        for r in _read(result.quarantine).to_pylist()
    }
    assert reasons == {(3, "x0", "missing_required"), (30, "x0", "missing_required"),
                       (17, "x1", "non_finite")}  # fmt: skip
    good = table.filter(pa.array(~np.isin(np.arange(50), [3, 17, 30])))
    expected = fitted.predict_proba(good.select(["x0", "x1"]).to_pandas())[:, 1]
    got = _read(str(tmp_path / "out/")).sort_by("id")
    assert got["id"].to_pylist() == good["id"].to_pylist()
    np.testing.assert_allclose(got["proba_yes"].to_numpy(), expected, rtol=1e-12)
    with pytest.raises(PartitionFailedError, match="NaN"):
        predict(
            ref, str(tmp_path / "in.parquet"), str(tmp_path / "out2/"), store=store.uri,
            engine="local", retries=0,
        )  # fmt: skip


def test_quarantine_on_s3_and_a_missing_bucket_refused_before_anything(tmp_path, store, s3, data):
    ref, _ = _save(store)
    table, _ = data
    path = tmp_path / "in.parquet"
    pq.write_table(table.slice(0, 3_000), path)  # three malformed rows
    quarantine = s3.new_prefix() + "bad/"
    result = predict(
        ref, str(path), str(tmp_path / "out/"), store=store.uri, engine="local", trust=True,
        bad_rows=f"quarantine={quarantine}",
    )  # fmt: skip
    assert sum(result.bad_rows.values()) == 3 and result.quarantine == quarantine
    assert len(_read(quarantine)) == 3
    done = _cli(
        ref, str(path), "--store", store.uri, "--engine", "local", "--trust",
        "--out", str(tmp_path / "other/"), "--bad-rows", "quarantine=s3://no-such-bucket-x/q/",
    )  # fmt: skip
    assert done.exit_code == 2 and len(done.output.strip().splitlines()) == 1, done.output
    assert "--bad-rows quarantine" in done.output and "no-such-bucket-x" in done.output
    assert not (tmp_path / "other").exists()
    runs = sorted((Path(store.root) / "_runs").glob("*.json"))
    assert [p.stem for p in runs] == [result.run_id]  # the first run's record only
