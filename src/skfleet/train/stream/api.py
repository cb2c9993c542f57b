"""``train_stream()``: out-of-core training of any ``partial_fit`` estimator on a table of any size.

The steps of a run:

1. build the estimator (preset, class name, import path or object) and refuse one without
   ``partial_fit``; check the columns against the source's schema and plan its partitions;
2. the profiling pass, one task per partition on the engine, merged on the client: row counts,
   the encoder's statistics (training rows only), every class label, target moments
   (:mod:`skfleet.train.stream.profile`);
3. the epochs: partitions in a seeded order, rows shuffled, the next partition read while the
   current one is learned, each batch scored before it is learned, the holdout scored after each
   epoch, optional early stopping (:mod:`skfleet.train.stream.loop`); a checkpoint every N
   partitions, from which ``resume=True`` continues to the same model bit for bit
   (:mod:`skfleet.train.stream.checkpoint`);
4. ``Pipeline([("encode", TableEncoder), ("model", estimator)])`` stored like a batch model:
   ``model.json`` (``kind: stream``, contract, metrics, learning curve) and an HTML report.

Memory holds about two partitions (the one being learned and the one being read), whatever the
size of the table; the holdout is kept encoded on local disk.

>>> import numpy as np, os, tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=4000)
>>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
>>> pq.write_table(pa.table({"x": x, "late": x + rng.normal(size=4000) > 0}), path, row_group_size=1000)
>>> result = train_stream("sgd-logistic", path, target="late", epochs=2, partition_rows=1000,
...                       report=False)
>>> result.metadata["kind"], result.metadata["classes"], len(result.metadata["learning_curve"])
('stream', [False, True], 2)
>>> result.metrics["holdout"]["roc_auc"] > 0.7
True
>>> result.model.predict(pa.table({"x": [-3.0, 3.0]})).tolist()
[False, True]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from skfleet.data import open_source
from skfleet.data.base import Source
from skfleet.engine import Engine
from skfleet.engine.session import EngineSession
from skfleet.errors import DataError, UsageError
from skfleet.train.dataset import check_numeric_target
from skfleet.train.outputs import StoredModelAccessors, open_model_store, stored_file_path
from skfleet.train.stream.checks import (
    check_fingerprint,
    check_profile,
    check_task,
    read_columns,
    run_fingerprint,
)
from skfleet.train.stream.config import StreamConfig
from skfleet.train.stream.estimators import resolve_estimator, task_of
from skfleet.train.stream.outputs import stream_metadata, stream_report
from skfleet.train.stream.profile import (
    ProfileTask,
    StreamProfile,
    merge_profiles,
    profile_partition,
    sample_fraction,
)
from skfleet.util.progress import NullProgress, Progress

#: Estimators whose ``partial_fit`` needs dense input although ``fit`` takes sparse.
DENSE_ONLY = ("IncrementalPCA",)


@dataclass
class StreamResult(StoredModelAccessors):
    """A finished streamed run: the fitted pipeline, its ``model.json`` content, where it went."""

    model: Any
    metadata: dict[str, Any]
    report_html: str | None
    seconds: float
    ref: Any = None
    report_path: str | None = None

    @property
    def learning_curve(self) -> list[dict[str, Any]]:
        return self.metadata.get("learning_curve", [])

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` summary."""
        rows = self.metadata["rows"]
        epochs = self.metadata["epochs"]
        return {
            "name": self.name,
            "version": self.version,
            "metrics": self.metrics.get("holdout") or self.metrics.get("overall"),
            "progressive": self.metrics.get("progressive"),
            "rows": rows["train"],
            "holdout_rows": rows["holdout"],
            "dropped_missing_target": rows["dropped_missing_target"],
            "epochs": epochs["completed"],
            "stopped_early": epochs["stopped_early"],
            "resumed": self.metadata.get("resumed", False),
            "seconds": self.seconds,
            "rows_per_second": self.metadata.get("rows_per_second"),
            "report": self.report_path,
        }


