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


#: Imported only by skops' walk over every scikit-learn module (``all_estimators``), by skops' list
#: of HistGradientBoosting's types or train's checks for tree models (``sklearn.ensemble``), by a
#: cluster, or by the report: none is needed to score or train a small table with a linear model.
NOT_ON_A_SMALL_JOB = (
    "sklearn.neural_network",
    "sklearn.semi_supervised",
    "sklearn.gaussian_process",
    "sklearn.ensemble",
    "distributed",
)

#: Nor, to score, the training and report packages.
NOT_ON_A_SMALL_PREDICT = (*NOT_ON_A_SMALL_JOB, "skfleet.train", "skfleet.report", "matplotlib")


def imported_full_names(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skfleet", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return proc, names


@pytest.fixture(scope="module")
def small_job(tmp_path_factory):
    """A 1,000-row Parquet file and a logistic model trained on it (no report)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skfleet.train import train

    base = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_000, 3))
    table = pa.table({"id": np.arange(1_000), "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2],
                      "y": x[:, 0] + rng.normal(size=1_000) > 0})  # fmt: skip
    data = str(base / "small.parquet")
    pq.write_table(table, data)
    store = str(base / "models")
    train("logistic", table, "y", keys=["id"], cv=0, name="small", store=store, report=False)
    return base, data, store


def test_small_predict_runs_here_without_the_estimator_walk(small_job):
    base, data, store = small_job
    out = str(base / "scores.parquet")
    proc, names = imported_full_names("predict", "small", data, "--out", out, "--store", store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on local (1,000 rows in one partition: no cluster to start)" in proc.stdout
    assert "skops.io" in names  # the model was loaded and judged in this process
    assert sorted(names.intersection(NOT_ON_A_SMALL_PREDICT)) == []


def test_small_train_with_cv_does_not_walk_scikit_learn(small_job):
    base, data, _ = small_job
    store = str(base / "trained")
    args = ("train", data, "--target", "y", "--key", "id", "--model", "logistic", "--cv", "3")
    proc, names = imported_full_names(*args, "--no-report", "--name", "m", "--store", store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skops.io" in names  # the model was written and audited
    assert sorted(names.intersection(NOT_ON_A_SMALL_JOB)) == []


def test_a_command_collects_the_young_generation_less_often(tmp_path):
    # Importing the scoring stack as a command runs leaves ~150k long-lived objects; the default
    # threshold (700) walks them again and again. Every generation is still collected.
    import gc

    from click.testing import CliRunner

    from skfleet.cli import GC_THRESHOLD

    before = gc.get_threshold()
    try:
        # Python's default first: an earlier command run in this test process set it already.
        gc.set_threshold(700, *before[1:])
        result = CliRunner().invoke(main, ["models", "list", "--store", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert gc.get_threshold() == (GC_THRESHOLD, *before[1:])
        assert gc.isenabled()
    finally:
        gc.set_threshold(*before)


def test_a_command_leaves_its_objects_to_the_os_at_exit(tmp_path):
    # Registered first, this handler runs last: after the command's own exit handlers.
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "from skfleet.cli import main\n"
        f"sys.argv = ['skfleet', 'models', 'list', '--store', {str(tmp_path)!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == "frozen True"
