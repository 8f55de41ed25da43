"""The database side of explain_indexes: statements batched into as few round trips as possible, each
transaction rolled back, and hypopg's session state reset before the connection is handed back.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.generators

from ..database.catalog import CATALOG_QUERY, INDEX_USAGE_SQL, IndexStats, _describe, build_schema, catalog_query
from ..schema.model import Schema
from .model import GENERIC_PLAN_MIN_VERSION


@dataclass
class _Stmt:
    """One statement of a pipeline, and what it returned once the pipeline came back."""

    sql: str
    params: Any = None
    prepared: str | None = None  # PREPAREs this name (session state: must be DEALLOCATEd whatever happens)
    deallocates: str | None = None
    #: session state this statement leaves that a ROLLBACK keeps; run after the rollback when it ran and
    #: its transaction failed (the transaction clears it itself when it gets that far)
    undo_after_failure: str | None = None
    rows: list[Any] | None = None  # None: it did not run (or failed); text values in transaction bodies
    columns: list[str] = field(default_factory=list)


class _BatchError(Exception):
    """Statement ``index`` of a pipeline failed; the ones after it were skipped by the server."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


class _TxError(Exception):
    """Statement ``index`` of transaction ``body`` failed (index -1: the BEGIN/ROLLBACK around it).

    Everything is rolled back and any PREPAREd statement left behind is deallocated before this is raised.
    """

    def __init__(self, body: int, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.body, self.index, self.error = body, index, error


_OK = (psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.COMMAND_OK)
_SAVEPOINT = "explain_indexes"


@dataclass
class _Run:
    conn: psycopg.AsyncConnection | None
    owner: str
    lock_timeout_ms: int
    progress: Callable[[str], Any] | None
    statements: int = 0
    round_trips: int = 0
    server_version: int | None = None
    generic_plan: bool | None = None  # None: decide from the server version
    hypopg: str = "absent"  # installed, available or absent (read with the catalog when hypothetical)
    #: set on a scratch copy's run (on_copy.py): the checked_how of what is checked there, built on the copy
    copy_how: str | None = None
    _names: int = 0

    async def note(self, message: str) -> None:
        if self.progress is not None and inspect.isawaitable(sent := self.progress(message)):
            await sent

    @property
    def generic(self) -> bool:
        if self.generic_plan is not None:
            return self.generic_plan
        return (self.server_version or 0) >= GENERIC_PLAN_MIN_VERSION

    def statement_name(self) -> str:
        self._names += 1
        return f"explain_indexes_{time.monotonic_ns()}_{self._names}"

    async def batch(self, stmts: list[_Stmt]) -> None:
        """Send ``stmts`` in one pipeline ending with one Sync: one round trip, whatever their number.

        Each statement's rows land in its ``rows``. If one fails the server skips the rest up to the Sync,
        and :class:`_BatchError` says which one failed. Unnamed statements only (``prepare=False``), so a
        PgBouncer in transaction mode is no problem. A libpq without pipeline mode (before 14) gets one
        statement per round trip, counted as such.
        """
        conn = self.conn
        assert conn is not None
        if not psycopg.AsyncPipeline.is_supported():
            for i, s in enumerate(stmts):
                self.statements += 1
                self.round_trips += 1
                try:
                    cur = await conn.execute(s.sql, s.params, prepare=False)
                except psycopg.Error as exc:
                    raise _BatchError(i, exc) from None
                s.rows = await cur.fetchall() if cur.description else []
                s.columns = [d.name for d in cur.description or ()]
            return
        cursors: list[psycopg.AsyncCursor[Any]] = []
        error: psycopg.Error | None = None
        self.round_trips += 1
        try:
            async with conn.pipeline():  # leaving the block sends the Sync and reads every result
                for s in stmts:
                    cursors.append(await conn.execute(s.sql, s.params, prepare=False))
                    self.statements += 1
        except psycopg.Error as exc:
            error = exc
        for i, (s, cur) in enumerate(zip(stmts, cursors, strict=False)):
            if cur.pgresult is None or cur.pgresult.status not in _OK:
                raise _BatchError(i, error or psycopg.InterfaceError("no result")) from None
            s.rows = await cur.fetchall() if cur.description else []
            s.columns = [d.name for d in cur.description or ()]
        if error is not None:
            raise _BatchError(len(cursors), error) from None

    async def simple(self, stmts: list[_Stmt]) -> None:
        """Send ``stmts`` as one simple-protocol Query message: one round trip, whatever their number.

        Not a pipeline: pipelines use the extended protocol, where the server reads every ``$1`` of the
        text as a parameter to bind, and binding values turns ``EXPLAIN (GENERIC_PLAN)`` into a plan for
        those values. In one Query message the statements run in order, the server stops at the first
        error, and each statement's result comes back separately (text values; parameters of ours are
        inlined as literals by psycopg's client-side quoting). Statements are separated by newlines
        around the semicolon, so a query ending in a ``--`` comment cannot swallow the next one.
        """
        conn = self.conn
        assert conn is not None
        quoting = psycopg.AsyncClientCursor(conn)
        text = "\n;\n".join(s.sql if s.params is None else quoting.mogrify(s.sql, s.params) for s in stmts)
        encoding = conn.info.encoding
        self.statements += len(stmts)
        self.round_trips += 1
        async with conn.lock:
            conn.pgconn.send_query(text.encode(encoding))
            results = await conn.wait(psycopg.generators.execute(conn.pgconn))
        for i, res in enumerate(results[: len(stmts)]):
            if res.status not in _OK:
                raise _BatchError(i, psycopg.errors.error_from_result(res, encoding=encoding))
            stmts[i].rows = [[None if (v := res.get_value(r, c)) is None else bytes(v).decode(encoding)
                              for c in range(res.nfields)] for r in range(res.ntuples)]
        if len(results) < len(stmts):
            raise _BatchError(len(results), psycopg.InterfaceError("the server returned fewer results than "
                                                                   "statements sent"))

    async def transactions(self, bodies: list[list[_Stmt]]) -> None:
        """Run each body in a transaction of its own that is rolled back, all in one round trip.

        BEGIN, body, ROLLBACK for each (SAVEPOINT ... ROLLBACK TO when the caller's connection is
        already inside a transaction). When a statement fails, the failed transaction is rolled back
        and the statements PREPAREd before the failure are deallocated (a ROLLBACK keeps them: they
        belong to the session), in one more round trip; then :class:`_TxError` says where it failed.
        """
        conn = self.conn
        assert conn is not None
        nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

        def opener() -> list[_Stmt]:
            return [_Stmt(f"SAVEPOINT {_SAVEPOINT}")] if nested else [_Stmt("BEGIN")]

        def closer() -> list[_Stmt]:
            if nested:
                return [_Stmt(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}"), _Stmt(f"RELEASE SAVEPOINT {_SAVEPOINT}")]
            return [_Stmt("ROLLBACK")]

        flat: list[_Stmt] = []
        where: list[tuple[int, int, bool]] = []  # body, index in it (-1: around it), inside the transaction
        for b, body in enumerate(bodies):
            for s in opener():
                flat.append(s)
                where.append((b, -1, True))
            for i, s in enumerate(body):
                flat.append(s)
                where.append((b, i, True))
            for s in closer():
                flat.append(s)
                where.append((b, -1, False))
        try:
            await self.simple(flat)
        except _BatchError as exc:
            b, i, inside = where[exc.index]
            if nested:  # back to where the caller's transaction was
                cleanup = closer() if inside else []
            else:
                cleanup = closer() if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE else []
            ran = flat[: exc.index]
            done = {s.deallocates for s in ran if s.deallocates and s.rows is not None}
            cleanup += [_Stmt(f"DEALLOCATE {s.prepared}") for s in ran
                        if s.prepared and s.rows is not None and s.prepared not in done]
            cleanup += [_Stmt(sql) for sql in dict.fromkeys(s.undo_after_failure for s in ran
                                                            if s.undo_after_failure and s.rows is not None)]
            if cleanup:
                try:
                    await self.simple(cleanup)
                except _BatchError as second:
                    raise second.error from exc.error
            raise _TxError(b, i, exc.error) from None


_HYPOPG_STATE = ("SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'hypopg') AS installed, "
                 "(SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg') AS available")


async def _read_live(run: _Run, schemas: list[str], hypothetical: bool,
                     send: Callable[[list[_Stmt]], Any] | None = None) -> tuple[Schema, dict[str, IndexStats]]:
    """The catalog (tools/database/catalog.py's one statement), the index statistics and hypopg's state: one round trip.

    As :func:`.catalog.read_catalog` and :func:`.catalog.read_index_stats` would read them, pipelined
    together (outside any transaction of ours: each is one read-only statement). ``send``, when given,
    sends them instead (with the check of the caller's queries, in the same write: __init__.py).
    """
    conn = run.conn
    assert conn is not None
    run.server_version = conn.info.server_version
    bound = {"schemas": list(schemas)}
    stmts = [_Stmt(CATALOG_QUERY, bound), _Stmt(catalog_query(INDEX_USAGE_SQL, run.server_version), bound)]
    if hypothetical:
        stmts.append(_Stmt(_HYPOPG_STATE))
    borrowed = not conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if borrowed:  # no BEGIN of psycopg's own, no transaction left open (as catalog._fetch)
        await conn.set_autocommit(True)
    try:
        if send is not None:
            await send(stmts)
        if any(s.rows is None for s in stmts):  # not sent yet, or the other statements of the write failed
            await run.batch(stmts)
    except _BatchError as exc:
        raise exc.error from None
    finally:
        if borrowed:
            await conn.set_autocommit(False)
    catalog, usage = stmts[0], stmts[1]
    assert catalog.rows is not None and usage.rows is not None
    schema = build_schema(dict(zip(catalog.columns, catalog.rows[0], strict=True)), source=_describe(conn))
    found = [IndexStats(**dict(zip(usage.columns, row, strict=True))) for row in usage.rows]
    stats = {f"{s.schema_name}.{s.name}": s for s in sorted(found, key=lambda s: (s.schema_name, s.name))}
    if hypothetical:
        assert stmts[2].rows is not None
        installed, available = stmts[2].rows[0]
        run.hypopg = "installed" if installed else ("available" if available else "absent")
    return schema, stats


