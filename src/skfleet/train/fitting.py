"""The fits of a batch training run, on the engine joblib is configured for: the search (if
any), K-fold cross-validation with the final fit as one more fold task, or a final fit alone, each
one progress phase counting fits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sklearn.base import clone

from skfleet.errors import SkfleetError
from skfleet.train.cv import CVResult, ReplaySplits, cross_validate, make_splitter
from skfleet.train.dataset import TrainingData
from skfleet.train.parallel import counting_fits, counting_search_fits
from skfleet.train.search import build_search, planned_fits
from skfleet.train.segments import SegmentRouter
from skfleet.train.weights import fit_params
from skfleet.train.weights import weight_key as weight_key_of
from skfleet.util.progress import Progress


@contextlib.contextmanager
def fit_phase(progress: Progress, description: str, total: int, table_rows: int) -> Iterator:
    """One progress bar (``total`` fits); yields the listener that advances it.

    Rows count the table once over the phase (a share of its rows per fit done), not once per
    fit: five folds of a 327k-row table show 327k rows, not 1.3M.
    """
    total = max(total, 1)
    progress.start(total=total, description=description)
    done = shown = 0

    def listener(n: int) -> None:
        nonlocal done, shown
        done = min(total, done + n)
        rows = table_rows * done // total - shown
        shown += rows
        progress.advance(rows=rows, tasks=n)

    try:
        yield listener
    finally:
        progress.stop()


def fit_all(template, prefix, config, data: TrainingData, task, classes, splits, jobs, progress):
    """Search, cross-validation and final fit, on the engine joblib is configured for."""
    X, y = data.features, data.y
    # Sample weights reach the estimator through the pipeline (and any search or calibration).
    weight_key = weight_key_of(template) if data.weight is not None else None
    weighted = weighted_fit(template, data)
    search = None
    if config.search is not None:
        search = run_search(template, prefix, config, data, task, classes, splits, jobs, progress)
        template = clone(template).set_params(**search.best_params_)
    cv_result: CVResult | None = None
    segmented = isinstance(template, SegmentRouter)
    # Without a search (whose refit is the final model), the final fit joins the folds' tasks.
    final_with_folds = search is None and not segmented
    if splits is not None:
        tasks = len(splits) + (1 if final_with_folds else 0)
        label = "cross-validation and final fit" if final_with_folds else "cross-validation"
        phase = fit_phase(progress, label, tasks, data.rows)
        with phase as listener, counting_fits(listener):
            cv_result = sklearn_call(
                cross_validate,
                template,
                X,
                y,
                splits,
                task,
                classes,
                final=final_with_folds,
                weight=data.weight,
                weight_key=weight_key,
                **jobs,
            )
    if search is not None:
        fitted = search.best_estimator_
    elif cv_result is not None and cv_result.final_model is not None:
        fitted = cv_result.final_model
    else:
        total = count_segments(X, config.group_by, config.min_segment_rows) + 1 if segmented else 1
        with fit_phase(progress, "final fit", total, data.rows) as listener:
            final = clone(template)
            if segmented:
                final.set_params(n_jobs=jobs["n_jobs"])
            with counting_fits(listener):
                fitted = sklearn_call(final.fit, X, y, **weighted)
            if not segmented:
                listener(1)
            else:
                fitted.set_params(n_jobs=None)  # a fitting setting, not part of the model
    return fitted, search, cv_result


def run_search(template, prefix, config, data, task, classes, splits, jobs, progress, label=None):
    """The fitted scikit-learn search of ``config.search`` over ``template`` (refit included),
    one progress phase (``label``, "search" unless told)."""
    total = planned_fits(config.search, config.cv.folds, data.rows)
    # Halving re-splits row subsamples, so it needs the splitter itself; the other searches
    # replay the run's folds (the arrays already on the engine).
    halving = config.search.method == "halving"
    with contextlib.ExitStack() as stack:
        splitter = (
            make_splitter(task, config.cv)
            if halving
            else stack.enter_context(ReplaySplits.holding(splits))
        )
        search = build_search(
            template,
            config.search,
            splitter,
            prefix=prefix,
            n_classes=0 if classes is None else len(classes),
            **jobs,
        )
        with fit_phase(progress, label or "search", total + 1, data.rows) as listener:
            with counting_search_fits(listener) as counted:
                sklearn_call(search.fit, data.features, data.y, **weighted_fit(template, data))
            listener(1 if counted else total + 1)  # the refit (and, if uncounted, all fits)
    return search


def weighted_fit(template: Any, data: TrainingData) -> dict[str, Any]:
    """The ``fit`` parameters that give ``template``'s estimator the run's sample weights
    (``{}`` for an unweighted run); a search hands each of its fits the rows' share."""
    if data.weight is None:
        return {}
    return fit_params(weight_key_of(template), data.weight)


def sklearn_call(fn, *args, **kwargs):
    """Call into scikit-learn; a ValueError about the data becomes a one-line DataError."""
    from skfleet.errors import DataError

    try:
        return fn(*args, **kwargs)
    except SkfleetError:
        raise
    except ValueError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"fitting failed: {message}") from exc


def count_segments(X: Any, column: str, min_rows: int) -> int:
    """How many segments are big enough for a model of their own (for the progress bar)."""
    import pyarrow.compute as pc

    counts = pc.value_counts(X.column(column).drop_null())
    return int(pc.sum(pc.greater_equal(counts.field("counts"), min_rows)).as_py() or 0)
