"""``train()``: fit a model on a table, with cross-validation, search and segments on an engine.

The steps of a run, in order:

1. build the estimator (preset, import path or the user's object) and check ``params``;
2. check the model name and the store *before* any work, so a bad name costs nothing;
3. read the needed columns, drop rows with a missing target (counted), check the target;
4. wrap the estimator: ``Pipeline([("encode", TableEncoder), ("model", estimator)])``, or a
   :class:`~skfleet.train.segments.SegmentRouter` of that pipeline for ``group_by``;
5. on the engine (joblib): the search (if any), K-fold CV with out-of-fold predictions, the final
   fit on all rows (the search's refit, when there is a search);
6. metrics, feature importance per input column, ``oof.parquet``, the HTML report, ``model.json``;
   then one atomic save to the store.

>>> import numpy as np, pyarrow as pa
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=200)
>>> table = pa.table({"id": np.arange(200), "x": x, "late": x + rng.normal(size=200) > 0})
>>> result = train("logistic", table, target="late", keys=["id"], cv=3, report=False)
>>> result.metadata["kind"], result.metadata["classes"], result.oof.num_rows
('batch', [False, True], 200)
>>> result.metrics["overall"]["accuracy"] > 0.6
True
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.pipeline import Pipeline

from skfleet.engine import Engine
from skfleet.engine.session import EngineSession
from skfleet.errors import SkfleetError, UsageError
from skfleet.train.config import TrainConfig
from skfleet.train.cv import CVResult, ReplaySplits, cross_validate, make_splits, make_splitter
from skfleet.train.dataset import TrainingData, load_training_data
from skfleet.train.outputs import (
    OOF_COLUMNS,
    PROBA_PREFIX,
    StoredModelAccessors,
    feature_to_input,
    main_metric,
    oof_table,
    open_model_store,
    parquet_bytes,
    plain_list,
    report_metadata,
    stored_label_type,
)
from skfleet.train.parallel import counting_fits, counting_search_fits, shared_data
from skfleet.train.presets import build_estimator
from skfleet.train.search import build_search, planned_fits, search_summary
from skfleet.train.segments import SegmentRouter
from skfleet.util.progress import NullProgress, Progress
from skfleet.util.redact import redact_url

FALLBACK_NOTE = (
    "the global model, fitted on all rows, serves rows whose segment was not seen in training, "
    "is null, or is listed in fallback_segments; SegmentRouter.route_counts(table) counts them"
)
SEARCH_NOTE = (
    "metrics are those of the selected parameters on the folds used to select them, so they are "
    "slightly optimistic"
)


@dataclass
class TrainResult(StoredModelAccessors):
    """A finished run: the fitted model, its ``model.json`` content and where it was stored."""

    model: Any
    metadata: dict[str, Any]
    oof: Any
    report_html: str | None
    seconds: float
    ref: Any = None
    report_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` summary: name, version, overall metrics, rows, seconds."""
        rows = self.metadata["rows"]
        return {
            "name": self.name,
            "version": self.version,
            "metrics": self.metrics.get("overall"),
            "rows": rows["train"],
            "dropped_missing_target": rows["dropped_missing_target"],
            "seconds": self.seconds,
            "report": self.report_path,
        }


def task_of(estimator: Any) -> str:
    """``classification`` or ``regression``; anything else cannot be trained on a target."""
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise UsageError(
        f"model {type(estimator).__name__} is neither a classifier nor a regressor: "
        "skfleet train fits a model to a target column"
    )


def default_name(target: str, model: Any) -> str:
    """A model name made from the target and the model (``late-hgb-classifier``).

    >>> default_name("arr delay>15", "sklearn.linear_model.Ridge")
    'arr-delay-15-Ridge'
    """
    model_part = model.rsplit(".", 1)[-1] if isinstance(model, str) else type(model).__name__
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{target}-{model_part}")
    text = re.sub(r"\.{2,}", ".", text).strip("-._")
    return (text or "model")[:100]


