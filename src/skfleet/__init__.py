"""skfleet: scikit-learn models on tables that outgrow a laptop.

The public API, imported on first use so that ``import skfleet`` stays cheap:

- :func:`train` — fit a model with cross-validation, searches or one model per segment
- :func:`train_stream` — fit out of core with ``partial_fit`` over shuffled partitions
- :func:`predict` — score a table of any size in partitions, exactly once
- :func:`copy` — move a table between sources and sinks in parallel partitions
- :func:`load` — a stored model; :func:`open_source` / :func:`open_sink` — tables by URL
- :func:`drift` — how the rows of recent prediction runs compare with the training rows

``skfleet.train``, ``skfleet.predict`` and ``skfleet.copy`` are also the packages (modules) that
implement them; calling one calls its function.

>>> import skfleet
>>> [name for name in ("copy", "load", "predict", "train", "train_stream") if name in dir(skfleet)]
['copy', 'load', 'predict', 'train', 'train_stream']
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> ``module`` (a callable package) or ``module:attribute``.
_API = {
    "copy": "skfleet.copy",
    "train": "skfleet.train",
    "predict": "skfleet.predict",
    "train_stream": "skfleet.train.stream.api:train_stream",
    "load": "skfleet.store:load_model",
    "drift": "skfleet.predict.drift_runs:drift",
    "open_source": "skfleet.data:open_source",
    "open_sink": "skfleet.data:open_sink",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'skfleet' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
