"""Turn one table and a loaded model into the prediction table (and the partition's drift report).

This is the pure part of ``predict``: no store, no engine, no sink. :func:`plan_scoring` runs once
on the client and decides everything that must be the same in every partition (the columns to read,
the output schema, which probability columns to emit); :func:`score_table` then runs on a worker
for each partition.

Output columns: the key columns (copied from the input), then ``prediction`` (a classifier's in the
training label dtype, a regressor's float64), then ``proba_<class>`` (float64) for each class of a
classifier (or the subset asked for).

>>> import pandas as pd, pyarrow as pa
>>> from sklearn.linear_model import LogisticRegression
>>> model = LogisticRegression().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), ["no", "no", "yes", "yes"])
>>> meta = {"kind": "registered", "task": "classification", "input_columns": ["x"],
...         "label_type": "string"}
>>> table = pa.table({"id": [7, 8], "x": [0.1, 2.9]})
>>> plan = plan_scoring(model, meta, table.schema, keys=["id"])
>>> plan.schema.names
['id', 'prediction', 'proba_no', 'proba_yes']
>>> scored = score_table(model, table, plan)
>>> scored.table.column("prediction").to_pylist(), scored.table.schema.field("proba_yes").type
(['no', 'yes'], DataType(double))
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from skfleet.errors import DataError, DriftWarning, MissingColumnError, SkfleetError, UsageError
from skfleet.predict.drift_runs import scoring_bins
from skfleet.store.metadata import describe_interface, recorded_interface
from skfleet.util.blocks import call_in_blocks

PREDICTION = "prediction"
PROBA_PREFIX = "proba_"

_TIMESTAMP = re.compile(r"timestamp\[(?P<unit>s|ms|us|ns)(?:, tz=(?P<tz>[^\]]+))?\]\Z")
_DICTIONARY = re.compile(r"dictionary<values=(?P<values>[^,]+), indices=")


@dataclass(frozen=True)
class ScoringPlan:
    """What every partition does, decided once on the client (small and picklable).

    ``read_columns`` are read from the source (keys first), ``model_columns`` are handed to the
    model (``None``: every column read), ``proba`` holds the positions in ``classes`` whose
    probability columns are written, ``schema`` is the output schema the sink is opened with.
    """

    keys: tuple[str, ...]
    read_columns: tuple[str, ...]
    model_columns: tuple[str, ...] | None
    table_input: bool
    with_prediction: bool
    classes: tuple[Any, ...]
    proba: tuple[int, ...]
    schema: pa.Schema
    #: Bins the scored rows are counted in for drift over runs
    #: (:func:`~skfleet.predict.drift_runs.scoring_bins`; None: the model has no profile).
    profile_bins: Any = None

    @property
    def prediction_type(self) -> pa.DataType | None:
        return self.schema.field(PREDICTION).type if self.with_prediction else None


@dataclass
class Scored:
    """One scored partition: the output rows and the drift seen in them (None: no contract);
    ``bad``: the rows the contract refused and left out (a ``rowcheck.BadRows``), if any."""

    table: pa.Table
    drift: Any = None
    bad: Any = None


def arrow_type(text: str | None) -> pa.DataType | None:
    """The Arrow type a ``label_type`` string names, or None when it cannot be read back.

    >>> arrow_type("int64"), arrow_type("large_string"), arrow_type("timestamp[us, tz=UTC]")
    (DataType(int64), DataType(large_string), TimestampType(timestamp[us, tz=UTC]))
    >>> arrow_type("dictionary<values=string, indices=int32, ordered=0>")
    DataType(string)
    >>> arrow_type("map<string, int64>") is None
    True
    """
    if not isinstance(text, str) or not text:
        return None
    text = text.strip()
    with_values = _DICTIONARY.match(text)
    if with_values:
        # A categorical label is written as its values: predictions are plain labels.
        return arrow_type(with_values["values"].strip())
    stamp = _TIMESTAMP.match(text)
    if stamp:
        return pa.timestamp(stamp["unit"], tz=stamp["tz"])
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        return None


def drift_encoder(model: Any) -> Any | None:
    """The first Pipeline step when it reports drift (skfleet's ``TableEncoder``), else None."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and len(steps) > 1 and hasattr(steps[0][1], "transform_with_drift"):
        return steps[0][1]
    return None


def side_drift_encoder(model: Any) -> Any | None:
    """For a model that routes rows to several pipelines (``SegmentRouter``), the encoder of its
    global pipeline: it saw every training row, so its contract is the one to measure drift by."""
    fallback = getattr(model, "fallback_", None)
    return drift_encoder(fallback) if fallback is not None else None


def _label_type(metadata: Mapping[str, Any], classes: tuple) -> pa.DataType:
    task = metadata.get("task")
    if task == "regression":
        # ``label_type`` is the type of class labels. A regressor trained on an int64 target
        # still predicts real numbers: casting them back to the target's type would truncate
        # (models stored before train wrote float64 here say int64).
        return pa.float64()
    declared = arrow_type(metadata.get("label_type"))
    if declared is not None:
        return declared
    if classes:
        return pa.array(list(classes)).type
    if task == "clustering":
        return pa.int64()
    return pa.float64()


def proba_column(label: Any) -> str:
    """The output column holding the probability of ``label``: in lower case, for every sink.

    Lower case because PostgreSQL folds unquoted names: ``proba_True`` would need quoting in
    every query. The same everywhere (Parquet and CSV too) because a column should not change
    its name with ``--out``: ``--columns``, a model's listed output columns and ``skfleet copy``
    between sinks all see one name. Classes that differ only in case collide, and
    :func:`plan_scoring` refuses them.

    >>> proba_column("yes"), proba_column(1), proba_column(True), proba_column("Late")
    ('proba_yes', 'proba_1', 'proba_true', 'proba_late')
    """
    return f"{PROBA_PREFIX}{label}".lower()


def plan_scoring(
    model: Any,
    metadata: Mapping[str, Any],
    source_schema: pa.Schema,
    keys: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    model_name: str = "the model",
    source_name: str = "the input",
    require_keys: bool = True,
) -> ScoringPlan:
    """Check the source against the model and decide the output schema.

    ``model`` None plans from ``metadata`` alone (its recorded interface, see
    :func:`~skfleet.store.metadata.describe_interface`): a client that hands scoring to workers
    never loads the model. Raises :class:`MissingColumnError` listing every required column the source lacks, and
    :class:`UsageError` for a bad ``--key`` or ``--columns``. ``require_keys=False`` (scoring a
    table in memory, whose rows keep their order) allows an output without key columns.
    """
    interface = describe_interface(model, metadata) if model is not None else None
    interface = interface or recorded_interface(metadata)
    if interface is None:
        raise SkfleetError(f"{model_name}: model.json does not describe the model's interface")
    if not interface["predict"]:
        raise UsageError(
            f"{model_name} ({interface['estimator']}) has no predict(): nothing to score"
        )
    keys = tuple(keys) if keys else tuple(metadata.get("key_columns") or ())
    if not require_keys and keys is not None:
        keys = tuple(k for k in keys if k in source_schema.names)
    elif not keys:
        raise UsageError(
            f"no key column to identify output rows: pass --key COLUMN ({model_name} names none)"
        )
    if len(set(keys)) != len(keys):
        raise UsageError(f"--key lists a column twice: {', '.join(keys)}")
    names = set(source_schema.names)
    missing_keys = [k for k in keys if k not in names]
    if missing_keys:
        raise MissingColumnError(
            f"--key column(s) missing from {source_name}: {', '.join(missing_keys)}"
        )
    inputs = metadata.get("input_columns")
    model_columns = tuple(inputs) if inputs else None
    if model_columns is not None:
        missing = [c for c in model_columns if c not in names]
        if missing:
            raise MissingColumnError(
                f"{source_name} is missing {len(missing)} column(s) required by {model_name}: "
                f"{', '.join(missing)}"
            )
    read = keys + tuple(c for c in (model_columns or source_schema.names) if c not in keys)

    classes = tuple(interface["classes"])
    has_proba = bool(classes) and interface["predict_proba"]
    all_proba = [proba_column(c) for c in classes] if has_proba else []
    if len(set(all_proba)) != len(all_proba):
        raise UsageError(
            f"{model_name} has classes whose names collide as output columns (proba_<class>, "
            f"in lower case): {classes}"
        )
    available = [PREDICTION, *all_proba]
    clash = [k for k in keys if k in available]
    if clash:
        raise UsageError(f"--key column {clash[0]!r} has the name of an output column; rename it")
    if columns:
        wanted = [c for c in columns if c not in keys]
        unknown = [c for c in wanted if c not in available]
        if unknown:
            raise UsageError(
                f"--columns: unknown output column(s) {', '.join(unknown)} "
                f"(available: {', '.join(available)})"
            )
        if not wanted:
            raise UsageError(
                f"--columns selects no output column (available: {', '.join(available)})"
            )
    else:
        wanted = available
    proba = tuple(i for i, name in enumerate(all_proba) if name in wanted)
    fields = [source_schema.field(k) for k in keys]
    with_prediction = PREDICTION in wanted
    if with_prediction:
        fields.append(pa.field(PREDICTION, _label_type(metadata, classes)))
    fields += [pa.field(all_proba[i], pa.float64()) for i in proba]
    table_input = metadata.get("kind") != "registered"
    return ScoringPlan(
        keys=keys,
        read_columns=read,
        model_columns=model_columns,
        table_input=table_input,
        with_prediction=with_prediction,
        classes=classes,
        proba=proba,
        schema=pa.schema(fields),
        profile_bins=scoring_bins(metadata),
    )


def _model_input(table: pa.Table, plan: ScoringPlan) -> Any:
    data = table.select(list(plan.model_columns)) if plan.model_columns is not None else table
    if plan.table_input:
        return data  # skfleet's TableEncoder / SegmentRouter take Arrow tables directly
    # A registered estimator was fitted on a pandas DataFrame of its input columns.
    return data.to_pandas()


def _to_label_array(values: np.ndarray, label_type: pa.DataType, column: str) -> pa.Array:
    values = np.asarray(values)
    try:
        array = pa.array(values.tolist()) if values.dtype == object else pa.array(values)
        return array if array.type == label_type else array.cast(label_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataError(
            f"{column}: predictions of type {values.dtype} cannot be stored as {label_type}: {exc}"
        ) from exc


def _predict(model: Any, plan: ScoringPlan, data: Any) -> tuple[Any, Any]:
    # In whole blocks of rows: a row scores the same bits whichever partition or batch holds it.
    prediction = call_in_blocks(model.predict, data) if plan.with_prediction else None
    proba = call_in_blocks(model.predict_proba, data) if plan.proba else None
    return prediction, proba


def score_table(model: Any, table: pa.Table, plan: ScoringPlan, bad_rows: str = "error") -> Scored:
    """Score ``table`` (which holds ``plan.read_columns``) and build the output rows.

    ``bad_rows="error"``: a value the model's feature contract cannot encode fails the table
    (:class:`DataError`). Otherwise (``skip``, ``quarantine``) the rows holding such values are
    left out and returned in ``Scored.bad`` (:mod:`skfleet.features.rowcheck`), and the others
    are scored. They are looked for only once the contract has refused the table, so a table
    without bad rows is scored exactly as with ``error``. A refusal that is no row's fault (a
    missing column, a column type the contract refuses) still fails the table. A model that
    takes the checked table as it is (``TableFrame``: nothing filled) and refuses it
    (``ValueError``: scikit-learn's missing or infinite input) loses the rows with a missing value
    where training had none, or an infinite number, if that is what it refused.
    """
    if bad_rows == "error":
        try:
            return _score_rows(model, table, plan)
        except DataError as exc:
            step = contract_step(model, plan)
            if step is None or not _rows_behind(exc, step, table).count:
                raise
            raise DataError(f"{exc}; --bad-rows skip or quarantine leaves such rows out") from exc
    step = contract_step(model, plan)
    found = None  # the rows left out so far (positions in ``table``)
    for _ in range(_PASSES):
        rows = table if found is None else table.filter(pa.array(~found.mask))
        try:
            scored = _score_rows(model, rows, plan)
        except (DataError, ValueError) as exc:
            more = _rows_behind(exc, step, rows)
            if more is None or not more.count:
                raise
            found = more if found is None else found.extend(more, np.flatnonzero(~found.mask))
            continue
        scored.bad = found
        return scored
    return _score_rows(model, table.filter(pa.array(~found.mask)), plan)


#: Scoring attempts of one table with ``bad_rows`` other than ``error``: the contract's
#: refusals, then missing values a model that encodes its own input refused, then no more.
_PASSES = 3


def _rows_behind(error: Exception, step: Any, rows: pa.Table) -> Any | None:
    """The rows of ``rows`` that caused ``error`` (a ``rowcheck.BadRows``), or None."""
    if step is None:
        return None
    from skfleet.features import rowcheck
    from skfleet.features.frame import TableFrame

    if isinstance(error, DataError):
        return rowcheck.find_bad_rows(step.contract_, rows)
    if isinstance(step, TableFrame):
        return rowcheck.find_missing_rows(step.contract_, rows)
    return None


def contract_step(model: Any, plan: ScoringPlan) -> Any | None:
    """The table step whose feature contract decides which rows are bad, or None (a registered
    model: no contract)."""
    if not plan.table_input:
        return None
    step = drift_encoder(model) or side_drift_encoder(model)
    return step if getattr(step, "contract_", None) is not None else None


def _score_rows(model: Any, table: pa.Table, plan: ScoringPlan) -> Scored:
    columns: list[pa.Array | pa.ChunkedArray] = [table.column(k) for k in plan.keys]
    drift = None
    if table.num_rows == 0:
        return Scored(plan.schema.empty_table(), None)
    data = _model_input(table, plan)
    encoder = drift_encoder(model) if plan.table_input else None
    if encoder is not None:
        # Encode once (not once for predict and again for predict_proba) and keep the drift.
        with warnings.catch_warnings():
            # Drift is reported through the DriftReport, once for the whole run.
            warnings.simplefilter("ignore", DriftWarning)
            features, drift = encoder.transform_with_drift(data)
        prediction, proba = _predict(model[1:], plan, features)
    else:
        prediction, proba = _predict(model, plan, data)
        side = side_drift_encoder(model) if plan.table_input else None
        if side is not None:
            _, drift = side.transform_with_drift(data)
    if plan.with_prediction:
        columns.append(_to_label_array(prediction, plan.prediction_type, PREDICTION))
    if plan.proba:
        proba = np.asarray(proba, dtype=np.float64)
        columns += [pa.array(proba[:, i]) for i in plan.proba]
    return Scored(pa.Table.from_arrays(columns, schema=plan.schema), drift)
