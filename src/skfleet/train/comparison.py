"""``train()`` given several models: a comparison of candidates on the same folds.

The steps, in order: build every candidate (bad names, parameters and grids fail before any
data is read); check the store; read the table once; fit every candidate on the engine in one
block holding the table (:func:`~skfleet.train.candidates.fit_candidates`); assemble the
``stacking`` candidate if asked; rank them (:mod:`skfleet.train.leaderboard`); write each
candidate's ``model.json`` (with a ``comparison`` entry: its id, the candidates, its rank),
``oof.parquet`` and report; save them as versions of the run's model name, worst first, so the
best candidate is the name's latest version and carries the comparison report
(``comparison.html``).

>>> import numpy as np, pyarrow as pa
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=300)
>>> table = pa.table({"id": np.arange(300), "x": x, "late": x + rng.normal(size=300) > 0})
>>> result = compare(["logistic", "naive-bayes", "stacking"], table, "late", keys=["id"], cv=3,
...                  report=False)
>>> result.leaderboard.columns.tolist()[:5]
['rank', 'candidate', 'version', 'metric', 'mean']
>>> sorted(result.results), result.metric
(['logistic', 'naive-bayes', 'stacking'], 'roc_auc')
>>> result.results["stacking"].metadata["comparison"]["candidates"] == result.leaderboard[
...     "candidate"].tolist()
True
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from skfleet.engine.session import EngineSession
from skfleet.errors import UsageError
from skfleet.train.candidates import (
    candidate_specs,
    fit_candidates,
    fold_rows,
    keyed,
    prepare,
)
from skfleet.train.config import TrainConfig
from skfleet.train.cv import make_splits
from skfleet.train.leaderboard import (
    ComparisonResult,
    fold_values,
    paired_comparison,
    rank_metric,
    ranked,
)
from skfleet.train.template import task_of
from skfleet.util.progress import NullProgress

#: Options of a single run that a comparison does not take (yet), with the reason.
_NOT_COMPARED = {
    "group_by": "--group-by (segment models)",
    "weight": "--weight",
    "calibrate": "--calibrate",
}


def compare(
    models: Any,
    source: Any,
    target: str | None = None,
    *,
    config: TrainConfig | None = None,
    name: str | None = None,
    store: Any = None,
    engine: Any = "local",
    progress: Any = None,
    report: bool = True,
    source_name: str | None = None,
    **options: Any,
) -> ComparisonResult:
    """Train every model of ``models`` (a list, or a dict name -> model) on the same folds.

    ``params`` and ``search`` are given per candidate (``params={"logistic": {"C": 0.5}}``);
    the other options are :func:`skfleet.train.train`'s and apply to every candidate. With
    ``name`` each candidate is stored as a version of ``name``, the best last.
    """
    from skfleet.train.dataset import load_training_data
    from skfleet.train.outputs import check_keys, open_model_store, stored_file_path
    from skfleet.train.parallel import shared_data

    started = time.perf_counter()
    progress = progress or NullProgress()
    candidates = candidate_specs(models)
    names = [c.name for c in candidates]
    params = keyed(options.pop("params", None), names, "params")
    searches = keyed(options.pop("search", None), names, "search")
    config = TrainConfig.build(config, target=target, **options)
    for option, flag in _NOT_COMPARED.items():
        if getattr(config, option, None) is not None:
            raise UsageError(f"{flag} cannot be combined with several --model candidates yet")
    if config.cv.folds == 0:
        raise UsageError("candidates are compared on cross-validation folds: use --cv 2 or more")
    check_keys(config)
    session = EngineSession(engine, progress=progress)  # a bad --engine fails now
    prepare(candidates, config, params, searches)
    fitting = [c for c in candidates if c.template is not None]
    stacking = next((c for c in candidates if c.template is None), None)
    if stacking is not None and len(fitting) < 2:
        raise UsageError("--model stacking needs at least two other candidates to stack")
    task = task_of(fitting[0].estimator)
    if stacking is not None and task == "classification":
        for candidate in fitting:
            if not hasattr(candidate.template, "predict_proba"):
                raise UsageError(
                    f"--model stacking: candidate {candidate.name} has no predict_proba, so it "
                    "cannot be stacked (the stack's inputs are class probabilities)"
                )
    model_store = open_model_store(name, store)
    data = load_training_data(source, config, task, source_name)
    classes = np.unique(data.y) if task == "classification" else None
    splits = make_splits(task, config.cv, data.y)

    with session:
        pool = session.engine
        split_arrays = [part for split in splits for part in split]
        with pool.joblib_context(), shared_data(data.features, data.y, *split_arrays) as shared:
            # As in a single run: every fit at once, the data held on the cluster for all.
            jobs = {"n_jobs": pool.workers, "pre_dispatch": "all" if shared else "2*n_jobs"}
            fit_candidates(candidates, data, task, classes, splits, jobs, progress)
    if stacking is not None:
        _assemble(stacking, fitting, data, task, splits, config)

    metric = rank_metric(task, [c.cv_result.overall for c in candidates])
    train_rows, test_rows = fold_rows(splits)
    rows = ranked([_row(c, metric, train_rows, test_rows) for c in candidates], metric)
    by_name = {c.name: c for c in candidates}
    paired = None
    if len(rows) > 1:
        first, second = (by_name[r["candidate"]] for r in rows[:2])
        paired = {
            "a": first.name,
            "b": second.name,
            "metric": metric,
            **paired_comparison(
                fold_values(first.cv_result.folds, metric),
                fold_values(second.cv_result.folds, metric),
                float(test_rows.mean()),
                float(train_rows.mean()),
            ),
        }
    comparison_id = uuid.uuid4().hex[:12]
    order = [r["candidate"] for r in rows]
    report_html = None
    if report:
        from skfleet.report.comparison import comparison_report

        report_html = comparison_report(
            name, config.target, task, classes, data.y, rows, paired, metric, by_name
        )
    from skfleet.train.candidates import stored_outputs

    results = {}
    report_path = None
    for row in reversed(rows):  # worst first: the best becomes the name's latest version
        candidate = by_name[row["candidate"]]
        entry = {
            "id": comparison_id,
            "candidate": candidate.name,
            "rank": row["rank"],
            "metric": metric,
            "candidates": order,
        }
        extra = {}
        if row["rank"] == 1 and report_html is not None:
            extra["comparison.html"] = report_html.encode("utf-8")
            entry["report"] = "comparison.html"
            entry["leaderboard"] = rows
            entry["paired"] = paired
        result, size = stored_outputs(
            candidate, data, task, classes, pool, name, model_store, report, entry, extra,
            started,
        )  # fmt: skip
        row["version"] = result.version
        row["artifact_bytes"] = size
        results[candidate.name] = result
        if row["rank"] == 1 and model_store is not None and report_html is not None:
            report_path = stored_file_path(model_store, result.ref, "comparison.html")
    results = {name_: results[name_] for name_ in order}
    return ComparisonResult(
        comparison_id=comparison_id,
        metric=metric,
        rows=rows,
        results=results,
        paired=paired,
        seconds=round(time.perf_counter() - started, 3),
        report_path=report_path,
        report_html=report_html,
    )


def _assemble(stacking, fitting, data, task, splits, config) -> None:
    """The stacking candidate from the others' final models and out-of-fold results."""
    from skfleet.features.codes import without_check_partials
    from skfleet.train.stacking import assemble_stack, stacked_pipeline

    bases = []
    for candidate in fitting:
        without_check_partials(candidate.fitted)
        bases.append((candidate.name, candidate.fitted, candidate.cv_result))
    started = time.perf_counter()
    stack, cv_result = assemble_stack(task, bases, data.y, splits, stacking.config.params)
    stacking.fitted = stacked_pipeline(stack, data.features, dict(config.encoder))
    stacking.estimator = stack
    stacking.prefix = "model__"
    stacking.cv_result = cv_result
    # What fitting and applying the stack costs: every candidate's fits and predictions, plus
    # its own final estimator's.
    own = time.perf_counter() - started
    for i, fold in enumerate(cv_result.folds):
        fold["fit_seconds"] = round(
            fold["fit_seconds"] + sum(c.cv_result.folds[i]["fit_seconds"] for c in fitting), 3
        )
    stacking.predict_seconds = [
        sum(c.predict_seconds[i] for c in fitting) + own / len(splits) for i in range(len(splits))
    ]


def _row(candidate, metric: str, train_rows, test_rows) -> dict[str, Any]:
    """The candidate's leaderboard row (rank, version and artifact size are filled later)."""
    values = np.array(fold_values(candidate.cv_result.folds, metric))
    fit = np.array([f["fit_seconds"] for f in candidate.cv_result.folds], dtype=np.float64)
    predict = np.array(candidate.predict_seconds, dtype=np.float64)
    return {
        "rank": None,
        "candidate": candidate.name,
        "version": None,
        "metric": metric,
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "overall": candidate.cv_result.overall.get(metric),
        "fit_s_per_1k_rows": float(np.mean(fit / train_rows) * 1000),
        "predict_s_per_1k_rows": float(np.mean(predict / test_rows) * 1000),
        "artifact_bytes": None,
    }
