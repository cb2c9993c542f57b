"""The report as a browser sees it: headless Chromium loads the file and decodes every image."""

import os
import re
import shutil
import subprocess

import pytest

from tests.report.reports import png_images

# Injected into a copy of the report (the report itself carries no script): once the page has
# loaded, count the images and those that decoded, and write both into the DOM for --dump-dom.
_CHECK = """<script>
addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = `images=${images.length} decoded=${decoded}`;
  document.body.append(out);
});
</script>"""
# A control image that must NOT decode, so the check is shown to be able to fail.
_BROKEN = '<img alt="control" src="data:image/png;base64,iVBORw0KGgoAAAAA">'


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = (
            "headless Chromium is needed to check the report renders: install Debian's chromium "
            "(`make test` does so when run as root)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def test_every_report_image_decodes_in_headless_chromium(three_class_html, tmp_path):
    chromium = _chromium()
    page = tmp_path / "report.html"
    page.write_text(three_class_html.replace("</body>", _BROKEN + _CHECK + "</body>"), "utf-8")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="image-check">images=(\d+) decoded=(\d+)</pre>', result.stdout)
    assert found, (
        f"chromium did not run the check (exit {result.returncode}): {result.stderr[-500:]}"
    )
    images, decoded = int(found[1]), int(found[2])
    figures = len(png_images(three_class_html))
    assert figures == 8
    assert images == figures + 1
    assert decoded == figures  # every figure, and not the broken control