def train_stream(
    model: Any,
    source: str | Source,
    target: str | None = None,
    *,
    config: StreamConfig | None = None,
    name: str | None = None,
    store: Any = None,
    engine: str | Engine | None = "local",
    progress: Progress | None = None,
    report: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    source_options: dict[str, Any] | None = None,
    **options: Any,
) -> StreamResult:
    """Train ``model`` out of core on ``source``; store it as ``name`` if given.

    ``model``: an estimator with ``partial_fit`` (object, class name, import path) or a preset
    (``sgd-logistic``, ``sgd-linear``, ``perceptron``, ``multinomial-nb``, ``bernoulli-nb``,
    ``minibatch-kmeans``, ``incremental-pca``, ``mlp-classifier``, ``mlp-regressor``).
    ``source``: a data URL or an open :class:`~skfleet.data.Source`. ``options`` are
    :class:`~skfleet.train.stream.config.StreamConfig` fields (``epochs``, ``partition_rows``,
    ``holdout``, ``checkpoint_every``, ``resume``, ``seed``, ``encoder``, ...). ``engine`` runs
    the profiling pass (and the data-parallel epochs when ``workers > 1``). ``callback`` is called
    with ``{"epoch", "step", "partition", "rows_learned"}`` after each learned partition.
    Checkpoints and ``resume`` need ``name``: the checkpoint is kept under it in the store.
    """
    started = time.perf_counter()
    progress = progress or NullProgress()
    config = StreamConfig.build(config, target=target, **options)
    estimator = resolve_estimator(model, seed=config.seed, params=dict(config.params))
    task = task_of(estimator)
    check_task(config, estimator, task)
    if (config.checkpoint_every or config.resume) and name is None:
        flag = "--resume" if config.resume else "--checkpoint-every"
        raise UsageError(f"{flag} needs --name: the checkpoint is kept under the model's name")
    model_store = open_model_store(name, store)
    owned_source = not isinstance(source, Source)
    src = open_source(source, **(source_options or {})) if owned_source else source
    engines = EngineSession(engine, progress=progress)
    try:
        return _run(
            estimator,
            task,
            src,
            config,
            name,
            model_store,
            engines,
            progress,
            report,
            callback,
            started,
        )
    finally:
        engines.close()
        if owned_source:
            src.close()


def _make_encoder(config: StreamConfig, columns: list[str]):
    from skfleet.features import TableEncoder

    options = dict(config.encoder)
    # Keys are not features; the holdout key may be read although it is a key.
    exclude = [*options.pop("exclude", ()), *(c for c in config.keys if c in columns)]
    try:
        encoder = TableEncoder(target=config.target, exclude=tuple(exclude), **options)
    except TypeError as exc:
        raise UsageError(f"--encoder option: {exc}") from None
    encoder.check_params()  # a bad encoder setting fails now, not in the first worker
    return encoder


def _profile(src, partitions, columns, config, task, encoder, engines, progress) -> StreamProfile:
    fraction = sample_fraction([p.rows_estimate for p in partitions], len(columns))
    tasks = [
        ProfileTask(
            source=src,
            partition=p,
            index=i,
            columns=tuple(columns),
            target=config.target,
            classification=task == "classification",
            holdout=config.holdout,
            holdout_key=config.holdout_key,
            encoder=encoder,
            sample=fraction,
        )
        for i, p in enumerate(partitions)
    ]
    # Reading and profiling spend most of their time in Arrow and numpy with the GIL released:
    # run in this process, a few threads keep every core busy.
    parts = engines.run(
        profile_partition,
        tasks,
        description="profile",
        retries=2,
        rows=lambda part: part.rows,
        threads=4,
    )
    return merge_profiles(parts, encoder)


