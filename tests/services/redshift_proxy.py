"""A PostgreSQL v3 wire-protocol proxy that makes a real PostgreSQL answer like Amazon Redshift.

Every client connection gets its own backend connection on the real server; startup and
authentication pass through untouched (an SSL or GSSAPI request is answered ``N``). Messages are
relayed as they come, except:

* ``ParameterStatus server_version`` is reported as ``8.0.2``, as Redshift does;
* Query and Parse messages are looked at (``redshift_sql.classify``): statements Redshift refuses
  get Redshift's error, ``version()`` answers with a Redshift string, and ``UNLOAD`` /
  ``COPY ... FROM 's3://'`` are executed by the proxy *on the client's own backend connection*,
  between the client's statements, so they take part in the client's transaction: a COPY rolled
  back is not loaded, an UNLOAD sees the transaction's snapshot.

An error the proxy raises itself goes through the server too (``DO $$ ... RAISE ... $$``), so the
client's transaction is aborted exactly as a server error would abort it, and every
ReadyForQuery status the client sees is the server's own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import struct
from collections.abc import Callable

from tests.services.redshift_bulk import (
    StandInConfig,
    arrow_type,
    check_copy,
    check_unload,
    csv_to_table,
    read_copy_files,
    run_unload,
    select_expression,
    table_to_csv,
)
from tests.services.redshift_sql import SERVER_VERSION, Action, StatementError, classify

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
COPY_CHUNK = 1 << 20
_HEADER = struct.Struct("!cI").unpack_from


def frame(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def error_response(code: str, message: str) -> bytes:
    fields = b"".join(
        tag + value.encode() + b"\0"
        for tag, value in ((b"S", "ERROR"), (b"V", "ERROR"), (b"C", code), (b"M", message))
    )
    return frame(b"E", fields + b"\0")


def error_fields(body: bytes) -> dict[str, str]:
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


def raise_sql(code: str, message: str) -> str:
    """A statement that makes the server raise ``message`` with SQLSTATE ``code``."""
    quoted = message.replace("'", "''")
    return (
        "DO $standin$BEGIN RAISE EXCEPTION USING ERRCODE = '"
        + code
        + "', MESSAGE = '"
        + quoted
        + "'; END$standin$"
    )


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readexactly(5)
    length = struct.unpack("!I", head[1:])[0]
    return head[:1], await reader.readexactly(length - 4)


class _Result:
    def __init__(self):
        self.columns: list[tuple[str, int, int]] = []
        self.rows: list[list[bytes | None]] = []
        self.error: bytes | None = None  # the ErrorResponse body
        self.status = b"I"
        self.copy_data: list[bytes] = []
        self.tag = b""
        self.notice: str | None = None


class _Inbox:
    """The server's answers to statements the proxy sends itself (filled a chunk at a time)."""

    def __init__(self):
        self.messages: collections.deque = collections.deque()
        self.ready = asyncio.Event()
        self.copy_data: list[bytes] = []  # COPY TO STDOUT sends one message per row: kept apart

    def push(self, kind: bytes, body: bytes) -> None:
        if kind == b"d":
            self.copy_data.append(body)
        else:
            self.messages.append((kind, body))

    def wake(self) -> None:
        if self.messages:
            self.ready.set()

    async def get(self) -> tuple[bytes, bytes]:
        while not self.messages:
            self.ready.clear()
            await self.ready.wait()
        return self.messages.popleft()


