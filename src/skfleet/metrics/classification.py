"""Classification metrics: one-shot with scikit-learn, and a mergeable accumulator.

Both return the same JSON-ready keys: ``accuracy``, ``roc_auc`` (binary: of the second class;
multiclass: macro one-vs-rest), ``log_loss``, ``brier`` (binary: of the second class; multiclass:
mean over classes of the one-vs-rest Brier score, i.e. scikit-learn's multiclass Brier divided by
the number of classes, so it stays in [0, 1]), ``confusion_matrix`` (``{"labels", "matrix"}``, rows
are true labels), ``n`` and ``notes``.

>>> m = classification_metrics(["no", "yes", "yes", "no"], ["no", "yes", "no", "no"],
...                            [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]], ["no", "yes"])
>>> m["accuracy"], m["roc_auc"], m["confusion_matrix"]
(0.75, 1.0, {'labels': ['no', 'yes'], 'matrix': [[2, 0], [1, 1]]})
>>> acc = ClassificationAccumulator(["no", "yes"])
>>> _ = acc.update(["no", "yes"], ["no", "yes"], [[0.9, 0.1], [0.2, 0.8]])
>>> other = ClassificationAccumulator(["no", "yes"])
>>> _ = other.update(["yes", "no"], ["no", "no"], [[0.6, 0.4], [0.7, 0.3]])
>>> r = acc.merge(other).result()
>>> r["accuracy"], r["roc_auc"], r["n"], abs(r["log_loss"] - m["log_loss"]) < 1e-12
(0.75, 1.0, 4, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn import metrics as skm

from skfleet.metrics.labels import (
    WEIGHTED_NOTE,
    ZERO_WEIGHT_NOTE,
    as_proba,
    as_weights,
    encode_labels,
    plain_classes,
)

# scikit-learn's log_loss clips probabilities to [eps, 1 - eps] of the input dtype; we always
# score in float64, so the accumulator clips the same way and its log loss matches exactly.
_EPS = float(np.finfo(np.float64).eps)
# Above this worst-case histogram error, the accumulator's result says its ROC AUC is approximate.
_AUC_NOTE_ABOVE = 1e-3


def classification_metrics(
    y_true: Any,
    y_pred: Any = None,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
    sample_weight: Any = None,
) -> dict[str, Any]:
    """Score classifier predictions held in memory; every value is a plain Python object.

    ``classes`` are the labels in the estimator's order (the columns of ``proba``); if omitted
    they are the sorted labels seen in ``y_true`` and ``y_pred``. ``y_pred`` may be omitted when
    ``proba`` is given (the most probable class is taken). Without ``proba`` the probability
    metrics are ``None``. A label outside ``classes`` raises :class:`~skfleet.errors.DataError`.
    With ``sample_weight`` accuracy, ROC AUC, log loss and Brier are scikit-learn's weighted ones;
    ``n`` and the confusion matrix still count rows.

    >>> w = classification_metrics([0, 1, 1], [0, 1, 0], None, [0, 1], sample_weight=[1, 1, 2])
    >>> w["accuracy"], w["n"], w["notes"][0]
    (0.5, 3, 'weighted by the sample weights (n and confusion_matrix count rows)')
    >>> m = classification_metrics([0, 0, 0], [0, 1, 0], [[0.8, 0.2], [0.4, 0.6], [0.9, 0.1]], [0, 1])
    >>> m["roc_auc"], m["notes"]
    (None, ['roc_auc undefined: only class 0 is present in y_true'])
    """
    if classes is None:
        seen = [np.asarray(y_true, dtype=object)]
        if y_pred is not None:
            seen.append(np.asarray(y_pred, dtype=object))
        classes = sorted(set(np.concatenate(seen).tolist()))
    labels = plain_classes(classes)
    k = len(labels)
    y_idx, pred_idx, p = _encoded(y_true, y_pred, proba, labels, "classification_metrics")
    n = len(y_idx)
    w = as_weights(sample_weight, n)
    notes: list[str] = [WEIGHTED_NOTE] if w is not None else []
    result: dict[str, Any] = {"accuracy": None, "roc_auc": None, "log_loss": None, "brier": None}
    codes = list(range(k))
    result["confusion_matrix"] = {
        "labels": labels,
        "matrix": skm.confusion_matrix(y_idx, pred_idx, labels=codes).tolist()
        if n
        else [[0] * k for _ in codes],
    }
    result["n"] = int(n)
    result["notes"] = notes
    if n == 0:
        notes.append("no rows to score")
        return result
    if w is not None and not w.any():
        notes.append(ZERO_WEIGHT_NOTE)
        return result
    result["accuracy"] = float(skm.accuracy_score(y_idx, pred_idx, sample_weight=w))
    if p is None:
        notes.append("no probabilities: roc_auc, log_loss and brier not computed")
        return result
    result["roc_auc"] = _roc_auc(y_idx, p, labels, notes, w)
    result["log_loss"] = float(skm.log_loss(y_idx, p, labels=codes, sample_weight=w))
    if k == 2:
        result["brier"] = float(
            skm.brier_score_loss((y_idx == 1).astype(int), p[:, 1], pos_label=1, sample_weight=w)
        )
    else:
        per_class = [
            skm.brier_score_loss((y_idx == c).astype(int), p[:, c], pos_label=1, sample_weight=w)
            for c in codes
        ]
        result["brier"] = float(np.mean(per_class))
    return result


def _encoded(y_true, y_pred, proba, labels: list[Any], caller: str):
    """``(y_idx, pred_idx, p)``: the labels as indices into ``labels``, the predictions too (the
    most probable class where only ``proba`` is given) and the probabilities (or ``None``).

    >>> _encoded(["a", "b"], None, [[0.9, 0.1], [0.4, 0.6]], ["a", "b"], "update")[1]
    array([0, 1])
    """
    y_idx = encode_labels(y_true, labels, "target label")
    n = len(y_idx)
    p = None if proba is None else as_proba(proba, n, len(labels))
    if y_pred is None:
        if p is None:
            raise ValueError(f"{caller} needs y_pred or proba")
        return y_idx, p.argmax(axis=1), p
    pred_idx = encode_labels(y_pred, labels, "predicted label")
    if len(pred_idx) != n:
        raise ValueError(f"y_true has {n} rows but y_pred has {len(pred_idx)}")
    return y_idx, pred_idx, p


def _roc_auc(y_idx: np.ndarray, p: np.ndarray, labels: list[Any], notes: list[str], w=None):
    """Binary AUC of the second class, or the macro one-vs-rest AUC over the defined classes
    (weighted by ``w`` if given: a class present only in rows of weight 0 is absent)."""
    k = len(labels)
    present = y_idx if w is None else y_idx[w > 0]
    if k == 2:
        if len(np.unique(present)) < 2:
            notes.append(
                f"roc_auc undefined: only class {labels[present[0]]!r} is present in y_true"
            )
            return None
        return float(skm.roc_auc_score(y_idx == 1, p[:, 1], sample_weight=w))
    per_class, missing = [], []
    for c in range(k):
        positive = present == c
        if positive.all() or not positive.any():
            missing.append(labels[c])
            continue
        per_class.append(skm.roc_auc_score(y_idx == c, p[:, c], sample_weight=w))
    return _macro(per_class, missing, k, notes)


def _macro(per_class: list[float], missing: list[Any], k: int, notes: list[str]):
    """Average the defined one-vs-rest AUCs and say in ``notes`` which classes were left out."""
    if not per_class:
        notes.append("roc_auc undefined: fewer than two classes are present in y_true")
        return None
    if missing:
        notes.append(
            f"roc_auc is the macro average over {len(per_class)} of {k} classes; "
            f"absent from or alone in y_true: {missing}"
        )
    return float(np.mean(per_class))


@lru_cache(maxsize=8)
def _bin_edges(n_bins: int, half_width: float) -> np.ndarray:
    """Inner bin edges, evenly spaced in logit(score) so both tails near 0 and 1 stay resolved."""
    logits = np.linspace(-half_width, half_width, n_bins - 1)
    return 1.0 / (1.0 + np.exp(-logits))


def _score_bins(scores: np.ndarray, n_bins: int, half_width: float) -> np.ndarray:
    """The bin of each score: how many of :func:`_bin_edges` lie at or below it.

    The edges are evenly spaced in logit space, so the bin is arithmetic on logit(score) rather
    than a binary search over 4,096 edges (which cost more than a ``partial_fit`` of the same rows).

    >>> scores = np.array([0.0, 1e-9, 0.2, 0.5, 0.9, 1 - 1e-9, 1.0])
    >>> edges = _bin_edges(64, 12.0)
    >>> bool((_score_bins(scores, 64, 12.0) == np.searchsorted(edges, scores, side="right")).all())
    True
    """
    if n_bins <= 2:
        return np.searchsorted(_bin_edges(n_bins, half_width), scores, side="right")
    with np.errstate(divide="ignore", invalid="ignore"):
        logits = np.log(scores) - np.log1p(-scores)
    step = 2.0 * half_width / (n_bins - 2)
    position = np.floor((logits + half_width) / step) + 1.0
    position = np.nan_to_num(position, nan=n_bins - 1, posinf=n_bins - 1, neginf=0.0)
    return np.clip(position, 0, n_bins - 1).astype(np.intp)


class ClassificationAccumulator:
    """Mergeable classification metrics for data scored partition by partition.

    Each worker calls :meth:`update` on its own accumulator (it pickles small: counts and
    histograms, no rows); the client folds them with :meth:`merge` and calls :meth:`result`,
    which has the keys of :func:`classification_metrics`.

    Accuracy, confusion matrix, log loss and Brier score are exact (counts and sums). ROC AUC is
    computed from a histogram of each class's scores over ``n_bins`` fixed bins (evenly spaced in
    logit(score) over ``[-logit_range, logit_range]``, so scores piled up near 0 or 1 are still
    resolved): pairs of a positive and a negative whose scores share a bin count one half. Its
    error is therefore at most half the share of such pairs, which :meth:`roc_auc_error_bound`
    reports; with the default 4,096 bins that is below 1e-3 unless the scores crowd into a very
    narrow band, and the actual error is usually far smaller (within a bin, positives and negatives
    are rarely ordered one way only). When the bound exceeds 1e-3, ``notes`` says so.

    ``update(..., sample_weight=w)`` weighs each row: sums and histograms hold weights rather than
    counts, so accuracy, log loss, Brier and ROC AUC are the weighted ones (``n`` and the
    confusion matrix still count rows); an update without weights weighs its rows 1.

    >>> w = ClassificationAccumulator([0, 1]).update([0, 1], [0, 0], sample_weight=[3.0, 1.0])
    >>> w.result()["accuracy"]
    0.75
    >>> acc = ClassificationAccumulator([0, 1, 2])
    >>> _ = acc.update([0, 1, 2, 2], [0, 1, 1, 2], np.eye(3)[[0, 1, 1, 2]])
    >>> r = acc.result()
    >>> r["accuracy"], r["confusion_matrix"]["matrix"]
    (0.75, [[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    """

    def __init__(self, classes: Sequence[Any], n_bins: int = 4096, logit_range: float = 12.0):
        self.classes = plain_classes(classes)
        if len(self.classes) < 2:
            raise ValueError("a classifier has at least two classes")
        if n_bins < 2:
            raise ValueError("n_bins must be at least 2")
        self.n_bins = int(n_bins)
        self.logit_range = float(logit_range)
        k = len(self.classes)
        # Binary AUC is the second class's; multiclass needs every class one-vs-rest.
        self._auc_columns = [1] if k == 2 else list(range(k))
        self.n_ = 0
        self.confusion_ = np.zeros((k, k), dtype=np.int64)
        self.n_proba_ = 0
        # Total weight and the weight of correct predictions (rows weigh 1 without weights, so
        # these are then exact counts and the results equal the unweighted ones to the bit).
        self.weight_ = 0.0
        self.correct_weight_ = 0.0
        self.weighted_ = False
        self.log_loss_sum_ = 0.0
        self.brier_sums_ = np.zeros(k, dtype=np.float64)
        self.pos_hist_ = np.zeros((len(self._auc_columns), self.n_bins), dtype=np.float64)
        self.neg_hist_ = np.zeros_like(self.pos_hist_)

    def update(self, y_true: Any, y_pred: Any = None, proba: Any = None, sample_weight: Any = None):
        """Add one batch; ``y_pred`` may be omitted when ``proba`` is given. Returns ``self``."""
        k = len(self.classes)
        y_idx, pred_idx, p = _encoded(y_true, y_pred, proba, self.classes, "update")
        n = len(y_idx)
        w = as_weights(sample_weight, n)
        self.weighted_ = self.weighted_ or w is not None
        self.n_ += n
        self.confusion_ += np.bincount(y_idx * k + pred_idx, minlength=k * k).reshape(k, k)
        correct = y_idx == pred_idx
        self.weight_ += float(n if w is None else w.sum())
        self.correct_weight_ += float(correct.sum() if w is None else w[correct].sum())
        if p is None or n == 0:
            return self
        self.n_proba_ += n
        p_true = np.clip(p[np.arange(n), y_idx], _EPS, 1.0 - _EPS)
        losses = -np.log(p_true)
        self.log_loss_sum_ += float(losses.sum() if w is None else losses @ w)
        onehot = np.zeros_like(p)
        onehot[np.arange(n), y_idx] = 1.0
        squares = (p - onehot) ** 2
        self.brier_sums_ += squares.sum(axis=0) if w is None else w @ squares
        for row, c in enumerate(self._auc_columns):
            bins = _score_bins(p[:, c], self.n_bins, self.logit_range)
            positive = y_idx == c
            for hist, rows in ((self.pos_hist_, positive), (self.neg_hist_, ~positive)):
                weights = None if w is None else w[rows]
                hist[row] += np.bincount(bins[rows], weights=weights, minlength=self.n_bins)
        return self

    def merge(self, other: ClassificationAccumulator):
        """Fold ``other`` (same classes and bins) into this accumulator; returns ``self``."""
        same = (other.classes, other.n_bins, other.logit_range)
        if same != (self.classes, self.n_bins, self.logit_range):
            raise ValueError("cannot merge accumulators with different classes or bins")
        self.n_ += other.n_
        self.confusion_ += other.confusion_
        self.n_proba_ += other.n_proba_
        self.weight_ += other.weight_
        self.correct_weight_ += other.correct_weight_
        self.weighted_ = self.weighted_ or other.weighted_
        self.log_loss_sum_ += other.log_loss_sum_
        self.brier_sums_ += other.brier_sums_
        self.pos_hist_ += other.pos_hist_
        self.neg_hist_ += other.neg_hist_
        return self

    def _auc_per_class(self) -> list[tuple[float, float] | None]:
        """(AUC, worst-case error) per histogrammed class, ``None`` where it is undefined."""
        out: list[tuple[float, float] | None] = []
        for pos, neg in zip(
            self.pos_hist_.astype(np.float64), self.neg_hist_.astype(np.float64), strict=True
        ):
            n_pos, n_neg = float(pos.sum()), float(neg.sum())
            if n_pos == 0 or n_neg == 0:
                out.append(None)
                continue
            neg_below = np.cumsum(neg) - neg
            same_bin = float(pos @ neg)
            auc = (float(pos @ neg_below) + 0.5 * same_bin) / (n_pos * n_neg)
            out.append((auc, 0.5 * same_bin / (n_pos * n_neg)))
        return out

    def roc_auc_error_bound(self) -> float | None:
        """Largest possible |histogram AUC - exact AUC| for the data seen (None if undefined)."""
        defined = [e for e in self._auc_per_class() if e is not None]
        return float(np.mean([err for _, err in defined])) if defined else None

    def result(self) -> dict[str, Any]:
        """The metrics of everything seen so far, with the keys of :func:`classification_metrics`."""
        k = len(self.classes)
        n = int(self.n_)
        notes: list[str] = []
        result: dict[str, Any] = {
            "accuracy": None,
            "roc_auc": None,
            "log_loss": None,
            "brier": None,
        }
        result["confusion_matrix"] = {
            "labels": list(self.classes),
            "matrix": self.confusion_.tolist(),
        }
        result["n"] = n
        result["notes"] = notes
        if self.weighted_:
            notes.append(WEIGHTED_NOTE)
        if n == 0:
            notes.append("no rows to score")
            return result
        total = self.weight_
        if total == 0:
            notes.append(ZERO_WEIGHT_NOTE)
            return result
        result["accuracy"] = float(self.correct_weight_ / total)
        if self.n_proba_ != n:
            notes.append(
                f"probabilities were given for {self.n_proba_} of {n} rows: "
                "roc_auc, log_loss and brier not computed"
            )
            return result
        result["log_loss"] = self.log_loss_sum_ / total
        sums = self.brier_sums_
        result["brier"] = float(sums[1] / total if k == 2 else sums.mean() / total)
        per_class = self._auc_per_class()
        if k == 2:
            if per_class[0] is None:
                present = self.classes[int(np.argmax(self.confusion_.sum(axis=1)))]
                notes.append(f"roc_auc undefined: only class {present!r} is present in y_true")
            else:
                result["roc_auc"] = per_class[0][0]
        else:
            defined = [auc for auc, _ in filter(None, per_class)]
            missing = [c for c, e in zip(self.classes, per_class, strict=True) if e is None]
            result["roc_auc"] = _macro(defined, missing, k, notes)
        bound = self.roc_auc_error_bound()
        if bound is not None and bound > _AUC_NOTE_ABOVE:
            notes.append(
                f"roc_auc is approximate (histogram of {self.n_bins} bins): error up to {bound:.2g}"
            )
        return result
