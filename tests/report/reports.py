"""Report inputs like the ones train and train-stream build, and helpers to inspect the HTML."""

import base64
import io
import re

import numpy as np

from skfleet.metrics import ClassificationAccumulator, classification_metrics, regression_metrics
from skfleet.report import ReportData
from tests.report.samples import classifier_output

DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
PASSWORD = "s3cr3t-Pa55"
SOURCE = f"postgresql://ana:{PASSWORD}@db.example/flights?table=public.flights"


def _folds(y, pred, proba, classes, k=5):
    return [
        {"fold": i + 1, **classification_metrics(y[i::k], pred[i::k], proba[i::k], classes)}
        for i in range(k)
    ]


def classifier_data(classes, n=3000, seed=0) -> ReportData:
    y, pred, proba = classifier_output(n, classes, seed=seed)
    return ReportData(
        title="Late flights",
        name="late",
        version=2,
        task="classification",
        classes=classes,
        y_true=y,
        y_pred=pred,
        proba=proba,
        metrics={
            "overall": classification_metrics(y, pred, proba, classes),
            "folds": _folds(y, pred, proba, classes),
        },
        feature_importance={f"feature_{i}": 1.0 / (i + 1) for i in range(40)},
        importance_method="native",
        search_results=[
            {
                "params": {"C": c},
                "mean_test_score": 0.8 - abs(np.log10(c)) / 20,
                "std_test_score": 0.01,
                "rank": r,
            }
            for r, c in enumerate([1.0, 0.1, 10.0, 0.01, 100.0], start=1)
        ],
        search_scoring="roc_auc",
        metadata={
            "estimator": "LogisticRegression",
            "params": {"C": 1.0},
            "rows": {"train": n},
            "source": SOURCE,
        },
    )


def regressor_data(n=2000, seed=0) -> ReportData:
    rng = np.random.default_rng(seed)
    y = rng.normal(20, 5, n)
    pred = y + rng.normal(0, 2, n)
    return ReportData(
        title="Arrival delay",
        task="regression",
        y_true=y,
        y_pred=pred,
        metrics={
            "overall": regression_metrics(y, pred),
            "folds": [regression_metrics(y[i::4], pred[i::4]) for i in range(4)],
        },
        feature_importance={"distance": 0.5, "hour": 0.3, "carrier": 0.2},
        importance_method="permutation",
        metadata={"estimator": "Ridge", "source": "file:///data/flights.parquet"},
    )


def streamed_data(seed=0) -> ReportData:
    """A partial_fit model: no stored predictions, a learning curve and merged holdout metrics."""
    classes = ["on time", "late"]
    y, pred, proba = classifier_output(2000, classes, seed=seed)
    holdout = ClassificationAccumulator(classes)
    for chunk in np.array_split(np.arange(len(y)), 4):
        holdout.merge(
            ClassificationAccumulator(classes).update(y[chunk], pred[chunk], proba[chunk])
        )
    curve = [
        {
            "epoch": e,
            "progressive_log_loss": 0.7 / e**0.3,
            "holdout_log_loss": 0.72 / e**0.3,
            "holdout_accuracy": 0.6 + 0.02 * e,
        }
        for e in range(1, 6)
    ]
    return ReportData(
        title="Late flights (streamed)",
        task="classification",
        classes=classes,
        metrics={"holdout": holdout.result()},
        learning_curve=curve,
        drift={
            "rows": 2000,
            "columns": {"carrier": {"unseen_levels": 2, "missing_share": 0.0}},
            "warnings": ["carrier: 2 unseen levels"],
        },
        metadata={"estimator": "SGDClassifier", "kind": "stream", "source": SOURCE},
    )


def headings(html, level):
    return re.findall(rf"<h{level}>(.*?)</h{level}>", html)


def png_images(html):
    """Every inlined image, decoded from base64."""
    return [base64.b64decode(m) for m in DATA_URI.findall(html)]


def decode_png(raw):
    """(width, height) after a full decode with Pillow and again with matplotlib."""
    import matplotlib.image
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as image:
        assert image.format == "PNG"
        image.load()
        size = image.size
    pixels = matplotlib.image.imread(io.BytesIO(raw), format="png")
    assert pixels.shape[:2] == (size[1], size[0])
    return size
