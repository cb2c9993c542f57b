"""The duplicate-key check across partitions, done by the sink where the rows are: files (local,
on S3, merge tasks on Dask workers) and PostgreSQL (replace, append), with warn / error / ignore;
none of it when the source's primary key is the key; and the client keeps nothing per row."""

from __future__ import annotations

import os
import pickle
import re
import uuid
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest

from skfleet.copy import copy
from skfleet.data import open_sink, open_source
from skfleet.errors import DataError
from skfleet.predict.api import predict
from skfleet.predict.keys import DuplicateKeyWarning
from skfleet.predict.runs import RunStore
from skfleet.predict.scoring import plan_scoring
from skfleet.predict.task import ModelHandle, PartitionResult, PredictTask, predict_partition
from skfleet.store import ModelStore
from skfleet.util.progress import NullProgress
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import make_rows, save_regressor, write_parquet_dir

#: Ids that the extra file repeats, each once: 3 rows repeat a key, in different partitions.
REPEATED = (5, 1_500, 4_000)
EXAMPLE = re.compile(r"\(e\.g\. id=(5|1500|4000)\)")


@pytest.fixture
def repeats_in(tmp_path, rows):
    """The 6,000 test rows in three files, plus a file holding three of their ids again."""
    path = write_parquet_dir(tmp_path / "rep", rows, files=3, row_group_size=500)
    again = rows.take(list(REPEATED))
    pq.write_table(again, tmp_path / "rep" / "part-99.parquet")
    return path


def run(ref, data, out, store, **options):
    options.setdefault("engine", "local")
    options.setdefault("partition_rows", 1_000)
    return predict(ref, data, out, store=store.uri, **options)


def check_warns(ref, data, out, store, **options):
    with pytest.warns(DuplicateKeyWarning) as caught:
        result = run(ref, data, out, store, **options)
    message = str(caught[0].message)
    assert "3 rows repeat a key" in message and EXAMPLE.search(message), message
    assert result.duplicate_keys == 3 and result.partitions > 3
    assert read_sorted(out).num_rows == ROWS + len(REPEATED)


def check_error(ref, data, out, store, **options):
    with pytest.raises(DataError) as caught:
        run(ref, data, out, store, duplicate_keys="error", **options)
    line = str(caught.value)
    assert "\n" not in line and "3 rows repeat a key" in line and EXAMPLE.search(line), line


def check_ignore(ref, data, out, store, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateKeyWarning)
        result = run(ref, data, out, store, duplicate_keys="ignore", **options)
    assert result.duplicate_keys == 0 and result.rows_out == ROWS + len(REPEATED)


# -- files ---------------------------------------------------------------------------------------
def test_files_warn_error_ignore_on_local_disk(tmp_path, store, rows, repeats_in):
    ref = save_regressor(store, rows)
    check_error(ref, repeats_in, str(tmp_path / "e"), store)
    assert not (tmp_path / "e").exists()  # nothing published, the staging dropped
    check_warns(ref, repeats_in, str(tmp_path / "w"), store)
    assert not [p for p in os.listdir(tmp_path / "w") if p.startswith("_staging")]
    check_ignore(ref, repeats_in, str(tmp_path / "i"), store)


def test_files_merge_tasks_run_on_dask_workers(tmp_path, store, rows, repeats_in, dask_engine):
    ref = save_regressor(store, rows)
    check_warns(ref, repeats_in, str(tmp_path / "w"), store, engine=dask_engine)
    check_error(ref, repeats_in, str(tmp_path / "e"), store, engine=dask_engine)
    assert not (tmp_path / "e").exists()


def test_files_on_s3(s3, store, rows, repeats_in):
    ref = save_regressor(store, rows)
    check_warns(ref, repeats_in, s3.new_prefix() + "w/", store)
    out = s3.new_prefix() + "e/"
    check_error(ref, repeats_in, out, store)
    assert open_sink(out).store.fs.find(out) == []  # no part, no staging, no key run


def test_files_count_many_merge_tasks_like_one(tmp_path, store, rows, repeats_in, monkeypatch):
    """Split over many merge tasks (bucket ranges), the count and example are those of one."""
    from skfleet.data.files import keyruns

    ref = save_regressor(store, rows)
    monkeypatch.setattr(keyruns, "HASHES_PER_TASK", 50)
    check_warns(ref, repeats_in, str(tmp_path / "w"), store)


