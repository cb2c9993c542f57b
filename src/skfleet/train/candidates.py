"""Several candidate models trained on the same folds in one run, and what each one is told.

A comparison is a list of candidates (preset names, import paths or estimators; a dict names
them). Each keeps its own table step (``make_template``: a tree preset gets ``TableCodes``, a
linear one ``TableEncoder``), its own ``params`` and, if given, its own search. Every fit of
every candidate runs on the engine in one block holding the table, so the table reaches each
worker once for the whole comparison: the searches first (one phase each, on the run's folds),
then one joblib call with every candidate's fold fits and the final fits of those without a
search, longest first. ``stacking`` (:mod:`skfleet.train.stacking`) stacks the others.

>>> [c.name for c in candidate_specs(["logistic", "sklearn.linear_model.RidgeClassifier"])]
['logistic', 'RidgeClassifier']
>>> candidate_specs(["logistic", "logistic"])
Traceback (most recent call last):
...
skfleet.errors.UsageError: --model logistic is given more than once (name the candidates with a dict to compare two of one kind)
>>> per_candidate(["logistic:C=0.5", "hgb-classifier:max_depth=3"], ["logistic", "hgb-classifier"],
...               "--param")
{'logistic': ['C=0.5'], 'hgb-classifier': ['max_depth=3']}
>>> per_candidate(["C=0.5"], ["logistic", "hgb-classifier"], "--param")
Traceback (most recent call last):
...
skfleet.errors.UsageError: --param C=0.5: say which --model it is for (MODEL:C=0.5; models: logistic, hgb-classifier)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils.parallel import delayed

from skfleet.errors import UsageError
from skfleet.train.config import SearchConfig, TrainConfig
from skfleet.train.cv import CVResult, collect_folds, fit_all_rows, fit_fold
from skfleet.train.fitting import fit_phase, run_search, sklearn_call
from skfleet.train.parallel import CountingParallel, counting_fits
from skfleet.train.template import make_template, task_of

#: The candidate name that stacks the other candidates.
STACKING = "stacking"


@dataclass
class Candidate:
    """One model of a comparison: its name, what was asked for, and (once built) its template."""

    name: str
    model: Any
    estimator: Any = None
    template: Any = None
    prefix: str = ""
    config: TrainConfig | None = None
    search: Any = None
    cv_result: CVResult | None = None
    fitted: Any = None
    predict_seconds: list[float] | None = None


def candidate_name(model: Any) -> str:
    """A preset's name, an import path's class name, an estimator's class name."""
    if isinstance(model, str):
        return model.rsplit(".", 1)[-1]
    return type(model).__name__


def candidate_specs(models: Sequence[Any] | Mapping[str, Any]) -> list[Candidate]:
    """The candidates of ``models`` (a list, or a dict name -> model), each named once."""
    if isinstance(models, Mapping):
        pairs = [(str(name), model) for name, model in models.items()]
        for name, _ in pairs:
            if ":" in name or not name.strip():
                raise UsageError(f"candidate name {name!r} must be non-empty and without ':'")
    else:
        pairs = []
        seen = set()
        for model in models:
            name = candidate_name(model)
            if name in seen:
                raise UsageError(
                    f"--model {name} is given more than once (name the candidates with a dict "
                    "to compare two of one kind)"
                )
            seen.add(name)
            pairs.append((name, model))
    if not pairs:
        raise UsageError("--model: give at least one model")
    return [Candidate(name, model) for name, model in pairs]


def per_candidate(items: Sequence[str], names: Sequence[str], flag: str) -> dict[str, list[str]]:
    """``MODEL:k=v`` flags (``--param``, ``--grid``) by candidate; a single candidate also takes
    them without ``MODEL:``."""
    out: dict[str, list[str]] = {name: [] for name in names}
    for item in items:
        head, sep, _ = item.partition("=")
        model, colon, rest = head.partition(":")
        if sep and colon:
            if model not in out:
                raise UsageError(
                    f"{flag} {item}: {model!r} is not one of the --model values "
                    f"({', '.join(names)})"
                )
            out[model].append(rest + item[len(head) :])
        elif len(names) == 1:
            out[names[0]].append(item)
        else:
            raise UsageError(
                f"{flag} {item}: say which --model it is for (MODEL:{item}; models: "
                f"{', '.join(names)})"
            )
    return out


