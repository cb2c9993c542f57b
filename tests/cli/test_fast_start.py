"""The command line starts fast: help and argument errors import no heavy module.

Each case runs ``python -X importtime -m skfleet ...`` in a fresh process and reads the modules it
imported from the importtime lines on stderr, so a module pulled in through any chain of imports is
caught, not just a direct one.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from skfleet.cli import COMMANDS, main

#: Modules that cost seconds (scikit-learn, skops' trusted-type lists), start a cluster stack, or
#: load a database driver; none of them is needed to print help or refuse a flag.
HEAVY = ("sklearn", "skops", "distributed", "dask", "adbc_driver_postgresql", "pyarrow", "pandas")


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skfleet", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return proc, names


@pytest.mark.parametrize(
    "args, status",
    [
        (("--help",), 0),
        (("predict", "--help"), 0),
        (("copy", "--help"), 0),
        (("train", "--help"), 0),
        (("train-stream", "--help"), 0),
        (("models", "--help"), 0),
        (("register", "--help"), 0),
        (("predict", "m", "data.parquet", "--out", "o.parquet", "--bogus"), 2),
        (("predict", "m", "data.parquet", "--out", "o.parquet", "--if-exists", "maybe"), 2),
        (("no-such-command",), 2),
    ],
)
def test_help_and_argument_errors_import_no_heavy_module(args, status):
    proc, names = imported_modules(*args)
    assert proc.returncode == status, proc.stderr[-2000:]
    assert "skfleet" in names  # the importtime lines were read at all
    assert sorted(names.intersection(HEAVY)) == []


def test_static_help_matches_each_command():
    # The group lists commands from COMMANDS' help text without importing them; it must say what
    # the command's own docstring says.
    for name, (_, short_help) in COMMANDS.items():
        assert main.get_command(None, name).get_short_help_str(limit=1000) == short_help, name
