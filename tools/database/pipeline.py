"""Layer 1: the one way tools send statements to PostgreSQL. A few statements leave in one write and their
results are read back in one pass.

The rule for tools: statements go through :func:`run_batch` (parameters bound, typed values back) or
:func:`run_script` (one simple-protocol Query message, for what the extended protocol cannot carry: an
``EXPLAIN (GENERIC_PLAN)`` whose ``$1`` must stay unbound; text values back). A plain
``conn.execute(sql, params, prepare=False)`` is allowed only for a single one-off statement on a
connection whose transaction psycopg manages anyway (it is one round trip already); never a
``conn.pipeline()``, a cursor loop or a second route to libpq. Every statement's text is a file under
``sql/`` (see :mod:`.queries`). psycopg is used through its documented API (``conn.pgconn`` and
``psycopg.pq``); the two pieces without one are in :mod:`.psycopg_adapter`.

psycopg's ``pipeline()`` flushes after each ``execute``: three statements leave as five writes (each
statement, the Sync, a flush request), and the server wakes up and reads each one. When the machine is
busy (an MCP client, the server and PostgreSQL sharing two cores), every wake-up costs about as much as
a small statement (bench/bench_scoped_query.py). Here libpq queues the statements in pipeline mode and
they leave in one write with one Sync, so they run in one implicit transaction and their results come
back together. Parameters are adapted and rows loaded as a cursor would (:mod:`.psycopg_adapter`), so
values have the same types as through a cursor.

The connection must be the caller's alone (a pooled one) and idle, or, with ``join_transaction``, inside
a transaction the caller opened (the statements then run in it; a cut short exchange then closes it).
If the exchange is cut short (the call is cancelled because its client left, the byte budget or the
deadline is reached), the running statement is cancelled in PostgreSQL (a cancel request: closing the
socket alone would leave the backend running its query until it next writes, while the pool opened
another connection), and what is still on its way is read and dropped until the connection is idle
again, within ``DRAIN_S``; only then does the pool get it back. A connection that does not come back
idle in time, or whose state is unknown (the reset failed, COPY), is closed, and the pool drops a
closed connection.

Bounds, with ``max_bytes`` (memory) and ``timeout`` (time), both enforced while the results arrive:

* Rows are streamed (libpq's chunked rows mode, ``_CHUNK_ROWS`` at a time), and reading stops once the
  batch has received more than ``max_bytes``: the statement being read comes back ``cut`` with the rows
  that arrived in time, the rest ``aborted``, and the connection is closed (what is still on its way
  is cancelled and drained, as above). Rows past ``max_rows`` are received and dropped, never loaded.
  Bytes received are counted at the socket, so a single value larger than the budget is not awaited
  whole either: libpq holds a row until it is complete, and a 100 MB cell would otherwise sit in its
  buffer (and again as a PGresult and as a Python str) before anything could look at it. On TCP (Linux)
  the count is the kernel's own (``tcpi_bytes_received``); elsewhere it is the socket queue before and
  after each read plus the bytes of the rows loaded, which can miss what arrives during one read (a few
  MB on a local Unix socket: bench/bench_scoped_memory.py). Closing costs the next call a new connection
  (bench/figures.md); it happens only past the budget.
* ``timeout`` (seconds) bounds the whole exchange on the client: PostgreSQL checks its statement
  timeout only between steps, and one step can be long (concatenating a 500 MB string, freeing a
  large hash table), so a query could end seconds after its timeout. Past ``timeout`` the statement
  being read gets a ``QueryCanceled`` error, a cancel request is sent, and the connection is drained
  (or closed past ``DRAIN_S``: the server ends the statement at its next interrupt check).
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import psycopg
from psycopg import OperationalError, pq
from psycopg.errors import QueryCanceled

from .psycopg_adapter import Adapter, error_from_result

#: Rows libpq hands over at a time while streaming: large enough that a 100-row result is one PGresult,
#: small enough that the rows held before the byte count is checked stay few.
_CHUNK_ROWS = 100
#: How long a batch cut short waits, after its cancel request, for the connection to be idle again before
#: closing it instead.
DRAIN_S = 2.0
#: The same past the client's deadline, shorter: the caller is waiting, and a statement that ran past its
#: timeout is in a step PostgreSQL cannot interrupt (it would not answer the cancel request sooner).
DEADLINE_DRAIN_S = 0.25
#: Most bytes read while draining: past it the connection is closed instead (a large row on its way would
#: otherwise be held whole by libpq; the backend ends anyway, on the cancel or on the closed socket).
DRAIN_MAX_BYTES = 1 << 20


class Rows(list):
    """A statement's rows; ``cut`` is True when reading stopped at the byte budget (rows are missing)."""

    cut: bool = False


