"""explain_indexes: why each index exists, proof from the live database, and what is missing or wasted.

For every index of the tables in scope this says what it is (definition, where it is declared, size and
scans), why it exists (the constraint, foreign key or query pattern it serves, worked out from its
columns) and what the planner does with it (EXPLAIN of each query pattern). Then the problems (static
lint rules shared with :mod:`.lint`, plus what only a live database can tell: unused, invalid, spec and
database disagreeing) and recommendations with DDL whose benefit is measured by the planner.

Decisions, and why:

* **Everything runs in transactions that are rolled back.** Query evidence runs in one READ ONLY
  transaction; each hypothetical index gets a short transaction of its own. Nothing is committed,
  nothing is left behind, whatever fails.
* **Round trips, not statements, are the cost** (5-100 ms each on Neon). The catalog, the index
  statistics and hypopg's state go in one pipeline; each transaction (BEGIN, one ``set_config`` for all
  its SET LOCALs, every EXPLAIN, ROLLBACK) goes as one multi-statement Query message, with no savepoint
  around an EXPLAIN (planning executes nothing; if one fails, it is retried without the failing
  pattern). A full call is 3 round trips on the reference schema: catalog, plans, one candidate build;
  ``round_trips`` in the result counts them. Not pipelines for the EXPLAINs: the extended protocol reads
  ``$1`` as a parameter to bind, and a bound value makes the generic plan a custom one.
* **Parameterised patterns** (``$1``) are planned with ``EXPLAIN (GENERIC_PLAN)`` on PostgreSQL 16+.
  Older servers get Dexter's path: ``PREPARE``, ``SET LOCAL plan_cache_mode = force_generic_plan``,
  ``EXPLAIN EXECUTE`` with NULL arguments, ``DEALLOCATE``. A generic plan is what a pooled app gets
  after a few executions, and it needs no made-up sample values.
* **Nearly empty tables** (fewer than :data:`SMALL_TABLE_ROWS` rows by ``reltuples``): the planner
  prefers a sequential scan there whatever the indexes, so its choice proves nothing. We say so and plan
  a second time with ``enable_seqscan = off``: that separates "no index can serve this" from "an index
  can, the planner just does not choose it at this size", and its costs are the ones compared for
  recommendations. We do not generate synthetic rows: on a live database that means satisfying foreign
  keys into Better Auth's tables, CHECKs and unique keys for arbitrary tables, it advances sequences
  (which a rollback does not undo) and writes WAL; on a table with real data the real statistics are
  used as they are.
* **Hypothetical indexes**: with hypopg when the database already has it (``CREATE EXTENSION hypopg``,
  as Neon allows): no build, no table lock. hypopg keeps its hypothetical indexes in the server
  session's memory, not in the transaction, so a ROLLBACK does not remove them: each transaction ends
  with ``SELECT hypopg_reset()`` before its ROLLBACK (same round trip), and a failed one gets it in the
  clean-up after the rollback, or the index would stay on the connection (on a pooled server session
  too) and change every later EXPLAIN there. hypopg_reset drops every hypothetical index of the
  session; any left by someone else would have skewed our plans anyway. When hypopg is only
  *available* we do not create it: CREATE EXTENSION changes the database (and its privileges), and
  inside a rolled-back transaction it would leave the library loaded and its hypothetical index in the
  session with no ``hypopg_reset()`` left to call; a note says to create it. Otherwise the index is really built (plain ``CREATE INDEX``, never
  CONCURRENTLY, which cannot run in a transaction) inside a transaction that is rolled back, only for
  tables under ``max_build_rows`` rows and with ``SET LOCAL lock_timeout``: the build takes a SHARE lock
  that blocks writes to the table while it runs, and waiting for that lock behind an open writer would
  queue every later writer behind us, so we give up after the lock timeout and say so.
* **Worth it** follows Dexter and pganalyze: the planner's cost of each pattern before and after; a
  candidate is recommended when it lowers the cost by at least :data:`MIN_GAIN`. A foreign key without
  an index is always recommended (the lint rule says why), with its lookup's costs shown.
* **Unused** means ``idx_scan = 0`` since ``stats_reset``; on Neon the counters restart when the compute
  suspends, so it reads "unused since <time>", never "never used". Unique and primary key indexes enforce
  constraints and are never called unused.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
import psycopg.generators
from pydantic import BaseModel, ConfigDict, Field

from .catalog import CATALOG_QUERY, INDEX_USAGE_SQL, IndexStats, _describe, build_schema, catalog_query
from .ddl import create_index_sql, ident, qualified
from .findings import Finding
from .lint import INDEX_RULE_IDS, IndexShape, covers_columns, index_shapes, lint_schema, norm_where
from .propose import ProposalError, index_columns_for_pattern
from .schema import BETTER_AUTH_TABLES, ForeignKey, Index, IndexColumn, Location, Schema, Table

__all__ = ["ExplainError", "ExplainIndexesResult", "IndexEntry", "PlanSummary", "QueryCost", "QueryEvidence",
           "Recommendation", "ScanChoice", "explain_indexes"]

#: Below this many rows (pg_class.reltuples) the planner's choice of a sequential scan proves nothing.
SMALL_TABLE_ROWS = 1000
#: A candidate index is recommended when it lowers a pattern's estimated cost by at least this share.
MIN_GAIN = 0.10
#: Dexter's floor: a query whose estimated cost is below this is already cheap; no index is tried for it.
MIN_COST = 100.0
#: EXPLAIN (GENERIC_PLAN) arrived in PostgreSQL 16; older servers take the PREPARE path.
GENERIC_PLAN_MIN_VERSION = 160000
#: statement_timeout for one hypothetical build and for the evidence transaction.
STATEMENT_TIMEOUT_MS = 15_000

Source = Literal["spec", "database", "both"]


class ExplainError(ValueError):
    """Bad input to explain_indexes; the message says what to pass instead."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScanChoice(_Model):
    """How the plan reads one table: the node type and the index(es) it goes through."""

    table: str
    node: str = Field(description="Seq Scan, Index Scan, Index Only Scan, Bitmap Heap Scan...")
    indexes: list[str] = Field(default_factory=list)
    backward: bool = Field(False, description="Index read backward (DESC order from an ASC index or vice versa)")
    cost: float = Field(description="Total cost of this scan node")
    rows: float = Field(description="Rows the planner expects from it")


class PlanSummary(_Model):
    total_cost: float
    startup_cost: float
    scans: list[ScanChoice]
    sort: bool = Field(description="The plan sorts rows itself (no index gives the order)")
    indexes: list[str] = Field(description="Every index the plan uses")
    seq_scans: list[str] = Field(description="Tables read by a sequential scan")


class QueryEvidence(_Model):
    """One query pattern planned on the live database."""

    table: str
    query: str = Field(description="What the query does, in words")
    sql: str
    origin: Literal["spec", "convention", "caller", "foreign key"]
    location: Location | None = None
    needs: list[str] = Field(description="The index columns the query asks for: equality first, then order")
    planned_how: str = Field(description="generic plan, prepared generic plan, or plain EXPLAIN")
    chosen: PlanSummary | None = Field(None, description="What the planner chooses")
    forced: PlanSummary | None = Field(None, description="The plan with enable_seqscan=off, when asked")
    verdict: str
    notes: list[str] = Field(default_factory=list)


