"""Feature contracts and the table encoder.

``TableEncoder`` learns a :class:`FeatureContract` (plain JSON: kinds, levels, fills, scales,
hashing, versions) from a table and encodes tables into float32 features under that contract,
counting drift in a :class:`DriftReport`.

``TRUSTED_TYPES`` lists the types of this package a fitted encoder holds, for
``skops.io.loads(data, trusted=...)``.

>>> import pyarrow as pa
>>> enc = TableEncoder().fit(pa.table({"origin": ["JFK", "EWR", "JFK"]}))
>>> enc.transform(pa.table({"origin": ["EWR"]}))
array([[0., 1., 0.]], dtype=float32)
"""

from skfleet.features.contract import ColumnSpec, FeatureContract, HashSpec
from skfleet.features.drift import DriftReport
from skfleet.features.encoder import TableEncoder
from skfleet.features.errors import FeatureInputError, FeatureParamError, FeatureWarning
from skfleet.features.options import EncoderOptions

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

__all__ = [
    "TRUSTED_TYPES",
    "ColumnSpec",
    "DriftReport",
    "EncoderOptions",
    "FeatureContract",
    "FeatureInputError",
    "FeatureParamError",
    "FeatureWarning",
    "HashSpec",
    "TableEncoder",
]
