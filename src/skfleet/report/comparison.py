"""The comparison report: one self-contained HTML page for the candidates of one training run.

Sections: the leaderboard; the paired comparison of the top two over folds (per-fold
differences, their mean, the corrected resampled t-test); the per-fold metric of every candidate;
for classifiers, overlaid ROC, precision-recall and calibration curves of the out-of-fold
probabilities (the positive class of a binary target; pooled one-vs-rest over every class
otherwise); for regressors, the overlaid distribution of absolute out-of-fold errors.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 200)
>>> probas = {n: np.column_stack([1 - p, p]) for n, p in
...           [("a", np.clip(0.4 * y + 0.6 * rng.random(200), 0, 1)), ("b", rng.random(200))]}
>>> folds = {"a": [0.8, 0.82], "b": [0.5, 0.52]}
>>> plots = curve_plots(y, probas, [0, 1])
>>> [p.title for p in plots], fold_metric_plot(folds, "roc_auc").title
(['ROC curves', 'Precision-recall curves', 'Calibration curves'], 'roc_auc per fold')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc as trapezoid_area
from sklearn.metrics import precision_recall_curve, roc_curve

from skfleet.metrics.labels import encode_labels
from skfleet.report._render import Plot, label, new_figure, thin, to_data_uri
from skfleet.report.html import figure, page, table, text

#: The leaderboard columns the report shows, with their headings.
_SHOWN = (
    ("rank", "rank"),
    ("candidate", "candidate"),
    ("version", "version"),
    ("mean", "mean over folds"),
    ("std", "std over folds"),
    ("overall", "pooled out-of-fold"),
    ("fit_s_per_1k_rows", "fit s / 1k rows"),
    ("predict_s_per_1k_rows", "predict s / 1k rows"),
    ("artifact_bytes", "artifact bytes"),
)


def _positive(y_idx: np.ndarray, proba: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(is positive, score) for the curves: the second class of two, else pooled one-vs-rest."""
    if k == 2:
        return y_idx == 1, proba[:, 1], "positive class"
    onehot = np.zeros((len(y_idx), k), dtype=bool)
    onehot[np.arange(len(y_idx)), y_idx] = True
    return onehot.ravel(), proba.ravel(), f"one-vs-rest pooled over {k} classes"


def curve_plots(y_true: Any, probas: Mapping[str, np.ndarray], classes: Sequence[Any]) -> list:
    """ROC, precision-recall and calibration curves, one line per candidate."""
    y_idx = encode_labels(y_true, classes, "target label")
    k = len(classes)
    figures = {name: new_figure(5.5, 4.5) for name in ("roc", "pr", "cal")}
    _, roc = figures["roc"]
    _, pr = figures["pr"]
    _, cal = figures["cal"]
    roc.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    cal.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    caption = ""
    for name, proba in probas.items():
        positive, score, caption = _positive(y_idx, np.asarray(proba), k)
        if not (positive.any() and not positive.all()):
            continue
        fpr, tpr, _ = roc_curve(positive, score)
        area = trapezoid_area(fpr, tpr)
        roc.plot(*thin(fpr, tpr), linewidth=1.5, label=f"{label(name, 25)} (AUC {area:.3f})")
        precision, recall, _ = precision_recall_curve(positive, score)
        ap = -float(np.sum(np.diff(recall) * precision[:-1]))
        pr.plot(*thin(recall, precision), linewidth=1.5, label=f"{label(name, 25)} (AP {ap:.3f})")
        observed, predicted = calibration_curve(positive.astype(int), score, n_bins=10)
        cal.plot(predicted, observed, marker="o", markersize=3, linewidth=1.2, label=label(name))
    roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    cal.set(xlabel="mean predicted probability", ylabel="observed frequency", xlim=(0, 1))
    plots = []
    for key, title in (("roc", "ROC curves"), ("pr", "Precision-recall curves")):
        plots.append(_finish(figures[key], title, f"out-of-fold; {caption}"))
    plots.append(_finish(figures["cal"], "Calibration curves", f"{caption}; 10 equal-width bins"))
    return plots


def error_plot(y_true: Any, predictions: Mapping[str, np.ndarray]) -> Plot:
    """Regressors: the share of rows whose absolute out-of-fold error is at most x."""
    fig, ax = new_figure(5.5, 4.5)
    y = np.asarray(y_true, dtype=np.float64)
    for name, predicted in predictions.items():
        errors = np.sort(np.abs(np.asarray(predicted, dtype=np.float64) - y))
        share = np.arange(1, len(errors) + 1) / len(errors)
        ax.plot(*thin(errors, share), linewidth=1.5, label=label(name, 25))
    ax.set(xlabel="absolute error", ylabel="share of rows", ylim=(0, 1.01))
    return _finish((fig, ax), "Absolute errors", "out-of-fold; cumulative share of rows")


def fold_metric_plot(folds: Mapping[str, Sequence[float]], metric: str) -> Plot:
    """Each candidate's metric per fold (a line per candidate, folds on the x axis)."""
    fig, ax = new_figure(6.0, 4.0)
    for name, values in folds.items():
        ax.plot(range(len(values)), values, marker="o", linewidth=1.2, label=label(name, 25))
    n = max((len(v) for v in folds.values()), default=0)
    ax.set_xticks(range(n))
    ax.set(xlabel="fold", ylabel=label(metric))
    return _finish((fig, ax), f"{metric} per fold", "the same folds for every candidate")


def _finish(fig_ax, title: str, caption: str) -> Plot:
    fig, ax = fig_ax
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return Plot(title, to_data_uri(fig), caption)


def comparison_report(name, target, task, classes, y, rows, paired, metric, candidates) -> str:
    """The page for ``rows`` (the leaderboard, best first) and ``candidates`` (name -> a
    candidate with its ``cv_result``)."""
    title = f"{name or 'comparison'}: {target}"
    board = table([h for _, h in _SHOWN], [[row[k] for k, _ in _SHOWN] for row in rows])
    sections = [("leaderboard", "Leaderboard", f"<p>ranked by {text(metric)}</p>{board}")]
    if paired is not None:
        diffs = paired["differences"]
        folds_table = table(
            ["fold", *range(len(diffs)), "mean"],
            [["difference", *diffs, paired["mean_difference"]]],
        )
        summary = table(
            ["test", "t", "p-value"], [[paired["test"], paired["t"], paired["p_value"]]]
        )
        intro = (
            f"<p>{text(paired['a'])} minus {text(paired['b'])}, {text(metric)} per fold. The "
            "folds share training rows, so their differences are not independent: the corrected "
            "test widens the spread by the ratio of held-out to training rows.</p>"
        )
        sections.append(("paired", "Top two, fold by fold", intro + folds_table + summary))
    order = [row["candidate"] for row in rows]
    per_fold = {n: [f.get(metric) for f in candidates[n].cv_result.folds] for n in order}
    sections.append(("folds", "Per fold", figure(fold_metric_plot(per_fold, metric))))
    if task == "classification":
        probas = {
            n: candidates[n].cv_result.proba
            for n in order
            if candidates[n].cv_result.proba is not None
        }
        if probas:
            plots = curve_plots(y, probas, list(classes.tolist()))
            sections.append(("curves", "Curves", "".join(figure(p) for p in plots)))
    else:
        predictions = {n: candidates[n].cv_result.prediction for n in order}
        sections.append(("errors", "Errors", figure(error_plot(y, predictions))))
    subtitle = f"{len(rows)} candidates · task: {task} · out-of-fold predictions on the same folds"
    return page(title, subtitle, sections)
