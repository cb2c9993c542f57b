"""What ``skfleet models show`` and ``skfleet models diff`` print: a model.json in a dozen lines,
and what changed between two versions.

``model.json`` holds hundreds of lines (every encoded column, every fold, every parameter);
``show`` prints what a person asks first (what the model predicts, from what, how well, which
estimator with which non-default settings, where its file is), ``show --json`` all of it.

>>> meta = {"name": "late", "version": 2, "task": "classification", "target": "late",
...         "classes": [False, True], "created_at": "2026-12-01T10:00:00Z",
...         "estimator": {"class": "sklearn.linear_model.LogisticRegression",
...                       "params": {"C": 0.5, "max_iter": 100}},
...         "metrics": {"overall": {"roc_auc": 0.9243174317431743, "n": 400}},
...         "main_metric": {"name": "roc_auc", "value": 0.9243174317431743},
...         "input_columns": ["a", "b"], "key_columns": ["id"], "rows": {"train": 400}}
>>> print("\\n".join(summary_lines(meta)))
late@2  classification of late (classes: False, True)  created 2026-12-01 10:00 UTC
estimator   LogisticRegression (C=0.5)
trained on  400 rows
inputs      2 columns: a, b  (keys: id)
metrics     roc_auc 0.9243 (main)
all of it:  skfleet models show late@2 --json
>>> other = {**meta, "version": 3, "estimator": {"class": "sklearn.linear_model.LogisticRegression",
...          "params": {"C": 1.0, "max_iter": 100}}, "input_columns": ["a", "c"],
...          "metrics": {"overall": {"roc_auc": 0.93}}}
>>> print(diff_text(diff_rows(meta, other), "late@2", "late@3"))
               late@2  late@3  change
params.C       0.5     1
input_columns  -b      +c
roc_auc        0.9243  0.93    +0.005683
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

#: Metric entries that are not one number.
_NOT_SCALAR = ("confusion_matrix", "notes", "n")
#: Columns named in full before ``...``.
_SHOWN_COLUMNS = 8
#: Sections ``diff`` compares, key by key (input columns are compared as sets, metrics always).
_DIFFED = ("task", "target", "classes", "source", "engine", "rows", "cv", "encoded")


def number(value: Any) -> str:
    """Four significant digits for floats, the rest as it is.

    >>> number(0.9243174317431743), number(400), number(12345.678), number(True)
    ('0.9243', '400', '1.235e+04', 'True')
    """
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def short_class(path: str | None) -> str:
    return (path or "?").rsplit(".", 1)[-1]


def _defaults(class_path: str | None) -> dict[str, Any]:
    """The estimator class's default parameters ({} when it cannot be imported here)."""
    if not class_path or "." not in class_path:
        return {}
    module, _, name = class_path.rpartition(".")
    try:
        return dict(getattr(importlib.import_module(module), name)().get_params(deep=False))
    except Exception:  # noqa: BLE001 - a summary must not fail on an estimator it cannot build
        return {}


def changed_params(estimator: dict[str, Any]) -> dict[str, Any]:
    """Parameters that differ from the class's defaults (all of them if those are unknown)."""
    params = dict(estimator.get("params") or {})
    defaults = _defaults(estimator.get("class"))
    missing = object()
    return {k: v for k, v in params.items() if defaults.get(k, missing) != v}


def _columns(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_COLUMNS])
    return shown + (f", ... ({len(names) - _SHOWN_COLUMNS} more)" if len(names) > 8 else "")


def _metrics(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    # Trained models keep theirs under "overall"; a registered one may give a flat dict.
    overall = metrics.get("overall") if isinstance(metrics.get("overall"), dict) else metrics
    return [(k, v) for k, v in overall.items() if k not in _NOT_SCALAR and _scalar(v)]


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) or value is None