def keyed(value: Any, names: Sequence[str], what: str) -> dict[str, Any]:
    """An API option given per candidate (``params={"logistic": {"C": 0.5}}``), checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{what} of a comparison is a dict: candidate name -> its {what}")
    unknown = [k for k in value if k not in names]
    if unknown:
        raise UsageError(
            f"{what} names {unknown[0]!r}, which is not a candidate ({', '.join(names)})"
        )
    return dict(value)


def prepare(candidates, config: TrainConfig, params: dict, searches: dict) -> None:
    """Build each candidate's estimator, template and configuration (bad names fail here)."""
    from skfleet.train.presets import build_estimator
    from skfleet.train.search import prefixed_grid

    tasks = set()
    for candidate in candidates:
        search = SearchConfig.coerce(searches.get(candidate.name))
        candidate.config = replace(config, params=dict(params.get(candidate.name) or {}))
        candidate.config = replace(candidate.config, search=search)
        if candidate.name == STACKING and candidate.model == STACKING:
            if search is not None:
                raise UsageError("--grid stacking: the stacking candidate takes no search")
            continue
        candidate.estimator = build_estimator(candidate.model, candidate.config.params)
        tasks.add(task_of(candidate.estimator))
        candidate.template, candidate.prefix = make_template(candidate.estimator, candidate.config)
        if search is not None:
            prefixed_grid(candidate.template, candidate.prefix, search.grid)
    if len(tasks) > 1:
        raise UsageError("--model: the candidates mix classifiers and regressors")


def timed_fold(estimator, X, y, train, test, classes):
    """Worker side: :func:`~skfleet.train.cv.fit_fold`, and the seconds its predictions took
    (what it spent beyond the fit: the held-out rows' predictions and probabilities)."""
    started = time.perf_counter()
    output = fit_fold(estimator, X, y, train, test, classes)
    return output, max(time.perf_counter() - started - output[2], 0.0)


def fit_candidates(candidates, data, task, classes, splits, jobs, progress) -> None:
    """Every fit of every candidate: searches, then one joblib call (folds and final fits)."""
    X, y = data.features, data.y
    fitting = [c for c in candidates if c.template is not None]
    for candidate in fitting:
        if candidate.config.search is None:
            continue
        candidate.search = run_search(
            candidate.template,
            candidate.prefix,
            candidate.config,
            data,
            task,
            classes,
            splits,
            jobs,
            progress,
            label=f"search: {candidate.name}",
        )
        candidate.template = clone(candidate.template).set_params(**candidate.search.best_params_)
        candidate.fitted = candidate.search.best_estimator_
    finals = [c for c in fitting if c.search is None]
    fold_classes = classes if task == "classification" else None
    # The final fits first: the longest tasks start first, so none runs alone at the end.
    calls = [delayed(fit_all_rows)(c.template, X, y) for c in finals]
    calls += [
        delayed(timed_fold)(c.template, X, y, train, test, fold_classes)
        for c in fitting
        for train, test in splits
    ]
    phase = fit_phase(progress, "cross-validation and final fits", len(calls), data.rows)
    with phase as listener, counting_fits(listener):
        outputs = sklearn_call(CountingParallel(**jobs), calls)
    for candidate, model in zip(finals, outputs, strict=False):
        candidate.fitted = model
    folds = iter(outputs[len(finals) :])
    for candidate in fitting:
        timed = [next(folds) for _ in splits]
        candidate.cv_result = collect_folds([t[0] for t in timed], y, splits, task, classes)
        candidate.predict_seconds = [t[1] for t in timed]


def fit_seconds(candidate: Candidate) -> list[float]:
    """Seconds of each fold's fit (unrounded where known)."""
    return [float(f["fit_seconds"]) for f in candidate.cv_result.folds]


