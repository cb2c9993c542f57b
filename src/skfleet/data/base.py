"""The two small interfaces every table backend implements: :class:`Source` and :class:`Sink`.

Data moves as ``pyarrow.Table`` / ``RecordBatch`` objects. A source *plans* its own partitions:
:meth:`Source.partitions` returns small picklable :class:`Partition` descriptions, and any process
holding the (picklable) source can :meth:`Source.read` one by itself, so the client never ships rows
to workers. A sink commits each partition *exactly once*: :meth:`Sink.write` of a partition id that
is already committed is a no-op, which is what makes retries and ``--resume`` safe.

Lifecycle of a sink, client side then worker side::

    sink = open_sink(url)                       # client
    sink.open(schema, if_exists="replace", run_id=run)
    ... workers: sink.write(partition.id, table)   # any process, any order, retried at will
    sink.commit()                               # client: publish (atomic swap / manifest)
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from skfleet.errors import DataError, MissingColumnError, TargetExistsError, UsageError
from skfleet.util.choices import IF_EXISTS_CHOICES
from skfleet.util.closing import Closing
from skfleet.util.redact import redact_url

IfExists = Literal["fail", "replace", "append"]
DEFAULT_BATCH_ROWS = 65_536

IF_EXISTS_FLAG = "--if-exists"

#: How a sink runs tasks on the caller's engine: ``run_tasks(fn, items)`` returns
#: ``[fn(item) for item in items]``, the calls spread over the workers (``fn`` a module-level
#: function, each item small and picklable).
RunTasks = Callable[[Callable[[Any], Any], list[Any]], list[Any]]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.=-]{1,200}$")


@dataclass(frozen=True)
class Partition:
    """A slice of a source that one worker reads by itself.

    ``id`` is stable for the same source and plan (it names the output part and the ledger row),
    ``rows_estimate`` guides scheduling, ``spec`` is backend-specific and must pickle small (a file
    path and row groups, a block range and a snapshot id, ...).

    >>> p = Partition("blocks-0-128", 10_000, {"start": 0, "stop": 128})
    >>> p.id
    'blocks-0-128'
    """

    id: str
    rows_estimate: int
    spec: Any = field(default=None, compare=True)

    def __post_init__(self) -> None:
        check_partition_id(self.id)


def check_if_exists(if_exists: str) -> str:
    """The one check of an ``if_exists`` value, for every sink, the store and the commands.

    >>> check_if_exists("append")
    'append'
    >>> check_if_exists("overwrite")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: --if-exists 'overwrite' is not one of fail, replace, append
    """
    if if_exists not in IF_EXISTS_CHOICES:
        raise UsageError(
            f"{IF_EXISTS_FLAG} {if_exists!r} is not one of {', '.join(IF_EXISTS_CHOICES)}"
        )
    return if_exists


def selected_columns(schema: pa.Schema, columns: Sequence[str] | None, where: str) -> list[str]:
    """The columns a read asks for: all of ``schema``'s for ``None``, a bare string as one
    column; one not in ``schema`` is refused, naming ``where`` and the columns it has.

    >>> schema = pa.schema([("id", pa.int64()), ("x", pa.float64())])
    >>> selected_columns(schema, None, "t.csv"), selected_columns(schema, "x", "t.csv")
    (['id', 'x'], ['x'])
    >>> selected_columns(schema, ["y"], "t.csv")
    Traceback (most recent call last):
    ...
    skfleet.errors.MissingColumnError: column 'y' is not in t.csv (it has: id, x)
    """
    if columns is None:
        return list(schema.names)
    if isinstance(columns, str):
        columns = [columns]
    names = set(schema.names)  # once: ``schema.names`` builds a list per access
    for name in columns:
        if name not in names:
            shown = ", ".join(schema.names[:20]) + (", ..." if len(schema) > 20 else "")
            raise MissingColumnError(f"column {name!r} is not in {where} (it has: {shown})")
    return list(columns)


def check_unique_columns(names: Sequence[str], where: str) -> None:
    """Refuse a table with two columns of one name, naming the column and ``where`` it is.

    >>> check_unique_columns(["id", "x", "id"], "a.csv")
    Traceback (most recent call last):
    ...
    skfleet.errors.DataError: a.csv has two columns named 'id'; give them distinct names
    """
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{where} has two columns named {name!r}; give them distinct names")
        seen.add(name)


def check_partition_id(partition_id: str) -> str:
    """Partition ids become file names and ledger keys: keep them to a safe alphabet.

    >>> check_partition_id("part-00001")
    'part-00001'
    """
    if not _SAFE_ID.match(partition_id):
        raise ValueError(f"partition id {partition_id!r} must match {_SAFE_ID.pattern}")
    return partition_id


def checked_run_id(run_id: str | None, new_length: int = 32) -> str:
    """``run_id``, checked to be usable in names and ledgers, or a new one of ``new_length``
    hex digits when None (what every sink's ``open`` starts with).

    >>> checked_run_id("r1"), len(checked_run_id(None, new_length=12))
    ('r1', 12)
    >>> checked_run_id("a b")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: run id 'a b' may only hold letters, digits and _.=-
    """
    run_id = run_id or uuid.uuid4().hex[:new_length]
    try:
        check_partition_id(run_id)
    except ValueError:
        raise UsageError(f"run id {run_id!r} may only hold letters, digits and _.=-") from None
    return run_id


class _AtURL:
    """A source or sink: where it is (``url``) and how messages name it."""

    def __init__(self, url: str):
        self.url = url

    @property
    def display_name(self) -> str:
        """The URL with any password masked: the only form fit for messages and metadata."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_name!r})"


class Source(_AtURL, Closing, ABC):
    """A table to read, in partitions; ``with source:`` closes it.

    Subclasses must stay picklable (hold a URL and options, connect lazily) so that a task can carry
    the source to a worker together with a :class:`Partition`.
    """

    @abstractmethod
    def schema(self) -> pa.Schema:
        """The Arrow schema of the rows this source yields."""

    @abstractmethod
    def count_estimate(self) -> int:
        """A cheap estimate of the row count (catalog statistics, file metadata)."""

    @abstractmethod
    def partitions(self, target_rows: int) -> list[Partition]:
        """Plan partitions of about ``target_rows`` rows that together cover every row once."""

    @abstractmethod
    def read(self, partition: Partition, columns: Sequence[str] | None = None) -> pa.Table:
        """Read one partition, optionally only ``columns`` (an unknown column is an error)."""

    def iter_batches(
        self,
        partition: Partition,
        columns: Sequence[str] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> Iterator[pa.RecordBatch]:
        """Stream one partition as record batches of at most ``batch_rows`` rows."""
        return self._batches(partition, columns, batch_rows)

    def _batches(self, partition: Partition, columns: Sequence[str] | None, batch_rows: int):
        """What :meth:`iter_batches` yields. This default reads the partition whole; a source
        that can stream overrides it (the public signature and its defaults stay here)."""
        yield from self.read(partition, columns).to_batches(max_chunksize=batch_rows)

    def read_all(
        self, columns: Sequence[str] | None = None, target_rows: int = 1_000_000
    ) -> pa.Table:
        """Read the whole source into one table (for data that fits in memory)."""
        tables = [self.read(p, columns) for p in self.partitions(target_rows)]
        if not tables:
            schema = self.schema()
            if columns is not None:
                schema = pa.schema([schema.field(c) for c in columns])
            return schema.empty_table()
        return pa.concat_tables(tables)

    def close(self) -> None:
        """Release client-side resources (an exported snapshot, a connection)."""
        return None

    def unique_keys(self, keys: Sequence[str]) -> bool:
        """Client side: True promises that no two rows this source yields (in the state its
        partitions read) share their values of the columns ``keys``, nulls counted as equal, so
        an output keyed by them cannot repeat a key and predict need not check it. The promise
        must come from something the backend enforces (a PostgreSQL primary key or unique
        index), never from a declaration it does not check. The default cannot tell: False."""
        return False

    # -- incremental reads (optional) -----------------------------------------------------------
    # A backend that can read only the rows above a watermark implements both; the defaults
    # refuse, so ``--incremental`` on such a source is one line naming it.

    def watermark_stats(self, column: str, lower: Any) -> WatermarkStats:
        """Client side: what ``column`` holds now (in the snapshot the partitions will read, where
        the backend has one): its maximum, and the rows at or below ``lower`` (None: no lower
        bound), above it, and null. ``column`` exists and is orderable (the caller checked)."""
        raise UsageError(f"{self.display_name} cannot be read incrementally (--incremental)")

    def restrict(self, column: str, lower: Any, upper: Any) -> None:
        """Client side, before :meth:`partitions`: from now on plan and read only the rows with
        ``lower < column <= upper`` (``lower`` None: no lower bound). The restriction travels
        with the pickled source, and the same bounds plan the same partitions again."""
        raise UsageError(f"{self.display_name} cannot be read incrementally (--incremental)")


def check_watermark_unmoved(
    current: dict[str, Any] | None, state: dict[str, Any], stream: str, where: str
) -> None:
    """The one check a sink's commit makes before storing ``state``: the watermark it found
    is still the one the run started from (``state["after_run"]``, if the state has that key).

    >>> check_watermark_unmoved({"run_id": "r1"}, {"after_run": "r1"}, "m src", "out/")
    >>> try:
    ...     check_watermark_unmoved({"run_id": "r2"}, {"after_run": "r1"}, "m src", "out/")
    ... except TargetExistsError as exc:
    ...     print(str(exc)[:43])
    run r2 moved the watermark of m src in out/
    """
    if "after_run" not in state:
        return
    found = None if current is None else current.get("run_id")
    if found != state["after_run"]:
        raise TargetExistsError(
            f"run {found} moved the watermark of {stream} in {where} while this run was "
            "scoring; nothing was published (start a new run)"
        )


@dataclass(frozen=True)
class WatermarkStats:
    """What :meth:`Source.watermark_stats` found: ``maximum`` (None if no row has a value),
    the rows with a value at or below the lower bound, above it, and null."""

    maximum: Any
    at_or_below: int
    above: int
    nulls: int


@dataclass(frozen=True)
class DuplicateKeys:
    """What :meth:`Sink.duplicate_keys` found among the rows a run wrote.

    ``rows``: rows whose key another row of the run already has (all rows minus distinct keys);
    ``example``: one such key, as ``id=5`` (None when there are none).
    """

    rows: int
    example: str | None = None


class Sink(_AtURL, ABC):
    """A table to write, partition by partition, each committed exactly once."""

    @abstractmethod
    def open(
        self, schema: pa.Schema, if_exists: IfExists = "fail", run_id: str | None = None
    ) -> None:
        """Prepare the target (client side). Raises TargetExistsError for ``fail`` on an existing
        target. Calling it again with the same ``run_id`` resumes that run."""

    @abstractmethod
    def write(self, partition_id: str, table: pa.Table) -> int:
        """Write one partition (any process). Returns rows written; 0 if it was already committed."""

    def write_stream(
        self,
        partition_id: str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        before_commit: Callable[[int], None] | None = None,
    ) -> int:
        """Write one partition given as record batches of ``schema``, exactly once like
        :meth:`write`; ``before_commit(rows)`` runs once every batch is in and before the
        partition commits (an error it raises writes nothing). Returns the rows written (0: the
        partition was committed before).

        This default gathers the batches and calls :meth:`write`; a sink that can take rows
        while they are still being produced overrides it (PostgreSQL's COPY does), so a
        partition is read, scored and written at once.
        """
        table = pa.Table.from_batches(list(batches), schema=schema)
        if before_commit is not None:
            before_commit(table.num_rows)
        return self.write(partition_id, table)

    @abstractmethod
    def committed(self) -> dict[str, int]:
        """Partitions of this run that are committed, with their row counts."""

    @abstractmethod
    def commit(self) -> None:
        """Publish the run's output (client side): atomic swap for replace, manifest for files."""

    @abstractmethod
    def abort(self) -> None:
        """Drop anything staged by this run; the target stays as it was before :meth:`open`."""

    # -- the duplicate-key check ----------------------------------------------------------------
    # Repeated keys are counted where the rows are (the database, the workers), so the client
    # holds nothing per row however large the table. The default is a backend that cannot.

    def track_keys(self, keys: Sequence[str]) -> None:
        """Client side, after :meth:`open` and before the tasks that :meth:`write` are made:
        have :meth:`write` keep what :meth:`duplicate_keys` needs about the columns ``keys``
        (the file sink writes a small run of key hashes next to each part; a PostgreSQL append
        also copies the keys to a table of the run). Every write of the run must see the same
        ``keys``; a resumed run calls it again. The default keeps nothing."""
        return None

    def duplicate_keys(self, keys: Sequence[str], run_tasks: RunTasks) -> DuplicateKeys | None:
        """Client side, before :meth:`commit`: count the rows of this run whose ``keys`` repeat
        those of another row of this run (rows the target held before the run are not
        compared), and name one such key. The work happens in the backend (one statement on
        the server) or in tasks given to ``run_tasks``, never in this process's memory.

        The default returns None: this backend cannot tell, so the caller can only check each
        partition by itself (and says so). A backend implements it over its staging (see the
        PostgreSQL sink for one SQL statement, the file sink for merge tasks).
        """
        return None

    # -- watermarks of incremental runs (optional) ----------------------------------------------
    # Stored by the sink so that a watermark moves in the same step that publishes the run's
    # rows, never ahead of them. The defaults refuse: such an output cannot take --incremental.

    def watermark(self, stream: str) -> dict[str, Any] | None:
        """Client side, opened or not: the watermark state last committed for ``stream`` (a
        string naming the model and source), or None. A ``replace`` commit forgets them all."""
        raise UsageError(f"{self.display_name} cannot keep a watermark (--incremental)")

    def set_watermark(self, stream: str, state: dict[str, Any]) -> None:
        """Client side, before :meth:`open` (a sink may stage differently for such a run: the
        PostgreSQL sink stages an append it would otherwise write straight into the target):
        :meth:`commit` stores ``state`` (JSON-safe) as the watermark of ``stream`` in the same
        atomic step that publishes the run's rows. Nothing is stored before that commit, nor
        by an aborted run; a resumed run sets it again. A ``state`` holding
        ``after_run`` replaces only the watermark that run stored (None: no watermark): the
        commit refuses, publishing nothing, when another run moved it meanwhile
        (:func:`check_watermark_unmoved`)."""
        raise UsageError(f"{self.display_name} cannot keep a watermark (--incremental)")
