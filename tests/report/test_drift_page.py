"""The report's drift page: a PSI table of every column and run, one plot per flagged column."""

from __future__ import annotations

import base64
import re

from skfleet.predict.drift_runs import DriftOverRuns, FeatureDrift, RunDrift
from skfleet.report.drift import drift_section
from skfleet.report.html import with_section


def _result(psi_by_run: list[dict[str, float]], threshold: float = 0.2, notes=()) -> DriftOverRuns:
    runs = [
        RunDrift(
            f"20260101t00000{i}-abcdef{i:02d}",
            1,
            "",
            1000,
            {
                name: FeatureDrift(value, 0.0, 0.01 * i, value is not None and value > threshold)
                for name, value in psis.items()
            },
        )
        for i, psis in enumerate(psi_by_run)
    ]
    return DriftOverRuns("flights", threshold, runs, list(notes))


def test_one_png_plot_per_flagged_column(binary_html):
    result = _result(
        [
            {"temp": 0.05, "carrier": 0.01, "dewp": 0.1},
            {"temp": 0.8, "carrier": 0.02, "dewp": 0.3},
            {"temp": 1.9, "carrier": None, "dewp": 0.05},
        ]
    )
    anchor, heading, content = drift_section(result)
    page = with_section(binary_html, (anchor, heading, content))
    section = page[page.index('<section id="drift-runs">') :]
    titles = re.findall(r"<h3>([^<]*): PSI across runs</h3>", section)
    assert titles == ["temp", "dewp"]  # flagged in at least one run, in column order
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', section)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "1.900 !" in section and "0.020" in section and "—" in section
    assert page.count('href="#drift-runs"') == 1 and page.index("drift-runs") > 0
    # Everything the training report had is still there.
    assert page.replace(f' <a href="#{anchor}">{heading}</a>', "").startswith(
        binary_html[: binary_html.index("<nav>")]
    )


def test_nothing_flagged_is_said_and_drawn_as_such():
    _, _, content = drift_section(_result([{"temp": 0.05}, {"temp": 0.1}]))
    assert "No column above PSI 0.2" in content and "<figure>" not in content


def test_names_and_notes_are_escaped_and_masked():
    result = _result(
        [{"<b>x</b>": 0.9}],
        notes=["runs of m@2 left out: cannot read s3://key:s3cret@bucket/models"],
    )
    _, _, content = drift_section(result)
    assert "<b>x</b>" not in content and "&lt;b&gt;x&lt;/b&gt;" in content
    assert "s3cret" not in content