def _check_keys(config: TrainConfig) -> None:
    for key in config.keys:
        if key in OOF_COLUMNS or key.startswith(PROBA_PREFIX):
            raise UsageError(
                f"--key {key!r} clashes with an output column name ({', '.join(OOF_COLUMNS)}, "
                f"{PROBA_PREFIX}<class>); rename it"
            )


def make_template(estimator: Any, config: TrainConfig) -> tuple[Any, str]:
    """The unfitted model skfleet stores, and the prefix that reaches ``estimator`` inside it."""
    from skfleet.features import TableEncoder

    encoder_options = dict(config.encoder)
    if config.group_by:
        exclude = [*encoder_options.pop("exclude", ()), config.group_by]
        encoder = TableEncoder(exclude=exclude, **encoder_options)
        pipeline = Pipeline([("encode", encoder), ("model", estimator)])
        router = SegmentRouter(pipeline, by=config.group_by, min_rows=config.min_segment_rows)
        return router, "estimator__model__"
    encoder = TableEncoder(**encoder_options)
    return Pipeline([("encode", encoder), ("model", estimator)]), "model__"


@contextlib.contextmanager
def _phase(progress: Progress, description: str, total: int, rows_per_fit: int) -> Iterator:
    """One progress bar (``total`` fits); yields the listener that advances it."""
    progress.start(total=max(total, 1), description=description)

    def listener(n: int) -> None:
        progress.advance(rows=n * rows_per_fit, tasks=n)

    try:
        yield listener
    finally:
        progress.stop()


def _fitted_estimator(model: Any) -> Any:
    """The user's estimator inside a fitted skfleet model (the global one for segments)."""
    pipeline = model.fallback_ if isinstance(model, SegmentRouter) else model
    return pipeline.named_steps["model"]


def _contract(model: Any) -> Any:
    pipeline = model.fallback_ if isinstance(model, SegmentRouter) else model
    return pipeline.named_steps["encode"].contract_