class IndexEntry(_Model):
    table: str
    name: str
    definition: str = Field(description="CREATE INDEX statement")
    columns: list[str] = Field(description="Key columns in order, with DESC / NULLS when not the default")
    method: str
    unique: bool
    primary: bool
    include: list[str]
    where: str | None
    constraint: str | None
    valid: bool
    declared_in: list[str] = Field(description="Spec line(s) and/or 'database'")
    spec_reason: str | None = None
    size_bytes: int | None = None
    idx_scan: int | None = None
    purposes: list[str] = Field(description="What it serves, derived from its columns")
    evidence: list[str] = Field(description="What EXPLAIN showed about it")
    problems: list[str] = Field(default_factory=list, description="Problem ids about this index")


class QueryCost(_Model):
    query: str
    cost_before: float
    cost_after: float | None
    uses_new_index: bool | None = None


class Recommendation(_Model):
    table: str
    ddl: str = Field(description="CREATE INDEX CONCURRENTLY ... (outside a transaction)")
    reason: str
    serves: list[str] = Field(description="The queries or foreign key it serves")
    cost_before: float | None = Field(None, description="Sum of the estimated costs of the queries it serves")
    cost_after: float | None = None
    cost_basis: str | None = Field(None, description="Which plans the costs come from")
    checked_how: str = Field(description='"hypopg", "transaction" or "not checked: why"')
    queries: list[QueryCost] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ExplainIndexesResult(_Model):
    source: Source = Field(description="Where the indexes were read from: spec, database or both")
    database: str | None = Field(None, description="Which database was read (never the password)")
    server_version: int | None = Field(None, description="server_version_num of the database, e.g. 180006")
    tables: list[str] = Field(description="The tables explained")
    indexes: list[IndexEntry] = Field(description="Every index: definition, where declared, purpose, evidence")
    problems: list[Finding] = Field(description="Missing, redundant, unused or invalid indexes, each with a fix")
    recommendations: list[Recommendation] = Field(
        description="Indexes to add, with DDL and the planner's cost before and after")
    evidence: list[QueryEvidence] = Field(description="The plan of each query pattern: the planner's choice and cost")
    notes: list[str] = Field(description="Caveats: small tables, reset statistics, what was not checked")
    statements: int = Field(0, description="SQL statements sent to the database")
    round_trips: int = Field(0, description="Network round trips to the database (a pipeline of statements "
                             "sent together and answered together counts once)")


# ---------------------------------------------------------------------------------------------------
# Entry point


async def explain_indexes(
    *, spec: Schema | None, conn: psycopg.AsyncConnection | None, table: str | None = None,
    queries: list[str] | None = None, source: str | None = None, hypothetical: bool = True,
    owner_column: str = "user_id", lock_timeout_ms: int = 2000, max_build_rows: int = 1_000_000,
    progress: Callable[[str], Any] | None = None,
) -> ExplainIndexesResult:
    """Explain the indexes of ``table`` (or every table): purpose, evidence, problems, recommendations.

    ``conn`` None means spec-only mode: purposes and static problems, nothing measured.
    """
    chosen_source = _check_source(source, spec, conn)
    if lock_timeout_ms <= 0 or max_build_rows < 0:
        raise ExplainError("lock_timeout_ms must be positive and max_build_rows non-negative.")
    parsed = [_parse_query(q) for q in queries or []]
    run = _Run(conn=conn, owner=owner_column, lock_timeout_ms=lock_timeout_ms, progress=progress)

    db_schema: Schema | None = None
    stats: dict[str, IndexStats] = {}
    if conn is not None and chosen_source != "spec":
        schemas = sorted({"public"} | {t.schema_name for t in (spec.tables if spec else [])}
                         | ({table.rpartition(".")[0]} if table and "." in table else set()))
        db_schema, stats = await _read_live(run, schemas, hypothetical)
    spec_schema = spec if chosen_source in ("spec", "both") else None
    main = db_schema if db_schema is not None else spec_schema
    assert main is not None
    tables = _tables_in_scope(main, spec_schema, table)
    notes: list[str] = []
    if chosen_source == "both" and spec_schema is not None and db_schema is not None:
        notes.append("Indexes, problems and plans come from the live database; the spec is compared with it.")

    patterns = _patterns(tables, spec_schema, parsed, main, owner_column, notes)
    entries = _entries(tables, spec_schema, db_schema, stats)
    problems = _static_problems(main, tables, owner_column)
    if db_schema is not None:
        problems += _live_problems(tables, db_schema, stats, notes)
        if spec_schema is not None:
            problems += _spec_vs_database(tables, spec_schema, db_schema)
    candidates = _candidates(tables, patterns, owner_column, spec_schema)

    evidence: list[QueryEvidence] = []
    recommendations: list[Recommendation] = []
    if db_schema is not None:
        rows = {t.qualified_name: _table_rows(t, stats) for t in tables}
        await run.note(f"planning {len(patterns)} queries")
        evidence = await _gather_evidence(run, patterns, rows, notes, raise_for_caller=bool(parsed))
        for t in tables:
            if rows[t.qualified_name] is not None and rows[t.qualified_name] < SMALL_TABLE_ROWS:
                notes.append(f"{t.name} holds about {int(rows[t.qualified_name] or 0)} rows: at that size the "
                             "planner prefers a sequential scan whatever the indexes, so each plan is repeated "
                             "with enable_seqscan=off to show which index can serve it; costs are compared in "
                             "that mode.")
        recommendations = await _check_candidates(run, candidates, evidence, rows, hypothetical,
                                                  max_build_rows, notes)
        _add_query_problems(evidence, recommendations, problems)
    else:
        # Without a database only the foreign keys are certain; a query pattern's index is a question of
        # data and costs, so it is named in the notes rather than recommended.
        recommendations = [_unchecked(c, "not checked: no database connection (spec-only mode)")
                           for c in candidates if c.fk is not None]
        notes += [f"{c.table.name}: {', '.join(repr(p.description) for p in c.patterns)} would want "
                  f"({', '.join(_show(x) for x in c.columns)}), which no index in the spec gives; connect a "
                  "database with realistic data to measure whether it is worth an index."
                  for c in candidates if c.fk is None]
    _attach(entries, evidence, patterns, tables, problems, owner_column)
    return ExplainIndexesResult(
        source=chosen_source, database=db_schema.source if db_schema else None,
        server_version=run.server_version, tables=[t.qualified_name for t in tables], indexes=entries,
        problems=_sorted(problems), recommendations=recommendations, evidence=evidence, notes=notes,
        statements=run.statements, round_trips=run.round_trips,
    )


def _check_source(source: str | None, spec: Schema | None, conn: psycopg.AsyncConnection | None) -> Source:
    if source is None:
        if conn is not None:
            return "both" if spec is not None else "database"
        if spec is None:
            raise ExplainError("Nothing to explain: pass a spec, a database connection, or both.")
        return "spec"
    if source not in ("spec", "database", "both"):
        raise ExplainError(f"source must be 'spec', 'database' or 'both', not {source!r}.")
    if source in ("database", "both") and conn is None:
        raise ExplainError(f"source={source!r} needs a reachable database; none is configured. "
                           "Pass source='spec' to explain the spec alone.")
    if source in ("spec", "both") and spec is None:
        raise ExplainError(f"source={source!r} needs a spec; none was found. Pass source='database'.")
    return source  # type: ignore[return-value]


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


