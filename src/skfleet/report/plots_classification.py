"""Classifier diagnostics: ROC, precision-recall, calibration, confusion matrix, score histograms.

Binary models are drawn for their second (positive) class; multiclass models one-vs-rest for
each class, at most :data:`MAX_CLASSES` of them (the most frequent), so the figures stay legible.

>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 200)
>>> p1 = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
>>> plots = classification_plots(y, None, np.column_stack([1 - p1, p1]), [0, 1])
>>> [p.title for p in plots]
['ROC curve', 'Precision-recall curve', 'Calibration', 'Score distributions', 'Confusion matrix']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc as trapezoid_area
from sklearn.metrics import precision_recall_curve, roc_curve

from skfleet.metrics.labels import as_proba, encode_labels
from skfleet.report._render import Margins, Plot, label, new_figure, text_inches, thin, to_data_uri

MAX_CLASSES = 10
# Matrices larger than this are drawn without a number in every cell.
MAX_ANNOTATED = 20


def classification_plots(
    y_true: Any, y_pred: Any, proba: Any, classes: Sequence[Any]
) -> list[Plot]:
    """All classifier figures that the given arrays allow (``y_pred`` or ``proba`` may be None)."""
    k = len(classes)
    y_idx = encode_labels(y_true, classes, "target label")
    n = len(y_idx)
    plots: list[Plot] = []
    p = None if proba is None else as_proba(proba, n, k)
    if p is not None:
        columns, caption = _plotted_columns(y_idx, classes)
        plots.append(_roc(y_idx, p, classes, columns, caption))
        plots.append(_precision_recall(y_idx, p, classes, columns, caption))
        plots.append(_calibration(y_idx, p, classes, columns, caption))
        plots.append(_score_histograms(y_idx, p, classes, columns, caption))
    if y_pred is not None:
        pred_idx = encode_labels(y_pred, classes, "predicted label")
    elif p is not None:
        pred_idx = p.argmax(axis=1)
    else:
        return plots
    matrix = np.bincount(y_idx * k + pred_idx, minlength=k * k).reshape(k, k)
    plots.append(confusion_plot(matrix, classes))
    return plots


def _plotted_columns(y_idx: np.ndarray, classes: Sequence[Any]) -> tuple[list[int], str]:
    """Which one-vs-rest columns to draw, and a caption when some are left out."""
    k = len(classes)
    if k == 2:
        return [1], f"positive class: {label(classes[1])}"
    support = np.bincount(y_idx, minlength=k)
    if k <= MAX_CLASSES:
        return list(range(k)), "one-vs-rest per class"
    top = sorted(np.argsort(-support, kind="stable")[:MAX_CLASSES].tolist())
    return top, f"one-vs-rest, the {MAX_CLASSES} most frequent of {k} classes"


def _defined(positive: np.ndarray) -> bool:
    """A one-vs-rest curve needs at least one positive and one negative row."""
    return bool(positive.any() and not positive.all())


def _drawable(y_idx, classes, columns, skipped: list):
    """The one-vs-rest columns that have a curve, each with its positive rows; the classes of the
    others go to ``skipped`` (the caption names them).

    >>> skipped = []
    >>> [c for c, _ in _drawable(np.array([0, 1, 0]), ["a", "b", "c"], [0, 1, 2], skipped)]
    [0, 1]
    >>> skipped
    ['c']
    """
    for c in columns:
        positive = y_idx == c
        if _defined(positive):
            yield c, positive
        else:
            skipped.append(classes[c])


def _roc(y_idx, p, classes, columns, caption) -> Plot:
    fig, ax = new_figure(5.5, 4.5)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    skipped = []
    for c, positive in _drawable(y_idx, classes, columns, skipped):
        fpr, tpr, _ = roc_curve(positive, p[:, c])
        # The area under the full curve is what roc_auc_score computes, without a second sort.
        auc = trapezoid_area(fpr, tpr)
        fpr, tpr = thin(fpr, tpr)
        ax.plot(fpr, tpr, linewidth=1.5, label=f"{label(classes[c], 20)} (AUC {auc:.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    _legend(ax)
    return Plot("ROC curve", to_data_uri(fig), _caption(caption, skipped))


def _precision_recall(y_idx, p, classes, columns, caption) -> Plot:
    fig, ax = new_figure(5.5, 4.5)
    skipped = []
    for c, positive in _drawable(y_idx, classes, columns, skipped):
        precision, recall, _ = precision_recall_curve(positive, p[:, c])
        # average_precision_score's step-wise sum, taken from the curve already computed.
        ap = -float(np.sum(np.diff(recall) * precision[:-1]))
        recall, precision = thin(recall, precision)
        line = ax.plot(
            recall, precision, linewidth=1.5, label=f"{label(classes[c], 20)} (AP {ap:.3f})"
        )
        # The precision of guessing: the class's share of rows.
        ax.axhline(positive.mean(), color=line[0].get_color(), linestyle=":", linewidth=1)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    _legend(ax)
    return Plot("Precision-recall curve", to_data_uri(fig), _caption(caption, skipped))


def _calibration(y_idx, p, classes, columns, caption) -> Plot:
    fig, ax = new_figure(5.5, 4.5)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    skipped = []
    for c, positive in _drawable(y_idx, classes, columns, skipped):
        observed, predicted = calibration_curve(
            positive.astype(int), p[:, c], n_bins=10, pos_label=1
        )
        ax.plot(
            predicted,
            observed,
            marker="o",
            markersize=3,
            linewidth=1.2,
            label=label(classes[c], 20),
        )
    ax.set(
        xlabel="mean predicted probability", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1)
    )
    _legend(ax)
    return Plot(
        "Calibration", to_data_uri(fig), _caption(caption + "; 10 equal-width bins", skipped)
    )


def _score_histograms(y_idx, p, classes, columns, caption) -> Plot:
    bins = np.linspace(0.0, 1.0, 41)
    if len(classes) == 2:
        fig, ax = new_figure(5.5, 4.0)
        for c in (0, 1):
            scores = p[y_idx == c, 1]
            if len(scores):
                _hist(
                    ax,
                    scores,
                    bins=bins,
                    alpha=0.55,
                    density=True,
                    label=f"true {label(classes[c], 20)}",
                )
        ax.set(xlabel=f"P({label(classes[1], 20)})", ylabel="density")
        _legend(ax)
        return Plot("Score distributions", to_data_uri(fig), "predicted probability by true class")
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    # Panel titles above each panel, small tick labels, no axis labels.
    margins = Margins(left=0.45, bottom=0.35, right=0.15, top=0.3, wgap=0.4, hgap=0.5)
    fig, axes = new_figure(3.2 * ncols, 2.4 * nrows, nrows=nrows, ncols=ncols, margins=margins)
    flat = np.atleast_1d(axes).ravel()
    for ax, c in zip(flat, columns, strict=False):
        positive = y_idx == c
        for mask, name in ((positive, "this class"), (~positive, "rest")):
            if mask.any():
                _hist(ax, p[mask, c], bins=bins, alpha=0.55, density=True, label=name)
        ax.set_title(label(classes[c], 25), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in flat[len(columns) :]:
        ax.set_visible(False)
    _legend(flat[0])
    return Plot("Score distributions", to_data_uri(fig), f"P(class) by true class; {caption}")


def confusion_plot(matrix: Any, classes: Sequence[Any]) -> Plot:
    """Heatmap of a confusion matrix (rows: true label), shaded by share of each true label.

    >>> confusion_plot([[3, 1], [0, 4]], ["a", "b"]).title
    'Confusion matrix'
    """
    counts = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = min(3.0 + 0.45 * k, 12.0)
    names = [label(c, 20) for c in classes]
    size = 9 if k <= 10 else 7
    # Room for the class names (the x ones at 45 degrees when there are more than three), the
    # axis labels, and on the right the colour bar with its ticks and label.
    names_width = text_inches(names, size)
    bottom = 0.55 + (names_width * 0.72 if k > 3 else 0.0)
    margins = Margins(left=0.55 + names_width, bottom=bottom, right=0.25, top=0.15)
    fig, ax = new_figure(side + 1.2 + names_width, side + bottom - 0.6, margins=margins)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of true label")
    ax.set_xticks(
        range(k),
        names,
        rotation=45 if k > 3 else 0,
        ha="right" if k > 3 else "center",
        fontsize=size,
    )
    ax.set_yticks(range(k), names, fontsize=size)
    ax.set(xlabel="predicted", ylabel="true")
    if k <= MAX_ANNOTATED:
        for i in range(k):
            for j in range(k):
                colour = "white" if share[i, j] > 0.5 else "black"
                ax.text(
                    j, i, f"{counts[i, j]:,}", ha="center", va="center", color=colour, fontsize=size
                )
    return Plot(
        "Confusion matrix", to_data_uri(fig), "counts; colour is the share of each true label"
    )


def _hist(ax, values, bins, **style) -> None:
    """A filled step histogram: one artist instead of a patch per bar (draws several times faster)."""
    heights, _ = np.histogram(values, bins=bins, density=style.pop("density", False))
    ax.stairs(heights, bins, fill=True, **style)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def _caption(caption: str, skipped: list[Any]) -> str:
    if not skipped:
        return caption
    return (
        f"{caption}; not drawn (absent from or alone in the data): {', '.join(map(str, skipped))}"
    )
