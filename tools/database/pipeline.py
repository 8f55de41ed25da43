"""Layer 1: a few statements sent in one write, their results read back in one pass.

psycopg's ``pipeline()`` flushes after each ``execute``: three statements leave as five writes (each
statement, the Sync, a flush request), and the server wakes up and reads each one. When the machine is
busy (an MCP client, the server and PostgreSQL sharing two cores), every wake-up costs about as much as
a small statement (bench/bench_scoped_query.py). Here libpq queues the statements in pipeline mode and
they leave in one write with one Sync, so they run in one implicit transaction and their results come
back together. psycopg's Transformer adapts the parameters and loads the rows, so values have the same
types as through a cursor.

The connection must be the caller's alone (a pooled one) and idle. If anything interrupts the exchange
(the connection drops, the call is cancelled), the connection is closed: it could not be reused in a
known state, and the pool drops a closed connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio


@dataclass
class StatementResult:
    """One statement's outcome: its columns (name, type oid) and rows, or the error it raised."""

    columns: list[tuple[str, int]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: The statement's own error (a ``psycopg.errors`` class, with its diagnostics).
    error: Exception | None = None
    #: Not run: an earlier statement of the batch failed, which aborted the rest.
    aborted: bool = False


async def run_batch(conn, statements: Sequence[tuple[str, Sequence[Any]]], *,
                    max_rows: int | None = None) -> list[StatementResult]:
    """Run ``statements`` ((SQL with $1 placeholders, params), ...) in one implicit transaction.

    Nothing is prepared server-side. At most ``max_rows`` rows of each result are loaded. A statement
    that fails is reported in its result, and the ones after it come back ``aborted``; a lost
    connection raises ``psycopg.OperationalError``.
    """
    from psycopg import OperationalError, pq
    from psycopg.adapt import PyFormat, Transformer

    pgconn = conn.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        raise ValueError("run_batch needs an idle connection")
    encoding = conn.info.encoding
    transformer = Transformer(conn)
    # Adapted before anything is sent: a value psycopg cannot adapt raises here, the connection untouched.
    messages = []
    for sql, params in statements:
        if params:
            values = transformer.dump_sequence(params, [PyFormat.AUTO] * len(params))
            messages.append((sql.encode(encoding), values, transformer.types, transformer.formats))
        else:
            messages.append((sql.encode(encoding), None, None, None))
    results: list[StatementResult] = []
    finished = False
    pgconn.enter_pipeline_mode()
    try:
        for sql_bytes, values, types, formats in messages:
            pgconn.send_query_params(sql_bytes, values, param_types=types, param_formats=formats)
        pgconn.pipeline_sync()
        while pgconn.flush():  # 1: some bytes are still to go
            await anyio.wait_writable(pgconn.socket)

        pending: list = []
        while True:
            while pgconn.is_busy():
                await anyio.wait_readable(pgconn.socket)
                pgconn.consume_input()
            res = pgconn.get_result()
            if res is None:  # the end of one statement's results
                results.append(_result(pending, transformer, encoding, max_rows))
                pending = []
            elif res.status == pq.ExecStatus.PIPELINE_SYNC:
                break
            elif res.status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH):
                # it would wait for data we never send or read: give the connection up
                raise OperationalError("COPY is not supported in a batch")
            else:
                pending.append(res)
        pgconn.exit_pipeline_mode()
        finished = True
    finally:
        if not finished:
            pgconn.finish()  # half-read: unusable; closed, so the pool drops it
    if len(results) != len(statements):
        raise OperationalError(f"expected {len(statements)} results from the server, got {len(results)}")
    return results


def _result(pending: list, transformer, encoding: str, max_rows: int | None) -> StatementResult:
    from psycopg import pq
    from psycopg.errors import error_from_result

    out = StatementResult()
    for res in pending:
        if res.status == pq.ExecStatus.PIPELINE_ABORTED:
            out.aborted = True
        elif res.status == pq.ExecStatus.FATAL_ERROR:
            out.error = error_from_result(res, encoding=encoding)
        elif res.status == pq.ExecStatus.TUPLES_OK:
            transformer.set_pgresult(res)
            out.columns = [(res.fname(i).decode(encoding), res.ftype(i)) for i in range(res.nfields)]
            count = res.ntuples if max_rows is None else min(res.ntuples, max_rows)
            out.rows = transformer.load_rows(0, count, tuple) if count else []
    return out