async def _read_live(run: _Run, schemas: list[str], hypothetical: bool) -> tuple[Schema, dict[str, IndexStats]]:
    """The catalog (tools/catalog.py's one statement), the index statistics and hypopg's state: one round trip.

    As :func:`.catalog.read_catalog` and :func:`.catalog.read_index_stats` would read them, pipelined
    together (outside any transaction of ours: each is one read-only statement).
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


# ---------------------------------------------------------------------------------------------------
# Input: tables and queries


@dataclass
class _Query:
    sql: str
    tables: list[str]  # relation names in FROM order
    params: int


class _Refs:
    """The relations (in order) and the highest $n of one parsed statement."""

    def __init__(self, node: Any) -> None:
        from pglast import ast

        self.tables: list[str] = []
        self.params = 0
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.RangeVar):
                self.tables.append(n.relname)
            elif isinstance(n, ast.ParamRef):
                self.params = max(self.params, n.number)
            if isinstance(n, ast.Node):
                children = [getattr(n, a) for a in n.__slots__]
                stack.extend(reversed([c for c in children if isinstance(c, ast.Node | tuple | list)]))
            elif isinstance(n, tuple | list):
                stack.extend(reversed(n))


def _parse_query(sql: str) -> _Query:
    import pglast
    from pglast import ast

    if not isinstance(sql, str) or not sql.strip():
        raise ExplainError("Each query must be a non-empty SQL string.")
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise ExplainError(f"The query {sql!r} is not valid SQL: {exc}. Pass one SELECT, as the app sends it "
                           "(with $1, $2... for parameters).") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise ExplainError(f"The query {sql!r} must be exactly one SELECT statement; explain_indexes plans reads "
                           "only (write the WHERE of an UPDATE/DELETE as a SELECT).")
    refs = _Refs(statements[0].stmt)
    if not refs.tables:
        raise ExplainError(f"The query {sql!r} reads no table; nothing to explain.")
    return _Query(sql=sql.strip().rstrip(";"), tables=refs.tables, params=refs.params)


def _tables_in_scope(main: Schema, spec: Schema | None, name: str | None) -> list[Table]:
    if name is None:
        return sorted(main.tables, key=lambda t: (t.schema_name, t.name))
    found = main.table(name.strip().lower())
    if found is None:
        where = "the database" if main is not spec else "the spec"
        known = ", ".join(sorted(t.name for t in main.tables)) or "none"
        hint = " It is in the spec but not in the database: create it first." if (
            spec is not None and main is not spec and spec.table(name.strip().lower())) else ""
        raise ExplainError(f"Unknown table {name!r}: {where} has no such table (tables: {known}).{hint}")
    return [found]


@dataclass
class _Pattern:
    table: Table
    description: str
    sql: str
    origin: Literal["spec", "convention", "caller", "foreign key"]
    location: Location | None
    needs: list[IndexColumn]
    equality: int
    params: int
    fk: ForeignKey | None = None

    @property
    def key(self) -> tuple[str, tuple[tuple[str, bool], ...]]:
        return self.table.qualified_name, tuple((c.name, c.descending) for c in self.needs)


def _needs(sql: str, table: Table, owner: str) -> tuple[list[IndexColumn], int]:
    try:
        return index_columns_for_pattern(sql, table, owner if table.column(owner) else None)
    except ProposalError:
        return [], 0


def _patterns(tables: list[Table], spec: Schema | None, caller: list[_Query], main: Schema, owner: str,
              notes: list[str]) -> list[_Pattern]:
    """Caller queries; else the spec's query patterns, then the conventions' standard ones not already there."""
    in_scope = {t.name for t in tables}
    out: list[_Pattern] = []
    if caller:
        for q in caller:
            target = main.table(q.tables[0])
            if target is None:
                raise ExplainError(f"The query {q.sql!r} reads {q.tables[0]}, which is not a table here "
                                   f"(tables: {', '.join(sorted(t.name for t in main.tables))}).")
            if in_scope and not (set(q.tables) & in_scope):
                continue
            needs, eq = _needs(q.sql, target, owner)
            out.append(_Pattern(target, _summary(q.sql, target, needs, eq), q.sql, "caller", None, needs, eq,
                                q.params))
        return out + _fk_patterns(tables, main, owner)
    for t in tables:
        if t.managed_by == "better-auth" or t.name in BETTER_AUTH_TABLES:
            continue
        spec_t = spec.table(t.qualified_name) if spec else None
        seen: set[tuple[str, tuple[tuple[str, bool], ...]]] = set()
        for qp in spec_t.query_patterns if spec_t else []:
            sql = qp.sql
            if sql is None:
                needs, eq = _needs(qp.description, t, owner)
                if not needs:
                    notes.append(f"{t.name}: could not tell which columns the pattern {qp.description!r} uses; "
                                 "write it as SQL in the spec to get evidence for it.")
                    continue
                sql = _sql_for(t, needs, eq)
            try:
                parsed = _parse_query(sql)
            except ExplainError as exc:
                notes.append(f"{t.name}: the spec's query pattern is skipped: {exc}")
                continue
            needs, eq = _needs(sql, t, owner)
            p = _Pattern(t, qp.description, parsed.sql, "spec", qp.location, needs, eq, parsed.params)
            seen.add(p.key)
            out.append(p)
        for description, sql in _convention_sql(t, owner):
            needs, eq = _needs(sql, t, owner)
            p = _Pattern(t, description, sql, "convention", None, needs, eq, _parse_query(sql).params)
            if p.key not in seen:
                seen.add(p.key)
                out.append(p)
    return out + _fk_patterns(tables, main, owner)


def _convention_sql(t: Table, owner: str) -> list[tuple[str, str]]:
    """The queries every user-owned table gets: newest first, filtered by status, one row by id."""
    if t.column(owner) is None:
        return []
    name, o = qualified(t), ident(owner)
    out = []
    if t.column("created_at"):
        out.append((f"list a user's {t.name}, newest first",
                    f"SELECT * FROM {name} WHERE {o} = $1 ORDER BY created_at DESC LIMIT 50"))
    status = t.column("status") or next((c for c in t.columns if c.type == "boolean"), None) or next(
        (c for c in t.columns if c.allowed_values and c.name != owner), None)
    if status is not None:
        out.append((f"list a user's {t.name} filtered by {status.name}",
                     f"SELECT * FROM {name} WHERE {o} = $1 AND {ident(status.name)} = $2"))
    if len(t.primary_key) == 1:
        out.append((f"read one of a user's {t.name} by {t.primary_key[0]}",
                    f"SELECT * FROM {name} WHERE {ident(t.primary_key[0])} = $1 AND {o} = $2"))
    return out


def _fk_patterns(tables: list[Table], main: Schema, owner: str) -> list[_Pattern]:
    """The lookup each foreign key makes on the child table when a parent row is deleted or its key changes."""
    out = []
    for t in tables:
        for fk in t.foreign_keys:
            where = " AND ".join(f"{ident(c)} = ${i}" for i, c in enumerate(fk.columns, 1))
            sql = f"SELECT 1 FROM {qualified(t)} WHERE {where}"
            needs = [IndexColumn(name=c) for c in fk.columns]
            out.append(_Pattern(t, f"find the {t.name} rows of one {fk.ref_table} row (ON DELETE "
                                f"{fk.on_delete or 'NO ACTION'} from {fk.ref_table})", sql, "foreign key",
                                fk.location, needs, len(needs), len(needs), fk))
    return out


def _sql_for(t: Table, needs: list[IndexColumn], equality: int) -> str:
    where = " AND ".join(f"{ident(c.name)} = ${i}" for i, c in enumerate(needs[:equality], 1))
    order = ", ".join(ident(c.name) + (" DESC" if c.descending else "") for c in needs[equality:])
    sql = f"SELECT * FROM {qualified(t)}" + (f" WHERE {where}" if where else "")
    return sql + (f" ORDER BY {order} LIMIT 50" if order else "")


def _summary(sql: str, t: Table, needs: list[IndexColumn], equality: int) -> str:
    where = ", ".join(c.name for c in needs[:equality])
    order = ", ".join(_show(c) for c in needs[equality:])
    return " ".join([f"{t.name} rows"] + ([f"by {where}"] if where else []) + ([f"ordered by {order}"] if order else []))


def _show(c: IndexColumn) -> str:
    text = c.name + (" DESC" if c.descending else "")
    if c.nulls_first is not None:
        text += " NULLS FIRST" if c.nulls_first else " NULLS LAST"
    return text


# ---------------------------------------------------------------------------------------------------
# Index entries and purposes


def _entries(tables: list[Table], spec: Schema | None, db: Schema | None,
             stats: dict[str, IndexStats]) -> list[IndexEntry]:
    entries = []
    for t in tables:
        spec_t = spec.table(t.qualified_name) if spec else None
        listed = t.indexes if db is not None else [
            Index(name=ix.name, columns=[IndexColumn(name=n) for n in ix.names], unique=True,
                  primary=ix.primary, constraint=ix.constraint, location=t.location)
            for ix in index_shapes(t) if ix.source is None] + t.indexes
        for ix in listed:
            name = ix.name or _default_name(t, ix)
            declared = [str(ix.location)] if ix.location else []
            reason = ix.reason
            if db is not None and spec_t is not None:
                twin = _spec_twin(spec_t, ix)
                if twin is not None:
                    declared.insert(0, str(twin.location or spec.source or "spec") if isinstance(twin, Index)
                                    else f"{spec.source or 'spec'} (implied by {twin})")
                    reason = twin.reason if isinstance(twin, Index) else None
            st = stats.get(f"{t.schema_name}.{name}")
            entries.append(IndexEntry(
                table=t.qualified_name, name=name, definition=create_index_sql(t, ix.model_copy(update={"name": name})),
                columns=[_show(c) for c in ix.columns], method=ix.method, unique=ix.unique or ix.primary,
                primary=ix.primary, include=list(ix.include), where=ix.where, constraint=ix.constraint,
                valid=ix.valid, declared_in=declared or ["database" if db is not None else "spec"],
                spec_reason=reason, size_bytes=st.size_bytes if st else None, idx_scan=st.idx_scan if st else None,
                purposes=[], evidence=[],
            ))
    return entries


def _default_name(t: Table, ix: Index) -> str:
    from .ddl import index_name
    return index_name(t, ix)


def _shape(ix: Index | IndexShape) -> tuple[Any, ...]:
    if isinstance(ix, Index):
        keys = tuple((c.name, c.descending) for c in ix.columns)
        return keys, ix.method, _norm_pred(ix.where), ix.unique or ix.primary, tuple(sorted(ix.include))
    keys = tuple((k[0], k[2]) for k in ix.keys)
    return keys, ix.method, _norm_pred(ix.where), ix.unique, tuple(sorted(ix.include))


def _norm_pred(where: str | None) -> str | None:
    if where is None:
        return None
    from .diff import norm_expr
    try:
        return norm_expr(where)
    except Exception:  # an expression norm_expr cannot parse: compare it as text
        return norm_where(where)


def _spec_twin(spec_t: Table, ix: Index) -> Index | str | None:
    """The spec's index with the same shape (or the PK/UNIQUE constraint implying it)."""
    shape = _shape(ix)
    for s in index_shapes(spec_t):
        if _shape(s) == shape:
            if s.source is not None:
                return s.source
            what = "PRIMARY KEY" if s.primary else "UNIQUE"
            return f"{what} ({', '.join(s.names)})"
    return None