@dataclass
class StatementResult:
    """One statement's outcome: its columns (name, type oid) and rows, or the error it raised."""

    columns: list[tuple[str, int]] = field(default_factory=list)
    rows: Rows = field(default_factory=Rows)
    #: The statement's own error (a ``psycopg.errors`` class, with its diagnostics).
    error: psycopg.Error | None = None
    #: Not run: an earlier statement of the batch failed, which aborted the rest.
    aborted: bool = False

    @property
    def cut(self) -> bool:
        """Reading stopped at ``max_bytes``: the rows are the leading ones, the connection is closed."""
        return self.rows.cut


async def run_batch(conn, statements: Sequence[tuple[str, Sequence[Any]]], *, max_rows: int | None = None,
                    max_bytes: int | None = None, timeout: float | None = None,
                    reset: Sequence[str] = (), join_transaction: bool = False) -> list[StatementResult]:
    """Run ``statements`` ((SQL with $1 placeholders, params), ...) in one implicit transaction.

    Nothing is prepared server-side. At most ``max_rows`` rows of each result are loaded. A statement
    that fails is reported in its result, and the ones after it come back ``aborted``; a lost
    connection raises ``psycopg.OperationalError``. With ``max_bytes``, rows are streamed and reading
    stops past that many bytes received (``cut``); past ``timeout`` seconds the running statement fails
    with ``QueryCanceled``. Either cancels the statement in PostgreSQL and drains the connection (see the
    module docstring).

    ``reset``: statements (no parameters) sent in the same write after a Sync of their own, so they run
    whatever became of ``statements`` (a failed statement aborts only the rest of its own segment): the
    connection goes back to the pool reset. Their results are not returned; if one fails, the connection
    is closed, since its state is then unknown.

    ``join_transaction``: a connection inside a transaction the caller opened is accepted too, and the
    statements run in that transaction (without it, only an idle connection is).
    """
    pgconn = conn.pgconn
    before = pgconn.transaction_status
    if conn.closed:
        raise OperationalError("the connection is closed")
    if before != pq.TransactionStatus.IDLE and not (
            join_transaction and not reset and before in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)):
        raise ValueError("run_batch needs an idle connection (or join_transaction=True, without reset)")
    encoding = conn.info.encoding
    adapter = Adapter(conn)
    # Adapted before anything is sent: a value psycopg cannot adapt raises here, the connection untouched.
    messages: list[tuple[bytes, list[Any] | None, list[int] | None, list[Any] | None]] = []
    for sql, params in statements:
        if params:
            messages.append((sql.encode(encoding), *adapter.dump(params)))
        else:
            messages.append((sql.encode(encoding), None, None, None))
    results: list[StatementResult] = []
    meter = _Meter(pgconn.socket) if max_bytes is not None else None
    byte_cap = math.inf if max_bytes is None else max_bytes  # compared only when there is a meter
    current = _Collector(adapter, encoding, max_rows, meter)
    finished = stopped = timed_out = False
    syncs = 0  # Syncs sent whose result has not been read yet
    pgconn.enter_pipeline_mode()
    try:
        for sql_bytes, values, types, formats in messages:
            pgconn.send_query_params(sql_bytes, values, param_types=types, param_formats=formats)
        pgconn.pipeline_sync()
        syncs = 1
        for sql in reset:
            pgconn.send_query_params(sql.encode(encoding), None)
        if reset:
            pgconn.pipeline_sync()
            syncs = 2
        reset_failed = False
        if meter is not None:
            _stream(pgconn)  # the first statement's rows; the others' as their turn comes
        with anyio.move_on_after(math.inf if timeout is None else timeout) as deadline:
            while pgconn.flush():  # 1: some bytes are still to go
                await anyio.wait_writable(pgconn.socket)
            while True:
                while pgconn.is_busy():
                    await anyio.wait_readable(pgconn.socket)
                    if meter is None:
                        pgconn.consume_input()
                    elif meter.consume(pgconn) > byte_cap:
                        stopped = True
                        break
                if stopped:
                    break
                res = pgconn.get_result()
                if len(results) == len(statements) and (res is None or res.status != pq.ExecStatus.PIPELINE_SYNC):
                    # the reset segment: its results are not returned, only whether one failed
                    reset_failed = reset_failed or (res is not None and res.status in (
                        pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.PIPELINE_ABORTED))
                    continue
                if res is None:  # the end of one statement's results
                    results.append(current.result())
                    current = _Collector(adapter, encoding, max_rows, meter)
                    if meter is not None and len(results) < len(statements):
                        _stream(pgconn)
                elif res.status == pq.ExecStatus.PIPELINE_SYNC:
                    syncs -= 1
                    if not syncs:
                        break
                elif res.status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH):
                    # it would wait for data we never send or read: give the connection up
                    raise OperationalError("COPY is not supported in a batch")
                else:
                    current.add(res)
                    if meter is not None and meter.received > byte_cap:
                        stopped = True
                        break
        if deadline.cancelled_caught or stopped:
            timed_out = not stopped
            _give_up(results, current, len(statements), timed_out=timed_out)
            return results  # the statement is cancelled and the connection drained (or closed) below
        pgconn.exit_pipeline_mode()
        finished = not reset_failed
        syncs = 0
    finally:
        if not finished:
            drain = DEADLINE_DRAIN_S if timed_out else DRAIN_S
            if not (syncs and await cancel_and_drain(conn, syncs, reset_segment=bool(reset), timeout=drain,
                                                     expect=before)):
                pgconn.finish()  # state unknown, or not idle in time: closed, so the pool drops it
    if len(results) != len(statements):
        raise OperationalError(f"expected {len(statements)} results from the server, got {len(results)}")
    return results