def test_a_resumed_run_checks_the_partitions_of_its_first_attempt(
    tmp_path, store, rows, repeats_in
):
    """The partitions committed before an interruption are compared with the rest (the client
    never had their keys on a resume; the sink's staging has them)."""
    from skfleet.data.files.sink import FileSink

    ref = save_regressor(store, rows)
    out = str(tmp_path / "o")
    calls = {"n": 0}
    real_commit = FileSink.commit

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real_commit(self)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateKeyWarning)
        FileSink.commit = interrupted
        try:
            with pytest.raises(KeyboardInterrupt):
                run(ref, repeats_in, out, store)
        finally:
            FileSink.commit = real_commit
    with pytest.warns(DuplicateKeyWarning, match="3 rows repeat a key"):
        result = run(ref, repeats_in, out, store, resume=True)
    assert result.duplicate_keys == 3 and result.skipped_partitions == result.partitions


# -- PostgreSQL ----------------------------------------------------------------------------------
def leftovers(pg) -> list[str]:
    with pg.connect() as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE '\\_skfleet\\_stage\\_%' "
            "OR relname LIKE '\\_skfleet\\_keys\\_%'"
        ).fetchall()
    return [r[0] for r in rows]


def test_postgres_warn_error_ignore(pg, store, rows, repeats_in):
    ref = save_regressor(store, rows)
    before = set(leftovers(pg))
    name = f"public.e_{uuid.uuid4().hex[:8]}"
    check_error(ref, repeats_in, pg.table_url(name), store)
    with pytest.raises(Exception, match="does not exist|not found"):
        open_source(pg.table_url(name)).schema()
    check_warns(ref, repeats_in, pg.table_url(f"public.w_{uuid.uuid4().hex[:8]}"), store)
    check_ignore(ref, repeats_in, pg.table_url(f"public.i_{uuid.uuid4().hex[:8]}"), store)
    assert set(leftovers(pg)) == before  # staging and key tables dropped


def test_postgres_append_compares_the_run_s_rows_only(pg, store, rows, parquet_in, repeats_in):
    """An append's rows join the old ones at once; only this run's rows are compared (old rows
    repeating a key of the new ones are the point of appending scores)."""
    ref = save_regressor(store, rows)
    before = set(leftovers(pg))
    out = pg.table_url(f"public.a_{uuid.uuid4().hex[:8]}")
    run(ref, parquet_in, out, store)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateKeyWarning)
        again = run(ref, parquet_in, out, store, if_exists="append")
    assert again.duplicate_keys == 0
    with pytest.warns(DuplicateKeyWarning) as caught:
        third = run(ref, repeats_in, out, store, if_exists="append")
    assert third.duplicate_keys == 3 and EXAMPLE.search(str(caught[0].message))
    assert read_sorted(out).num_rows == 3 * ROWS + len(REPEATED)
    assert set(leftovers(pg)) == before


# -- a source that keeps its keys unique ---------------------------------------------------------
class Notes(NullProgress):
    """Keeps the run's notes; Ctrl-C once ``stop_after`` partitions came back."""

    def __init__(self, stop_after: int = 0):
        self.notes: list[str] = []
        self.left = stop_after

    def note(self, message: str) -> None:
        self.notes.append(message)

    def advance(self, rows: int = 0, tasks: int = 1) -> None:
        if rows and self.left:
            self.left -= 1
            if not self.left:
                raise KeyboardInterrupt


def pg_source(pg, parquet_in, primary_key: bool) -> str:
    name = f"public.src_{uuid.uuid4().hex[:8]}"
    copy(parquet_in, pg.table_url(name), engine="local")
    if primary_key:
        with pg.connect() as conn:
            conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
    return pg.table_url(name)


