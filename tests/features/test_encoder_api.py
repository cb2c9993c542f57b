"""The encoder's interface for the rest of skfleet: merge, contracts, persistence, policies."""

from __future__ import annotations

import importlib

import numpy as np
import pyarrow as pa
import pytest
import skops.io as sio

from skfleet.errors import UsageError
from skfleet.features import (
    TRUSTED_TYPES,
    EncoderOptions,
    FeatureContract,
    FeatureParamError,
    TableEncoder,
)
from tests.features.strategies import same_output

RICH = pa.table(
    {
        "carrier": ["UA", "AA", "UA", None, "B6", "DL"],
        "seats": pa.array([150, 180, 150, 100, 90, 90], pa.int64()),
        "fare": [10.5, None, 3.25, 7.0, 1e-3, 2.0],
        "wifi": [True, False, True, True, None, False],
        "when": pa.array([0, 10**15, 2 * 10**15, None, 5, 6], pa.timestamp("us", tz="UTC")),
        "tail": ["N1", "N2", "N3", "N4", "N5", "N6"],
        "remark": ["late crew at gate"] * 6,
    }
)


def rich_encoder() -> TableEncoder:
    return TableEncoder(
        hash=["tail"], text=["remark"], max_levels=2, options=EncoderOptions(hash_seed=3)
    ).fit(RICH)


def test_trusted_types_cover_what_skops_asks_for():
    enc = rich_encoder()
    data = sio.dumps(enc)
    # The contract and profile are stored as JSON text (skfleet.features.state); their classes
    # stay trusted for models stored as objects before, and for a state JSON cannot spell.
    assert sorted(sio.get_untrusted_types(data=data)) == [
        "skfleet.features.encoder.TableEncoder",
        "skfleet.features.options.EncoderOptions",
    ]
    loaded = sio.loads(data, trusted=list(TRUSTED_TYPES))
    assert same_output(loaded.transform(RICH), enc.transform(RICH))
    assert loaded.contract_ == enc.contract_
    for name in TRUSTED_TYPES:  # no stale names
        module, _, attr = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr)


def test_a_wide_encoder_is_stored_in_about_a_kilobyte_a_column():
    rng = np.random.default_rng(0)
    width = 2_000
    table = pa.table({f"c{i}": rng.normal(size=50) for i in range(width)})
    enc = TableEncoder().fit(table)
    data = sio.dumps(enc)
    assert len(data) < 1_500 * width  # as skops objects: about 24 KB a column
    loaded = sio.loads(data, trusted=list(TRUSTED_TYPES))
    assert loaded.contract_ == enc.contract_
    assert loaded.profile_.columns == enc.profile_.columns
    assert same_output(loaded.transform(table), enc.transform(table))


def test_encoder_rebuilt_from_a_contract_persists_with_skops_too():
    enc = TableEncoder.from_contract(FeatureContract.from_json(rich_encoder().contract_.to_json()))
    data = sio.dumps(enc)
    assert set(sio.get_untrusted_types(data=data)) <= set(TRUSTED_TYPES)
    loaded = sio.loads(data, trusted=list(TRUSTED_TYPES))
    assert same_output(loaded.transform(RICH), rich_encoder().transform(RICH))


def test_merge_refuses_different_parameters_and_contract_only_encoders():
    a = TableEncoder(max_levels=2).partial_fit(RICH)
    with pytest.raises(FeatureParamError, match="different parameters"):
        a.merge(TableEncoder(max_levels=3).partial_fit(RICH))
    # Lists and tuples of names are the same parameter.
    TableEncoder(exclude=["tail"]).partial_fit(RICH).merge(
        TableEncoder(exclude=("tail",)).partial_fit(RICH)
    )
    with pytest.raises(UsageError, match="contract alone"):
        a.merge(TableEncoder.from_contract(a.contract_))
    with pytest.raises(TypeError):
        a.merge("encoder")
    # Merging an unfitted encoder changes nothing; merging into one adopts the statistics.
    before = a.contract_
    assert a.merge(TableEncoder(max_levels=2)).contract_ == before
    fresh = TableEncoder(max_levels=2).merge(a)
    assert fresh.contract_.feature_names == before.feature_names


def test_columns_absent_from_some_chunks_count_as_missing_there():
    enc = TableEncoder()
    enc.partial_fit(pa.table({"a": [1.0, 2.0], "b": ["x", "y"]}))
    enc.partial_fit(pa.table({"a": [3.0]}))
    whole = TableEncoder().fit(
        pa.table({"a": [1.0, 2.0, 3.0], "b": pa.array(["x", "y", None], pa.string())})
    )
    assert enc.contract_ == whole.contract_
    assert enc.contract_.column("b").n_missing == 1 and enc.contract_.column("b").indicator


def test_with_policies_returns_a_fitted_copy():
    enc = rich_encoder()
    strict = enc.with_policies(on_missing_column="coerce", on_type_drift="error")
    assert strict.contract_.on_type_drift == "error" and enc.contract_.on_type_drift == "coerce"
    assert strict.on_missing_column == "coerce" and enc.on_missing_column == "error"
    out, report = strict.transform_with_drift(RICH.drop_columns(["fare"]))
    assert report.missing_columns == {"fare": 6}
    with pytest.raises(FeatureParamError):
        enc.with_policies(on_type_drift="sometimes")


def test_hashed_and_text_columns_treat_nan_and_null_as_missing():
    table = pa.table({"price": [1.5, np.nan, None, 2.5]})
    enc = TableEncoder(hash=["price"], hash_features=4).fit(table)
    out = enc.transform(table)
    names = list(enc.get_feature_names_out())
    assert out[:, names.index("price__missing")].tolist() == [0, 1, 1, 0]
    assert out[1, :4].sum() == 0 and out[2, :4].sum() == 0 and out[0, :4].sum() == 1


def test_feature_names_and_input_features_validation():
    enc = TableEncoder().fit(pa.table({"b": [1.0, 2.0], "a": ["x", "y"]}))
    assert enc.get_feature_names_out().tolist() == ["a=x", "a=y", "a=__other__", "b"]
    assert list(enc.feature_names_in_) == ["b", "a"] and enc.n_features_in_ == 2
    assert enc.get_feature_names_out(["b", "a"]).tolist()[-1] == "b"
    with pytest.raises(FeatureParamError, match="input_features"):
        enc.get_feature_names_out(["a", "b"])


def test_statistics_per_chunk_build_the_contract_of_one_fit():
    """statistics() of each chunk, merged, then from_statistics(): the encoder that partial_fit
    over the same chunks gives, without a contract built per chunk."""
    encoder = TableEncoder(hash_features=16)
    chunks = [RICH.slice(0, 2), RICH.slice(2, 3), RICH.slice(5)]
    merged = encoder.statistics(chunks[0])
    for chunk in chunks[1:]:
        merged = merged.merge(encoder.statistics(chunk))
    built = encoder.from_statistics(merged)
    fitted = TableEncoder(hash_features=16)
    for chunk in chunks:
        fitted.partial_fit(chunk)
    assert built.contract_.to_dict() == fitted.contract_.to_dict()
    assert not hasattr(encoder, "contract_")  # the template is left unfitted
    assert same_output(built.transform(RICH), fitted.transform(RICH))


def test_check_params_fails_without_data():
    with pytest.raises(FeatureParamError):
        TableEncoder(max_levels=-1).check_params()
