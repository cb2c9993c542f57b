"""Fixtures for the model store tests: fitted models and stores on local disk and on S3."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfleet.store import ModelStore


@pytest.fixture(scope="session")
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture
def pipeline(xy):
    X, y = xy
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


@pytest.fixture
def local_store(tmp_path):
    return ModelStore(str(tmp_path / "models"))


@pytest.fixture
def s3_store(request):
    s3 = request.getfixturevalue("s3")
    return ModelStore(s3.url(f"stores/{uuid.uuid4().hex}"))


@pytest.fixture(params=["local", "s3"])
def store(request):
    """The same behaviour is checked on local disk and on the S3 endpoint."""
    return request.getfixturevalue(f"{request.param}_store")
