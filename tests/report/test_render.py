"""How figures are drawn: fixed margins that still hold every label, figures reused without
leaking state, and matplotlib loaded only by the figures."""

import base64
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skfleet.report import _render, build_report
from skfleet.report.plots_classification import classification_plots
from skfleet.report.plots_regression import regression_plots
from skfleet.report.plots_training import fold_plot, importance_plot
from tests.report.reports import classifier_data, png_images, regressor_data

#: Names as long as a label may be (``_render.MAX_LABEL``), wide letters first.
LONG = ["W" * 12 + f"ide_column_{i}_with_a_long_name_xx" for i in range(6)]


def _edge_ink(raw: bytes) -> int:
    """Non-white pixels on the image's outermost ring: a label cut by the canvas edge leaves some
    (the fixed margins keep every axis at least 0.15 in, 12 px, from the edge)."""
    with Image.open(io.BytesIO(raw)) as image:
        pixels = np.asarray(image.convert("L"))
    ring = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return int((ring < 250).sum())


def _png(plot) -> bytes:
    return base64.b64decode(plot.uri.split(",", 1)[1])


@pytest.fixture
def fresh_figures():
    """No spare figure from an earlier test: the next figure is made new."""
    _render._spare.figures = []
    yield
    _render._spare.figures = []


def test_long_labels_stay_inside_every_figure(fresh_figures):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 600)
    proba = rng.dirichlet(np.ones(6), 600)
    plots = [
        importance_plot({name: 1.0 / (i + 1) for i, name in enumerate(LONG)}, "permutation"),
        *classification_plots(np.array(LONG)[y], None, proba, LONG),
        *regression_plots(-250_000 + 1e3 * y, -250_000 + 1e3 * y + rng.normal(0, 500, 600)),
    ]
    assert {p.title for p in plots} >= {"Top input columns", "Confusion matrix", "Residuals"}
    assert {p.title: _edge_ink(_png(p)) for p in plots} == {p.title: 0 for p in plots}


def test_the_edge_check_sees_a_cut_label(fresh_figures):
    # The same importance plot with a margin too narrow for its names: the check must fail.
    fig, ax = _render.new_figure(7.0, 3.0, margins=_render.Margins(left=0.3))
    ax.barh(range(len(LONG)), np.arange(len(LONG)))
    ax.set_yticks(range(len(LONG)), LONG, fontsize=8)
    assert _edge_ink(base64.b64decode(_render.to_data_uri(fig).split(",", 1)[1])) > 0


def test_a_reused_figure_draws_what_a_new_one_draws(fresh_figures):
    folds = [{"accuracy": 0.8, "log_loss": 0.4, "n": 10}, {"accuracy": 0.9, "log_loss": 0.3}]
    fresh = fold_plot(folds).uri
    # Draw figures of other sizes, panels, margins and a colour bar into the spare figure first.
    before = classification_plots(["a", "b", "c"] * 50, None, np.full((150, 3), 1 / 3), list("abc"))
    assert len(_render._spare.figures) == 1  # one figure served them all
    reused = fold_plot(folds).uri
    assert reused == fresh
    assert before[-1].uri != fresh


def test_several_open_figures_are_distinct(fresh_figures):
    first, _ = _render.new_figure()
    second, _ = _render.new_figure()
    assert first is not second
    _render.to_data_uri(first)
    _render.to_data_uri(second)
    assert len(_render._spare.figures) == 2


def test_reports_keep_every_figure():
    # The sections and their figures are the same as before the layout change.
    binary = build_report(classifier_data(["on time", "late"]))
    regression = build_report(regressor_data())
    assert len(png_images(binary)) == 8  # 5 diagnostics, importance, folds, search
    assert len(png_images(regression)) == 4  # 2 diagnostics, importance, folds


def test_feature_importance_does_not_load_matplotlib():
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from sklearn.ensemble import HistGradientBoostingClassifier\n"
        "from skfleet.report import feature_importance\n"
        "X = pd.DataFrame({'a': np.arange(60.0) % 2, 'b': np.arange(60.0)})\n"
        "model = HistGradientBoostingClassifier(max_iter=3).fit(X, X['a'])\n"
        "print(feature_importance(model, X, X['a'])[1])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["permutation", "[]"]


def _imported(*args: str, cwd) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skfleet", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_train_draws_its_report_without_pyplot(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    table = pa.table({"x": x, "c": rng.choice(["a", "b"], 300), "y": x + rng.normal(size=300) > 0})
    pq.write_table(table, tmp_path / "t.parquet")
    train = ["train", "t.parquet", "--target", "y", "--model", "naive-bayes", "--cv", "2"]
    drawn = _imported(*train, "--name", "a", "--store", "m", cwd=tmp_path)
    assert (tmp_path / "m" / "a" / "1" / "report.html").exists()
    # Naive Bayes has no native importances: the permutation ran too.
    assert {"matplotlib.figure", "sklearn.inspection"} <= drawn
    assert "matplotlib.pyplot" not in drawn
