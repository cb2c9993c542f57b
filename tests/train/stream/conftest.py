"""Fixtures of the streaming suite: synthetic Parquet inputs and a model store per test."""

from __future__ import annotations

import pytest

from skfleet.store import ModelStore
from tests.train.stream.data import write_parquet


@pytest.fixture(scope="session")
def parquet_20k(tmp_path_factory):
    """20,000 rows in row groups of 2,000 (ten partitions of 2,000 rows)."""
    return write_parquet(tmp_path_factory.mktemp("stream") / "t20k.parquet", 20_000, 2_000)


@pytest.fixture
def store(tmp_path):
    return ModelStore(str(tmp_path / "models"))