class Session:
    """One client connection and its backend connection."""

    def __init__(self, proxy: RedshiftProxy, client_r, client_w, server_r, server_w, user: str):
        self.proxy = proxy
        self.client_r, self.client_w = client_r, client_w
        self.server_r, self.server_w = server_r, server_w
        self.user = user
        self.pending = 0  # Query/Sync messages whose ReadyForQuery has not come back
        self.idle = asyncio.Event()
        self.idle.set()
        self.inbox: _Inbox | None = None  # server messages go here while the proxy talks
        self.swallowed: list[bytes] | None = None  # message kinds of an intercepted batch
        self.swallowed_action: Action | None = None

    # -- relaying --------------------------------------------------------------------------------
    async def server_to_client(self) -> None:
        """Relay the server's messages in chunks (a result or a COPY is one message per row:
        parsing only the 5-byte headers keeps the proxy out of the way)."""
        buf = bytearray()
        try:
            while True:
                data = await self.server_r.read(1 << 18)
                if not data:
                    break
                buf += data
                out, pos, size, inbox = bytearray(), 0, len(buf), self.inbox
                while size - pos >= 5:
                    kind, length = _HEADER(buf, pos)
                    end = pos + 1 + length
                    if end > size:
                        break
                    if inbox is not None:
                        if kind == b"d":  # a COPY row: the hot path of an UNLOAD
                            inbox.copy_data.append(buf[pos + 5 : end])
                        else:
                            inbox.push(kind, bytes(buf[pos + 5 : end]))
                    elif kind == b"S" and buf[pos + 5 : end].startswith(b"server_version\0"):
                        out += frame(b"S", b"server_version\0" + SERVER_VERSION.encode() + b"\0")
                    else:
                        out += buf[pos:end]
                        if kind == b"Z":
                            self.pending -= 1
                            if self.pending <= 0:
                                self.pending = 0
                                self.idle.set()
                    pos = end
                del buf[:pos]
                if self.inbox is not None:
                    self.inbox.wake()
                if out:
                    self.client_w.write(out)
                    await self.client_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                self.client_w.close()

    def _forward(self, kind: bytes, body: bytes) -> None:
        if kind in (b"Q", b"S"):
            self.pending += 1
            self.idle.clear()
        self.server_w.write(frame(kind, body))

    async def client_to_server(self) -> None:
        try:
            while True:
                kind, body = await read_message(self.client_r)
                if kind == b"X":
                    self.server_w.write(frame(kind, body))
                    break
                if self.swallowed is not None:
                    self.swallowed.append(kind)
                    if kind == b"S":
                        action, kinds = self.swallowed_action, self.swallowed
                        self.swallowed = self.swallowed_action = None
                        await self.perform(action, kinds)
                    continue
                if kind == b"Q":
                    action = classify(body[:-1].decode())
                    if action.kind == "pass":
                        self._forward(kind, action.text.encode() + b"\0")
                    else:
                        await self.perform(action, None)
                elif kind == b"P":
                    name, rest = body.split(b"\0", 1)
                    query, tail = rest.split(b"\0", 1)
                    action = classify(query.decode())
                    if action.kind == "pass":
                        self._forward(kind, name + b"\0" + action.text.encode() + b"\0" + tail)
                    else:
                        self.swallowed, self.swallowed_action = [kind], action
                else:
                    self._forward(kind, body)
                await self.server_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                self.server_w.close()

    # -- talking to the server on the client's behalf --------------------------------------------
    async def _next(self) -> tuple[bytes, bytes]:
        return await self.inbox.get()

    async def query(self, sql: str) -> _Result:
        """Run one simple-protocol statement on the backend and collect what it answers."""
        self.server_w.write(frame(b"Q", sql.encode() + b"\0"))
        await self.server_w.drain()
        result = _Result()
        while True:
            kind, body = await self._next()
            if kind == b"T":
                result.columns = _row_description(body)
            elif kind == b"D":
                result.rows.append(_data_row(body))
            elif kind == b"E":
                result.error = body
            elif kind == b"C":
                result.tag = body[:-1]
            elif kind == b"G":  # COPY FROM STDIN we did not ask for: refuse it
                self.server_w.write(frame(b"f", b"unexpected COPY\0"))
                await self.server_w.drain()
            elif kind == b"Z":
                result.status = body
                result.copy_data, self.inbox.copy_data = self.inbox.copy_data, []
                return result

    async def copy_in(self, sql: str, data: bytes) -> _Result:
        """``COPY ... FROM STDIN`` on the backend, feeding it ``data``."""
        self.server_w.write(frame(b"Q", sql.encode() + b"\0"))
        await self.server_w.drain()
        result = _Result()
        while True:
            kind, body = await self._next()
            if kind == b"G":
                for offset in range(0, len(data), COPY_CHUNK):
                    self.server_w.write(frame(b"d", data[offset : offset + COPY_CHUNK]))
                    await self.server_w.drain()
                self.server_w.write(frame(b"c", b""))
                await self.server_w.drain()
            elif kind == b"E":
                result.error = body
            elif kind == b"C":
                result.tag = body[:-1]
            elif kind == b"Z":
                result.status = body
                return result

    async def perform(self, action: Action, extended: list[bytes] | None) -> None:
        """Answer an intercepted statement: refuse it, or run UNLOAD / COPY. ``extended`` lists
        the message kinds of an intercepted extended-protocol batch (ending with Sync)."""
        await self.idle.wait()
        self.inbox = _Inbox()
        try:
            try:
                if action.kind == "refuse":
                    raise action.error
                if action.kind == "unload":
                    outcome = await self._unload(action.statement)
                else:
                    outcome = await self._copy(action.statement)
            except StatementError as exc:
                outcome = await self.query(raise_sql(exc.code, exc.message))
        finally:
            self.inbox = None
        out = []
        if outcome.error is not None:
            fields = error_fields(outcome.error)
            out.append(error_response(fields.get("C", "XX000"), fields.get("M", "error")))
        else:
            out.extend(_success_frames(extended, outcome))
        out.append(frame(b"Z", outcome.status))
        self.client_w.write(b"".join(out))
        await self.client_w.drain()

    async def _unload(self, unload) -> _Result:
        check_unload(unload)
        probe = await self.query(f"SELECT * FROM (\n{unload.query}\n) AS _standin_q LIMIT 0")
        if probe.error is not None:
            return probe
        exprs = ", ".join(select_expression(name, oid) for name, oid, _ in probe.columns)
        rows = await self.query(
            f"COPY (SELECT {exprs} FROM (\n{unload.query}\n) AS _standin_q) TO STDOUT (FORMAT csv)"
        )
        if rows.error is not None:
            return rows
        names = [name for name, _, _ in probe.columns]
        types = [arrow_type(oid, typmod) for _, oid, typmod in probe.columns]
        loop = asyncio.get_running_loop()
        data = b"".join(rows.copy_data)

        def write() -> int:
            return run_unload(
                self.proxy.config, unload, csv_to_table(data, names, types), self.user
            )

        await loop.run_in_executor(None, write)
        rows.tag = b"UNLOAD"
        return rows

    async def _copy(self, copy) -> _Result:
        check_copy(copy)
        target = copy.table.replace("'", "''")
        described = await self.query(
            "SELECT a.attname FROM pg_catalog.pg_attribute a "
            f"WHERE a.attrelid = '{target}'::regclass AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum"
        )
        if described.error is not None:
            return described
        columns = copy.columns or [
            '"' + row[0].decode().replace('"', '""') + '"' for row in described.rows
        ]
        loop = asyncio.get_running_loop()
        files = await loop.run_in_executor(
            None, read_copy_files, self.proxy.config, copy, self.user
        )
        for url, table in files:
            if table.num_columns != len(columns):
                raise StatementError(
                    "XX000",
                    f"Spectrum Scan Error: the file {url} has {table.num_columns} columns but "
                    f"COPY loads {len(columns)} (columnar COPY matches columns by position)",
                )
        data = b"".join(
            await loop.run_in_executor(None, lambda: [table_to_csv(t) for _, t in files])
        )
        rows = sum(t.num_rows for _, t in files)
        loaded = await self.copy_in(
            f"COPY {copy.table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)", data
        )
        if loaded.error is None:
            name = copy.table.split(".")[-1].strip('"')
            loaded.notice = (
                f"Load into table '{name}' completed, {rows} record(s) loaded successfully."
            )
            loaded.tag = b"COPY"
        return loaded


