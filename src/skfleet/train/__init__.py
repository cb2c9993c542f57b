"""Training: fit a scikit-learn model on a table with cross-validation, search and segments.

- :func:`train` — the whole run (see :mod:`skfleet.train.api`); returns a :class:`TrainResult`
- :class:`TrainConfig`, :class:`CVConfig`, :class:`SearchConfig` — what a run is asked to do
- :class:`SegmentRouter` — the model ``--group-by`` stores (one model per segment + a global one)

``skfleet.train.stream.api`` (out-of-core ``partial_fit`` training) lives next to these.

>>> from skfleet.train import TRUSTED_TYPES
>>> TRUSTED_TYPES
('skfleet.train.segments.SegmentRouter',)
"""

from __future__ import annotations

from skfleet.train.api import TrainResult, train
from skfleet.train.config import CVConfig, SearchConfig, TrainConfig
from skfleet.train.segments import SegmentRouter

#: Types defined here that a stored model may hold (for the store's trusted-type list).
TRUSTED_TYPES: tuple[str, ...] = ("skfleet.train.segments.SegmentRouter",)

__all__ = [
    "TRUSTED_TYPES",
    "CVConfig",
    "SearchConfig",
    "SegmentRouter",
    "TrainConfig",
    "TrainResult",
    "train",
]
