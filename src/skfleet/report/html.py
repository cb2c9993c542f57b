"""The report page: one self-contained HTML file with every image inlined.

No external CSS, scripts, fonts or images: the file can be mailed, stored next to the model, or
opened offline. Every piece of text goes through :func:`text`, which masks passwords
(:func:`skfleet.util.redact.redact_text`) and HTML-escapes; the caller is expected to have redacted
already, this is the second lock on the door.

>>> page = build_report(ReportData(title="demo <1>", task="regression",
...                                y_true=[1.0, 2.0, 3.0], y_pred=[1.1, 1.9, 3.2],
...                                metadata={"source": "postgresql://ana:pw@db/sales"}))
>>> "<h1>demo &lt;1&gt;</h1>" in page, "ana:***@db" in page, ":pw@" in page
(True, True, False)
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skfleet import __version__
from skfleet.metrics import classification_metrics, regression_metrics
from skfleet.metrics.labels import plain
from skfleet.report._render import Plot
from skfleet.report.data import ReportData
from skfleet.report.plots_classification import classification_plots, confusion_plot
from skfleet.report.plots_regression import regression_plots
from skfleet.report.plots_training import (
    fold_plot,
    importance_plot,
    learning_curve_plot,
    score_keys,
    search_plot,
)
from skfleet.util.redact import redact_text

TOP_SEARCH_ROWS = 20
# Nested drift / metadata structures deeper than this are shown as JSON in one cell.
_MAX_DEPTH = 2

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.sub { color: #666; margin-top: 0; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85em; max-width: 640px; }
code { font-size: 0.85em; word-break: break-all; }
ul.notes { color: #8a5300; font-size: 0.9em; }
"""


def text(value: Any) -> str:
    """``value`` as HTML-safe text with passwords masked.

    >>> text("<b> password=hunter2")
    '&lt;b&gt; password=***'
    """
    return html.escape(redact_text(str(value)), quote=True)


