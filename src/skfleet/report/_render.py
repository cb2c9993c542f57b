"""Matplotlib figures rendered straight to inline PNG ``data:`` URIs, and safe plot labels.

Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never through
``pyplot``: nothing is registered in pyplot's global figure list, so there is nothing to leak and
the display backend (``MPLBACKEND``) does not matter.

>>> fig, ax = new_figure()
>>> _ = ax.plot([0, 1], [0, 1])
>>> to_data_uri(fig).startswith("data:image/png;base64,")
True
>>> label("postgresql://u:pw@h/db price $US")
'postgresql://u:***@h/db price \\\\$US'
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from skfleet.util.redact import redact_text

DPI = 80
# Long labels (feature names, parameters) are cut so axes stay readable.
MAX_LABEL = 40


def new_figure(width: float = 6.4, height: float = 4.0, nrows: int = 1, ncols: int = 1):
    """A fresh Agg-backed figure and its axes (an array of axes when there are several)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def to_data_uri(fig: Figure) -> str:
    """Render ``fig`` as a base64 PNG ``data:`` URI and free its artists."""
    buffer = io.BytesIO()
    # No "Software" text chunk: the image carries no link and no version string.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    # Drop the artists now rather than waiting for the garbage collector: a report on 300k rows
    # holds scatter collections and histograms worth tens of megabytes.
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def label(text: Any, limit: int = MAX_LABEL) -> str:
    """Text for a plot: passwords masked, cut to ``limit`` characters, ``$`` kept literal.

    Matplotlib reads ``$...$`` as math markup (and fails on an unbalanced ``$``), so dollars are
    escaped.
    """
    out = redact_text(str(text))
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out.replace("$", r"\$")


@dataclass(frozen=True)
class Plot:
    """One figure of the report: a heading, the image as a ``data:`` URI, an optional caption."""

    title: str
    uri: str
    caption: str = ""


def thin(x: np.ndarray, y: np.ndarray, limit: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` evenly spaced points of a curve, first and last kept.

    A ROC or precision-recall curve on 300k distinct scores has 300k vertices; a thousand draw
    the same picture in a fraction of the time.
    """
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(np.int64))
    return x[keep], y[keep]


def subsample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` rows, drawn with a fixed seed (same picture each run)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