async def cancel_and_drain(conn, syncs: int, *, reset_segment: bool, timeout: float = DRAIN_S,
                           expect: Any = None) -> bool:
    """Cancel what the connection runs and read what is still coming until ``syncs`` Syncs are through;
    True if the connection is then back in transaction status ``expect`` (idle by default) with its reset
    segment (the last one, if ``reset_segment``) run without error. Shielded from cancellation, bounded
    by ``timeout`` and ``DRAIN_MAX_BYTES``; never raises."""
    if expect is None:
        expect = pq.TransactionStatus.IDLE
    pgconn = conn.pgconn

    async def read(next_result: Callable[[], Awaitable[Any]]) -> bool:
        left, clean = syncs, True
        while left:
            res = await next_result()
            if res is None:
                continue
            status = res.status
            if status == pq.ExecStatus.PIPELINE_SYNC:
                left -= 1
            elif status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH):
                return False
            elif reset_segment and left == 1 and status in (pq.ExecStatus.FATAL_ERROR,
                                                            pq.ExecStatus.PIPELINE_ABORTED):
                clean = False  # the reset itself failed (or the cancel hit it): state unknown
        pgconn.exit_pipeline_mode()
        return clean and pgconn.transaction_status == expect

    return await _drained(conn, timeout, read)


class _DrainLimit(Exception):
    """More than ``DRAIN_MAX_BYTES`` came back while draining: closing the connection is cheaper."""


