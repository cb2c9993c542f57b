"""Incremental scoring: score only the rows whose watermark column is above the last run's.

A run of ``predict(..., incremental=COL)`` fixes its range when it plans: ``lower`` is the
watermark the output's sink committed for the same model name and source (its *stream*), and
``upper`` is the largest ``COL`` the source holds now (PostgreSQL: in the run's exported
snapshot). The source plans and reads only ``lower < COL <= upper``; both bounds go in the run
record, so ``--resume`` plans the same partitions, and rows that arrive meanwhile (``COL >
upper``) wait for the next run. The sink stores the new watermark in the step that publishes
the run (PostgreSQL: the commit's transaction; files: the manifest), so it never passes a
partition that is not committed.

Each watermark keeps the number of rows at or below it. A later run counts them again: more
rows means rows arrived *below* the watermark (the column went backwards), which would never be
scored, so the run is refused, naming the column and the count.

>>> encode_value(3), decode_value(encode_value(3))
({'int': 3}, 3)
>>> import datetime as dt
>>> decode_value(encode_value(dt.date(2024, 5, 1)))
datetime.date(2024, 5, 1)
>>> stream_name("churn", "postgresql://u:secret@db/crm?table=events")
'churn postgresql://u:***@db/crm?table=events'
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from skfleet.data.base import Sink, Source
from skfleet.errors import DataError, MissingColumnError, UsageError
from skfleet.predict.runs import UNFINISHED, RunStore
from skfleet.util.redact import redact_url

FLAG = "--incremental"


def stream_name(model_name: str, source_url: str) -> str:
    """What a sink files a watermark under: the model's name and the source, password masked
    (the output is the sink itself)."""
    return f"{model_name} {redact_url(source_url)}"


def check_orderable(schema: pa.Schema, column: str, where: str) -> pa.DataType:
    """The type of ``column``, which must exist and only grow in a meaningful order: integers,
    decimals, dates and timestamps. Floats are refused (NaN sorts above everything in
    PostgreSQL and compares false in Arrow, so a NaN row would be scored never or every time).

    >>> schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    >>> check_orderable(schema, "id", "t.parquet")
    DataType(int64)
    >>> check_orderable(schema, "name", "t.parquet")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: --incremental name: column 'name' of t.parquet is string, not orderable (use an integer, decimal, date or timestamp column)
    """
    if column not in schema.names:
        raise MissingColumnError(f"{FLAG} {column}: column {column!r} is not in {where}")
    kind = schema.field(column).type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_date(kind)
        or pa.types.is_timestamp(kind)
    ):
        raise UsageError(
            f"{FLAG} {column}: column {column!r} of {where} is {kind}, not orderable "
            "(use an integer, decimal, date or timestamp column)"
        )
    return kind


def encode_value(value: Any) -> dict[str, Any]:
    """A watermark value as JSON: tagged, so it reads back as the same Python type."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not a watermark value: {value!r}")
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp: a nanosecond column, kept exact
        return {"timestamp_ns": int(value.value), "tz": None if value.tz is None else str(value.tz)}
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    raise TypeError(f"not a watermark value: {value!r}")


