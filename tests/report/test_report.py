"""The HTML report: sections present only with their data, self-contained, escaped, redacted."""

import re

import numpy as np
import pytest

from skfleet.report import ReportData, build_report
from tests.report.reports import (
    DATA_URI,
    PASSWORD,
    classifier_data,
    decode_png,
    headings,
    png_images,
)

CLASSIFIER_FIGURES = [
    "ROC curve",
    "Precision-recall curve",
    "Calibration",
    "Score distributions",
    "Confusion matrix",
]


def _assert_self_contained(html):
    # Every resource reference is inline (data:) or an in-page anchor (#...).
    for attribute, value in re.findall(r'\b(src|href)="([^"]*)"', html):
        assert value.startswith(("data:image/png;base64,", "#")), (attribute, value[:60])
    text_only = DATA_URI.sub("", html)
    assert "http" not in text_only
    for external in ("<script", "<link", "url(", "@import", "<iframe"):
        assert external not in text_only.lower()


def _assert_images_decode(html, expected):
    images = png_images(html)
    assert len(images) == expected == html.count("<img ")
    for raw in images:
        width, height = decode_png(raw)
        assert width > 100 and height > 100


def test_binary_classifier_report(binary_html):
    html = binary_html
    assert headings(html, 1) == ["Late flights"]
    assert headings(html, 2) == [
        "Metrics",
        "Predictions",
        "Feature importance",
        "Cross-validation",
        "Hyperparameter search",
        "Metadata",
    ]
    figures = headings(html, 3)
    assert figures[:5] == CLASSIFIER_FIGURES
    assert {"Top input columns", "Fold spread", "Score by C"} <= set(figures)
    assert "positive class: late" in html
    assert "top 30 of 40 input columns" in html
    _assert_self_contained(html)
    _assert_images_decode(html, expected=8)


def test_three_class_report_draws_one_vs_rest(three_class_html):
    html = three_class_html
    assert headings(html, 3)[:5] == CLASSIFIER_FIGURES
    assert "one-vs-rest per class" in html
    assert "3 classes" in html
    _assert_self_contained(html)
    _assert_images_decode(html, expected=8)


def test_regressor_report(regressor_html):
    html = regressor_html
    assert headings(html, 2) == [
        "Metrics",
        "Predictions",
        "Feature importance",
        "Cross-validation",
        "Metadata",
    ]
    assert headings(html, 3)[:2] == ["Predicted vs actual", "Residuals"]
    assert "ROC curve" not in html and "permutation importance" in html
    _assert_self_contained(html)
    _assert_images_decode(html, expected=4)


def test_streamed_model_report_has_learning_curve_and_merged_confusion_matrix(streamed_html):
    html = streamed_html
    assert headings(html, 2) == ["Metrics", "Predictions", "Learning curve", "Drift", "Metadata"]
    assert headings(html, 3)[:2] == ["Confusion matrix", "Metrics by epoch"]
    assert "ROC curve" not in html  # no stored predictions to draw it from
    assert "<td>holdout</td>" in html
    assert "carrier: 2 unseen levels" in html
    _assert_self_contained(html)
    _assert_images_decode(html, expected=2)


def test_metadata_only_report():
    html = build_report(ReportData(title="registered", task="transform", metadata={"rows": 10}))
    assert headings(html, 2) == ["Metadata"]
    assert png_images(html) == []


def test_metrics_are_computed_when_only_predictions_are_given():
    y = np.arange(50.0)
    html = build_report(ReportData(title="t", task="regression", y_true=y, y_pred=y + 1))
    assert headings(html, 2) == ["Metrics", "Predictions"]
    assert "<th>rmse</th>" in html and '<td class="num">1</td>' in html


def test_passwords_are_masked_and_text_escaped_everywhere():
    data = classifier_data(["<b>no</b>", "yes & co"], n=300)
    leak = f"postgresql://u:{PASSWORD}@h/db"
    data.title = f"report for {leak} <i>"
    data.metadata = {
        "source": leak,
        f"password={PASSWORD}": "a key with a secret",
        "nested": {"dsn": f"host=h password={PASSWORD}", "list": [leak]},
        "<script>alert(1)</script>": "\"'><img src=x onerror=alert(1)>",
    }
    data.search_results[0]["params"] = {"dsn": leak}
    data.feature_importance = {f"col password={PASSWORD}": 1.0, "<td>": 0.5}
    data.drift = {"warnings": [leak]}
    data.metrics["overall"]["notes"] = [f"could not reach {leak}"]
    html = build_report(data)
    assert PASSWORD not in html
    assert "u:***@h/db" in html and "password=***" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "positive class: yes &amp; co" in html and "&lt;td&gt;" in html
    assert "<title>report for postgresql://u:***@h/db &lt;i&gt;</title>" in html
    # The only <img> tags are the report's own inlined figures.
    assert html.count("<img ") == len(png_images(html))
    _assert_self_contained(html)


def test_plot_labels_are_redacted_too():
    from skfleet.report._render import label

    assert PASSWORD not in label(f"x password={PASSWORD}", limit=100)


def test_large_regression_subsamples_the_scatter():
    rng = np.random.default_rng(3)
    y = rng.normal(size=300_000)
    data = ReportData(title="big", task="regression", y_true=y, y_pred=y + rng.normal(size=300_000))
    html = build_report(data)
    assert "5,000 of 300,000 rows shown" in html
    assert "From 300,000 out-of-fold predictions" in html


def test_bad_task_is_refused():
    with pytest.raises(ValueError, match="task must be one of"):
        ReportData(task="ranking")