def _serves(keys: list[IndexColumn], p: _Pattern) -> tuple[int, bool, bool]:
    """How an index's keys serve a pattern: (equality columns matched, order given, fully served)."""
    eq = {c.name for c in p.needs[: p.equality]}
    k = 0
    while k < len(keys) and not keys[k].is_expression and keys[k].name in eq:
        k += 1
    sort = p.needs[p.equality:]
    ordered = False
    if sort and (k == len(eq) or k > 0 or not eq):
        tail = keys[k: k + len(sort)]
        if len(tail) == len(sort) and all(a.name == b.name for a, b in zip(tail, sort, strict=True)):
            same = all(a.descending == b.descending for a, b in zip(tail, sort, strict=True))
            flipped = all(a.descending != b.descending for a, b in zip(tail, sort, strict=True))
            ordered = (same or flipped) and k == len(eq)
    full = k == len(eq) and (not sort or ordered) and (k > 0 or ordered)
    return k, ordered, full


def _purpose_for_pattern(keys: list[IndexColumn], p: _Pattern) -> str | None:
    k, ordered, full = _serves(keys, p)
    sort = p.needs[p.equality:]
    if k == 0 and not ordered:
        return None
    lead = ", ".join(c.name for c in keys[:k])
    eq_left = [c.name for c in p.needs[: p.equality] if c.name not in {c.name for c in keys[:k]}]
    parts = []
    if k:
        parts.append(("equality on " if full or not eq_left else "leftmost prefix ") + lead)
    if eq_left:
        parts.append(f"{', '.join(eq_left)} filtered after")
    if sort:
        shown = ", ".join(_show(c) for c in sort)
        parts.append(f"then rows already in {shown} order" if ordered else f"then a sort on {shown}")
    return f"serves: {p.description} ({'; '.join(parts)})"


def _attach(entries: list[IndexEntry], evidence: list[QueryEvidence], patterns: list[_Pattern],
            tables: list[Table], problems: list[Finding], owner: str) -> None:
    """Fill each entry's purposes (from its columns) and evidence (from the plans)."""
    by_table = {t.qualified_name: t for t in tables}
    referenced: dict[str, list[str]] = {}
    for t in tables:
        for fk in t.foreign_keys:
            referenced.setdefault(fk.ref_table, []).append(f"{t.name}.{', '.join(fk.columns)}")
    served: dict[str, set[int]] = {}
    for t in tables:
        keysets = [ix.columns for ix in t.indexes if ix.valid and ix.where is None and ix.method == "btree"]
        served[t.qualified_name] = {id(p) for p in patterns if p.table is t and (
            any(_serves(k, p)[2] for k in keysets)
            or (t.primary_key and set(t.primary_key) <= {c.name for c in p.needs[: p.equality]}))}
    for e in entries:
        t = by_table[e.table]
        ix = next((i for i in t.indexes if i.name == e.name), None)
        keys = ix.columns if ix else [IndexColumn(name=c.split(" ")[0]) for c in e.columns]
        shape = IndexShape(e.name, tuple((c.name, c.is_expression, c.descending, c.nulls_first) for c in keys),
                           e.unique, e.method, norm_where(e.where), tuple(e.include), e.primary, e.constraint, ix)
        names = [c.name for c in keys]
        if e.primary:
            e.purposes.append(f"primary key: one row per {', '.join(names)}, and the lookup of one row by it")
            if refs := referenced.get(t.name):
                e.purposes.append(f"target of the foreign keys from {', '.join(refs)}: each insert there "
                                  "checks the row exists through it")
        elif e.unique:
            what = f"UNIQUE constraint {e.constraint}" if e.constraint else "unique index"
            e.purposes.append(f"{what}: at most one row per ({', '.join(names)})"
                              + (f" where {e.where}" if e.where else ""))
        for fk in t.foreign_keys:
            if covers_columns(shape, fk.columns):
                e.purposes.append(f"covers the foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}: "
                                  f"ON DELETE {fk.on_delete or 'NO ACTION'} from {fk.ref_table} and joins find "
                                  "the rows without a scan")
        if e.where is None and e.method == "btree" and e.valid:
            for p in patterns:
                if p.table is t and p.origin != "foreign key" and (
                        _serves(keys, p)[2] or id(p) not in served.get(e.table, set())):
                    if (text := _purpose_for_pattern(keys, p)) is not None:
                        e.purposes.append(text)
        if e.spec_reason:
            e.purposes.append(f"spec says: {e.spec_reason}")
        if not e.valid:
            e.purposes.append("none while INVALID: the planner ignores it, yet every write still updates it")
        if not e.purposes:
            e.purposes.append("no constraint, foreign key or known query pattern uses its leading columns"
                              + (f" ({', '.join(names)})" if names else ""))
        for ev in evidence:
            if ev.chosen and e.name in ev.chosen.indexes:
                scan = next(s for s in ev.chosen.scans if e.name in s.indexes)
                e.evidence.append(f"chosen by the planner for {ev.query!r}: {scan.node}"
                                  + (" Backward" if scan.backward else "")
                                  + f", cost {ev.chosen.total_cost:.1f}"
                                  + (" (rows come out in order: no Sort)" if _has_order(ev) and not ev.chosen.sort
                                     else ""))
            elif ev.forced and e.name in ev.forced.indexes:
                e.evidence.append(f"usable for {ev.query!r}: with sequential scans off the planner uses it "
                                  f"(cost {ev.forced.total_cost:.1f}); it chose "
                                  f"{_describe_choice(ev.chosen, t.name)} at this table size")
        if not e.evidence:
            if e.constraint or e.primary:
                e.evidence.append(f"backs the constraint {e.constraint or 'primary key'} (pg_constraint): "
                                  "every INSERT and key UPDATE checks it")
            elif e.idx_scan:
                e.evidence.append(f"no explained query picks it, but pg_stat_user_indexes counts {e.idx_scan} "
                                  "scans: some query not listed uses it")
            else:
                e.evidence.append("no explained query uses it" + (" and it has 0 scans" if e.idx_scan == 0 else ""))
        e.problems = sorted({f.rule for f in problems if f.object == e.name})