def decode_value(data: dict[str, Any] | None) -> Any:
    """The value :func:`encode_value` wrote.

    >>> import pandas as pd
    >>> ns = pd.Timestamp(1_700_000_000_000_000_001, tz="UTC")
    >>> decode_value(encode_value(ns)) == ns
    True
    """
    if data is None:
        return None
    if "timestamp_ns" in data:
        import pandas as pd

        return pd.Timestamp(data["timestamp_ns"], tz=data.get("tz"))
    ((kind, text),) = data.items()
    if kind == "int":
        return int(text)
    if kind == "decimal":
        return decimal.Decimal(text)
    if kind == "datetime":
        return dt.datetime.fromisoformat(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    raise ValueError(f"unknown watermark value {data!r}")


@dataclass
class IncrementalRange:
    """The range one incremental run scores, and the watermark its commit stores."""

    column: str
    stream: str
    lower: Any  # None: no watermark yet (or --rescore-all): every row up to ``upper``
    upper: Any  # None: the source has no value at all
    rows_below: int  # rows at or below ``lower`` when planned
    new_rows: int  # rows in the range when planned
    rescore_all: bool = False
    #: The run that stored ``lower`` (None: none did): the commit stores the new watermark only
    #: over that one, so two runs racing from the same watermark cannot both publish.
    after_run: str | None = None

    @property
    def empty(self) -> bool:
        return self.new_rows == 0

    def watermark_state(self, model: dict[str, Any], run_id: str) -> dict[str, Any]:
        """What the sink stores at commit: the new watermark and the rows at or below it."""
        return {
            "column": self.column,
            "value": encode_value(self.upper),
            "rows": self.rows_below + self.new_rows,
            "model": {k: model[k] for k in ("name", "version", "content_hash")},
            "run_id": run_id,
            **({} if self.rescore_all else {"after_run": self.after_run}),
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "stream": self.stream,
            "lower": None if self.lower is None else encode_value(self.lower),
            "upper": None if self.upper is None else encode_value(self.upper),
            "rows_below": self.rows_below,
            "new_rows": self.new_rows,
            "rescore_all": self.rescore_all,
            "after_run": self.after_run,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> IncrementalRange:
        return cls(
            data["column"],
            data["stream"],
            decode_value(data["lower"]),
            decode_value(data["upper"]),
            int(data["rows_below"]),
            int(data["new_rows"]),
            bool(data.get("rescore_all")),
            data.get("after_run"),
        )

    def summary(self) -> dict[str, Any]:
        """For PredictResult / ``--json``: the range scored and the watermark after the run."""
        return {
            "column": self.column,
            "lower": _shown(self.lower),
            "upper": _shown(self.upper),
            "watermark": _shown(self.lower if self.empty else self.upper),
            "new_rows": self.new_rows,
            "rescore_all": self.rescore_all,
        }


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, int):
        return value
    return str(value) if isinstance(value, decimal.Decimal) else value.isoformat()


def plan_range(
    src: Source,
    sink: Sink,
    column: str,
    model: dict[str, Any],
    source_url: str,
    rescore_all: bool = False,
) -> IncrementalRange:
    """Check ``column`` and the stored watermark, and measure the new range (nothing written).

    ``model`` is the run record's model (name, version, content hash). Refused in one line: a
    missing or unorderable column, a watermark kept by another model version or on another
    column (unless ``rescore_all``), rows below the watermark that were not there when it was
    committed, and null values in ``column``.
    """
    where = src.display_name
    check_orderable(src.schema(), column, where)
    stream = stream_name(model["name"], source_url)
    state = None if rescore_all else sink.watermark(stream)
    ref = f"{model['name']}@{model['version']}"
    if state is not None:
        kept = state.get("model", {})
        if state.get("column") != column:
            raise UsageError(
                f"{FLAG} {column}: {sink.display_name} keeps a watermark on column "
                f"{state.get('column')!r} for {where}; pass --rescore-all to start over on {column!r}"
            )
        if kept.get("content_hash") != model["content_hash"]:
            raise UsageError(
                f"{FLAG}: {sink.display_name} was scored up to its watermark by "
                f"{kept.get('name')}@{kept.get('version')}, not {ref}; pass --rescore-all to "
                "score every row again with this version"
            )
    lower = None if state is None else decode_value(state["value"])
    stats = src.watermark_stats(column, lower)
    if stats.nulls:
        raise DataError(
            f"{FLAG} {column}: {stats.nulls:,} row(s) of {where} have no {column!r} value, so "
            "no watermark can ever include them; fill them or pick another column"
        )
    if state is not None and stats.at_or_below > int(state["rows"]):
        went_back = stats.at_or_below - int(state["rows"])
        raise DataError(
            f"{FLAG} {column}: column {column!r} of {where} went backwards: {went_back:,} "
            f"row(s) at or below the watermark {_shown(lower)} arrived after run "
            f"{state.get('run_id')} committed it; they would never be scored (nothing was "
            "written; score them with --rescore-all)"
        )
    upper = stats.maximum if stats.above else lower
    after = None if state is None else state.get("run_id")
    return IncrementalRange(
        column, stream, lower, upper, stats.at_or_below, stats.above, rescore_all, after
    )


def check_no_unfinished(runs: RunStore, out: str, stream: str) -> None:
    """A new incremental run of a stream while an earlier one is unfinished would plan from the
    same watermark and score that run's rows again: finish it first."""
    target = redact_url(out)
    for record in reversed(runs.records()):
        inc = record.options.get("incremental")
        if (
            record.status in UNFINISHED
            and record.sink == target
            and inc is not None
            and inc.get("stream") == stream
        ):
            raise UsageError(
                f"{FLAG}: run {record.run_id} of the same model and source into {target} is "
                f"unfinished; finish it with --resume {record.run_id}"
            )


def check_options(incremental: str | None, rescore_all: bool, if_exists: str | None) -> None:
    """The flags that go with ``--incremental``: incremental runs append (a first run creates
    the output, or refuses an output it did not write, like ``--if-exists fail``); starting
    over is ``--rescore-all``, which replaces the output."""
    if rescore_all and not incremental:
        raise UsageError("--rescore-all goes with --incremental COLUMN")
    if incremental is not None and not str(incremental).strip():
        raise UsageError(f"{FLAG} needs a column name")
    if incremental and if_exists == "replace" and not rescore_all:
        raise UsageError(
            f"{FLAG} appends to the output; to score every row again into a new one, pass "
            "--rescore-all instead of --if-exists replace"
        )


def prepare(
    src: Source,
    sink: Sink,
    column: str | None,
    model: dict[str, Any],
    source_url: str,
    *,
    rescore_all: bool,
    runs: RunStore,
    out: str,
    recorded: dict[str, Any] | None,
) -> IncrementalRange:
    """The range of this run: a resumed run's from its record (``recorded``: the same
    partitions; ``{}`` for a resumed run that was not incremental), a new run's (``recorded``
    None) measured now; the source is then restricted to it (unless there is nothing new)."""
    if recorded == {}:
        raise UsageError(f"--resume: that run did not score {FLAG}; resume it without {FLAG}")
    if recorded is not None:
        rng = IncrementalRange.from_record(recorded)
        if column is not None and column != rng.column:
            raise UsageError(
                f"--resume: the run scored {FLAG} {rng.column}; resume it with the same, "
                f"not {column!r}"
            )
        check_orderable(src.schema(), rng.column, src.display_name)
    else:
        check_no_unfinished(runs, out, stream_name(model["name"], source_url))
        rng = plan_range(src, sink, column, model, source_url, rescore_all)
    if not rng.empty:
        src.restrict(rng.column, rng.lower, rng.upper)
    return rng


def if_exists_for(rng: IncrementalRange, given: str | None) -> str:
    """Incremental runs append once a watermark exists; before that, a first run creates the
    output (``--if-exists`` as given, by default refusing an output it did not write);
    ``--rescore-all`` replaces it."""
    if rng.rescore_all:
        return "replace"
    if given is not None:
        return given
    return "fail" if rng.lower is None else "append"