def summary_lines(meta: dict[str, Any], aliases: Any = ()) -> list[str]:
    """The short form of a model.json (see the module docs); ``aliases``: those pointing at it.

    >>> lines = summary_lines({"name": "m", "version": 3, "promotion": {"alias": "champion",
    ...     "promoted": False, "reason": "r2 0.5 is not >= 0.6"}}, ["staging"])
    >>> print("\\n".join(lines[1:3]))
    aliases     staging
    promotion   not made champion: r2 0.5 is not >= 0.6
    """
    ref = f"{meta.get('name')}@{meta.get('version')}"
    what = meta.get("task") or meta.get("kind") or "model"
    if meta.get("target"):
        what += f" of {meta['target']}"
    if meta.get("classes"):
        what += f" (classes: {', '.join(str(c) for c in meta['classes'])})"
    created = (meta.get("created_at") or "").replace("T", " ").rstrip("Z")[:16]
    lines = [f"{ref}  {what}" + (f"  created {created} UTC" if created else "")]
    if aliases:
        lines.append(f"aliases     {', '.join(aliases)}")
    promotion = meta.get("promotion")
    if isinstance(promotion, dict):
        made = "made" if promotion.get("promoted") else "not made"
        lines.append(f"promotion   {made} {promotion.get('alias')}: {promotion.get('reason')}")
    estimator = meta.get("estimator")
    if isinstance(estimator, dict):
        params = ", ".join(f"{k}={number(v)}" for k, v in changed_params(estimator).items())
        lines.append(
            f"estimator   {short_class(estimator.get('class'))}"
            + (f" ({params})" if params else "")
        )
    elif estimator:
        lines.append(f"estimator   {short_class(str(estimator))}")
    rows = meta.get("rows") or {}
    trained = [f"{rows['train']} rows"] if "train" in rows else []
    if rows.get("dropped_missing_target"):
        trained.append(f"{rows['dropped_missing_target']} without a target dropped")
    cv = meta.get("cv") or {}
    if cv.get("folds"):
        trained.append(f"{cv['folds']}-fold{' stratified' if cv.get('stratified') else ''} CV")
    if meta.get("seconds") is not None:
        trained.append(f"{number(float(meta['seconds']))} s")
    source = f"{meta['source']}: " if meta.get("source") else ""
    if trained or source:
        lines.append(f"trained on  {source}{', '.join(trained)}")
    inputs = list(meta.get("input_columns") or [])
    if inputs:
        keys = meta.get("key_columns") or []
        tail = f"  (keys: {', '.join(keys)})" if keys else ""
        lines.append(f"inputs      {len(inputs)} columns: {_columns(inputs)}{tail}")
    main = (meta.get("main_metric") or {}).get("name")
    shown = [f"{k} {number(v)}" + (" (main)" if k == main else "") for k, v in _metrics(meta)]
    if shown:
        lines.append(f"metrics     {', '.join(shown)}")
    artifact = meta.get("artifact") or {}
    if artifact.get("sha256"):
        size = artifact.get("bytes")
        lines.append(
            f"artifact    {artifact.get('file', '?')}"
            + (f", {size / 1000:.1f} kB" if isinstance(size, int) else "")
            + f", sha256 {artifact['sha256'][:12]}"
        )
        if artifact.get("untrusted_types"):
            lines.append(f"needs --trust: {', '.join(artifact['untrusted_types'])}")
    lines.append(f"all of it:  skfleet models show {ref} --json")
    return lines


def _flat(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flat(item, f"{prefix}.{key}")
    else:
        yield prefix, value


def diff_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(field, in a, in b, change)`` for each setting that differs, then every metric (with
    its change). Input columns are compared as sets: ``-removed`` / ``+added``."""
    rows = _estimator_rows(a.get("estimator"), b.get("estimator"))
    for section in _DIFFED:
        left, right = dict(_flat(a.get(section), section)), dict(_flat(b.get(section), section))
        for key in [*left, *(k for k in right if k not in left)]:
            if left.get(key) != right.get(key):
                rows.append((key, _cell(left.get(key)), _cell(right.get(key)), ""))
    left, right = list(a.get("input_columns") or []), list(b.get("input_columns") or [])
    gone, new = [c for c in left if c not in right], [c for c in right if c not in left]
    if gone or new:
        rows.append(("input_columns", _listed("-", gone), _listed("+", new), ""))
    elif left != right:
        rows.append(("input_columns", "(order)", "(order)", ""))
    ma, mb = dict(_metrics(a)), dict(_metrics(b))
    for key in [*ma, *(k for k in mb if k not in ma)]:
        va, vb = ma.get(key), mb.get(key)
        change = ""
        if isinstance(va, int | float) and isinstance(vb, int | float):
            change = f"{vb - va:+.4g}"
        rows.append((key, _cell(va), _cell(vb), change))
    return rows


def _estimator_text(estimator: Any) -> str:
    if not isinstance(estimator, dict):
        return short_class(str(estimator)) if estimator else "-"
    params = ", ".join(f"{k}={number(v)}" for k, v in changed_params(estimator).items())
    return short_class(estimator.get("class")) + (f" ({params})" if params else "")


def _estimator_rows(a: Any, b: Any) -> list[tuple[str, str, str, str]]:
    """One row when the estimator classes differ (their parameters are not comparable), else a
    row per parameter that differs."""
    if not (isinstance(a, dict) and isinstance(b, dict)) or a.get("class") != b.get("class"):
        return [] if a == b else [("estimator", _estimator_text(a), _estimator_text(b), "")]
    left, right = a.get("params") or {}, b.get("params") or {}
    keys = [*left, *(k for k in right if k not in left)]
    return [
        (f"params.{k}", _cell(left.get(k)), _cell(right.get(k)), "")
        for k in keys
        if left.get(k) != right.get(k)
    ]


def diff_text(rows: list[tuple[str, str, str, str]], a: str, b: str) -> str:
    """``diff_rows`` as aligned plain text (no table frame: it survives pipes and narrow
    terminals)."""
    table = [("", a, b, "change"), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    )


def _cell(value: Any) -> str:
    return "-" if value is None else number(value)


def _listed(sign: str, names: list[str]) -> str:
    return " ".join(f"{sign}{n}" for n in names) if names else "-"