def _has_order(ev: QueryEvidence) -> bool:
    return "ORDER BY" in ev.sql.upper()


def _describe_choice(plan: PlanSummary | None, table: str) -> str:
    if plan is None:
        return "nothing (planning failed)"
    mine = [s for s in plan.scans if s.table == table]
    if any(s.node == "Seq Scan" for s in mine):
        return "a sequential scan"
    return ", ".join(n for s in mine for n in s.indexes) or "another plan"


# ---------------------------------------------------------------------------------------------------
# Problems


def _finding(rule: str, severity: str, message: str, obj: str | None, loc: Location | None,
             fix: str | None) -> Finding:
    return Finding(rule=rule, severity=severity, message=message, object=obj, location=loc, fix=fix)  # type: ignore[arg-type]


def _static_problems(schema: Schema, tables: list[Table], owner: str) -> list[Finding]:
    """The lint rules about indexes (one definition of covered / redundant / duplicate, in lint.py)."""
    names = {t.qualified_name for t in tables}
    scoped = schema.model_copy(update={"tables": [t for t in schema.tables if t.qualified_name in names
                                                  or t.name in ("users", "user")]})
    return [f for f in lint_schema(scoped, owner_column=owner) if f.rule in INDEX_RULE_IDS]


def _live_problems(tables: list[Table], db: Schema, stats: dict[str, IndexStats], notes: list[str]) -> list[Finding]:
    out: list[Finding] = []
    reset = next((s.stats_reset for s in stats.values() if s.stats_reset), None)
    since = f"since {reset:%Y-%m-%d %H:%M %Z}".strip() if reset else "since the statistics were last reset"
    if stats:
        notes.append(f"Scan counts are {since}. On Neon they restart when the compute suspends, so 'unused' "
                     "means unused since then, not never used; check over a busy period before dropping.")
    for t in tables:
        for ix in t.indexes:
            loc = Location(file="database")
            if not ix.valid:
                out.append(_finding(
                    "invalid-index", "error",
                    f"{ix.name} on {t.name} is INVALID (a failed CREATE INDEX CONCURRENTLY): the planner ignores "
                    "it but every write still maintains it.", ix.name, loc,
                    f"DROP INDEX CONCURRENTLY {ident(ix.name or '')}; then "
                    f"{create_index_sql(t, ix, concurrently=True)} (outside a transaction)"))
                continue
            st = stats.get(f"{t.schema_name}.{ix.name}")
            if st is None or ix.unique or ix.primary or ix.constraint or st.idx_scan > 0:
                continue
            out.append(_finding(
                "unused-index", "info",
                f"{ix.name} on {t.name} has had 0 scans {since} ({_size(st.size_bytes)}); each write to "
                f"{t.name} still updates it.", ix.name, loc,
                f"If no query needs it over a full business cycle: DROP INDEX CONCURRENTLY {ident(ix.name or '')};"
                " (on Neon the counters restart when the compute suspends: check stats_reset first)"))
    return out


def _spec_vs_database(tables: list[Table], spec: Schema, db: Schema) -> list[Finding]:
    out: list[Finding] = []
    for t in tables:
        if t.managed_by == "better-auth":
            continue
        spec_t = spec.table(t.qualified_name)
        if spec_t is None:
            out.append(_finding("table-missing-in-spec", "info", f"{t.name} is in the database but not in the "
                                "spec, so its indexes have no stated purpose.", t.name, Location(file="database"),
                                f"Add a '## Table: {t.name}' section to the spec (read_schema_spec shows the format)."))
            continue
        db_shapes = [_shape(s) for s in index_shapes(t)]
        for s in index_shapes(spec_t):
            if _shape(s) in db_shapes or s.source is None:
                continue
            ix = s.source
            same_name = next((i for i in t.indexes if ix.name and i.name == ix.name), None)
            what = (f"the database's {ix.name} has another definition ({', '.join(_show(c) for c in same_name.columns)})"
                    if same_name else "the database has no index like it")
            out.append(_finding(
                "index-missing-in-database", "warning",
                f"The spec declares {ix.name or 'an index'} on {t.name} ({', '.join(_show(c) for c in ix.columns)}), "
                f"but {what}.", ix.name or t.name, ix.location,
                (f"DROP INDEX CONCURRENTLY {ident(same_name.name or '')}; " if same_name else "")
                + create_index_sql(t, ix, concurrently=True)
                + " -- outside a transaction (Alembic: op.get_context().autocommit_block())"))
        spec_shapes = [_shape(s) for s in index_shapes(spec_t)]
        for ix in t.indexes:
            if _shape(ix) in spec_shapes or not ix.valid:
                continue
            out.append(_finding(
                "index-missing-in-spec", "info",
                f"{ix.name} on {t.name} ({', '.join(_show(c) for c in ix.columns)}) is in the database but not "
                "in the spec.", ix.name, Location(file="database"),
                f"Add it to the Indexes table of '## Table: {t.name}' with the query it serves, or drop it: "
                f"DROP INDEX CONCURRENTLY {ident(ix.name or '')};"))
    return out


def _add_query_problems(evidence: list[QueryEvidence], recs: list[Recommendation], problems: list[Finding]) -> None:
    for r in recs:
        if r.cost_before is None or r.checked_how.startswith("not checked"):
            continue
        if r.cost_after is not None and r.cost_after < r.cost_before:
            problems.append(_finding(
                "query-not-served", "warning",
                f"No index on {r.table.rpartition('.')[2]} fully serves {', '.join(repr(s) for s in r.serves)}: "
                f"estimated cost {r.cost_before:.1f}, {r.cost_after:.1f} with the recommended index.",
                r.table.rpartition(".")[2], None, r.ddl))


