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

from ..database.catalog import (
    IndexStats,
    catalog_statement,
    describe_source,
    index_stats_from_result,
    index_stats_statement,
    schema_from_result,
)
from ..database.pipeline import Rows, StatementResult, run_batch, run_script
from ..database.queries import query
from ..schema.model import Schema
from .model import GENERIC_PLAN_MIN_VERSION


@dataclass
class Stmt:
    """One statement of a pipeline, and what it returned once the pipeline came back."""

    sql: str
    #: in :meth:`Run.batch`, values for ``$1``...; in :meth:`Run.simple`, for ``%s`` (quoted in client-side)
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


class TxError(Exception):
    """Statement ``index`` of transaction ``body`` failed (index -1: the BEGIN/ROLLBACK around it).

    Everything is rolled back and any PREPAREd statement left behind is deallocated before this is raised.
    """

    def __init__(self, body: int, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.body, self.index, self.error = body, index, error


_SAVEPOINT = "explain_indexes"


@dataclass
class Run:
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

    async def batch(self, stmts: list[Stmt]) -> None:
        """Send ``stmts`` (``$1`` placeholders) with :func:`.pipeline.run_batch`: one round trip, whatever
        their number, nothing prepared server-side (a PgBouncer in transaction mode is no problem).

        Each statement's rows land in its ``rows``. If one fails the server skips the rest up to the Sync,
        and :class:`_BatchError` says which one failed.
        """
        conn = self.conn
        assert conn is not None
        self.statements += len(stmts)
        self.round_trips += 1
        _take(stmts, await run_batch(conn, [(s.sql, s.params or ()) for s in stmts], join_transaction=True))

    async def simple(self, stmts: list[Stmt]) -> None:
        """Send ``stmts`` with :func:`.pipeline.run_script`, one simple-protocol Query message: one round trip.

        Not :meth:`batch`: the extended protocol reads every ``$1`` of the text as a parameter to bind, and
        binding values turns ``EXPLAIN (GENERIC_PLAN)`` into a plan for those values. The statements run in
        order, the server stops at the first error, and each statement's rows come back as text;
        parameters of ours (``%s``) are inlined as literals by psycopg's client-side quoting.
        """
        conn = self.conn
        assert conn is not None
        quoting = psycopg.AsyncClientCursor(conn)
        self.statements += len(stmts)
        self.round_trips += 1
        _take(stmts, await run_script(conn, [s.sql if s.params is None else quoting.mogrify(s.sql, s.params)
                                             for s in stmts]))

    async def transactions(self, bodies: list[list[Stmt]]) -> None:
        """Run each body in a transaction of its own that is rolled back, all in one round trip.

        BEGIN, body, ROLLBACK for each (SAVEPOINT ... ROLLBACK TO when the caller's connection is
        already inside a transaction). When a statement fails, the failed transaction is rolled back
        and the statements PREPAREd before the failure are deallocated (a ROLLBACK keeps them: they
        belong to the session), in one more round trip; then :class:`TxError` says where it failed.
        """
        conn = self.conn
        assert conn is not None
        nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

        def opener() -> list[Stmt]:
            return [Stmt(f"SAVEPOINT {_SAVEPOINT}")] if nested else [Stmt("BEGIN")]

        def closer() -> list[Stmt]:
            if nested:
                return [Stmt(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}"), Stmt(f"RELEASE SAVEPOINT {_SAVEPOINT}")]
            return [Stmt("ROLLBACK")]

        flat: list[Stmt] = []
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
            cleanup += [Stmt(f"DEALLOCATE {s.prepared}") for s in ran
                        if s.prepared and s.rows is not None and s.prepared not in done]
            cleanup += [Stmt(sql) for sql in dict.fromkeys(s.undo_after_failure for s in ran
                                                            if s.undo_after_failure and s.rows is not None)]
            if cleanup:
                try:
                    await self.simple(cleanup)
                except _BatchError as second:
                    raise second.error from exc.error
            raise TxError(b, i, exc.error) from None


def _take(stmts: list[Stmt], results: list[StatementResult]) -> None:
    """Each result's rows into its statement, up to the first that failed (:class:`_BatchError`)."""
    for i, (s, r) in enumerate(zip(stmts, results, strict=True)):
        if r.error is not None or r.aborted:
            raise _BatchError(i, r.error or psycopg.InterfaceError("the statement did not run"))
        s.rows, s.columns = list(r.rows), [name for name, _ in r.columns]


async def read_live(run: Run, schemas: list[str], hypothetical: bool,
                     send: Callable[[list[Stmt]], Any] | None = None) -> tuple[Schema, dict[str, IndexStats]]:
    """The catalog, the index statistics and hypopg's state: one round trip.

    The statements and readers of :func:`.catalog.read_catalog` and :func:`.catalog.read_index_stats`,
    sent together (outside any transaction of ours: each is one read-only statement). ``send``, when
    given, sends them instead (with the check of the caller's queries, in the same write: __init__.py).
    """
    conn = run.conn
    assert conn is not None
    run.server_version = conn.info.server_version
    stmts = [Stmt(*catalog_statement(schemas)), Stmt(*index_stats_statement(schemas, run.server_version))]
    if hypothetical:
        stmts.append(Stmt(query("hypopg_state.sql")))
    try:
        if send is not None:
            await send(stmts)
        if any(s.rows is None for s in stmts):  # not sent yet, or the other statements of the write failed
            await run.batch(stmts)
    except _BatchError as exc:
        raise exc.error from None
    catalog, usage = (StatementResult(columns=[(c, 0) for c in s.columns], rows=Rows(s.rows or ()))
                      for s in stmts[:2])
    schema = schema_from_result(catalog, describe_source(conn))
    stats = index_stats_from_result(usage)
    if hypothetical:
        assert stmts[2].rows is not None
        installed, available = stmts[2].rows[0]
        run.hypopg = "installed" if installed else ("available" if available else "absent")
    return schema, stats
