"""Feature contracts and the table encoder.

``TableEncoder`` learns a :class:`FeatureContract` (plain JSON: kinds, levels, fills, scales,
hashing, versions) from a table and encodes tables into float32 features under that contract,
counting drift in a :class:`DriftReport`.

``TRUSTED_TYPES`` lists the types of this package a fitted encoder holds, for
``skops.io.loads(data, trusted=...)``.

>>> import pyarrow as pa
>>> from skfleet.features import TableEncoder
>>> enc = TableEncoder().fit(pa.table({"origin": ["JFK", "EWR", "JFK"]}))
>>> enc.transform(pa.table({"origin": ["EWR"]}))
array([[0., 1., 0.]], dtype=float32)
"""

from skfleet.util.api_module import lazy_names

# Imported on first use: a client that only unpickles a worker's DriftReport or RowProfile must not
# pay for the encoder's scikit-learn import (about a second of a warm tcp:// run's client).
_LAZY = {
    "ColumnSpec": "skfleet.features.contract:ColumnSpec",
    "DriftReport": "skfleet.features.drift:DriftReport",
    "EncoderOptions": "skfleet.features.options:EncoderOptions",
    "FeatureContract": "skfleet.features.contract:FeatureContract",
    "FeatureInputError": "skfleet.features.errors:FeatureInputError",
    "FeatureParamError": "skfleet.features.errors:FeatureParamError",
    "FeatureWarning": "skfleet.features.errors:FeatureWarning",
    "HashSpec": "skfleet.features.contract:HashSpec",
    "TableEncoder": "skfleet.features.encoder:TableEncoder",
}

TRUSTED_TYPES: tuple[str, ...] = (
    "skfleet.features.encoder.TableEncoder",
    "skfleet.features.contract.FeatureContract",
    "skfleet.features.contract.ColumnSpec",
    "skfleet.features.contract.HashSpec",
    "skfleet.features.options.EncoderOptions",
    "skfleet.features.profile.TableProfile",
    "skfleet.features.profile.ColumnProfile",
    "skfleet.features.stats.Moments",
    "skfleet.features.stats.LevelCounts",
    "skfleet.features.stats.DistinctSketch",
)

__all__ = ["TRUSTED_TYPES", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_names(__name__, _LAZY)