def _sorted(problems: list[Finding]) -> list[Finding]:
    rank = {"error": 0, "warning": 1, "info": 2}
    unique = {(f.rule, f.object, f.message): f for f in problems}
    return sorted(unique.values(), key=lambda f: (rank[f.severity], f.object or "", f.rule, f.message))


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _table_rows(t: Table, stats: dict[str, IndexStats]) -> float | None:
    st = next((s for s in stats.values() if s.schema_name == t.schema_name and s.table_name == t.name), None)
    return st.table_rows if st else None


# ---------------------------------------------------------------------------------------------------
# Evidence: EXPLAIN of each pattern


def _summarize(plan: Any) -> PlanSummary:
    root = plan[0]["Plan"]
    scans: list[ScanChoice] = []
    sort = False

    def index_names(node: dict[str, Any]) -> list[str]:
        names = [node["Index Name"]] if "Index Name" in node else []
        for child in node.get("Plans", []):
            if child["Node Type"] in ("Bitmap Index Scan", "BitmapAnd", "BitmapOr"):
                names += index_names(child)
        return names

    def walk(node: dict[str, Any]) -> None:
        nonlocal sort
        if node["Node Type"] in ("Sort", "Incremental Sort"):
            sort = True
        if "Relation Name" in node:
            scans.append(ScanChoice(table=node["Relation Name"], node=node["Node Type"], indexes=index_names(node),
                                    backward=node.get("Scan Direction") == "Backward",
                                    cost=node["Total Cost"], rows=node["Plan Rows"]))
        for child in node.get("Plans", []):
            walk(child)

    walk(root)
    return PlanSummary(total_cost=root["Total Cost"], startup_cost=root["Startup Cost"], scans=scans, sort=sort,
                       indexes=list(dict.fromkeys(n for s in scans for n in s.indexes)),
                       seq_scans=list(dict.fromkeys(s.table for s in scans if s.node == "Seq Scan")))


_PLANNED_HOW = {"plain": "plain EXPLAIN", "generic": "generic plan (EXPLAIN GENERIC_PLAN)",
                "prepared": "prepared generic plan (PREPARE, force_generic_plan, EXECUTE with NULLs)"}


def _plan_stmts(run: _Run, sql: str, params: int) -> tuple[list[_Stmt], int, str]:
    """The statements that plan one query, which of them returns the plan, and how it is planned.

    Parameters get a generic plan: ``EXPLAIN (GENERIC_PLAN)`` on 16+, else PREPARE / EXPLAIN EXECUTE
    with NULLs / DEALLOCATE, all three inside the caller's one transaction (so through a transaction-mode
    pooler they reach the same server session), under ``plan_cache_mode = force_generic_plan`` (set by
    the caller with :func:`_settings`).
    """
    if params == 0:
        return [_Stmt(f"EXPLAIN (FORMAT JSON) {sql}")], 0, _PLANNED_HOW["plain"]
    if run.generic:
        return [_Stmt(f"EXPLAIN (FORMAT JSON, GENERIC_PLAN) {sql}")], 0, _PLANNED_HOW["generic"]
    name = run.statement_name()
    nulls = ", ".join(["NULL"] * params)
    return ([_Stmt(f"PREPARE {name} AS {sql}", prepared=name),
             _Stmt(f"EXPLAIN (FORMAT JSON) EXECUTE {name} ({nulls})"),
             _Stmt(f"DEALLOCATE {name}", deallocates=name)], 1, _PLANNED_HOW["prepared"])


def _settings(values: dict[str, str]) -> _Stmt:
    """All the SET LOCALs of a transaction in one statement (``set_config(..., true)``)."""
    calls = ", ".join(["set_config(%s, %s, true)"] * len(values))
    return _Stmt(f"SELECT {calls}", [x for kv in values.items() for x in kv])


def _message(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).strip()


async def _gather_evidence(run: _Run, patterns: list[_Pattern], rows: dict[str, float | None],
                           notes: list[str], raise_for_caller: bool) -> list[QueryEvidence]:
    """Plan every pattern in one READ ONLY transaction, sent as one pipeline: one round trip.

    First each pattern as the planner chooses, then (after ``enable_seqscan = off`` for the rest of the
    transaction) again for the nearly empty tables, where the forced plan is always wanted. A pattern
    on a bigger table whose chosen plan scans it sequentially gets its forced plan in one more round
    trip. The EXPLAINs need no savepoints: a plan is computed, never executed. Should one fail (a
    caller's or the spec's SQL that does not fit the database), the transaction is rolled back, that
    pattern is reported as not planned and the rest are planned again, so the results are those of
    planning each pattern on its own.
    """
    assert run.conn is not None
    table_rows = [rows.get(p.table.qualified_name) for p in patterns]
    small = [r is not None and r < SMALL_TABLE_ROWS for r in table_rows]
    chosen: dict[int, tuple[PlanSummary, str]] = {}
    forced: dict[int, PlanSummary] = {}
    failed: dict[int, str] = {}
    todo_chosen = list(range(len(patterns)))
    todo_forced: list[int] = []
    base = {"transaction_read_only": "on", "statement_timeout": f"{STATEMENT_TIMEOUT_MS}ms",
            "lock_timeout": f"{run.lock_timeout_ms}ms"}
    if not run.generic:
        base["plan_cache_mode"] = "force_generic_plan"
    while todo_chosen or todo_forced:
        body = [_settings(base)]
        jobs: list[tuple[int, bool, int, int, str]] = []  # pattern, forced, first statement, plan statement, how

        def add(i: int, is_forced: bool) -> None:
            stmts, at, how = _plan_stmts(run, patterns[i].sql, patterns[i].params)
            jobs.append((i, is_forced, len(body), len(body) + at, how))
            body.extend(stmts)

        for i in todo_chosen:
            add(i, False)
        want_forced = list(dict.fromkeys(todo_forced + [i for i in todo_chosen if small[i]]))
        if want_forced:
            body.append(_settings({"enable_seqscan": "off"}))
            for i in want_forced:
                add(i, True)
        failure: _TxError | None = None
        try:
            await run.transactions([body])
        except _TxError as exc:
            failure = exc
        for i, is_forced, _, at, how in jobs:
            plan_rows = body[at].rows
            if plan_rows is None:
                continue
            plan = _summarize(json.loads(plan_rows[0][0]))
            if is_forced:
                forced[i] = plan
            else:
                chosen[i] = (plan, how)
                if not small[i] and patterns[i].table.name in plan.seq_scans:
                    todo_forced.append(i)
        if failure is not None:
            job = next((j for j in jobs if j[2] <= failure.index <= j[3]), None)
            if job is None or job[1]:  # the settings or a forced plan: not a question of the pattern's SQL
                raise failure.error
            i = job[0]
            message = _message(failure.error)
            if raise_for_caller and patterns[i].origin == "caller":
                raise ExplainError(f"The query {patterns[i].sql!r} cannot be planned on this database: "
                                   f"{message}. Fix the SQL (table and column names as in the database).") from None
            failed[i] = message
        todo_chosen = [i for i in todo_chosen if i not in chosen and i not in failed]
        todo_forced = [i for i in dict.fromkeys(todo_forced + want_forced)
                       if i not in forced and i not in failed and i not in todo_chosen]
    out: list[QueryEvidence] = []
    for i, p in enumerate(patterns):
        fields = dict(table=p.table.qualified_name, query=p.description, sql=p.sql, origin=p.origin,
                      location=p.location, needs=[_show(c) for c in p.needs])
        if i in failed:
            out.append(QueryEvidence(**fields, planned_how="not planned", verdict=f"could not be planned: {failed[i]}"))
            continue
        plan, how = chosen[i]
        wanted = small[i] or p.table.name in plan.seq_scans
        extra = forced[i] if wanted else None
        out.append(QueryEvidence(**fields, planned_how=how, chosen=plan, forced=extra,
                                 verdict=_verdict(p, plan, extra, table_rows[i])))
    return out