def _success_frames(extended: list[bytes] | None, outcome: _Result) -> list[bytes]:
    out = []
    notice = outcome.notice
    if notice:
        fields = b"SINFO\0VINFO\0C00000\0M" + notice.encode() + b"\0\0"
        out.append(frame(b"N", fields))
    complete = frame(b"C", outcome.tag + b"\0")
    if extended is None:
        return [*out, complete]
    for kind in extended:
        if kind == b"P":
            out.append(frame(b"1", b""))
        elif kind == b"B":
            out.append(frame(b"2", b""))
        elif kind == b"D":
            out.append(frame(b"n", b""))
        elif kind == b"E":
            out.append(complete)
        elif kind == b"C":
            out.append(frame(b"3", b""))
    return out


def _row_description(body: bytes) -> list[tuple[str, int, int]]:
    count = struct.unpack("!H", body[:2])[0]
    pos, columns = 2, []
    for _ in range(count):
        end = body.index(b"\0", pos)
        name = body[pos:end].decode()
        _, _, oid, _, typmod, _ = struct.unpack("!IHIhiH", body[end + 1 : end + 19])
        columns.append((name, oid, typmod))
        pos = end + 19
    return columns


def _data_row(body: bytes) -> list[bytes | None]:
    count = struct.unpack("!H", body[:2])[0]
    pos, values = 2, []
    for _ in range(count):
        length = struct.unpack("!i", body[pos : pos + 4])[0]
        pos += 4
        if length < 0:
            values.append(None)
        else:
            values.append(body[pos : pos + length])
            pos += length
    return values


class RedshiftProxy:
    """Listens on ``host:port`` and relays to the PostgreSQL server at ``upstream``."""

    def __init__(self, upstream: tuple[str, int], config: StandInConfig):
        self.upstream = upstream
        self.config = config
        self.server: asyncio.base_events.Server | None = None
        self.sessions: set[asyncio.Task] = set()
        self.on_statement: Callable[[str, str], None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.sessions):
            task.cancel()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _serve(self, client_r, client_w) -> None:
        task = asyncio.current_task()
        self.sessions.add(task)
        server_w = None
        try:
            startup = await self._startup(client_r, client_w)
            if startup is None:
                return
            code, packet = startup
            server_r, server_w = await asyncio.open_connection(*self.upstream)
            server_w.write(packet)
            await server_w.drain()
            if code == CANCEL_REQUEST:
                return
            user = _startup_params(packet).get("user", "")
            session = Session(self, client_r, client_w, server_r, server_w, user)
            await asyncio.gather(session.server_to_client(), session.client_to_server())
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.sessions.discard(task)
            for writer in (client_w, server_w):
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()

    async def _startup(self, client_r, client_w) -> tuple[int, bytes] | None:
        while True:
            head = await client_r.readexactly(8)
            length, code = struct.unpack("!II", head)
            rest = await client_r.readexactly(length - 8)
            if code in (SSL_REQUEST, GSS_REQUEST):
                client_w.write(b"N")  # no TLS: the client goes on in plain text (or gives up)
                await client_w.drain()
                continue
            return code, head + rest


def _startup_params(packet: bytes) -> dict[str, str]:
    parts = packet[8:].split(b"\0")
    return {
        parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]
    }
