"""``train()``: fit a model on a table, with cross-validation, search and segments on an engine.

The steps of a run, in order:

1. build the estimator (preset, import path or the user's object) and check ``params``;
2. check the model name and the store *before* any work, so a bad name costs nothing;
3. read the needed columns, drop rows with a missing target (counted), check the target;
4. wrap the estimator (:mod:`skfleet.train.template`):
   ``Pipeline([("encode", TableEncoder), ("model", estimator)])``, or, for
   an estimator that selects columns by name (or ``encode=False``),
   ``Pipeline([("check", TableFrame), ("model", estimator)])``, which hands it a DataFrame; a
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
>>> result.metadata["kind"], result.metadata["classes"], len(result.oof)
('batch', [False, True], 200)
>>> result.oof.columns.tolist()
['id', 'fold', 'y_true', 'prediction', 'proba_false', 'proba_true']
>>> result.metrics["overall"]["accuracy"] > 0.6
True
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from skfleet.engine import Engine
from skfleet.engine.session import EngineSession
from skfleet.errors import UsageError
from skfleet.train.config import TrainConfig
from skfleet.train.cv import make_splits
from skfleet.train.dataset import load_training_data
from skfleet.train.described import batch_metadata, batch_report
from skfleet.train.fitting import fit_all
from skfleet.train.outputs import (
    StoredModelAccessors,
    check_keys,
    cv_oof_table,
    open_model_store,
    parquet_bytes,
    stored_file_path,
)
from skfleet.train.parallel import shared_data
from skfleet.train.presets import build_estimator
from skfleet.train.promotion import Promotion
from skfleet.train.template import make_template, task_of
from skfleet.util.progress import NullProgress, Progress


@dataclass
class TrainResult(StoredModelAccessors):
    """A finished run: the fitted model, its ``model.json`` content and where it was stored.

    ``oof`` is the out-of-fold predictions as a pandas DataFrame (None without CV);
    ``oof_table`` the same rows as Arrow, with the target's own types (``oof.parquet``).
    """

    model: Any
    metadata: dict[str, Any]
    oof_table: Any
    report_html: str | None
    seconds: float
    ref: Any = None
    report_path: str | None = None

    @cached_property
    def oof(self) -> Any:
        return None if self.oof_table is None else self.oof_table.to_pandas()

    def _summary(self) -> list[tuple[str, str]]:
        named = f"{self.name}@{self.version}" if self.ref is not None else "not stored"
        rows = [("model", named), ("target", str(self.metadata["target"]))]
        folds = self.metadata["cv"]["folds"]
        overall = self.metrics.get("overall") or {}
        for key, value in overall.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and key != "n":
                rows.append((f"{key} ({folds}-fold CV)", f"{value:.4g}"))
        rows += [("rows", f"{self.metadata['rows']['train']:,}"), ("seconds", f"{self.seconds}")]
        return rows

    def __repr__(self) -> str:
        headline = self.metadata.get("main_metric")
        metric = f", {headline['name']}={headline['value']:.4g}" if headline else ""
        named = self._summary()[0][1]
        return f"<TrainResult {named}: {self.metadata['target']}{metric}, {self.seconds}s>"

    def _repr_html_(self) -> str:
        """A notebook cell: the metrics table and the link to the report."""
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        link = ""
        if self.report_path:
            link = f"<p><a href='{html.escape(self.report_path)}'>report</a></p>"
        return f"<table>{cells}</table>{link}"

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
            "promotion": self.metadata.get("promotion"),
            "calibration": (self.metadata.get("calibration") or {}).get("method"),
            "weight": (self.metadata.get("weight") or {}).get("column"),
        }


def default_name(target: str, model: Any) -> str:
    """A model name made from the target and the model (``late-hgb-classifier``).

    >>> default_name("arr delay>15", "sklearn.linear_model.Ridge")
    'arr-delay-15-Ridge'
    """
    model_part = model.rsplit(".", 1)[-1] if isinstance(model, str) else type(model).__name__
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{target}-{model_part}")
    text = re.sub(r"\.{2,}", ".", text).strip("-._")
    return (text or "model")[:100]


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
    promote_if: str | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``model`` on ``source`` to predict ``target``; store it as ``name`` if given.

    ``model``: a preset name, an estimator import path, or an estimator / Pipeline object; a
    list of them (or a dict name -> model) compares them on the same folds and returns a
    :class:`~skfleet.train.leaderboard.ComparisonResult` (:mod:`skfleet.train.comparison`).
    ``source``: a data URL, an open :class:`~skfleet.data.Source`, a pyarrow Table or a DataFrame.
    ``options`` are :class:`TrainConfig` fields: ``keys``, ``exclude``, ``params``, ``encoder``,
    ``cv`` (int or :class:`CVConfig`), ``search`` (:class:`SearchConfig` or dict), ``group_by``,
    ``min_segment_rows``, ``missing_target``, ``weight``, ``calibrate``. Without ``name`` nothing is stored;
    ``report=False`` skips the HTML report (its plots take seconds). ``source_name`` says where
    an in-memory table came from, for ``model.json`` (it is redacted like any URL).
    ``promote_if`` (``"roc_auc >= champion + 0.005"``) moves that alias to the new version only
    if it beats the alias's version on the same folds (:mod:`skfleet.train.promotion`).
    """
    if isinstance(model, list | tuple | dict):
        if promote_if is not None:
            raise UsageError("--promote-if cannot be combined with several --model candidates")
        from skfleet.train.comparison import compare

        return compare(
            model, source, target, config=config, name=name, store=store, engine=engine,
            progress=progress, report=report, source_name=source_name, **options,
        )  # fmt: skip
    started = time.perf_counter()
    progress = progress or NullProgress()
    config = TrainConfig.build(config, target=target, **options)
    check_keys(config)
    session = EngineSession(engine, progress=progress)  # a bad --engine fails now
    estimator = build_estimator(model, config.params)
    task = task_of(estimator)
    if config.search is not None and config.cv.folds == 0:
        raise UsageError("--search needs cross-validation: use --cv 2 or more")
    model_store = open_model_store(name, store)
    template, prefix = make_template(estimator, config)
    if config.calibrate or config.weight:
        from skfleet.train.calibration import calibrated
        from skfleet.train.weights import check_accepts_weights

        template, prefix = calibrated(template, prefix, config, task)  # before any data is read
        if config.weight:
            check_accepts_weights(estimator)
    if config.search is not None:
        from skfleet.train.search import prefixed_grid

        prefixed_grid(template, prefix, config.search.grid)  # a bad --grid name fails now
    promotion = Promotion.prepare(promote_if, model_store, name, task, template, config)
    data = load_training_data(source, config, task, source_name)
    classes = np.unique(data.y) if task == "classification" else None
    splits = make_splits(task, config.cv, data.y) if config.cv.folds else None

    with session:
        pool = session.engine
        split_arrays = [part for split in splits or () for part in split]
        weights = [] if data.weight is None else [data.weight]
        with (
            pool.joblib_context(),
            shared_data(data.features, data.y, *split_arrays, *weights) as shared,
        ):
            # With the data already on the cluster, hand Dask every fit at once: it schedules
            # them better, and keeps replicas of the data alive while fits still wait for it.
            jobs = {"n_jobs": pool.workers, "pre_dispatch": "all" if shared else "2*n_jobs"}
            fitted, search, cv_result = fit_all(
                template, prefix, config, data, task, classes, splits, jobs, progress
            )
            if promotion is not None:
                promotion.evaluate(data, splits, classes, task, jobs, progress)

    from skfleet.features.codes import without_check_partials

    without_check_partials(fitted)
    metadata = batch_metadata(
        fitted, estimator, prefix, config, data, task, cv_result, search, pool
    )
    if config.calibrate:
        from skfleet.train.calibration import calibration_summary

        metadata["calibration"] = calibration_summary(config)
    if config.weight:
        from skfleet.train.weights import weight_summary

        metadata["weight"] = weight_summary(config.weight, data.weight)
    oof = None if cv_result is None else cv_oof_table(data, cv_result, classes)
    files = {}
    report_html = None
    if report:
        report_html = batch_report(name, task, metadata, data, cv_result, search, fitted)
        files["report.html"] = report_html.encode("utf-8")
    if oof is not None:
        files["oof.parquet"] = parquet_bytes(oof)
    metadata["seconds"] = round(time.perf_counter() - started, 3)
    ref = report_path = None
    if promotion is not None:
        metadata["promotion"] = promotion.record(cv_result.folds, model_store)
    if model_store is not None:
        ref = model_store.save(name, fitted, metadata, files=files)
        if promotion is not None:
            promotion.apply(metadata["promotion"], model_store, ref)
        if report:
            report_path = stored_file_path(model_store, ref, "report.html")
    return TrainResult(
        model=fitted,
        metadata=metadata,
        oof_table=oof,
        report_html=report_html,
        seconds=round(time.perf_counter() - started, 3),
        ref=ref,
        report_path=report_path,
    )