def _verdict(p: _Pattern, chosen: PlanSummary, forced: PlanSummary | None, table_rows: float | None) -> str:
    mine = [s for s in chosen.scans if s.table == p.table.name]
    how = "; ".join(f"{s.node}{' Backward' if s.backward else ''}"
                    + (f" using {', '.join(s.indexes)}" if s.indexes else "") for s in mine) or "no scan of it"
    text = f"{p.table.name}: {how}; total cost {chosen.total_cost:.1f}"
    if chosen.sort:
        text += "; the plan sorts the rows itself"
    if forced is not None:
        used = [n for s in forced.scans if s.table == p.table.name for n in s.indexes]
        size = (f"{p.table.name} holds about {int(table_rows or 0)} rows, so the planner prefers a sequential scan"
                if table_rows is not None and table_rows < SMALL_TABLE_ROWS else "the planner chose a sequential scan")
        if used:
            text += (f". {size}; with enable_seqscan=off it uses {', '.join(dict.fromkeys(used))} "
                     f"(cost {forced.total_cost:.1f}): the index can serve this query")
        else:
            text += f". {size}; even with enable_seqscan=off no index serves it"
    return text


# ---------------------------------------------------------------------------------------------------
# Recommendations


@dataclass
class _Candidate:
    table: Table
    columns: list[IndexColumn]
    reason: str
    patterns: list[_Pattern] = field(default_factory=list)
    fk: ForeignKey | None = None
    name: str | None = None

    @property
    def index(self) -> Index:
        ix = Index(columns=self.columns, name=self.name)
        from .ddl import index_name
        ix.name = index_name(self.table, ix)
        return ix

    def ddl(self, concurrently: bool = True) -> str:
        return create_index_sql(self.table, self.index, concurrently=concurrently)


def _prefix_of(short: list[IndexColumn], long: list[IndexColumn]) -> bool:
    if len(short) > len(long):
        return False
    flips = {a.descending != b.descending for a, b in zip(short, long, strict=False)}
    return all(a.name == b.name for a, b in zip(short, long, strict=False)) and len(flips) <= 1


def _candidates(tables: list[Table], patterns: list[_Pattern], owner: str,
                spec: Schema | None = None) -> list[_Candidate]:
    """Indexes the query patterns and foreign keys ask for that no valid index gives them."""
    out: list[_Candidate] = []
    for t in tables:
        if t.managed_by == "better-auth" or t.name in BETTER_AUTH_TABLES:
            continue
        existing = [ix for ix in t.indexes if ix.valid and ix.where is None and ix.method == "btree"]
        implied = [Index(columns=[IndexColumn(name=n) for n in s.names], unique=True) for s in index_shapes(t)
                   if s.source is None]
        keysets = [ix.columns for ix in existing + implied]
        for p in patterns:
            if p.table is not t or not p.needs:
                continue
            if any(_serves(keys, p)[2] for keys in keysets):
                continue
            if p.fk is None:
                pk = set(t.primary_key)
                if pk and pk <= {c.name for c in p.needs[: p.equality]}:
                    continue  # one row by its key: the primary key's index finds it
                if len(p.needs) == 1 and (col := t.column(p.needs[0].name)) is not None and col.type == "boolean":
                    continue  # a lone boolean index rarely beats a scan (boolean-index)
            if p.fk is not None and p.fk.columns == [owner] and t.column(owner) is not None:
                reason = f"covers {owner}: every per-user query and the ON DELETE CASCADE from users need it"
            elif p.fk is not None:
                reason = (f"covers the foreign key ({', '.join(p.fk.columns)}) -> {p.fk.ref_table}: each delete "
                          f"in {p.fk.ref_table} otherwise scans {t.name}")
            else:
                reason = _purpose_for_pattern(p.needs, p) or f"serves: {p.description}"
            out.append(_Candidate(t, list(p.needs), reason, [p], p.fk))
    merged: list[_Candidate] = []
    for c in sorted(out, key=lambda c: -len(c.columns)):
        host = next((m for m in merged if m.table is c.table and _prefix_of(c.columns, m.columns)), None)
        if host is None:
            merged.append(c)
        else:
            host.patterns += c.patterns
            host.reason += f"; also {c.reason}"
    for c in merged:  # the spec's own name when the spec declares this very index
        spec_t = spec.table(c.table.qualified_name) if spec else None
        twin = next((ix for ix in (spec_t.indexes if spec_t else []) if ix.name and ix.where is None
                     and [(x.name, x.descending) for x in ix.columns] == [(x.name, x.descending) for x in c.columns]),
                    None)
        if twin is not None:
            c.name = twin.name
            c.reason += f" (the spec declares it as {twin.name}{f' at {twin.location}' if twin.location else ''})"
    order = {id(c): i for i, c in enumerate(out)}
    return sorted(merged, key=lambda c: order[id(c)])


def _unchecked(c: _Candidate, why: str) -> Recommendation:
    return Recommendation(table=c.table.qualified_name, ddl=c.ddl(), reason=c.reason,
                          serves=[p.description for p in c.patterns], checked_how=why, notes=[_CONCURRENTLY_NOTE])


_CONCURRENTLY_NOTE = ("CREATE INDEX CONCURRENTLY cannot run inside a transaction block: run it on its own "
                      "(Alembic: inside op.get_context().autocommit_block()). If it fails it leaves an INVALID "
                      "index behind: drop it and retry.")


