"""Figures about how the model was trained: feature importance, CV folds, search, learning curve.

>>> importance_plot({"distance": 0.6, "carrier": 0.3, "hour": 0.1}, "native").title
'Top input columns'
>>> fold_plot([{"accuracy": 0.8, "n": 10}, {"accuracy": 0.9, "n": 10}]).title
'Fold spread'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skfleet.report._render import Margins, Plot, label, new_figure, text_inches, to_data_uri

TOP_FEATURES = 30
TOP_CANDIDATES = 50
# Fold values that are not scores: counts, the fold number, timings (they stay in the table).
_NOT_SCORES = {"n", "fold", "rows", "fit_seconds", "score_seconds"}
# Prefixes that name the data set a learning-curve value was measured on.
_CURVE_SETS = ("progressive", "holdout", "train", "validation", "test")


def importance_plot(importance: Mapping[str, float], method: str | None) -> Plot:
    """Horizontal bars of the :data:`TOP_FEATURES` most important input columns."""
    ranked = sorted(importance.items(), key=lambda kv: -abs(kv[1]))[:TOP_FEATURES]
    names = [label(name) for name, _ in ranked][::-1]
    values = [float(value) for _, value in ranked][::-1]
    # The names to the left of the bars; very wide ones widen the figure, not squeeze the bars.
    margins = Margins(left=0.25 + text_inches(names, 8))
    fig, ax = new_figure(max(7.0, margins.left + 4.5), 1.2 + 0.28 * len(ranked), margins=margins)
    ax.barh(range(len(values)), values)
    ax.set_yticks(range(len(values)), names, fontsize=8)
    ax.set_xlabel(f"importance ({label(method or 'unknown')})")
    caption = (
        f"top {len(ranked)} of {len(importance)} input columns"
        if len(importance) > len(ranked)
        else ""
    )
    return Plot("Top input columns", to_data_uri(fig), caption)


def score_keys(rows: Sequence[Mapping[str, Any]], exclude: set[str] = _NOT_SCORES) -> list[str]:
    """Keys holding a finite number in at least one row, in first-seen order."""
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in exclude and key not in keys and _is_number(value):
                keys.append(key)
    return keys


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def fold_plot(folds: Sequence[Mapping[str, Any]]) -> Plot:
    """One panel per metric: a box over the folds with each fold as a point."""
    keys = score_keys(folds)[:8]
    ncols = min(4, max(1, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    margins = Margins(left=0.55, bottom=0.2, right=0.15, top=0.3, wgap=0.55, hgap=0.5)
    fig, axes = new_figure(2.6 * ncols, 2.8 * nrows, nrows=nrows, ncols=ncols, margins=margins)
    flat = np.atleast_1d(axes).ravel()
    jitter = np.random.default_rng(0)
    for ax, key in zip(flat, keys, strict=False):
        values = [float(f[key]) for f in folds if _is_number(f.get(key))]
        ax.boxplot(values, widths=0.5)
        ax.scatter(1 + jitter.uniform(-0.12, 0.12, len(values)), values, s=14, zorder=3)
        ax.set_title(label(key), fontsize=9)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    for ax in flat[len(keys) :]:
        ax.set_visible(False)
    return Plot("Fold spread", to_data_uri(fig), f"{len(folds)} folds; each point is one fold")


def search_plot(results: Sequence[Mapping[str, Any]], scoring: str | None) -> Plot:
    """Mean test score (± one standard deviation over folds) of the best candidates.

    Against the parameter when exactly one numeric parameter varies (log axis when it spans
    two decades or more), otherwise against the rank.

    >>> rows = [{"params": {"C": c}, "mean_test_score": s, "std_test_score": 0.01, "rank": r}
    ...         for c, s, r in [(0.1, 0.7, 2), (1.0, 0.8, 1), (10.0, 0.6, 3)]]
    >>> search_plot(rows, "roc_auc").title
    'Score by C'
    >>> rows[0]["params"]["penalty"] = "l1"
    >>> search_plot(rows, "roc_auc").title
    'Score by rank'
    """
    rows = sorted(
        (r for r in results if _is_number(r.get("mean_test_score"))),
        key=lambda r: r.get("rank", math.inf),
    )[:TOP_CANDIDATES]
    means = [float(r["mean_test_score"]) for r in rows]
    stds = [
        float(r["std_test_score"]) if _is_number(r.get("std_test_score")) else 0.0 for r in rows
    ]
    param = _single_numeric_parameter(rows)
    fig, ax = new_figure(7.0, 3.8)
    if param is None:
        xs = [r.get("rank", i + 1) for i, r in enumerate(rows)]
        ax.set_xlabel("rank")
    else:
        xs = [float(r["params"][param]) for r in rows]
        ax.set_xlabel(label(param))
        if min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
    ax.errorbar(xs, means, yerr=stds, fmt="o", markersize=4, capsize=3)
    ax.set_ylabel(f"mean test score ({label(scoring or 'default')})")
    caption = f"best {len(rows)} of {len(results)} candidates" if len(results) > len(rows) else ""
    title = f"Score by {param}" if param is not None else "Score by rank"
    return Plot(title, to_data_uri(fig), caption)


def _single_numeric_parameter(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The one parameter that varies over ``rows``, if there is exactly one and it is numeric."""
    params = [r.get("params") or {} for r in rows]
    names = sorted({name for p in params for name in p})
    varying = [n for n in names if len({repr(p.get(n)) for p in params}) > 1]
    if len(varying) != 1 or not all(_is_number(p.get(varying[0])) for p in params):
        return None
    return varying[0]


def curve_groups(keys: Sequence[str]) -> dict[str, list[str]]:
    """Group ``<set>_<metric>`` keys by metric so each panel shares one scale.

    >>> curve_groups(["progressive_log_loss", "holdout_log_loss", "holdout_accuracy", "lr"])
    {'log_loss': ['progressive_log_loss', 'holdout_log_loss'], 'accuracy': ['holdout_accuracy'], 'lr': ['lr']}
    """
    groups: dict[str, list[str]] = {}
    for key in keys:
        prefix, _, rest = key.partition("_")
        metric = rest if prefix in _CURVE_SETS and rest else key
        groups.setdefault(metric, []).append(key)
    return groups


def learning_curve_plot(curve: Sequence[Mapping[str, Any]]) -> Plot:
    """One panel per metric, a line per data set, over epochs (or rows seen)."""
    groups = curve_groups(score_keys(curve, exclude={"epoch"}))
    ncols = min(3, max(1, len(groups)))
    nrows = max(1, math.ceil(len(groups) / ncols))
    margins = Margins(left=0.6, bottom=0.5, right=0.15, top=0.3, wgap=0.6, hgap=0.7)
    fig, axes = new_figure(4.0 * ncols, 3.2 * nrows, nrows=nrows, ncols=ncols, margins=margins)
    flat = np.atleast_1d(axes).ravel()
    for ax, (metric, keys) in zip(flat, groups.items(), strict=False):
        for key in keys:
            points = [
                (float(row.get("epoch", i + 1)), float(row[key]))
                for i, row in enumerate(curve)
                if _is_number(row.get(key))
            ]
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, label=label(key))
        ax.set_title(label(metric), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in flat[len(groups) :]:
        ax.set_visible(False)
    return Plot("Metrics by epoch", to_data_uri(fig), "")
