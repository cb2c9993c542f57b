"""``predict`` from and to Redshift (the stand-in, ``tests/services/redshift.py``; not Redshift):
``--resume`` after failed runs finishes the run exactly once, because an unchanged table unloads
into the same partitions (the same file names and sizes, hence the same ids)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from skfleet.copy import copy
from skfleet.data import open_source
from skfleet.errors import PartitionFailedError
from skfleet.predict import predict
from skfleet.store import ModelStore
from tests.predict.models import (
    FailsOnce,
    make_rows,
    save_custom,
    save_regressor,
    write_parquet_dir,
)


@pytest.mark.slow
def test_resume_after_failed_runs_writes_every_row_once(redshift, tmp_path):
    rows = make_rows(6_000)
    src = redshift.url(table=f"public.rows_{uuid.uuid4().hex[:8]}")
    copy(
        write_parquet_dir(tmp_path / "in", rows, files=2, row_group_size=1_000), src, engine="local"
    )
    store = ModelStore(str(tmp_path / "models"))
    # Fails the first time it sees each partition: every run commits one more partition.
    ref = save_custom(store, FailsOnce(marker_dir=str(tmp_path)), "flaky")
    out = redshift.url(table=f"public.scores_{uuid.uuid4().hex[:8]}")
    options = dict(store=store.uri, engine="local", retries=0, trust=True, partition_rows=1_000)
    with pytest.raises(PartitionFailedError, match="--resume"):
        predict(ref, src, out, **options)
    result, failures = None, 1
    while result is None and failures < 10:
        try:
            result = predict(ref, src, out, resume=True, **options)
        except PartitionFailedError:
            failures += 1
    assert result is not None, "the run never finished"
    assert failures >= 3 and result.resumed and result.skipped_partitions > 0
    with open_source(out) as source:
        got = source.read_all().sort_by("id")
    assert got["id"].to_pylist() == list(range(6_000))
    np.testing.assert_allclose(got["prediction"].to_numpy(), rows["x0"].to_numpy() * 2.0)


def test_repeated_keys_across_partitions_are_found_on_the_server(redshift, tmp_path):
    import pyarrow as pa

    from skfleet.errors import DataError, SourceNotFoundError

    once = make_rows(3_000)
    rows = pa.concat_tables([once, once])  # every id twice, in different unloaded files
    src = redshift.url(table=f"public.twice_{uuid.uuid4().hex[:8]}")
    copy(
        write_parquet_dir(tmp_path / "in", rows, files=2, row_group_size=1_000), src, engine="local"
    )
    store = ModelStore(str(tmp_path / "models"))
    ref = save_regressor(store, once)
    out = redshift.url(table=f"public.scores_{uuid.uuid4().hex[:8]}")
    with pytest.raises(DataError, match="id="):
        predict(ref, src, out, store=store.uri, engine="local", key="id", duplicate_keys="error")
    with pytest.raises(SourceNotFoundError):
        open_source(out).schema()  # nothing was published
