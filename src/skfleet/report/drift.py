"""The report's drift page: how the rows of each prediction run compare with the training rows.

One table of the population stability index (PSI) of every input column in every run, then one
figure per flagged column: its PSI across the runs against the threshold, and its missing rate
across the runs against training's. The runs come from
:func:`skfleet.predict.drift_runs.drift`.

>>> from skfleet.predict.drift_runs import DriftOverRuns, FeatureDrift, RunDrift
>>> runs = [RunDrift(f"r{i}", 1, "", 100, {"dep_time": FeatureDrift(p, 0.0, m, p > 0.2)})
...         for i, (p, m) in enumerate([(0.05, 0.0), (0.4, 0.1)])]
>>> anchor, heading, html = drift_section(DriftOverRuns("flights", 0.2, runs))
>>> anchor, heading, html.count("<figure>"), "dep_time" in html
('drift-runs', 'Drift over runs', 1, True)
"""

from __future__ import annotations

from typing import Any

from skfleet.report._render import Margins, Plot, label, new_figure, text_inches, to_data_uri

ANCHOR = "drift-runs"
HEADING = "Drift over runs"


def _run_label(run: Any) -> str:
    return f"{run.run_id} @{run.version}"


def drift_plot(result: Any, feature: str) -> Plot:
    """PSI of ``feature`` across the runs (left axis, with the threshold) and its missing rate
    (right axis, with training's as a dotted line)."""
    series = result.series(feature)
    x = list(range(len(series)))
    psi = [float("nan") if f.psi is None else f.psi for _, f in series]
    runs = [label(_run_label(r)) for r, _ in series]
    # Run labels at 30 degrees below the axes, ending under their tick (the first reaches left of
    # the axes); the missing rate's axis and label on the right.
    width = text_inches(runs, 7)
    margins = Margins(left=max(0.8, 0.87 * width), bottom=0.35 + 0.5 * width, right=0.8)
    fig, ax = new_figure(7.0, 3.6, margins=margins)
    ax.plot(x, psi, marker="o", color="C0", label="PSI")
    ax.axhline(result.threshold, color="C3", linestyle="--", linewidth=1, label="threshold")
    ax.set_ylabel("PSI against training")
    ax.set_ylim(bottom=0)
    ax.set_xticks(x, runs, rotation=30, fontsize=7, ha="right")
    rate = ax.twinx()
    missing = [f.missing_run for _, f in series]
    (line,) = rate.plot(x, missing, marker="s", color="C2", alpha=0.7, label="missing rate")
    train = next((f.missing_train for _, f in series if f.missing_train is not None), None)
    if train is not None:
        rate.axhline(train, color="C2", linestyle=":", linewidth=1)
    rate.set_ylabel("missing rate (dotted: training)")
    rate.set_ylim(bottom=0, top=max(0.01, *missing, train or 0) * 1.15)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend([*handles, line], [*labels, "missing rate"], loc="upper left", fontsize=8)
    worst = max((p for p in psi if p == p), default=float("nan"))
    caption = f"highest PSI {worst:.3f} over {len(series)} runs; flagged above {result.threshold:g}"
    return Plot(f"{label(feature)}: PSI across runs", to_data_uri(fig), caption)


def drift_section(result: Any) -> tuple[str, str, str]:
    """``(anchor, heading, HTML)`` of the drift page for :func:`skfleet.report.html.page` or
    :func:`skfleet.report.html.with_section`."""
    from skfleet.report.html import figure, table, text

    flagged = result.flagged
    intro = (
        f"<p>{len(result.runs)} committed prediction runs of {text(result.model)}, oldest first. "
        "PSI: population stability index of the scored rows against the training rows, over the "
        "training profile's bins plus one bucket for missing values; a column is flagged above "
        f"{text(f'{result.threshold:g}')} (rule of thumb: below 0.1 stable, 0.1 to 0.25 some "
        "shift, above 0.25 a major shift).</p>"
    )
    headers = ["column", *(_run_label(r) for r in result.runs)]
    rows = []
    for name in result.features:
        cells: list[Any] = [name]
        for run in result.runs:
            f = run.features.get(name)
            if f is None or f.psi is None:
                cells.append(None)
            else:
                cells.append(f"{f.psi:.3f}{' !' if f.flagged else ''}")
        rows.append(cells)
    figures = "".join(figure(drift_plot(result, name)) for name in flagged)
    summary = (
        f"<p>Flagged: {text(', '.join(flagged))}.</p>"
        if flagged
        else f"<p>No column above PSI {text(f'{result.threshold:g}')} in these runs.</p>"
    )
    notes = "".join(f"<li>{text(n)}</li>" for n in result.notes)
    notes = f'<ul class="notes">{notes}</ul>' if notes else ""
    return ANCHOR, HEADING, intro + summary + figures + table(headers, rows) + notes
