"""``--bad-rows``: what ``predict`` does with rows the model's feature contract cannot encode.

``error`` (the default) fails the run on the first such row. ``skip`` scores the other rows and
counts the refused ones per reason (:mod:`skfleet.features.rowcheck`). ``quarantine[=URL]`` does
the same and writes every refused value to a second output, opened with the run's id before any
partition runs (so an unwritable place fails the run before anything is written), with the
columns of :data:`SCHEMA`. Each partition writes its quarantine rows, then its scores, both
idempotent per partition id, so a retried partition writes each once; at the end the quarantine
commits first, then the scores. Without ``=URL`` the quarantine goes next to ``--out``
(:func:`default_url`).

>>> check_bad_rows("quarantine=bad/"), check_bad_rows(None)
(('quarantine', 'bad/'), ('error', None))
>>> default_url("postgresql://db/x?table=public.scores&sslmode=require")
'postgresql://db/x?table=public.scores_quarantine&sslmode=require'
>>> default_url("s3://bucket/scores/"), default_url("scores.csv")
('s3://bucket/scores.quarantine/', 'scores.csv.quarantine/')
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa

from skfleet.data import open_sink
from skfleet.data.base import Sink
from skfleet.errors import SkfleetError, UsageError
from skfleet.util.choices import split_bad_rows
from skfleet.util.redact import redact_url

#: The quarantine's columns: one row per refused value.
SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("partition", pa.string()),
        ("key", pa.string()),  # the row's key columns as a JSON object
        ("column", pa.string()),
        ("value", pa.string()),  # as text, cut to VALUE_CHARS characters
        ("reason", pa.string()),
    ]
)

#: Characters of a refused value kept in the quarantine.
VALUE_CHARS = 200

_TABLE_PARAM = re.compile(r"([?&]table=)([^&#]*)")


def check_bad_rows(value: str | None) -> tuple[str, str | None]:
    """``bad_rows=`` / ``--bad-rows`` as (mode, quarantine URL or None); None is ``error``."""
    if value is None:
        return "error", None
    try:
        return split_bad_rows(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def default_url(out: str) -> str:
    """Where the quarantine goes without ``=URL``: for a table (``?table=NAME``), the table
    ``NAME_quarantine`` beside it; for files, the folder ``<out>.quarantine/`` (Parquet parts)."""
    match = _TABLE_PARAM.search(out)
    if match:
        name = unquote(match[2])
        name = name[:-1] + '_quarantine"' if name.endswith('"') else name + "_quarantine"
        return out[: match.start(2)] + quote(name, safe='."') + out[match.end(2) :]
    return out.rstrip("/") + ".quarantine/"


def resolve_url(mode: str, given: str | None, out: str, recorded: Mapping | None) -> str | None:
    """The quarantine a run writes to (None unless ``mode`` is ``quarantine``). A resumed run
    (``recorded``: its options) keeps its own; a URL with a password is recorded masked, so it
    must be given again."""
    if mode != "quarantine":
        return None
    kept = (recorded or {}).get("quarantine")
    url = given or default_url(out)
    if kept is None or redact_url(url) == kept:
        return url
    if given is None and redact_url(kept) == kept and "***" not in kept:
        return kept
    raise UsageError(
        f"--resume: the run quarantines bad rows in {kept}; pass --bad-rows quarantine=URL "
        "with that URL"
    )


def open_for_run(url: str, state: Any, if_exists: str) -> Sink:
    """:func:`open_quarantine` for a run being started or resumed: a new run that cannot open
    it leaves no trace (its record is deleted), a resumed one records why it failed."""
    try:
        return open_quarantine(url, state.record.run_id, if_exists)
    except BaseException as exc:
        if state.record.attempts > 1:
            state.save("failed", str(exc))
        else:
            state.runs.delete(state.record.run_id)
        raise


def open_quarantine(url: str, run_id: str, if_exists: str) -> Sink:
    """Open (or, with the same ``run_id``, re-open) the quarantine; one line if it cannot be
    written, naming it (password masked) and ``--bad-rows``."""
    from skfleet.data.files import FileBackend
    from skfleet.data.files.formats import format_of_name
    from skfleet.data.registry import backend_for

    shown = redact_url(url)
    try:
        options: dict[str, Any] = {}
        if issubclass(backend_for(url), FileBackend) and format_of_name(url) is None:
            options["format"] = "parquet"
        sink = open_sink(url, **options)
        sink.open(SCHEMA, if_exists=if_exists, run_id=run_id)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SkfleetError(f"--bad-rows quarantine: cannot write {shown}: {reason}") from None
    except SkfleetError as exc:
        # The sinks' own messages name the place (password masked).
        try:
            error = type(exc)(f"--bad-rows quarantine: {exc}")
        except Exception:  # a subclass with another constructor
            error = SkfleetError(f"--bad-rows quarantine: {exc}")
        raise error from None
    return sink


def quarantine_rows(
    table: pa.Table, bad: Any, keys: Sequence[str], run_id: str, partition_id: str
) -> pa.Table:
    """The quarantine rows of one partition: one per refused value of ``bad`` (a
    ``rowcheck.BadRows`` over ``table``), in column then row order."""
    out: dict[str, list] = {name: [] for name in SCHEMA.names}
    for problem in bad.problems:
        rows = pa.array(problem.rows)
        key_rows = table.select(list(keys)).take(rows).to_pylist()
        values = table.column(problem.column).take(rows).to_pylist()
        for key, value in zip(key_rows, values, strict=True):
            out["key"].append(json.dumps(key, default=str, ensure_ascii=False))
            out["value"].append(None if value is None else str(value)[:VALUE_CHARS])
        out["column"] += [problem.column] * len(values)
        out["reason"] += [problem.reason] * len(values)
    n = len(out["key"])
    out["run_id"], out["partition"] = [run_id] * n, [partition_id] * n
    return pa.table(out, schema=SCHEMA)


def add_counts(total: Mapping[str, int], part: Mapping[str, int]) -> dict[str, int]:
    """Counts per reason of two sets of rows, by reason name.

    >>> add_counts({"unseen_level": 2}, {"unseen_level": 1, "type_refused": 4})
    {'type_refused': 4, 'unseen_level': 3}
    """
    merged = dict(total)
    for reason, n in part.items():
        merged[reason] = merged.get(reason, 0) + n
    return dict(sorted(merged.items()))


def describe(counts: Mapping[str, int]) -> str:
    """``12 bad rows (unparseable_number: 7, unseen_level: 5)`` for the CLI's result line.

    >>> describe({"unseen_level": 1})
    '1 bad value (unseen_level: 1)'
    """
    n = sum(counts.values())
    parts = ", ".join(f"{reason}: {count:,}" for reason, count in sorted(counts.items()))
    return f"{n:,} bad value{'s' if n != 1 else ''} ({parts})"


def abort_quietly(sink: Sink | None) -> None:
    """Drop the quarantine's staging after the run failed on its input (errors: nothing to do,
    the failure being reported is the one that matters)."""
    if sink is None:
        return
    with contextlib.suppress(Exception):
        sink.abort()
