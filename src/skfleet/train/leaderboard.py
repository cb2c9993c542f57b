"""The leaderboard of a comparison, the paired test of its top two, and the result ``train``
returns for several candidates.

Candidates are ranked by the mean over folds of the run's headline metric (ROC AUC, else
accuracy, for classifiers; R2 for regressors), the same folds for every candidate. The top two
are compared fold by fold with the corrected resampled t-test of Nadeau and Bengio (2003): a
plain paired t-test treats the folds as independent samples, but every two folds share most of
their training rows, so their differences are correlated and the plain test is overconfident; the
correction inflates the variance of the mean difference by ``n_test / n_train``. A sign test
would need no such assumption but cannot reach p < 0.05 with fewer than 6 folds.

>>> test = paired_comparison([0.81, 0.80, 0.83], [0.78, 0.79, 0.80], 100, 200)
>>> test["differences"], round(test["mean_difference"], 4), round(test["p_value"], 3)
([0.03, 0.01, 0.03], 0.0233, 0.157)
>>> rank_metric("classification", [{"roc_auc": None, "accuracy": 0.9}])
'accuracy'
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Metrics where lower is better; every other headline metric is better higher.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss", "brier"})

#: The leaderboard's columns, in order.
COLUMNS = (
    "rank",
    "candidate",
    "version",
    "metric",
    "mean",
    "std",
    "overall",
    "fit_s_per_1k_rows",
    "predict_s_per_1k_rows",
    "artifact_bytes",
)


def rank_metric(task: str, overalls: list[dict]) -> str:
    """The headline metric every candidate has (``main_metric``'s order of preference)."""
    names = ("roc_auc", "accuracy") if task == "classification" else ("r2", "rmse")
    for name in names:
        if all(o.get(name) is not None for o in overalls):
            return name
    return names[-1]


def fold_values(folds: list[dict], metric: str) -> list[float]:
    return [float("nan") if f.get(metric) is None else float(f[metric]) for f in folds]


def paired_comparison(a: list[float], b: list[float], n_test: float, n_train: float) -> dict:
    """Per-fold differences ``a - b``, their mean and the corrected resampled t-test's p-value
    (two-sided; ``n_test``/``n_train``: mean held-out and training rows per fold)."""
    from scipy import stats

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    k = len(diff)
    mean = float(diff.mean())
    variance = float(diff.var(ddof=1)) if k > 1 else float("nan")
    corrected = (1.0 / k + n_test / n_train) * variance
    if not math.isfinite(corrected):
        t = p = None
    elif corrected == 0:
        t, p = (None, None) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / math.sqrt(corrected)
        p = float(2 * stats.t.sf(abs(t), df=k - 1))
    return {
        "differences": [round(float(d), 6) for d in diff],
        "mean_difference": mean,
        "std_difference": None if k < 2 else math.sqrt(variance),
        "t": t,
        "p_value": p,
        "test": "corrected resampled t-test (Nadeau and Bengio, 2003), two-sided",
    }


def ranked(rows: list[dict], metric: str) -> list[dict]:
    """``rows`` best first, each given its ``rank`` (1 is best)."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(row):
        value = row["mean"]
        return math.inf if value is None or not math.isfinite(value) else sign * value

    out = sorted(rows, key=key)
    for i, row in enumerate(out, start=1):
        row["rank"] = i
    return out


@dataclass
class ComparisonResult:
    """Several candidates trained on the same folds: ``leaderboard`` (a pandas DataFrame, best
    first), ``results`` (candidate name -> its :class:`~skfleet.train.api.TrainResult`), the
    paired comparison of the top two, and where the comparison report is."""

    comparison_id: str
    metric: str
    rows: list[dict]
    results: dict[str, Any]
    paired: dict | None
    seconds: float
    report_path: str | None = None
    report_html: str | None = field(default=None, repr=False)

    @property
    def leaderboard(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    @property
    def best(self) -> Any:
        """The :class:`TrainResult` of the top-ranked candidate."""
        return self.results[self.rows[0]["candidate"]]

    def __repr__(self) -> str:
        top = self.rows[0]
        named = self.best.name and f" {self.best.name}@{self.best.version}"
        return (
            f"<ComparisonResult {len(self.rows)} candidates, best {top['candidate']}"
            f"{named or ''}: {self.metric}={top['mean']:.4g}, {self.seconds}s>"
        )

    def _repr_html_(self) -> str:
        """A notebook cell: the leaderboard and the link to the comparison report."""
        link = ""
        if self.report_path:
            link = f"<p><a href='{html.escape(self.report_path)}'>comparison report</a></p>"
        return self.leaderboard.to_html(index=False, float_format=lambda v: f"{v:.4g}") + link

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` summary: the leaderboard, the paired test, each candidate's summary."""
        return {
            "comparison": self.comparison_id,
            "metric": self.metric,
            "leaderboard": self.rows,
            "paired": self.paired,
            "candidates": {name: r.to_dict() for name, r in self.results.items()},
            "seconds": self.seconds,
            "report": self.report_path,
        }
