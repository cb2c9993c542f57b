"""Property tests: the encoder's output depends on the rows only, never on how they arrive."""

from __future__ import annotations

import pickle

import pyarrow as pa
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skfleet.features import TRUSTED_TYPES, FeatureContract, TableEncoder
from tests.features.strategies import (
    OPTIONS,
    chunkings,
    moments_close,
    same_output,
    split,
    tables,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encoder(**kw) -> TableEncoder:
    return TableEncoder(options=OPTIONS, max_levels=3, hash_features=8, **kw)


@SETTINGS
@given(tables(), st.booleans())
def test_transform_of_fit_rows_equals_fit_transform(table, sparse):
    enc = encoder(sparse=sparse)
    assert same_output(enc.fit_transform(table), encoder(sparse=sparse).fit(table).transform(table))


@SETTINGS
@given(tables(), st.randoms(use_true_random=False))
def test_output_independent_of_column_order_and_extra_columns(table, rnd):
    enc = encoder().fit(table)
    expected = enc.transform(table)
    names = list(table.column_names)
    rnd.shuffle(names)
    shuffled = table.select(names).append_column("unrelated", pa.array(range(table.num_rows)))
    out, report = enc.transform_with_drift(shuffled)
    assert same_output(out, expected)
    assert report.extra_columns == ["unrelated"] and not report
    # Fitting on the shuffled table learns the same contract (canonical column order).
    refit = encoder().fit(table.select(names))
    assert refit.contract_.feature_names == enc.contract_.feature_names
    assert same_output(refit.transform(table), expected)


@SETTINGS
@given(st.data())
def test_rows_encode_the_same_whatever_the_chunking(data):
    table = data.draw(tables(min_rows=2))
    cuts = data.draw(chunkings(table.num_rows))
    for sparse in (False, True):
        enc = encoder(sparse=sparse).fit(table)
        whole = enc.transform(table)
        start = 0
        for chunk in split(table, cuts):
            part = enc.transform(chunk)
            assert same_output(part, whole[start : start + chunk.num_rows])
            start += chunk.num_rows


def assert_same_statistics(chunked: TableEncoder, whole: TableEncoder) -> None:
    a, b = chunked.profile_, whole.profile_
    assert a.n_rows == b.n_rows and sorted(a.columns) == sorted(b.columns)
    for name, col in b.columns.items():
        other = a.columns[name]
        assert other.arrow_type == col.arrow_type, name
        assert other.n_missing == col.n_missing, name
        assert moments_close(other.moments, col.moments), (name, other.moments, col.moments)
        if col.levels is None:
            assert other.levels is None, name
        else:
            assert other.levels.ranked() == col.levels.ranked(), name
            assert other.levels.overflowed == col.levels.overflowed, name
    ca, cb = chunked.contract_, whole.contract_
    assert ca.feature_names == cb.feature_names
    for sa, sb in zip(ca.columns, cb.columns, strict=True):
        assert (sa.kind, sa.levels, sa.other_levels, sa.indicator) == (
            sb.kind,
            sb.levels,
            sb.other_levels,
            sb.indicator,
        )
        if sa.kind in ("categorical", "boolean"):
            assert sa.fill_value == sb.fill_value
        elif sa.kind == "datetime":  # the mean instant, rounded to the unit: may differ by one
            assert abs(sa.fill_value - sb.fill_value) <= 1


@SETTINGS
@given(st.data())
def test_partial_fit_over_chunks_equals_fit(data):
    table = data.draw(tables(min_rows=2))
    cuts = data.draw(chunkings(table.num_rows))
    chunked = encoder()
    for chunk in split(table, cuts):
        chunked.partial_fit(chunk)
    assert_same_statistics(chunked, encoder().fit(table))


@SETTINGS
@given(st.data())
def test_merge_of_workers_equals_fit_on_union(data):
    table = data.draw(tables(min_rows=2))
    cuts = data.draw(chunkings(table.num_rows))
    workers = []
    for chunk in split(table, cuts):
        workers.append(encoder().partial_fit(chunk))
    merged = encoder()
    for worker in reversed(workers):  # merge order does not matter either
        merged.merge(worker)
    assert_same_statistics(merged, encoder().fit(table))


@SETTINGS
@given(tables(), st.booleans())
def test_json_round_trip_preserves_output_bit_for_bit(table, sparse):
    enc = encoder(sparse=sparse).fit(table)
    text = enc.contract_.to_json()
    contract = FeatureContract.from_json(text)
    assert contract == enc.contract_
    assert contract.to_json() == text
    rebuilt = TableEncoder.from_contract(contract)
    assert same_output(rebuilt.transform(table), enc.transform(table))


@settings(max_examples=10, deadline=None)
@given(tables())
def test_pickle_and_skops_round_trip(table):
    enc = encoder().fit(table)
    expected = enc.transform(table)
    assert same_output(pickle.loads(pickle.dumps(enc)).transform(table), expected)
    data = sio.dumps(enc)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= set(TRUSTED_TYPES)
    loaded = sio.loads(data, trusted=list(TRUSTED_TYPES))
    assert same_output(loaded.transform(table), expected)
    # The loaded encoder keeps its statistics: it can go on fitting.
    loaded.partial_fit(table)
    assert loaded.profile_.n_rows == 2 * table.num_rows
