"""The conformance kit for every scheme in the data registry, built-ins and entry points.

A scheme without a ``conformance_url_<scheme>`` fixture (see ``tests/data/conftest.py``) fails
``test_every_scheme_has_a_conformance_fixture``; the kit's tests skip for it.
"""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from skfleet.data.registry import registered_schemes
from skfleet.data.testing import ConformanceTarget, SourceSinkConformance, conformance_fixture_name

SCHEMES = registered_schemes()


def _lookup(request, scheme: str):
    try:
        return request.getfixturevalue(conformance_fixture_name(scheme))
    except pytest.FixtureLookupError:
        return None


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_has_a_conformance_fixture(scheme, request):
    if _lookup(request, scheme) is None:
        pytest.fail(
            f"data URL scheme {scheme!r} has no conformance fixture: define "
            f"{conformance_fixture_name(scheme)} in tests/data/conftest.py (see its docstring)"
        )


class TestConformance(SourceSinkConformance):
    """The whole kit, once per registered scheme."""

    @pytest.fixture(params=SCHEMES)
    def new_url(self, request):
        target = _lookup(request, request.param)
        if target is None:
            pytest.skip(f"no conformance fixture for {request.param!r}")
        if isinstance(target, ConformanceTarget):
            self.lossy_types = target.lossy_types
            if target.leftovers is not None:
                self.leftovers = target.leftovers
            if target.plant_foreign is not None:
                self.plant_foreign = target.plant_foreign
        return target


class TestKitItself:
    """The kit's own switches do what they say."""

    def test_lossy_types_compares_values_after_a_cast(self):
        written = pa.table(
            {"id": [1, 2], "amount": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(5, 2))}
        )
        read_back = pa.table({"id": [2, 1], "amount": pa.array([None, 1.5], pa.float64())})
        kit = SourceSinkConformance()
        with pytest.raises(AssertionError):
            kit.assert_same_rows(read_back, written)
        kit.lossy_types = True
        kit.assert_same_rows(read_back, written)
        wrong = read_back.set_column(1, "amount", pa.array([None, 2.5]))
        with pytest.raises(AssertionError):
            kit.assert_same_rows(wrong, written)
