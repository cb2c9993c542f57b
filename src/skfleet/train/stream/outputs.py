"""What a streamed training run writes besides the model: ``model.json``'s fields and the report."""

from __future__ import annotations

from typing import Any


def stream_metadata(fitted, task, config, src, profile, state, classes, label_type, engine) -> dict:
    """The ``model.json`` fields a streamed run writes (the store adds its own)."""
    from skfleet.store.metadata import describe_estimator
    from skfleet.train.outputs import main_metric, plain_list, stored_label_type

    contract = fitted.named_steps["encode"].contract_
    estimator = fitted.named_steps["model"]
    holdout = state.holdout_metrics
    progressive = state.progressive_metrics
    overall = holdout or progressive
    metrics: dict[str, Any] = {}
    if overall is not None:
        metrics["overall"] = overall
    if holdout is not None:
        metrics["holdout"] = holdout
    if progressive is not None:
        metrics["progressive"] = progressive
    train_rows = profile.total_rows - profile.holdout_rows
    completed = len(state.curve)
    metadata: dict[str, Any] = {
        "kind": "stream",
        "task": task,
        "target": config.target,
        "classes": plain_list(classes) if classes is not None else None,
        "label_type": stored_label_type(task, label_type),
        "key_columns": list(config.keys),
        "input_columns": list(contract.input_columns),
        "features": contract.to_dict(),
        "profile": profile.reference,
        "estimator": describe_estimator(estimator),
        "metrics": metrics,
        "rows": {
            "train": train_rows,
            "holdout": profile.holdout_rows,
            "dropped_missing_target": profile.target.dropped,
            "learned": state.rows_learned,
        },
        "source": src.display_name,
        "learning_curve": state.curve,
        "epochs": {
            "requested": config.epochs,
            "completed": completed,
            "stopped_early": state.stopped_early,
            "best_epoch": state.best_epoch,
        },
        "holdout": {
            "fraction": config.holdout,
            "key": config.holdout_key,
            "method": "hash of the key column"
            if config.holdout_key
            else "hash of (partition, row position)",
        },
        "early_stopping": {"patience": config.patience, "tol": config.tol}
        if config.early_stopping
        else None,
        "seed": config.seed,
        "partitions": len(profile.rows),
        "partition_rows": config.partition_rows,
        "batch_rows": config.batch_rows,
        "workers": config.workers,
        "engine": engine,
        "rows_per_second": round(state.rows_learned / state.seconds) if state.seconds else None,
    }
    headline = stream_headline(task, overall, main_metric)
    if headline is not None:
        metadata["main_metric"] = headline
    notes = [
        f"column {column!r} is not a feature: {reason}"
        for column, reason in getattr(contract, "exclusions", {}).items()
        if reason != "exclude="
    ]
    if notes:
        metadata["notes"] = notes
    return metadata


def stream_headline(task, overall, main_metric) -> dict[str, Any] | None:
    if not overall:
        return None
    if task in ("classification", "regression"):
        return main_metric(task, overall)
    name = "inertia" if task == "clustering" else "reconstruction_mse"
    value = overall.get(name)
    return {"name": name, "value": value} if value is not None else None


def stream_report(name, task, metadata, sample) -> str:
    from skfleet.report import ReportData, build_report
    from skfleet.train.outputs import report_metadata

    shown = report_metadata(metadata)
    for key in ("epochs", "holdout", "seed", "partitions", "batch_rows", "rows_per_second"):
        if metadata.get(key) is not None:
            shown[key] = metadata[key]
    supervised = sample is not None and task in ("classification", "regression")
    data = ReportData(
        title=f"{name or 'model'}: {metadata['target'] or task} (streamed)",
        name=name,
        task=task,
        classes=metadata.get("classes"),
        y_true=sample["y_true"] if supervised else None,
        y_pred=sample["y_pred"] if supervised else None,
        proba=sample["proba"] if supervised else None,
        predictions_label="holdout sample",
        metrics=metadata["metrics"] or None,
        learning_curve=metadata["learning_curve"],
        metadata=shown,
    )
    return build_report(data)
