"""Models stored by an earlier release keep loading and score identically.

``tests/fixtures/legacy_models`` holds a batch, a segmented and a streamed model stored by skfleet
0.1.0 before its modules moved (``train/stream_*.py`` and ``predict.py`` became packages), with
the scores that release wrote for the first 50 rows. The artifacts name classes by import path
(``skfleet.features.encoder.TableEncoder``, ``skfleet.train.segments.SegmentRouter``, ...), so a
class moved without an alias would fail here.

The scores are the release's to the last bit but for the rounding of a float32 decision: that
release called the model on the 50 rows as they came, which BLAS computes in its loop for a
call's last rows; skfleet now calls it on whole blocks (:mod:`skfleet.util.blocks`), so a row
scores the same in any batch, and one row of each classifier's rounds its float32 logit
otherwise (relative 5e-7 and 4e-6 in a probability).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from skfleet.data import open_source
from skfleet.predict import predict
from skfleet.store import load_model

FIXTURES = Path(__file__).parent.parent / "fixtures" / "legacy_models"
CASES = [("batch", "classification"), ("segmented", "regression"), ("stream", "classification")]


@pytest.fixture
def legacy_store(tmp_path) -> str:
    """A copy: scoring writes run records into the store folder."""
    store = tmp_path / "store"
    shutil.copytree(FIXTURES / "store", store)
    return str(store)


@pytest.mark.parametrize(("name", "table"), CASES)
def test_a_model_stored_before_the_move_scores_identically(name, table, legacy_store, tmp_path):
    out = tmp_path / "scores"
    predict(name, str(FIXTURES / f"{table}.parquet"), str(out), store=legacy_store, engine="local")
    got = open_source(str(out)).read_all().sort_by("id")
    expected = pq.read_table(FIXTURES / f"expected_{name}.parquet")
    assert got.schema.names == expected.schema.names
    expected = expected.cast(got.schema)
    for column in got.schema.names:
        if column.startswith("proba_"):  # float32 decisions, see the module's docstring
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-5, atol=0)
        else:
            assert got[column].equals(expected[column]), f"{name}: {column} differs"


@pytest.mark.parametrize(("name", "table"), CASES)
def test_a_model_stored_before_the_move_loads_without_trust(name, table, legacy_store):
    loaded = load_model(name, store=legacy_store)
    features = pq.read_table(FIXTURES / f"{table}.parquet")
    assert len(loaded.model.predict(features)) == features.num_rows
