"""Models stored by an earlier release keep loading and score identically.

``tests/fixtures/legacy_models`` holds a batch, a segmented and a streamed model stored by skfleet
0.1.0 before its modules moved (``train/stream_*.py`` and ``predict.py`` became packages), with
the scores that release wrote for the first 50 rows. The artifacts name classes by import path
(``skfleet.features.encoder.TableEncoder``, ``skfleet.train.segments.SegmentRouter``, ...), so a
class moved without an alias would fail here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
    assert got.equals(expected.cast(got.schema)), f"{name}: scores differ from the stored ones"


@pytest.mark.parametrize(("name", "table"), CASES)
def test_a_model_stored_before_the_move_loads_without_trust(name, table, legacy_store):
    loaded = load_model(name, store=legacy_store)
    features = pq.read_table(FIXTURES / f"{table}.parquet")
    assert len(loaded.model.predict(features)) == features.num_rows