async def _check_candidates(run: _Run, candidates: list[_Candidate], evidence: list[QueryEvidence],
                            rows: dict[str, float | None], hypothetical: bool, max_build_rows: int,
                            notes: list[str]) -> list[Recommendation]:
    if not candidates:
        return []
    by_sql = {(e.table, e.sql): e for e in evidence}
    hypopg = run.hypopg if hypothetical else "absent"
    if hypothetical and hypopg == "absent":
        notes.append("hypopg is not available on this server: candidate indexes are checked by building them "
                     "inside a transaction that is rolled back (small tables only, under a lock timeout).")
    elif hypothetical and hypopg == "available":
        notes.append("hypopg is available on this server but not created in this database, and explain_indexes "
                     "does not create extensions: candidate indexes are checked by building them inside a "
                     "transaction that is rolled back (small tables only, under a lock timeout). Run CREATE "
                     "EXTENSION hypopg (Neon supports it) to check them without building anything or locking.")
    # Decide for every candidate first, check the ones to check together, then judge them in order.
    decided: list[tuple[_Candidate, Recommendation | None, str | None]] = []  # candidate, rec, note
    to_check: list[_Trial] = []
    for c in candidates:
        before = [(p, by_sql.get((c.table.qualified_name, p.sql))) for p in c.patterns]
        table_rows = rows.get(c.table.qualified_name)
        small = table_rows is not None and table_rows < SMALL_TABLE_ROWS
        rec = _unchecked(c, "")
        rec.cost_basis = ("plans with enable_seqscan=off (the table is too small for the planner's own choice to "
                          "mean anything)" if small else "the planner's estimates with the table's real statistics")
        rec.queries = [QueryCost(query=p.description, cost_before=_cost(ev, small), cost_after=None)
                       for p, ev in before if ev is not None and ev.chosen is not None]
        rec.cost_before = sum(q.cost_before for q in rec.queries) if rec.queries else None
        if c.fk is None and small:
            decided.append((c, None, f"{c.table.name}: {', '.join(repr(p.description) for p in c.patterns)} would "
                            f"want ({', '.join(_show(x) for x in c.columns)}), which no index gives; {c.table.name} "
                            f"holds about {int(table_rows or 0)} rows, too few for costs to tell whether it is worth "
                            "it. Re-run on production-like data (a Neon branch) before adding it."))
            continue
        if c.fk is None and rec.cost_before is not None and rec.cost_before < MIN_COST:
            decided.append((c, None, f"{c.ddl(False)} not tried: the queries it would serve are already cheap "
                                     f"(cost {rec.cost_before:.1f} < {MIN_COST:.0f})."))
            continue
        if not hypothetical:
            rec.checked_how = "not checked: hypothetical=false"
        elif hypopg != "installed" and table_rows is not None and table_rows > max_build_rows:
            rec.checked_how = (f"not checked: {c.table.name} holds about {int(table_rows)} rows, over "
                               f"max_build_rows={max_build_rows}; building it to test would block writes too long. "
                               "Install hypopg (CREATE EXTENSION hypopg; Neon supports it) or test on a branch.")
        else:
            await run.note(f"checking {c.ddl(False)}")
            to_check.append(_Trial(c, rec, small))
        decided.append((c, rec, None))
    await _check_all(run, to_check, hypopg)
    out: list[Recommendation] = []
    for c, rec, note in decided:
        if rec is None:
            notes.append(note or "")
            continue
        if rec.cost_after is not None and rec.cost_before is not None and c.fk is None \
                and rec.cost_after > rec.cost_before * (1 - MIN_GAIN):
            notes.append(f"{c.ddl(False)} was checked ({rec.checked_how}) and dropped: cost {rec.cost_before:.1f} "
                         f"-> {rec.cost_after:.1f} is not a gain of {MIN_GAIN:.0%}.")
            continue
        out.append(rec)
    return out


def _cost(ev: QueryEvidence, small: bool) -> float:
    plan = ev.forced if small and ev.forced is not None else ev.chosen
    assert plan is not None
    return plan.total_cost


@dataclass
class _Trial:
    """One candidate index to check, and the statements of its transaction once built."""

    c: _Candidate
    rec: Recommendation
    small: bool
    body: list[_Stmt] = field(default_factory=list)
    trial: str = ""
    create_at: int = 0
    plans_at: list[int] = field(default_factory=list)


_HYPOPG_RESET = "SELECT hypopg_reset()"


def _trial_body(run: _Run, t: _Trial, use_hypopg: bool) -> None:
    """BEGIN (added by the caller), timeouts, the hypothetical index, the plans after it, ROLLBACK.

    With hypopg the body ends with ``hypopg_reset()``: its indexes live in the session, not the
    transaction, and would outlive the ROLLBACK.
    """
    t.trial = f"explain_indexes_trial_{time.monotonic_ns() % 10**9}"
    build = create_index_sql(t.c.table, t.c.index.model_copy(update={"name": t.trial}))
    t.body = [_settings({"lock_timeout": f"{run.lock_timeout_ms}ms",
                         "statement_timeout": f"{STATEMENT_TIMEOUT_MS}ms"})]
    t.create_at = len(t.body)
    if use_hypopg:
        t.body.append(_Stmt("SELECT indexname FROM hypopg_create_index(%s)", (build.rstrip(";"),),
                            undo_after_failure=_HYPOPG_RESET))
    else:
        t.body.append(_Stmt(build))
    after = ({"enable_seqscan": "off"} if t.small else {}) | ({} if run.generic
                                                               else {"plan_cache_mode": "force_generic_plan"})
    if after:
        t.body.append(_settings(after))
    t.plans_at = []
    for _q, p in zip(t.rec.queries, list(t.c.patterns), strict=False):
        stmts, at, _ = _plan_stmts(run, p.sql, p.params)
        t.plans_at.append(len(t.body) + at)
        t.body.extend(stmts)
    if use_hypopg:
        t.body.append(_Stmt(_HYPOPG_RESET))


async def _check_all(run: _Run, trials: list[_Trial], hypopg: str) -> None:
    """Check the candidates, each in a transaction of its own that is rolled back.

    With hypopg (created in the database: nothing built, no lock taken) every candidate's transaction
    goes in one pipeline: one round trip for all of them. A real build holds a SHARE lock until its
    ROLLBACK, so each build gets a round trip of its own, and its lock time and lock wait are measured
    around that one transaction. hypopg only available, not created: real builds (see the module notes).
    """
    assert run.conn is not None
    use_hypopg = hypopg == "installed"
    pending = list(trials)
    while pending:
        group = pending if use_hypopg else pending[:1]
        for t in group:
            _trial_body(run, t, use_hypopg)
        started = time.monotonic()
        failure: _TxError | None = None
        try:
            await run.transactions([t.body for t in group])
        except _TxError as exc:
            failure = exc
        elapsed_ms = (time.monotonic() - started) * 1000
        retry: list[_Trial] = []
        for k, t in enumerate(group):
            if failure is not None and k > failure.body:
                retry.append(t)  # skipped by the server after the failure: try again
                continue
            if failure is not None and k == failure.body:
                _trial_failed(run, t, failure.error, elapsed_ms)
                continue
            _trial_done(t, use_hypopg, elapsed_ms)
        pending = retry + pending[len(group):]


def _trial_done(t: _Trial, use_hypopg: bool, elapsed_ms: float) -> None:
    rec, trial = t.rec, t.trial
    if use_hypopg:
        created = t.body[t.create_at].rows
        assert created is not None
        trial = created[0][0]
    else:
        rec.notes.append(f"Built for real inside a transaction that was rolled back: this held a SHARE lock "
                         f"on {t.c.table.name} (writes blocked, reads fine) for at most {elapsed_ms:.0f} ms "
                         "(build, plans and rollback); nothing was kept.")
    for q, at in zip(rec.queries, t.plans_at, strict=False):
        plan_rows = t.body[at].rows
        assert plan_rows is not None
        plan = _summarize(json.loads(plan_rows[0][0]))
        q.cost_after = plan.total_cost
        q.uses_new_index = any(trial in n for n in plan.indexes)
    rec.checked_how = "hypopg" if use_hypopg else "transaction"
    after = [q.cost_after for q in rec.queries if q.cost_after is not None]
    rec.cost_after = sum(after) if after and len(after) == len(rec.queries) else None
    if rec.queries and not any(q.uses_new_index for q in rec.queries):
        rec.notes.append("The planner did not choose the candidate for any of these queries.")


def _trial_failed(run: _Run, t: _Trial, error: psycopg.Error, elapsed_ms: float) -> None:
    rec, name = t.rec, t.c.table.name
    if isinstance(error, psycopg.errors.LockNotAvailable):
        rec.checked_how = (f"not checked: {name} is locked by another transaction (a writer); the test "
                           f"build gave up after lock_timeout={run.lock_timeout_ms} ms (waited {elapsed_ms:.0f} ms) "
                           "and built nothing, so writers were held up no longer than that. Retry when the table "
                           "is quiet, or install hypopg (no lock at all).")
        rec.queries = [q.model_copy(update={"cost_after": None}) for q in rec.queries]
    elif isinstance(error, psycopg.errors.QueryCanceled):
        rec.checked_how = (f"not checked: the test build of {name} took longer than "
                           f"statement_timeout={STATEMENT_TIMEOUT_MS} ms and was cancelled; nothing was kept.")
    else:
        rec.checked_how = f"not checked: {_message(error)}"
