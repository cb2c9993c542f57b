"""Model names and references."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skfleet.errors import UsageError
from skfleet.store import ModelRef, parse_model_ref, validate_name

NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", fullmatch=True).filter(
    lambda n: ".." not in n
)


@given(NAMES, st.integers(min_value=1, max_value=10**6))
def test_valid_names_round_trip(name, version):
    assert validate_name(name) == name
    assert parse_model_ref(name) == (name, None, None)
    assert parse_model_ref(f"{name}@latest") == (name, None, None)
    assert parse_model_ref(f"{name}@{version}") == (name, version, None)
    assert parse_model_ref(ModelRef(name, version, "x")) == (name, version, None)
    assert parse_model_ref(f"{name}@champion") == (name, None, "champion")


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "..",
        "a..b",
        "../etc",
        "/abs",
        "",
        ".hidden",
        "-x",
        "_x",
        "a b",
        "a@b",
        "é",
        "x" * 101,
    ],
)
def test_bad_names_are_refused_naming_the_name(name):
    with pytest.raises(UsageError) as info:
        validate_name(name)
    assert repr(name) in str(info.value)
    assert "\n" not in str(info.value)


def test_longest_allowed_name():
    assert validate_name("x" * 100) == "x" * 100


@pytest.mark.parametrize(
    "ref", ["m@0", "m@-1", "m@1x", "m@1.5", "m@", "m@1@2", "m@٣", "m@a/b", "m@a..b", "m@_x"]
)
def test_bad_versions_are_refused(ref):
    with pytest.raises(UsageError, match="bad version|not allowed"):
        parse_model_ref(ref)
