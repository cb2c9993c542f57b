"""What a batch training run writes besides the model: ``model.json``'s fields, feature
importance per input column, the HTML report."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from skfleet.train.dataset import TrainingData
from skfleet.train.outputs import (
    feature_to_input,
    main_metric,
    plain_list,
    report_metadata,
    stored_label_type,
)
from skfleet.train.search import search_summary
from skfleet.train.segments import SegmentRouter, column_as_arrow

#: Segments the report's table lists (the largest by training rows).
SEGMENT_TABLE_ROWS = 200

FALLBACK_NOTE = (
    "the global model, fitted on all rows, serves rows whose segment was not seen in training, "
    "is null, or is listed in fallback_segments; SegmentRouter.route_counts(table) counts them"
)
SEARCH_NOTE = (
    "metrics are those of the selected parameters on the folds used to select them, so they are "
    "slightly optimistic"
)


def table_step(model: Any) -> Any:
    """The first step of the stored pipeline: a TableEncoder, or a TableFrame that only checks."""
    pipeline = model.fallback_ if isinstance(model, SegmentRouter) else model
    return pipeline.steps[0][1]


def fitted_contract(model: Any) -> Any:
    return table_step(model).contract_


def batch_metadata(fitted, estimator, prefix, config, data, task, cv_result, search, pool) -> dict:
    """The ``model.json`` fields a training run writes (the store adds its own)."""
    from skfleet.features.codes import TableCodes, TableOrdinal
    from skfleet.features.frame import TableFrame
    from skfleet.features.run_profile import reference_profile
    from skfleet.store.metadata import describe_estimator

    step = table_step(fitted)
    contract = step.contract_
    encoded = not isinstance(step, TableFrame)
    input_columns = list(contract.input_columns if encoded else step.output_columns)
    kinds = {TableOrdinal: "ordinal", TableCodes: "categories"}
    encoding = "encoded" if encoded else kinds.get(type(step), "frame")
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
        "profile": reference_profile(contract, data.features),
        "encoding": encoding,
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
            "table": segment_table(fitted, data, cv_result, task),
        }
    if notes:
        metadata["notes"] = notes
    return metadata


def segment_table(router: SegmentRouter, data: TrainingData, cv_result, task: str) -> list[dict]:
    """Per segment value, largest first: training rows, which model serves it, and (with CV) the
    out-of-fold metric of the segment models next to that of the global model on the same rows.

    >>> import numpy as np, pyarrow as pa
    >>> from sklearn.linear_model import LinearRegression
    >>> from skfleet.train.template import make_template
    >>> from skfleet.train.config import TrainConfig
    >>> from skfleet.train.dataset import load_training_data
    >>> g = np.repeat(["a", "b", "c"], [40, 40, 5])
    >>> x = np.tile(np.arange(5.0), 17)
    >>> table = pa.table({"g": g, "x": x, "y": np.where(g == "a", x, 3 * x)})
    >>> config = TrainConfig(target="y", group_by="g", min_segment_rows=10)
    >>> data = load_training_data(table, config, "regression")
    >>> router = make_template(LinearRegression(), config)[0].fit(data.features, data.y)
    >>> [(r["segment"], r["train_rows"], r["model"]) for r in segment_table(router, data, None,
    ...                                                                    "regression")]
    [('a', 40, 'own'), ('b', 40, 'own'), ('c', 5, 'global: 5 rows < min_rows 10')]
    """
    from sklearn.metrics import accuracy_score, mean_squared_error, r2_score

    column = column_as_arrow(data.features, router.by).combine_chunks()
    encoded = column.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    own = {str(s) for s in router.segments_}
    reasons = router.fallback_segments_
    has_oof = cv_result is not None and cv_result.global_prediction is not None
    rows = []
    for code, name in [*enumerate(names), (-1, None)]:
        where = codes == code
        count = int(where.sum())
        if not count:
            continue
        serving = "own" if name in own else f"global: {reasons.get(name, 'null segment value')}"
        row = {"segment": name, "train_rows": count, "model": serving}
        if has_oof:
            y = data.y[where]
            pairs = [
                ("", cv_result.prediction[where]),
                ("_global", cv_result.global_prediction[where]),
            ]
            for suffix, predicted in pairs:
                if task == "classification":
                    row[f"accuracy{suffix}"] = float(accuracy_score(y, predicted))
                else:
                    row[f"rmse{suffix}"] = float(np.sqrt(mean_squared_error(y, predicted)))
                    varies = count > 1 and np.ptp(y) > 0
                    row[f"r2{suffix}"] = float(r2_score(y, predicted)) if varies else None
        rows.append(row)
    rows.sort(key=lambda r: -r["train_rows"])
    return rows[:SEGMENT_TABLE_ROWS]


def input_importance(fitted, data: TrainingData, metadata: dict) -> tuple[dict | None, str | None]:
    """Importance per input column; a failure is noted in ``model.json``, not fatal."""
    from skfleet.report import feature_importance

    try:
        mapping = feature_to_input(fitted_contract(fitted))
        return feature_importance(fitted, data.features, data.y, mapping)
    except Exception as exc:  # importance is a diagnostic: the model itself is fine
        metadata.setdefault("notes", []).append(f"feature importance unavailable: {exc}")
        return None, None


def batch_report(name, task, metadata, data, cv_result, search, fitted, importance=True) -> str:
    """The run's HTML report. With ``importance`` the importance per input column is computed,
    shown and kept in ``metadata`` (``feature_importance``)."""
    from skfleet.report import ReportData, build_report

    values = method = None
    if importance:
        values, method = input_importance(fitted, data, metadata)
    if values is not None:
        metadata["feature_importance"] = {"method": method, "values": values}

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
        feature_importance=values,
        importance_method=method,
        search_results=metadata["search"]["cv_results"] if search is not None else None,
        search_scoring=str(metadata["search"]["scoring"]) if search is not None else None,
        segments=(metadata.get("segments") or {}).get("table"),
        metadata=report_metadata(metadata),
    )
    return build_report(report)
