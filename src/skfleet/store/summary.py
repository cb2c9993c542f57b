"""What ``skfleet models list`` shows of a ``model.json``: its headline metric and estimator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def main_metric(meta: Mapping[str, Any]) -> dict | None:
    """The headline metric of a ``model.json`` as ``{"name", "value"}``, or None.

    ``main_metric`` may name an entry of ``metrics`` (or be ``{"name", "value"}``); otherwise the
    first numeric entry of ``metrics`` is used. An entry may be a number or hold ``mean``/``value``.

    >>> main_metric({"metrics": {"roc_auc": {"mean": 0.81, "std": 0.01}}, "main_metric": "roc_auc"})
    {'name': 'roc_auc', 'value': 0.81}
    >>> main_metric({"metrics": {"r2": 0.5, "mae": 3.0}})
    {'name': 'r2', 'value': 0.5}
    """
    metrics = meta.get("metrics")
    metrics = metrics if isinstance(metrics, Mapping) else {}
    chosen = meta.get("main_metric")
    if isinstance(chosen, Mapping) and "name" in chosen:
        value = chosen.get("value", _metric_value(metrics.get(chosen["name"])))
        return {"name": chosen["name"], "value": value}
    if isinstance(chosen, str):
        return {"name": chosen, "value": _metric_value(metrics.get(chosen))}
    for key, entry in metrics.items():
        value = _metric_value(entry)
        if value is not None:
            return {"name": key, "value": value}
    return None


def _metric_value(entry: Any) -> float | None:
    if isinstance(entry, bool):
        return None
    if isinstance(entry, int | float):
        return entry
    if isinstance(entry, Mapping):
        for key in ("mean", "value"):
            if isinstance(entry.get(key), int | float) and not isinstance(entry.get(key), bool):
                return entry[key]
    return None


def estimator_class(meta: Mapping[str, Any]) -> str | None:
    estimator = meta.get("estimator")
    if isinstance(estimator, Mapping):
        return estimator.get("class")
    return estimator if isinstance(estimator, str) else None
