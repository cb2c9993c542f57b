"""Fixtures of the predict suite: a model store per test and input tables on disk."""

from __future__ import annotations

import pytest

from skfleet.data import open_source
from skfleet.store import ModelStore
from tests.predict.models import make_rows, write_parquet_dir

ROWS = 6_000


@pytest.fixture(scope="session")
def rows():
    return make_rows(ROWS)


@pytest.fixture
def store(tmp_path):
    return ModelStore(str(tmp_path / "models"))


@pytest.fixture
def parquet_in(tmp_path, rows):
    """Three Parquet files of 2,000 rows in row groups of 500."""
    return write_parquet_dir(tmp_path / "in", rows, files=3, row_group_size=500)


def read_sorted(url: str, key: str = "id"):
    with open_source(url) as source:
        return source.read_all().sort_by(key)