async def _drained(conn, timeout: float, read: Callable[[Callable[[], Awaitable[Any]]], Awaitable[bool]]) -> bool:
    """Cancel what ``conn`` runs, then let ``read`` take what is still coming, one result at a time from
    the function it is given; its answer, or False on any failure. Shielded from cancellation, bounded by
    ``timeout`` and ``DRAIN_MAX_BYTES``; never raises."""
    pgconn = conn.pgconn
    with anyio.CancelScope(shield=True), anyio.move_on_after(timeout):
        try:
            meter = _Meter(pgconn.socket)
            await conn.cancel_safe(timeout=timeout)
            while pgconn.flush():
                await anyio.wait_writable(pgconn.socket)

            async def next_result() -> Any:
                while pgconn.is_busy():
                    await anyio.wait_readable(pgconn.socket)
                    if meter.consume(pgconn) > DRAIN_MAX_BYTES:
                        raise _DrainLimit
                return pgconn.get_result()

            return await read(next_result)
        except Exception:  # noqa: BLE001 (any failure, _DrainLimit included: the connection is closed instead)
            return False
    return False


async def run_script(conn, statements: Sequence[str]) -> list[StatementResult]:
    """Send ``statements`` (no parameters: values are quoted in by the caller, e.g. with
    ``psycopg.AsyncClientCursor.mogrify``) as one simple-protocol Query message: one round trip.

    For what the extended protocol of :func:`run_batch` cannot carry: there the server reads every ``$1``
    as a parameter to bind, and ``EXPLAIN (GENERIC_PLAN)`` must see it unbound. The statements run in
    order (in an implicit transaction unless they open one), the server stops at the first error: that
    statement's result has ``error``, the ones after it are ``aborted``. Values come back as the server
    sent them, text (``str``, or None for NULL). They are joined with newlines around each semicolon, so a
    statement ending in a ``--`` comment cannot swallow the next one. The connection may be idle or inside
    a transaction. If the call is cancelled, the statement is cancelled in PostgreSQL and the connection
    drained (or closed, as :func:`run_batch`).
    """
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    before = pgconn.transaction_status
    pgconn.send_query("\n;\n".join(statements).encode(encoding))
    results: list[StatementResult] = []
    failed = finished = False
    try:
        while pgconn.flush():  # 1: some bytes are still to go
            await anyio.wait_writable(pgconn.socket)
        while True:
            while pgconn.is_busy():
                await anyio.wait_readable(pgconn.socket)
                pgconn.consume_input()
            res = pgconn.get_result()
            if res is None:  # the server is ready for the next query
                break
            if res.status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH):
                raise OperationalError("COPY is not supported in a script")
            out = StatementResult()
            if res.status == pq.ExecStatus.FATAL_ERROR:
                out.error, failed = error_from_result(res, encoding), True
            else:
                out.columns = [(res.fname(i).decode(encoding), res.ftype(i)) for i in range(res.nfields)]
                out.rows.extend([None if (v := res.get_value(r, c)) is None else bytes(v).decode(encoding)
                                 for c in range(res.nfields)] for r in range(res.ntuples))
                res.clear()
            results.append(out)
        finished = True
    finally:
        if not finished and not await _cancel_and_drain_query(conn, before):
            pgconn.finish()  # not idle again in time: closed, so the pool drops it
    if failed:
        results.extend(StatementResult(aborted=True) for _ in range(len(statements) - len(results)))
    if len(results) != len(statements):
        raise OperationalError(f"expected {len(statements)} results from the server, got {len(results)}")
    return results


async def _cancel_and_drain_query(conn, expect: Any, timeout: float = DRAIN_S) -> bool:
    """:func:`cancel_and_drain` for a simple-protocol Query: read until libpq has no result left; True
    if the connection is then back in transaction status ``expect``."""

    async def read(next_result: Callable[[], Awaitable[Any]]) -> bool:
        while await next_result() is not None:
            pass
        return conn.pgconn.transaction_status == expect

    return await _drained(conn, timeout, read)


