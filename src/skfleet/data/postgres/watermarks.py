"""The PostgreSQL sink's watermarks of incremental runs (``--incremental``).

A watermark lives in the bookkeeping table ``skfleet_watermarks``
(:func:`~skfleet.data.postgres.ledger.store_watermark`) and is written in the transaction of the
commit that publishes the run's rows, so it never passes a row that is not committed.
:class:`PostgresWatermarks` is that part of :class:`~skfleet.data.postgres.sink.PostgresSink`.
"""

from __future__ import annotations

from skfleet.data.postgres.conn import connect_psycopg, driver_errors
from skfleet.data.postgres.ledger import store_watermark, stored_watermark
from skfleet.errors import SkfleetError


class PostgresWatermarks:
    """``watermark`` / ``set_watermark`` of the sink, and the store its commit calls."""

    def watermark(self, stream: str) -> dict | None:
        """The state stored for ``stream`` into this table (None: none, or no records yet)."""
        with connect_psycopg(self._target) as conn:
            try:
                if self._nsp is None:
                    self._nsp = self._resolve_schema(conn)[0]
                return stored_watermark(conn, self._target.bookkeeping, self._target_key, stream)
            except SkfleetError:
                raise
            except driver_errors() as exc:
                raise self._error(exc) from None

    def set_watermark(self, stream: str, state: dict) -> None:
        """Before :meth:`open`, so that an append stages its rows (see :meth:`_open_locked`)."""
        self._watermark = (stream, state)

    def _store_watermark(self, conn) -> None:
        """In the commit's transaction, under its advisory lock on the target."""
        store_watermark(
            conn,
            self._target.bookkeeping,
            self._target_key,
            self._watermark,
            self._run_id,
            replaced=self._mode != "append",
            where=self.display_name,
        )