def _run(
    estimator, task, src, config, name, model_store, engines, progress, report, callback, started
) -> StreamResult:
    from skfleet.train.stream.checkpoint import CheckpointStore
    from skfleet.train.stream.data import PartitionReader
    from skfleet.train.stream.loop import EpochLoop, LoopSettings, LoopState
    from skfleet.train.stream.scoring import Scorer, label_array

    columns, label_type = read_columns(src, config)
    if task == "regression":
        check_numeric_target(config.target, label_type)
    partitions = src.partitions(config.partition_rows)
    if not partitions:
        raise DataError(f"{src.display_name} has no rows to train on")
    fingerprint = run_fingerprint(src, partitions, config, estimator)
    checkpoints = None
    saved = None
    if name is not None and (config.checkpoint_every or config.resume):
        checkpoints = CheckpointStore(model_store, name)
        if config.resume:
            saved = checkpoints.load()
            if saved is None:
                progress.note(f"no checkpoint of {name!r} to resume: starting from the beginning")
            else:
                check_fingerprint(saved["fingerprint"], fingerprint, name)

    if saved is not None:
        profile = StreamProfile.from_state(saved["profile"])
        estimator = saved["estimator"]
        state = LoopState.from_dict(saved["state"])
        resumed_from = {"epoch": state.epoch, "step": state.step}
        progress.note(
            f"resuming {name!r} at epoch {state.epoch + 1}, partition {state.step + 1} of "
            f"{len(partitions)}"
        )
    else:
        encoder = _make_encoder(config, columns)
        profile = _profile(src, partitions, columns, config, task, encoder, engines, progress)
        state = LoopState()
        resumed_from = None
    check_profile(profile, config, task, src)
    encoder = profile.encoder
    classes = label_array(profile.classes()) if task == "classification" else None
    fit_kwargs = {"classes": classes} if classes is not None else {}

    def save_checkpoint(est: Any, loop_state: LoopState) -> None:
        checkpoints.save(
            {
                "fingerprint": fingerprint,
                "profile": profile.to_state(),
                "estimator": est,
                "state": loop_state.to_dict(),
            }
        )

    reader = PartitionReader(
        src,
        partitions,
        columns,
        config.target,
        encoder,
        holdout=config.holdout,
        holdout_key=config.holdout_key,
        seed=config.seed,
        classes=classes,
        dense=type(estimator).__name__ in DENSE_ONLY,
    )
    scorer = Scorer(task, classes)
    settings = LoopSettings(
        epochs=config.epochs,
        batch_rows=config.batch_rows,
        seed=config.seed,
        progressive=config.progressive,
        early_stopping=config.early_stopping,
        patience=config.patience,
        tol=config.tol,
        checkpoint_every=config.checkpoint_every,
    )
    if config.workers > 1:
        from skfleet.train.stream.parallel import ParallelEpochLoop

        loop_cls = ParallelEpochLoop
    else:
        loop_cls = EpochLoop
    loop = loop_cls(
        estimator,
        reader,
        scorer,
        settings,
        fit_kwargs=fit_kwargs,
        save_checkpoint=save_checkpoint if checkpoints is not None else None,
        callback=callback,
        progress=progress,
        holdout_rows=profile.holdout_rows,
    )
    if config.workers > 1:
        loop.configure(engine=engines, workers=config.workers)
    try:
        state = loop.run(state)
    finally:
        loop.close()
    fitted = Pipeline([("encode", encoder), ("model", loop.estimator)])
    metadata = stream_metadata(
        fitted, task, config, src, profile, state, classes, label_type, engines.spec
    )
    metadata["resumed"] = resumed_from is not None
    if resumed_from is not None:
        metadata["resumed_from"] = resumed_from
    report_html = None
    files = {}
    if report:
        report_html = stream_report(name, task, metadata, loop.report_sample)
        files["report.html"] = report_html.encode("utf-8")
    seconds = round(time.perf_counter() - started, 3)
    metadata["seconds"] = seconds
    ref = report_path = None
    if model_store is not None:
        ref = model_store.save(name, fitted, metadata, files=files)
        if report:
            report_path = stored_file_path(model_store, ref, "report.html")
    if checkpoints is not None:
        checkpoints.clear()  # the run is over and stored: a later --resume starts afresh
    return StreamResult(
        model=fitted,
        metadata=metadata,
        report_html=report_html,
        seconds=round(time.perf_counter() - started, 3),
        ref=ref,
        report_path=report_path,
    )
