"""Model reports: one self-contained HTML page with metrics, diagnostics plots and provenance.

- :class:`ReportData` — what to show (every part optional but the title)
- :func:`build_report` — ``ReportData`` -> HTML string (PNG images inlined as ``data:`` URIs)
- :func:`feature_importance` — importance per input column, native or by permutation

Each name is imported on first use: feature importance (computed with or without a report) does
not load matplotlib, which only the figures need.

>>> from skfleet.report import ReportData, build_report
>>> html = build_report(ReportData(title="iris", task="classification",
...                                y_true=["a", "b", "b"], y_pred=["a", "b", "a"]))
>>> html.startswith("<!DOCTYPE html>"), "Confusion matrix" in html
(True, True)
"""

from __future__ import annotations

from skfleet.util.api_module import lazy_names

__all__ = ["ReportData", "build_report", "feature_importance"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "ReportData": "skfleet.report.data:ReportData",
        "build_report": "skfleet.report.html:build_report",
        "feature_importance": "skfleet.report.importance:feature_importance",
    },
)
