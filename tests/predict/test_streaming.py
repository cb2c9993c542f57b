"""A partition streams through its task: read a little ahead, scored batch by batch, and written
to PostgreSQL by one COPY that takes the rows as they come, still committed whole or not at all."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from skfleet.copy import copy
from skfleet.data import open_sink
from skfleet.errors import DataError
from skfleet.predict.api import predict
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import save_classifier
from tests.predict.test_predict import expected_scores


@pytest.fixture
def small_batches(monkeypatch):
    """Partitions of many batches: 2,000 rows in batches of 128."""
    monkeypatch.setattr("skfleet.predict.task.STREAM_BATCH_ROWS", 128)


def test_many_batches_per_partition_score_as_one_call(
    pg, store, rows, parquet_in, small_batches, tmp_path
):
    url = pg.table_url(f"public.rows_{uuid.uuid4().hex[:8]}")
    copy(parquet_in, url, engine="local")
    ref = save_classifier(store, rows)
    out = pg.table_url(f"public.scores_{uuid.uuid4().hex[:8]}")
    result = predict(ref, url, out, store=store.uri, engine="local", partition_rows=2_000)
    assert result.partitions == 3 and result.rows_out == ROWS
    assert read_sorted(out).equals(expected_scores(store, ref, rows))
    predict(ref, url, str(tmp_path / "out"), store=store.uri,
                     engine="local", partition_rows=2_000)  # fmt: skip
    assert read_sorted(str(tmp_path / "out")).equals(read_sorted(out))


def _sink(pg, schema: pa.Schema):
    sink = open_sink(pg.table_url(f"public.stream_{uuid.uuid4().hex[:8]}"))
    sink.open(schema, if_exists="fail", run_id=uuid.uuid4().hex[:12])
    return sink


def _copies_running(pg) -> int:
    with pg.connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY %FROM STDIN%' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def test_the_copy_takes_rows_while_later_batches_are_still_being_made(pg):
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64())])
    sink = _sink(pg, schema)
    seen = []

    def batches():
        for i in range(4):
            if i == 2:  # two batches produced: the server is already taking them
                seen.append(_copies_running(pg))
            yield pa.record_batch([pa.array(range(i * 10, i * 10 + 10)), pa.array([0.5] * 10)],
                                  schema=schema)  # fmt: skip

    checked = []
    assert sink.write_stream("p0", schema, batches(), before_commit=checked.append) == 40
    assert seen == [1] and checked == [40]
    assert sink.committed() == {"p0": 40}
    assert sink.write_stream("p0", schema, iter(()), before_commit=checked.append) == 0  # done
    sink.commit()
    assert read_sorted(sink.url)["id"].to_pylist() == list(range(40))


@pytest.mark.parametrize("where", ["batches", "before_commit"])
def test_an_error_while_streaming_writes_nothing(pg, where):
    schema = pa.schema([("id", pa.int64())])
    sink = _sink(pg, schema)

    def batches():
        yield pa.record_batch([pa.array([1, 2, 3])], schema=schema)
        if where == "batches":
            raise DataError("column 'id': refused in the second batch")
        yield pa.record_batch([pa.array([4])], schema=schema)

    def before_commit(rows: int) -> None:
        if where == "before_commit":
            raise DataError(f"refused after {rows} rows")

    with pytest.raises(DataError, match="refused"):
        sink.write_stream("p0", schema, batches(), before_commit=before_commit)
    assert sink.committed() == {}  # no ledger row: a retry writes the partition again
    assert sink.write_stream("p0", schema, iter([pa.record_batch([pa.array([7])], schema=schema)]))
    sink.commit()
    assert read_sorted(sink.url)["id"].to_pylist() == [7]


def test_a_key_repeated_in_another_batch_of_the_partition_fails_it(pg, store, rows, parquet_in,
                                                                  small_batches):  # fmt: skip
    url = pg.table_url(f"public.dups_{uuid.uuid4().hex[:8]}")
    copy(parquet_in, url, engine="local")
    table = url.split("table=")[1]
    with pg.connect() as conn:  # id 5 again, far from the first: another batch
        conn.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE id = 5")
    ref = save_classifier(store, rows)
    out = pg.table_url(f"public.dups_out_{uuid.uuid4().hex[:8]}")
    with pytest.raises(DataError, match="id=5"):
        predict(ref, url, out, store=store.uri, engine="local", partition_rows=10_000,
                duplicate_keys="error")  # fmt: skip
    with pg.connect() as conn:
        name = out.split("table=")[1].split(".")[1]
        assert conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is None