@pytest.fixture
def no_key_checks(monkeypatch):
    """Any of the three checks running fails the run: the per-partition hashes, the append's
    key table and the sink's GROUP BY."""
    from skfleet.data.postgres import keycheck
    from skfleet.data.postgres.sink import PostgresSink
    from skfleet.predict import task

    def refuse(*args, **kwargs):
        raise AssertionError("a duplicate-key check ran")

    monkeypatch.setattr(task, "repeats", refuse)
    monkeypatch.setattr(keycheck, "repeated_keys", refuse)
    monkeypatch.setattr(PostgresSink, "track_keys", refuse)


NOTE = "keys (id) are unique in the source (its primary key or a unique index): not checked again"


def test_a_source_primary_key_skips_every_check(pg, store, rows, parquet_in, request):
    """Rows read from a table whose primary key is the key cannot repeat it: a replace and an
    append write what the checked runs write, without checking, and say so once."""
    ref = save_regressor(store, rows)
    checked = pg.table_url(f"public.c_{uuid.uuid4().hex[:8]}")
    plain = pg_source(pg, parquet_in, primary_key=False)
    for if_exists in ("fail", "append"):
        run(ref, plain, checked, store, if_exists=if_exists, duplicate_keys="error")
    keyed = pg_source(pg, parquet_in, primary_key=True)
    request.getfixturevalue("no_key_checks")
    out = pg.table_url(f"public.k_{uuid.uuid4().hex[:8]}")
    for if_exists in ("fail", "append"):
        notes = Notes()
        result = run(
            ref, keyed, out, store, if_exists=if_exists, duplicate_keys="error", progress=notes
        )
        assert notes.notes.count(NOTE) == 1, notes.notes
        assert result.duplicate_keys == 0 and result.rows_out == ROWS
        record = RunStore.for_model_store(store.uri).load(result.run_id)
        assert record.options["duplicate_keys"] == "error"  # as the user gave it
    same_scores(read_sorted(out), read_sorted(checked))
    assert read_sorted(out).num_rows == 2 * ROWS


def same_scores(got, want) -> None:
    """The same rows and the same scores, to the last bit (however the batches were laid out)."""
    assert got["id"].equals(want["id"])
    np.testing.assert_array_equal(got["prediction"], want["prediction"])


def test_a_resumed_run_from_a_keyed_source_skips_the_checks_again(
    pg, store, rows, parquet_in, no_key_checks
):
    """The tasks of the resumed attempt carry the mode it decided again."""
    ref = save_regressor(store, rows)
    keyed = pg_source(pg, parquet_in, primary_key=True)
    out = pg.table_url(f"public.r_{uuid.uuid4().hex[:8]}")
    first = Notes(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run(ref, keyed, out, store, if_exists="append", progress=first)
    assert NOTE in first.notes
    notes = Notes()
    result = run(ref, keyed, out, store, resume=True, progress=notes)
    assert result.resumed and 0 < result.skipped_partitions < result.partitions
    assert NOTE in notes.notes and result.rows_out == ROWS
    assert read_sorted(out)["id"].to_pylist() == rows["id"].to_pylist()  # each row once


# -- the client ----------------------------------------------------------------------------------
def test_a_partition_result_holds_nothing_per_row(tmp_path, rows):
    """What a worker sends back is the same size for 1,000 rows as for 100,000."""
    store = ModelStore(str(tmp_path / "models"))
    ref = save_regressor(store, rows)
    loaded = store.load(ref, trust=True)
    sizes = []
    for n in (1_000, 100_000):
        data = write_parquet_dir(tmp_path / f"in{n}", make_rows(n), files=1, row_group_size=n)
        source = open_source(data)
        plan = plan_scoring(loaded.model, loaded.metadata, source.schema())
        sink = open_sink(str(tmp_path / f"out{n}"))
        sink.open(plan.schema, run_id=f"r{n}")
        sink.track_keys(plan.keys)
        handle = ModelHandle(store.root, "reg", 1, loaded.content_hash, trust=True)
        (partition,) = source.partitions(n)
        result = predict_partition(PredictTask(handle, source, sink, partition, plan, "warn"))
        assert result.error is None and result.rows_written == n
        result.seconds = result.cpu_seconds = 0.0
        sizes.append(len(pickle.dumps(result)))
    assert abs(sizes[1] - sizes[0]) < 64, sizes
    assert "key_hashes" not in PartitionResult.__dataclass_fields__
