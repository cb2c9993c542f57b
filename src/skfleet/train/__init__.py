"""Training: fit a scikit-learn model on a table with cross-validation, search and segments.

- ``skfleet.train(model, source, target, ...)`` — the whole run (:func:`skfleet.train.api.train`;
  the package itself is callable); returns a :class:`TrainResult`
- :class:`TrainConfig`, :class:`CVConfig`, :class:`SearchConfig` — what a run is asked to do
- :class:`SegmentRouter` — the model ``--group-by`` stores (one model per segment + a global one)
- :mod:`skfleet.train.presets` — the named models (``logistic``, ``hgb-classifier``, ...)
- :mod:`skfleet.train.stream` — out-of-core ``partial_fit`` training

Names are imported on first use, so ``import skfleet.train`` does not import scikit-learn.

>>> from skfleet.train import TRUSTED_TYPES
>>> TRUSTED_TYPES
('skfleet.train.segments.SegmentRouter',)
"""

from __future__ import annotations

from skfleet.util.api_module import lazy_names, make_callable

#: Types defined here that a stored model may hold (for the store's trusted-type list).
TRUSTED_TYPES: tuple[str, ...] = ("skfleet.train.segments.SegmentRouter",)

_LAZY = {
    "train": "skfleet.train.api:train",
    "TrainResult": "skfleet.train.api:TrainResult",
    "CVConfig": "skfleet.train.config:CVConfig",
    "SearchConfig": "skfleet.train.config:SearchConfig",
    "TrainConfig": "skfleet.train.config:TrainConfig",
    "SegmentRouter": "skfleet.train.segments:SegmentRouter",
}

__all__ = ["TRUSTED_TYPES", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_names(__name__, _LAZY)

make_callable(__name__, _LAZY["train"])
