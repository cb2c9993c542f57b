"""The README's quick tour runs as written: every shell and Python block of its "Quick tour"
section, in order, in a fresh folder, after the demo (on its first few thousand flights: the
``SKFLEET_DEMO_ROWS`` of :mod:`skfleet.demo.run`, in this process instead of on a Dask cluster).
``$PG`` is the test's PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
DEMO_ROWS = "4000"
_BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)


def tour_blocks() -> list[tuple[str, str]]:
    """(language, code) of each bash/python block in the Quick tour section, in order."""
    text = README.read_text()
    start = text.index("\n## Quick tour\n")
    end = text.index("\n## ", start + 1)
    return [(m[1], m[2]) for m in _BLOCK.finditer(text[start:end])]


def test_the_tour_has_commands():
    blocks = tour_blocks()
    assert [lang for lang, _ in blocks] == ["bash", "python"]
    commands = [line for line in blocks[0][1].splitlines() if line.startswith("skfleet ")]
    assert len(commands) >= 6


@pytest.mark.timeout(900)
def test_readme_quick_tour_runs_in_order_on_the_demo(tmp_path, pg):
    bin_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKFLEET_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        SKFLEET_DEMO_ROWS=DEMO_ROWS,
        SKFLEET_DEMO_ENGINE="local",  # the demo's Dask cluster is the demo's, not the tour's
        PG=pg.url(),
        COLUMNS="100",
    )

    def run(args: list[str], what: str) -> str:
        done = subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    demo = run([sys.executable, "-m", "skfleet.demo"], "the demo")
    assert "Try next" in demo and (tmp_path / "demo-output" / "scores.parquet").is_file()

    for lang, code in tour_blocks():
        if lang == "bash":
            # One shell, so that the tour's export reaches the later commands; the trap names
            # the command that failed.
            script = "set -eo pipefail\ntrap 'echo \"FAILED: $BASH_COMMAND\" >&2' ERR\n" + code
            out = run(["bash", "-c", script], "the quick tour's shell commands")
        else:
            out = run([sys.executable, "-c", code], "the quick tour's Python")

    assert out.strip().endswith("rows in delays.csv")
    scores = pd.read_csv(tmp_path / "scores.csv")  # one file, not a folder of parts
    assert len(scores) == int(DEMO_ROWS) and "proba_true" in scores.columns
    with pg.connect() as conn:
        got = conn.execute("SELECT count(*), avg(proba_true) FROM public.flight_scores").fetchone()
    assert got[0] == int(DEMO_ROWS) and 0 < got[1] < 1