def fmt(value: Any) -> str:
    """A value as display text (not yet escaped): numbers to 4 significant digits, None as a dash.

    >>> fmt(0.123456), fmt(1234567), fmt(None), fmt({"C": 1.0})
    ('0.1235', '1,234,567', '—', '{"C": 1.0}')
    """
    value = plain(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _cell(value: Any, tag: str = "td") -> str:
    numeric = isinstance(plain(value), int | float) and not isinstance(plain(value), bool)
    css = ' class="num"' if numeric and tag == "td" else ""
    return f"<{tag}{css}>{text(fmt(value))}</{tag}>"


def table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; every cell formatted with :func:`fmt` and escaped."""
    head = "".join(_cell(h, "th") for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(plot: Plot) -> str:
    caption = f"<figcaption>{text(plot.caption)}</figcaption>" if plot.caption else ""
    return (
        f'<figure><h3>{text(plot.title)}</h3><img alt="{text(plot.title)}" src="{plot.uri}">'
        f"{caption}</figure>"
    )


def build_report(data: ReportData) -> str:
    """Render ``data`` as one self-contained HTML page; sections appear only for data given."""
    sections: list[tuple[str, str, str]] = []
    for builder in (
        _metrics_section,
        _predictions_section,
        _segments_section,
        _importance_section,
        _cv_section,
        _search_section,
        _curve_section,
        _drift_section,
        _metadata_section,
    ):
        section = builder(data)
        if section is not None:
            sections.append(section)
    subtitle = " · ".join(
        part
        for part in (
            f"model {data.name}" if data.name else "",
            f"version {data.version}" if data.version is not None else "",
            f"task: {data.task}",
            f"{len(data.classes)} classes"
            if data.classes and data.task == "classification"
            else "",
        )
        if part
    )
    return page(data.title, subtitle, sections)


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The HTML page: ``title``, ``subtitle``, a link to each section, then the sections
    (``(anchor, heading, HTML content)``), with the stylesheet inlined."""
    nav = " ".join(f'<a href="#{anchor}">{text(heading)}</a>' for anchor, heading, _ in sections)
    body = "\n".join(
        f'<section id="{anchor}"><h2>{text(heading)}</h2>\n{content}</section>'
        for anchor, heading, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f'<h1>{text(title)}</h1>\n<p class="sub">{text(subtitle)}</p>\n'
        f"<nav>{nav}</nav>\n{body}\n"
        f'<p class="sub">Generated by skfleet {text(__version__)}.</p>\n</body></html>\n'
    )


def with_section(report: str, section: tuple[str, str, str]) -> str:
    """A rendered page with one more section (``(anchor, heading, HTML content)``) before its
    footer and a link to it in its nav; a section with that anchor already there is replaced,
    so a page rebuilt from a stored report does not grow.

    >>> page_ = page("m", "", [("metrics", "Metrics", "<p>1</p>")])
    >>> once = with_section(page_, ("drift-runs", "Drift over runs", "<p>a</p>"))
    >>> twice = with_section(once, ("drift-runs", "Drift over runs", "<p>b</p>"))
    >>> twice.count('id="drift-runs"'), twice.count('href="#drift-runs"'), "<p>a</p>" in twice
    (1, 1, False)
    """
    anchor, heading, content = section
    mark = re.escape(anchor)
    report = re.sub(rf'<section id="{mark}">.*?</section>\n?', "", report, flags=re.S)
    report = re.sub(rf' ?<a href="#{mark}">[^<]*</a>', "", report)
    link = f'<a href="#{anchor}">{text(heading)}</a>'
    block = f'<section id="{anchor}"><h2>{text(heading)}</h2>\n{content}</section>\n'
    report = report.replace("</nav>", f" {link}</nav>", 1)
    footer = report.rfind('<p class="sub">Generated by')
    at = footer if footer >= 0 else report.rfind("</body>")
    return report[:at] + block + report[at:] if at >= 0 else report + block


def _notes(notes_by_set: Sequence[tuple[str, Sequence[str]]]) -> str:
    items = [
        f"<li>{text(name)}: {text(note)}</li>" for name, notes in notes_by_set for note in notes
    ]
    return f'<ul class="notes">{"".join(items)}</ul>' if items else ""


def _metrics_of(data: ReportData) -> Mapping[str, Any]:
    """The caller's metrics, or metrics computed from the predictions when none were given."""
    if data.metrics is not None:
        return data.metrics
    if not data.has_predictions:
        return {}
    if data.task == "classification":
        overall = classification_metrics(data.y_true, data.y_pred, data.proba, data.classes)
    elif data.task == "regression" and data.y_pred is not None:
        overall = regression_metrics(data.y_true, data.y_pred)
    else:
        return {}
    return {"overall": overall}


def _metrics_section(data: ReportData):
    metrics = _metrics_of(data)
    sets = [
        (f"overall ({data.predictions_label})" if name == "overall" else name, metrics[name])
        for name in ("overall", "holdout")
        if isinstance(metrics.get(name), Mapping)
    ]
    if not sets:
        return None
    keys = scalar_keys([values for _, values in sets])
    rows = [[name] + [values.get(key) for key in keys] for name, values in sets]
    notes = _notes([(name, values.get("notes") or []) for name, values in sets])
    return "metrics", "Metrics", table(["set", *keys], rows) + notes


def _predictions_section(data: ReportData):
    plots: list[Plot] = []
    if data.has_predictions and data.task == "classification":
        plots = classification_plots(data.y_true, data.y_pred, data.proba, data.classes)
    elif data.has_predictions and data.task == "regression" and data.y_pred is not None:
        plots = regression_plots(data.y_true, data.y_pred)
    elif data.task == "classification" and data.metrics:
        # A streamed model has no stored predictions, but its merged confusion matrix is enough.
        for name in ("holdout", "overall"):
            cm = (data.metrics.get(name) or {}).get("confusion_matrix")
            if cm and sum(map(sum, cm["matrix"])) > 0:
                plots = [confusion_plot(cm["matrix"], cm["labels"])]
                break
    if not plots:
        return None
    intro = ""
    if data.has_predictions:
        intro = f"<p>From {len(data.y_true):,} {text(data.predictions_label)} predictions.</p>"
    return "predictions", "Predictions", intro + "".join(figure(p) for p in plots)


def _segments_section(data: ReportData):
    segments = data.segments
    if not segments:
        return None
    headers: list[str] = []
    for row in segments:
        headers += [k for k in row if k not in headers]
    rows = [[row.get(h) for h in headers] for row in segments]
    compared = any(h.endswith("_global") for h in headers)
    intro = f"<p>{len(rows)} segments, largest first."
    if compared:
        intro += (
            " Metrics are out-of-fold: the model serving each segment, then (<code>_global</code>)"
            " the global model fitted in the same folds, on the same rows."
        )
    return "segments", "Segments", intro + "</p>" + table(headers, rows)


def _importance_section(data: ReportData):
    importance = data.feature_importance
    if not importance:
        return None
    method = data.importance_method or "unknown"
    explain = {
        "native": "the estimator's own importances (or |coefficients|), summed from encoded "
        "features back to each input column",
        "permutation": "drop in score when one input column is shuffled (permutation importance "
        "on a sample)",
    }.get(method, method)
    ranked = sorted(importance.items(), key=lambda kv: -abs(kv[1]))
    rows = [[i + 1, name, value] for i, (name, value) in enumerate(ranked)]
    return (
        "importance",
        "Feature importance",
        f"<p>Method: {text(explain)}.</p>"
        + figure(importance_plot(importance, method))
        + f"<details><summary>All {len(rows)} columns</summary>"
        + table(["#", "column", "importance"], rows)
        + "</details>",
    )


def _cv_section(data: ReportData):
    folds = (data.metrics or {}).get("folds") or []
    if not folds:
        return None
    keys = [k for k in scalar_keys(folds) if k != "fold"]
    rows = [[f.get("fold", i + 1)] + [f.get(k) for k in keys] for i, f in enumerate(folds)]
    headers = ["fold", *keys]
    notes = _notes(
        [(f"fold {f.get('fold', i + 1)}", f.get("notes") or []) for i, f in enumerate(folds)]
    )
    return "cv", "Cross-validation", figure(fold_plot(folds)) + table(headers, rows) + notes


def _search_section(data: ReportData):
    results = data.search_results
    if not results:
        return None
    ranked = sorted(results, key=lambda r: r.get("rank", math.inf))[:TOP_SEARCH_ROWS]
    rows = [
        [r.get("rank"), r.get("mean_test_score"), r.get("std_test_score"), r.get("params", {})]
        for r in ranked
    ]
    scoring = f" ({data.search_scoring})" if data.search_scoring else ""
    return (
        "search",
        "Hyperparameter search",
        f"<p>{len(results)} candidates, scored{text(scoring)}; the best {len(rows)} are listed.</p>"
        + figure(search_plot(results, data.search_scoring))
        + table(["rank", "mean test score", "std test score", "params"], rows),
    )


def _curve_section(data: ReportData):
    curve = data.learning_curve
    if not curve:
        return None
    keys = score_keys(curve, exclude={"epoch"})
    rows = [[row.get("epoch", i + 1)] + [row.get(k) for k in keys] for i, row in enumerate(curve)]
    return (
        "curve",
        "Learning curve",
        figure(learning_curve_plot(curve))
        + f"<details><summary>Values ({len(rows)} epochs)</summary>"
        + table(["epoch", *keys], rows)
        + "</details>",
    )


def _drift_section(data: ReportData):
    if not data.drift:
        return None
    return "drift", "Drift", render_any(data.drift)


def _metadata_section(data: ReportData):
    if not data.metadata:
        return None
    return "metadata", "Metadata", render_any(data.metadata)


def scalar_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys whose values are numbers or None in every row that has them (metric columns).

    Undefined metrics (None) keep their column, so a missing ROC AUC shows as a dash.

    >>> scalar_keys([{"accuracy": 0.9, "roc_auc": None, "notes": []}, {"n": 3}])
    ['accuracy', 'roc_auc', 'n']
    """
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return [
        k
        for k in keys
        if all(
            v is None or (isinstance(plain(v), int | float) and not isinstance(v, bool))
            for v in (row[k] for row in rows if k in row)
        )
    ]


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple | np.ndarray)


def render_any(value: Any, depth: int = 0) -> str:
    """A generic structure as tables: scalars as key/value rows, lists of dicts as a table.

    >>> render_any({"rows": 3, "columns": [{"name": "a", "unseen": 1}]}).count("<table>")
    2
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if _is_scalar(value) or depth > _MAX_DEPTH:
        return f"<p><code>{text(fmt(value))}</code></p>"
    if not len(value):  # an empty heading would look like a rendering bug
        return "<p>none</p>"
    if isinstance(value, Mapping):
        scalars = [(k, v) for k, v in value.items() if _is_scalar(v)]
        nested = [(k, v) for k, v in value.items() if not _is_scalar(v)]
        out = table(["key", "value"], scalars) if scalars else ""
        for key, sub in nested:
            out += f"<h3>{text(key)}</h3>"
            if (
                isinstance(sub, Mapping)
                and sub
                and all(isinstance(v, Mapping) for v in sub.values())
            ):
                out += _table_of_mappings(sub)
            else:
                out += render_any(sub, depth + 1)
        return out
    items = list(value)
    if _is_table_of_rows(items):
        headers: list[str] = []
        for row in items:
            headers += [k for k in row if k not in headers]
        return table(headers, [[_flat(row.get(h)) for h in headers] for row in items])
    return "<ul>" + "".join(f"<li>{text(fmt(_flat(v)))}</li>" for v in items) + "</ul>"


def _is_table_of_rows(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _table_of_mappings(value: Mapping[str, Mapping[str, Any]]) -> str:
    """``{row_name: {column: value}}`` as one table, one row per name."""
    headers: list[str] = []
    for row in value.values():
        headers += [k for k in row if k not in headers]
    rows = [[name] + [_flat(row.get(h)) for h in headers] for name, row in value.items()]
    return table(["", *headers], rows)


def _flat(value: Any) -> Any:
    """Containers inside a table cell become JSON text."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value if _is_scalar(value) else json.dumps(value, default=str)
