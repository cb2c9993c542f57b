"""Imported by every worker of a ``dask:local`` cluster as it starts (distributed's ``preload``).

A worker that scores or fits needs scikit-learn, skops (whose trusted-type lists import most of
scikit-learn), pyarrow and skfleet's task modules: seconds of imports. Paid here, while the worker
starts (and the client is still planning), the first task does not wait for them.

>>> import skfleet.engine.preload as preload
>>> preload.dask_setup(None)
"""

from __future__ import annotations

import importlib

#: What a worker imports before it takes a task.
MODULES = (
    "pyarrow.parquet",
    "sklearn.base",
    "skfleet.store.trust",
    "skfleet.predict.task",
    "skfleet.data.files",
)


def dask_setup(worker: object) -> None:
    """Called by distributed once the module is imported on a starting worker."""
    for name in MODULES:
        importlib.import_module(name)