def train(
    model: Any,
    source: Any,
    target: str | None = None,
    *,
    config: TrainConfig | None = None,
    name: str | None = None,
    store: Any = None,
    engine: str | Engine | None = "local",
    progress: Progress | None = None,
    report: bool = True,
    source_name: str | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``model`` on ``source`` to predict ``target``; store it as ``name`` if given.

    ``model``: a preset name, an estimator import path, or an estimator / Pipeline object.
    ``source``: a data URL, an open :class:`~skfleet.data.Source`, a pyarrow Table or a DataFrame.
    ``options`` are :class:`TrainConfig` fields: ``keys``, ``exclude``, ``params``, ``encoder``,
    ``cv`` (int or :class:`CVConfig`), ``search`` (:class:`SearchConfig` or dict), ``group_by``,
    ``min_segment_rows``, ``missing_target``. Without ``name`` nothing is stored;
    ``report=False`` skips the HTML report (its plots take seconds). ``source_name`` says where
    an in-memory table came from, for ``model.json`` (it is redacted like any URL).
    """
    started = time.perf_counter()
    progress = progress or NullProgress()
    config = TrainConfig.build(config, target=target, **options)
    _check_keys(config)
    session = EngineSession(engine, progress=progress)  # a bad --engine fails now
    estimator = build_estimator(model, config.params)
    task = task_of(estimator)
    if config.search is not None and config.cv.folds == 0:
        raise UsageError("--search needs cross-validation: use --cv 2 or more")
    model_store = open_model_store(name, store)
    template, prefix = make_template(estimator, config)
    if config.search is not None:
        from skfleet.train.search import prefixed_grid

        prefixed_grid(template, prefix, config.search.grid)  # a bad --grid name fails now
    data = load_training_data(source, config, task)
    if source_name is not None:
        data.source_name = redact_url(str(source_name))
    classes = np.unique(data.y) if task == "classification" else None
    splits = make_splits(task, config.cv, data.y) if config.cv.folds else None

    with session:
        pool = session.engine
        split_arrays = [part for split in splits or () for part in split]
        with pool.joblib_context(), shared_data(data.features, data.y, *split_arrays) as shared:
            # With the data already on the cluster, hand Dask every fit at once: it schedules
            # them better, and keeps replicas of the data alive while fits still wait for it.
            jobs = {"n_jobs": pool.workers, "pre_dispatch": "all" if shared else "2*n_jobs"}
            fitted, search, cv_result = _fit_all(
                template, prefix, config, data, task, classes, splits, jobs, progress
            )

    metadata = _metadata(fitted, estimator, prefix, config, data, task, cv_result, search, pool)
    oof = None
    if cv_result is not None:
        oof = oof_table(
            data.keys,
            data.target,
            cv_result.fold,
            cv_result.prediction,
            cv_result.proba,
            classes,
            data.label_type,
        )
    files = {}
    report_html = None
    if report:
        importance, method = _importance(fitted, data, metadata)
        if importance is not None:
            metadata["feature_importance"] = {"method": method, "values": importance}
        report_html = _report(name, task, metadata, data, cv_result, search, importance, method)
        files["report.html"] = report_html.encode("utf-8")
    if oof is not None:
        files["oof.parquet"] = parquet_bytes(oof)
    metadata["seconds"] = round(time.perf_counter() - started, 3)
    ref = report_path = None
    if model_store is not None:
        ref = model_store.save(name, fitted, metadata, files=files)
        if report:
            report_path = model_store.local_path(ref, "report.html") or f"{ref.uri}/report.html"
    return TrainResult(
        model=fitted,
        metadata=metadata,
        oof=oof,
        report_html=report_html,
        seconds=round(time.perf_counter() - started, 3),
        ref=ref,
        report_path=report_path,
    )


def _fit_all(template, prefix, config, data: TrainingData, task, classes, splits, jobs, progress):
    """Search, cross-validation and final fit, on the engine joblib is configured for."""
    X, y = data.features, data.y
    search = None
    if config.search is not None:
        total = planned_fits(config.search, config.cv.folds, data.rows)
        rows_per_fit = data.rows * (config.cv.folds - 1) // config.cv.folds
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
            with _phase(progress, "search", total + 1, rows_per_fit) as listener:
                with counting_search_fits(listener) as counted:
                    _sklearn_call(search.fit, X, y)
                listener(1 if counted else total + 1)  # the refit (and, if uncounted, all fits)
        template = clone(template).set_params(**search.best_params_)
    cv_result: CVResult | None = None
    segmented = isinstance(template, SegmentRouter)
    # Without a search (whose refit is the final model), the final fit joins the folds' tasks.
    final_with_folds = search is None and not segmented
    if splits is not None:
        rows_per_fit = len(splits[0][0])
        tasks = len(splits) + (1 if final_with_folds else 0)
        label = "cross-validation and final fit" if final_with_folds else "cross-validation"
        phase = _phase(progress, label, tasks, rows_per_fit)
        with phase as listener, counting_fits(listener):
            cv_result = _sklearn_call(
                cross_validate,
                template,
                X,
                y,
                splits,
                task,
                classes,
                final=final_with_folds,
                **jobs,
            )
    if search is not None:
        fitted = search.best_estimator_
    elif cv_result is not None and cv_result.final_model is not None:
        fitted = cv_result.final_model
    else:
        total = _count_segments(X, config.group_by, config.min_segment_rows) + 1 if segmented else 1
        with _phase(progress, "final fit", total, data.rows) as listener:
            final = clone(template)
            if segmented:
                final.set_params(n_jobs=jobs["n_jobs"])
            with counting_fits(listener):
                fitted = _sklearn_call(final.fit, X, y)
            if not segmented:
                listener(1)
            else:
                fitted.set_params(n_jobs=None)  # a fitting setting, not part of the model
    return fitted, search, cv_result


def _sklearn_call(fn, *args, **kwargs):
    """Call into scikit-learn; a ValueError about the data becomes a one-line DataError."""
    from skfleet.errors import DataError

    try:
        return fn(*args, **kwargs)
    except SkfleetError:
        raise
    except ValueError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"fitting failed: {message}") from exc


def _count_segments(X: Any, column: str, min_rows: int) -> int:
    """How many segments are big enough for a model of their own (for the progress bar)."""
    import pyarrow.compute as pc

    counts = pc.value_counts(X.column(column).drop_null())
    return int(pc.sum(pc.greater_equal(counts.field("counts"), min_rows)).as_py() or 0)


def _metadata(fitted, estimator, prefix, config, data, task, cv_result, search, pool) -> dict:
    """The ``model.json`` fields a training run writes (the store adds its own)."""
    from skfleet.store.metadata import describe_estimator

    contract = _contract(fitted)
    input_columns = list(contract.input_columns)
    if config.group_by:
        input_columns.append(config.group_by)
    final_estimator = clone(estimator)
    if search is not None:
        final_estimator.set_params(
            **{k.removeprefix(prefix): v for k, v in search.best_params_.items()}
        )
    metrics: dict[str, Any] = {}
    notes: list[str] = []
    if cv_result is not None:
        metrics = {"overall": cv_result.overall, "folds": cv_result.folds}
    metadata: dict[str, Any] = {
        "kind": "segmented" if config.group_by else "batch",
        "task": task,
        "target": config.target,
        "classes": plain_list(fitted.classes_) if task == "classification" else None,
        "label_type": stored_label_type(task, data.label_type),
        "key_columns": list(config.keys),
        "input_columns": input_columns,
        "features": contract.to_dict(),
        "estimator": describe_estimator(final_estimator),
        "metrics": metrics,
        "rows": {"train": data.rows, "dropped_missing_target": data.dropped_missing_target},
        "source": data.source_name,
        "cv": {
            "folds": config.cv.folds,
            "stratified": task == "classification",
            "shuffle": config.cv.shuffle,
            "random_state": config.cv.random_state,
        },
        "engine": pool.spec,
    }
    headline = main_metric(task, metrics.get("overall"))
    if headline is not None:
        metadata["main_metric"] = headline
    if search is not None:
        metadata["search"] = search_summary(search, config.search, prefix)
        if cv_result is not None:
            notes.append(SEARCH_NOTE)
    if isinstance(fitted, SegmentRouter):
        metadata["segments"] = {
            "by": fitted.by,
            "count": len(fitted.segments_),
            "min_rows": fitted.min_rows,
            "rows": {
                str(s): n for s, n in zip(fitted.segments_, fitted.segment_rows_, strict=True)
            },
            "fallback_segments": fitted.fallback_segments_,
            "null_rows": fitted.n_null_rows_,
            "fallback": FALLBACK_NOTE,
        }
    if notes:
        metadata["notes"] = notes
    return metadata


def _importance(fitted, data: TrainingData, metadata: dict) -> tuple[dict | None, str | None]:
    """Importance per input column; a failure is noted in ``model.json``, not fatal."""
    from skfleet.report import feature_importance

    try:
        mapping = feature_to_input(_contract(fitted))
        return feature_importance(fitted, data.features, data.y, mapping)
    except Exception as exc:  # importance is a diagnostic: the model itself is fine
        metadata.setdefault("notes", []).append(f"feature importance unavailable: {exc}")
        return None, None


def _report(name, task, metadata, data, cv_result, search, importance, method) -> str:
    from skfleet.report import ReportData, build_report

    has_oof = cv_result is not None
    report = ReportData(
        title=f"{name or 'model'}: {metadata['target']}",
        name=name,
        task=task,
        classes=metadata.get("classes"),
        y_true=data.y if has_oof else None,
        y_pred=cv_result.prediction if has_oof else None,
        proba=cv_result.proba if has_oof else None,
        metrics=metadata["metrics"] or None,
        feature_importance=importance,
        importance_method=method,
        search_results=metadata["search"]["cv_results"] if search is not None else None,
        search_scoring=str(metadata["search"]["scoring"]) if search is not None else None,
        metadata=report_metadata(metadata),
    )
    return build_report(report)
