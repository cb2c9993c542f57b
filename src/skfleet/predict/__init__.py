"""Prediction: score a table of any size with a stored model, in partitions, exactly once.

``skfleet.predict(model, source, out, ...)`` (the package itself is callable) is
:func:`skfleet.predict.api.predict`. The modules, in the order a run uses them:

==============  ==================================================================================
``api``         :func:`predict`: load the model, plan, run, publish
``result``      :class:`PredictResult`, what a run returns (``--json``)
``scoring``     the model's input/output plan and the pure table -> scores step
``plan``        run options, partition sizing, the checks that make ``--resume`` safe
``runs``        run records (``_runs/<run_id>.json`` in the store)
``task``        what a worker receives, its model cache, scoring one partition
``keys``        the duplicate-key check's options and messages (the sink counts across partitions)
``execution``   partition tasks on the engine, commit or keep for ``--resume``
``state``       the run's bookkeeping as results arrive (record checkpoints, merged drift)
==============  ==================================================================================
"""

from __future__ import annotations

from skfleet.util.api_module import lazy_names, make_callable

_LAZY = {
    "predict": "skfleet.predict.api:predict",
    "PredictResult": "skfleet.predict.result:PredictResult",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_names(__name__, _LAZY)

make_callable(__name__, _LAZY["predict"])
