"""Hashing must equal scikit-learn's murmurhash3_32 and not depend on the process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils import murmurhash3_32

from skfleet.features.hashing import bucket_strings, hash_int64, hash_strings


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=30), st.integers(0, 2**32 - 1))
def test_strings_hash_like_sklearn(strings, seed):
    got = hash_strings(pa.array(strings, pa.string()), seed)
    assert got.tolist() == [murmurhash3_32(s, seed=seed, positive=True) for s in strings]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30), st.integers(0, 2**32 - 1))
def test_int64_hash_like_sklearn(values, seed):
    got = hash_int64(np.array(values, dtype=np.int64), seed)
    expected = [
        murmurhash3_32(v.to_bytes(8, "little", signed=True), seed=seed, positive=True)
        for v in values
    ]
    assert got.tolist() == expected


def test_sliced_chunked_and_dictionary_arrays_hash_alike():
    values = ["N14228", "N24211", "", "N619AA", "N14228", None]
    plain = hash_strings(pa.array(values))
    sliced = hash_strings(pa.array(["x", *values])[1:])
    chunked = hash_strings(pa.chunked_array([values[:2], values[2:]], pa.large_string()))
    dictionary = hash_strings(pa.array(values).dictionary_encode())
    assert plain.tolist() == sliced.tolist() == chunked.tolist() == dictionary.tolist()
    # A null hashes as the empty string (callers mask missing values themselves).
    assert plain[5] == plain[2]


def test_buckets_are_the_same_in_another_process_with_another_hash_seed():
    words = ["JFK", "LGA", "EWR", "delayed by weather"]
    code = (
        "import pyarrow as pa;from skfleet.features.hashing import bucket_strings;"
        f"print(bucket_strings(pa.array({words!r}), 1024, 7).tolist())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(bucket_strings(pa.array(words), 1024, 7).tolist())
