"""skfleet: scikit-learn models on tables that outgrow a laptop.

The public API, imported lazily so that ``import skfleet`` stays cheap:

- :func:`copy` — move a table between sources and sinks in parallel partitions
- :func:`train`, :func:`train_stream`, :func:`predict`, :func:`load` — see their modules
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "copy": "skfleet.copy:copy",
    "open_source": "skfleet.data:open_source",
    "open_sink": "skfleet.data:open_sink",
    "train": "skfleet.train:train",
    "train_stream": "skfleet.train.stream.api:train_stream",
    "predict": "skfleet.predict.api:predict",
    "load": "skfleet.store:load_model",
}


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'skfleet' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


__all__ = sorted(_API)