def fold_rows(splits) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows per fold."""
    train = np.array([len(t) for t, _ in splits], dtype=np.float64)
    test = np.array([len(t) for _, t in splits], dtype=np.float64)
    return train, test


def stored_outputs(
    candidate, data, task, classes, pool, name, model_store, report, entry, extra, started
):
    """The candidate's :class:`~skfleet.train.api.TrainResult` and its artifact's size in bytes:
    ``model.json`` (with the comparison ``entry``), ``oof.parquet``, its report and ``extra``
    files, saved as the next version of ``name`` when there is a store."""
    from skfleet.features.codes import without_check_partials
    from skfleet.train.api import TrainResult
    from skfleet.train.described import batch_metadata, batch_report
    from skfleet.train.outputs import cv_oof_table, parquet_bytes, stored_file_path
    from skfleet.train.stacking import STACKING_NOTE

    fitted, cv_result = candidate.fitted, candidate.cv_result
    without_check_partials(fitted)
    metadata = batch_metadata(
        fitted,
        candidate.estimator,
        candidate.prefix,
        candidate.config,
        data,
        task,
        cv_result,
        candidate.search,
        pool,
    )
    stacked = candidate.template is None
    if stacked:
        metadata.setdefault("notes", []).append(STACKING_NOTE)
    metadata["comparison"] = entry
    oof = cv_oof_table(data, cv_result, classes)
    files = {"oof.parquet": parquet_bytes(oof), **extra}
    report_html = None
    if report:
        report_html = batch_report(
            name, task, metadata, data, cv_result, candidate.search, fitted,
            importance=not stacked,  # the stack's would permute every candidate's inputs
        )  # fmt: skip
        files["report.html"] = report_html.encode("utf-8")
    metadata["seconds"] = round(time.perf_counter() - started, 3)
    ref = report_path = None
    if model_store is not None:
        ref = model_store.save(name, fitted, metadata, files=files)
        size = model_store.metadata(ref)["artifact"]["bytes"]
        if report:
            report_path = stored_file_path(model_store, ref, "report.html")
    else:
        from skfleet.store.artifact import dump_artifact

        size = len(dump_artifact(fitted))
    result = TrainResult(
        model=fitted,
        metadata=metadata,
        oof_table=oof,
        report_html=report_html,
        seconds=metadata["seconds"],
        ref=ref,
        report_path=report_path,
    )
    return result, size


def candidate_options(models, params, grid, search, n_iter, scoring):
    """``skfleet train``'s ``--model``/``--param``/``--grid``/``--search`` as ``train()``'s
    ``model``, ``params`` and ``search``: as given for one ``--model`` (which also takes
    ``MODEL:k=v``), per candidate name for several.

    >>> candidate_options(("logistic",), ("logistic:C=2",), (), None, 10, None)
    ('logistic', {'C': 2}, None)
    >>> models, params, searches = candidate_options(("logistic", "hgb-classifier"), (),
    ...                                              ("hgb-classifier:max_depth=2,3",), None, 10, None)
    >>> models, params, searches["hgb-classifier"].method, list(searches)
    (['logistic', 'hgb-classifier'], {'logistic': {}, 'hgb-classifier': {}}, 'grid', ['hgb-classifier'])
    """
    from skfleet.train.presets import parse_grids, parse_params

    names = [c.name for c in candidate_specs(list(models))]
    by_params = per_candidate(params, names, "--param")
    by_grid = per_candidate(grid, names, "--grid")
    if grid and search is None:
        search = "grid"  # candidates to try are a search: every combination, unless told
    searches = {}
    if search is not None:
        for name in names:
            if by_grid[name] or len(names) == 1:
                searches[name] = SearchConfig(
                    method=search, grid=parse_grids(by_grid[name]), n_iter=n_iter, scoring=scoring
                )
        if not searches:
            raise UsageError("--search needs at least one --grid MODEL:NAME=V1,V2,...")
    parsed = {name: parse_params(by_params[name]) for name in names}
    if len(names) == 1:
        return models[0], parsed[names[0]], searches.get(names[0])
    return list(models), parsed, searches
