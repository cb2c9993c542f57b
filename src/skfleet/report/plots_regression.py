"""Regressor diagnostics: predicted against actual, and residuals.

Scatter plots draw a fixed-seed sample of at most :data:`MAX_POINTS` rows (the caption says so);
the residual histogram uses every row.

>>> y = np.linspace(0, 10, 50)
>>> [p.title for p in regression_plots(y, y + np.sin(y))]
['Predicted vs actual', 'Residuals']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skfleet.report._render import Margins, Plot, new_figure, subsample, to_data_uri

MAX_POINTS = 5000
# Target values can be long numbers (-250000): a wider left margin than the default.
_MARGINS = Margins(left=1.0, wgap=1.0)


def regression_plots(y_true: Any, y_pred: Any) -> list[Plot]:
    """The regression figures for these predictions."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    keep = subsample(len(t), MAX_POINTS)
    shown = "" if len(keep) == len(t) else f"{len(keep):,} of {len(t):,} rows shown"
    return [_predicted_vs_actual(t, p, keep, shown), _residuals(t, p, keep, shown)]


def _predicted_vs_actual(t, p, keep, shown) -> Plot:
    fig, ax = new_figure(5.5, 5.0, margins=_MARGINS)
    ax.scatter(t[keep], p[keep], s=6, alpha=0.35, linewidths=0)
    low = float(min(t.min(), p.min()))
    high = float(max(t.max(), p.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="y = x")
    ax.set(xlabel="actual", ylabel="predicted")
    ax.legend(fontsize=8, loc="upper left")
    return Plot("Predicted vs actual", to_data_uri(fig), shown)


def _residuals(t, p, keep, shown) -> Plot:
    residual = t - p
    fig, (hist, scatter) = new_figure(10.0, 4.0, ncols=2, margins=_MARGINS)
    hist.hist(residual, bins=60)
    hist.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    hist.set(xlabel="residual (actual - predicted)", ylabel="rows")
    scatter.scatter(p[keep], residual[keep], s=6, alpha=0.35, linewidths=0)
    scatter.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    scatter.set(xlabel="predicted", ylabel="residual")
    caption = "histogram over all rows" + (f"; scatter: {shown}" if shown else "")
    return Plot("Residuals", to_data_uri(fig), caption)