def _stream(pgconn) -> None:
    """Have libpq hand over the next statement's rows in chunks (a statement the pipeline aborted, or
    one whose results have begun, cannot change mode: nothing to stream then)."""
    try:  # noqa: SIM105 - no context manager: this runs for every statement of every batch
        pgconn.set_chunked_rows_mode(_CHUNK_ROWS)
    except psycopg.OperationalError:
        pass


def _give_up(results: list, current: _Collector, total: int, *, timed_out: bool) -> None:
    """Stop reading: the running statement keeps its rows (cut) or fails (timed out), the rest never ran."""
    if len(results) == total:  # every statement's result is in: it was the reset that was still running
        return
    out = current.result()
    if timed_out:
        out.error = out.error or QueryCanceled("the query ran past its time limit; the client stopped waiting")
    else:
        out.rows.cut = True
    results.append(out)
    results.extend(StatementResult(aborted=True) for _ in range(total - len(results)))


class _Collector:
    """One statement's results as they arrive: rows loaded up to ``max_rows``, then dropped."""

    def __init__(self, adapter: Adapter, encoding: str, max_rows: int | None, meter: _Meter | None) -> None:
        self.adapter, self.encoding, self.max_rows, self.meter = adapter, encoding, max_rows, meter
        self.out = StatementResult()

    def add(self, res) -> None:
        out = self.out
        status = res.status
        if status == pq.ExecStatus.PIPELINE_ABORTED:
            out.aborted = True
        elif status == pq.ExecStatus.FATAL_ERROR:
            out.error = error_from_result(res, encoding=self.encoding)
        elif status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.TUPLES_CHUNK, pq.ExecStatus.SINGLE_TUPLE):
            if not out.columns and res.nfields:
                out.columns = [(res.fname(i).decode(self.encoding), res.ftype(i)) for i in range(res.nfields)]
            room = res.ntuples if self.max_rows is None else min(res.ntuples, self.max_rows - len(out.rows))
            if room > 0:
                rows = self.adapter.load(res, room)
                out.rows.extend(rows)
                if self.meter is not None and not self.meter.exact:  # a floor for an inexact count
                    self.meter.loaded += sum(len(v) if isinstance(v, (str, bytes)) else 8 for row in rows for v in row)
            res.clear()  # the rows are Python objects now (an error's result stays: its diagnostics read it)

    def result(self) -> StatementResult:
        return self.out


class _Meter:
    """Bytes received on the connection's socket since the batch began, counted as libpq reads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.count = 0  # counted at the socket
        self.loaded = 0  # bytes of the values loaded: a floor where the socket count may miss some
        self.exact = False  # a TCP socket: the kernel's own count
        self._base = 0
        if hasattr(socket, "TCP_INFO"):
            try:
                self._base = _tcp_received(fd)
                self.exact = True
            except (OSError, struct.error):  # not TCP (a Unix socket), or an older kernel
                pass

    @property
    def received(self) -> int:
        return max(self.count, self.loaded)

    def _queued(self) -> int:
        try:
            import array
            import fcntl
            import termios

            buf = array.array("i", [0])
            fcntl.ioctl(self.fd, termios.FIONREAD, buf)
            return buf[0]
        except (ImportError, OSError):
            return 0

    def consume(self, pgconn) -> int:
        """``pgconn.consume_input()``; return the bytes received so far."""
        if self.exact:
            pgconn.consume_input()
            self.count = _tcp_received(self.fd) - self._base
            return self.count
        before = self._queued()
        pgconn.consume_input()
        self.count += max(0, before - self._queued())
        return self.received


def _tcp_received(fd: int) -> int:
    """``tcpi_bytes_received`` of the TCP socket ``fd`` (struct tcp_info, Linux >= 4.1: a u64 at offset 128).

    Read through a socket object that borrows libpq's descriptor, given its family, type and protocol: no
    dup (CPython still checks the descriptor with one getsockname), and it is detached before it can ever
    close the descriptor. (libc's getsockopt through ctypes spares that call, and measured no faster.)"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=fd)
    try:
        return struct.unpack_from("=Q", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 136), 128)[0]
    finally:
        sock.detach()
