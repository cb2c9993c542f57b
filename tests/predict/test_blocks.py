"""A row's score does not depend on which partition or batch holds it, to the last bit.

BLAS computes the last few rows of each call in another loop that adds in another order, so
without :mod:`skfleet.predict.blocks` the same rows split at other places (another engine,
worker count or ``partition_rows``) scored a last bit apart, for float32 and float64 features.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from skfleet.predict.api import predict
from skfleet.predict.scoring import plan_scoring, score_table
from tests.predict.conftest import read_sorted
from tests.predict.models import save_classifier, write_parquet_dir

# Starts and lengths of slices of the table, chosen to end at every position of a BLAS unroll.
SLICES = [(s, n) for s in (0, 1, 7, 28, 42, 49, 517) for n in (1, 2, 3, 5, 37, 63, 101, 399, 1001)]


def trained(store, rows):
    from skfleet.train import train

    result = train("logistic", rows, "label", keys=["id"], cv=0, name="m", store=store.uri,
                   report=False)  # fmt: skip
    return result.ref


@pytest.mark.parametrize(
    "save", [trained, save_classifier], ids=["contract_float32", "registered_pandas"]
)
def test_a_row_scores_the_same_bits_in_any_slice_of_the_table(store, rows, save):
    loaded = store.load(save(store, rows))
    plan = plan_scoring(loaded.model, loaded.metadata, rows.schema, ["id"])
    whole = score_table(loaded.model, rows, plan).table
    differing = [
        (s, n) for s, n in SLICES
        if not score_table(loaded.model, rows.slice(s, n), plan).table.equals(whole.slice(s, n))
    ]  # fmt: skip
    assert differing == []


def wide_rows(n: int = 6_000, columns: int = 30) -> pa.Table:
    """``id``, ``columns`` float64 features and a string label: wide enough that rows at the end
    of a BLAS call often round differently."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, columns))
    label = np.where(x @ rng.normal(size=columns) + rng.normal(size=n) > 0, "late", "on_time")
    return pa.table(
        {"id": np.arange(n), **{f"x{i}": x[:, i] for i in range(columns)}, "label": label.tolist()}
    )


@pytest.mark.parametrize("engine", ["local", "processes:2"])
def test_predict_output_is_the_same_whatever_the_partitions(tmp_path, store, engine):
    table = wide_rows()
    # Row groups of 61 rows: partitions end at every position of a BLAS unroll.
    parquet_in = write_parquet_dir(tmp_path / "in", table, files=2, row_group_size=61)
    ref = trained(store, table)
    outs = {}
    for partition_rows in (None, 61, 183):
        out = str(tmp_path / f"out-{partition_rows}")
        predict(ref, parquet_in, out, store=store.uri, engine=engine, partition_rows=partition_rows)
        outs[partition_rows] = read_sorted(out)
    assert outs[None].num_rows == table.num_rows
    assert outs[61].equals(outs[None]) and outs[183].equals(outs[None])
    assert np.isfinite(outs[None]["proba_late"].to_numpy()).all()
