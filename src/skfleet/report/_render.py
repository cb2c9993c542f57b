"""Matplotlib figures rendered straight to inline PNG ``data:`` URIs, and safe plot labels.

Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never through
``pyplot``: nothing is registered in pyplot's global figure list, so there is nothing to leak and
the display backend (``MPLBACKEND``) does not matter. Matplotlib is imported by the first figure,
not by this module, so code that only needs :func:`subsample` or :func:`label` does not load it.

The layout is fixed: margins in inches (:class:`Margins`, sized by the caller for long tick labels
with :func:`text_inches`), not matplotlib's constrained layout, which measures every artist's
extent before each draw and took about a third of a report's drawing time. A figure that has
been rendered is cleared and handed to the next :func:`new_figure` call, so a report builds only as
many figures as it has open at once (one, or three for the comparison report's curves).

>>> fig, ax = new_figure()
>>> _ = ax.plot([0, 1], [0, 1])
>>> to_data_uri(fig).startswith("data:image/png;base64,")
True
>>> new_figure(4.0, 3.0)[0] is fig  # the rendered figure, cleared, resized
True
>>> label("postgresql://u:pw@h/db price $US")
'postgresql://u:***@h/db price \\\\$US'
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from skfleet.util.redact import redact_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 80
# Long labels (feature names, parameters) are cut so axes stay readable.
MAX_LABEL = 40
# Rendered figures waiting to be reused, per thread (a figure is not safe to share).
_spare = threading.local()


@dataclass(frozen=True)
class Margins:
    """Space around and between the axes of a figure, in inches.

    The defaults leave room for tick labels of a few digits, an axis label on the left and at
    the bottom, and nothing above (a title or panel titles need ``top`` of about 0.3).
    """

    left: float = 0.8
    bottom: float = 0.6
    right: float = 0.2
    top: float = 0.15
    wgap: float = 0.6  # between columns of panels
    hgap: float = 0.6  # between rows of panels


def text_inches(texts: Any, fontsize: float) -> float:
    """The width, in inches, of the widest of ``texts`` drawn by Agg at ``fontsize`` points in
    matplotlib's default font: what a fixed margin needs for those tick labels.

    Measured, not estimated from the length: "WWWW" is several times as wide as "iiii".

    >>> text_inches(["WWWW"], 8) > 2 * text_inches(["iiii"], 8) > 0
    True
    >>> text_inches([], 8)
    0.0
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(1, 1, DPI)
    font = FontProperties(size=fontsize)
    widths = [renderer.get_text_width_height_descent(str(t), font, ismath=False)[0] for t in texts]
    return max(widths, default=0.0) / DPI


def new_figure(
    width: float = 6.4,
    height: float = 4.0,
    nrows: int = 1,
    ncols: int = 1,
    margins: Margins | None = None,
):
    """An Agg-backed figure of this size and its axes (an array of axes when there are several),
    laid out with ``margins``."""
    spare = getattr(_spare, "figures", None)
    if spare:
        fig = spare.pop()
        fig.set_size_inches(width, height)
    else:
        # Imported here, by the first figure only (see the module's docstring).
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)
    m = margins or Margins()
    # subplots_adjust takes fractions of the figure; gaps are fractions of one panel's size.
    panel_w = max((width - m.left - m.right - (ncols - 1) * m.wgap) / ncols, 0.1)
    panel_h = max((height - m.bottom - m.top - (nrows - 1) * m.hgap) / nrows, 0.1)
    fig.subplots_adjust(
        left=min(m.left / width, 0.45),
        right=max(1 - m.right / width, 0.55),
        bottom=min(m.bottom / height, 0.45),
        top=max(1 - m.top / height, 0.55),
        wspace=m.wgap / panel_w,
        hspace=m.hgap / panel_h,
    )
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def to_data_uri(fig: Figure) -> str:
    """Render ``fig`` as a base64 PNG ``data:`` URI, free its artists and keep it for reuse."""
    buffer = io.BytesIO()
    # No "Software" text chunk: the image carries no link and no version string.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    # Drop the artists now rather than waiting for the garbage collector: a report on 300k rows
    # holds scatter collections and histograms worth tens of megabytes.
    fig.clear()
    if not hasattr(_spare, "figures"):
        _spare.figures = []
    _spare.figures.append(fig)
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
