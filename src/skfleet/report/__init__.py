"""Model reports: one self-contained HTML page with metrics, diagnostics plots and provenance.

- :class:`ReportData` — what to show (every part optional but the title)
- :func:`build_report` — ``ReportData`` -> HTML string (PNG images inlined as ``data:`` URIs)
- :func:`feature_importance` — importance per input column, native or by permutation

>>> html = build_report(ReportData(title="iris", task="classification",
...                                y_true=["a", "b", "b"], y_pred=["a", "b", "a"]))
>>> html.startswith("<!DOCTYPE html>"), "Confusion matrix" in html
(True, True)
"""

from __future__ import annotations

from skfleet.report.data import ReportData
from skfleet.report.html import build_report
from skfleet.report.importance import feature_importance

__all__ = ["ReportData", "build_report", "feature_importance"]
