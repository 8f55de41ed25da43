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
  recommendations. We do not generate synthetic rows on the live database: that means satisfying foreign
  keys into Better Auth's tables, CHECKs and unique keys for arbitrary tables, it advances sequences
  (which a rollback does not undo) and writes WAL; on a table with real data the real statistics are
  used as they are. (Synthetic rows go only to a scratch copy of ours: see below and on_copy.py.)
* **Hypothetical indexes**: with hypopg when the database already has it (``CREATE EXTENSION hypopg``,
  as Neon allows): no build, no table lock. hypopg keeps its hypothetical indexes in the server
  session's memory, not in the transaction, so a ROLLBACK does not remove them: each transaction ends
  with ``SELECT hypopg_reset()`` before its ROLLBACK (same round trip), and a failed one gets it in the
  clean-up after the rollback, or the index would stay on the connection (on a pooled server session
  too) and change every later EXPLAIN there. hypopg_reset drops every hypothetical index of the
  session; any left by someone else would have skewed our plans anyway. When hypopg is only
  *available* we do not create it: CREATE EXTENSION changes the database (and its privileges), and
  inside a rolled-back transaction it would leave the library loaded and its hypothetical index in the
  session with no ``hypopg_reset()`` left to call; a note says to create it. Without hypopg and without
  ``build``, nothing is built on the user's database: the candidates are proved on a scratch copy on our
  own embedded PostgreSQL, with synthetic rows shaped like the live statistics (row counts, distinct
  values, NULLs), and the copy is dropped afterwards (on_copy.py, issue 30). With ``build`` the index
  is really built (plain ``CREATE INDEX``, never
  CONCURRENTLY, which cannot run in a transaction) inside a transaction that is rolled back, only for
  tables under ``max_build_rows`` rows and with ``SET LOCAL lock_timeout``: the build takes a SHARE lock
  that blocks writes to the table while it runs, and waiting for that lock behind an open writer would
  queue every later writer behind us, so we give up after the lock timeout and say so.
  PostgreSQL writes the table's refreshed page and visibility counts to pg_class in place during a
  build, rollback or not (as VACUUM would): the one trace a build leaves, and a true one.
* **Worth it** follows Dexter and pganalyze: the planner's cost of each pattern before and after; a
  candidate is recommended when it lowers the cost by at least :data:`MIN_GAIN`. A foreign key without
  an index is always recommended (the lint rule says why), with its lookup's costs shown.
* **Per table, one set** (reading.py, workload.py): each query is read on every table it touches
  (predicates, join keys, order, grouping; CTEs, subqueries, sublinks). The candidates worth adding are
  then checked together on the whole workload and reduced (merged on a shared prefix, left out when the
  others serve) while its cost stays within a few percent of the best set's.
* **Never advise dropping what is needed**: no ``unused-index`` for an index covering a foreign key
  (the owner's included) or chosen by a plan in the same result.
* **Unused** means ``idx_scan = 0`` since ``stats_reset``; on Neon the counters restart when the compute
  suspends, so it reads "unused since <time>", never "never used". Unique and primary key indexes enforce
  constraints and are never called unused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from ..database.catalog import IndexStats
from ..schema.model import Schema
from .entries import attach_evidence, index_entries
from .evidence import gather_evidence
from .lints import (
    add_query_problems,
    keep_needed,
    live_problems,
    sorted_problems,
    spec_vs_database,
    static_problems,
    table_row_count,
)
from .model import (
    SMALL_TABLE_ROWS,
    ExplainError,
    ExplainIndexesResult,
    IndexEntry,
    PlanSummary,
    QueryCost,
    QueryEvidence,
    Recommendation,
    ScanChoice,
    Source,
)
from .on_copy import prove_on_copy
from .patterns import parse_query, query_patterns, show_column, tables_in_scope
from .recommendations import candidates_for, check_candidates, unchecked
from .session import Run, read_live
from .workload import choose_set, workload_queries

#: Round trips to the database for one call, and for the example call of docs/tools/explain_indexes.md (shown
#: there; tests/test_round_trip_counts.py counts them at a proxy and holds both).
ROUND_TRIPS: tuple[int, str] = (2, (
                  "2 for the example: the catalog, the index statistics and hypopg's state in one write (with the "
                  "check of the caller's queries, when given); every plan, chosen and with enable_seqscan=off, in one "
                  "rolled-back transaction in one write. Checking recommendations adds 1 with hypopg (every candidate "
                  "together), else 1 per candidate built; choosing the set adds 1 per search step with hypopg (at most "
                  "5), else 1 per set built. The result's round_trips says how many a call took; no check of the "
                  "pooled connection before it, whatever the pause."))

__all__ = ["ExplainError", "ExplainIndexesResult", "IndexEntry", "PlanSummary", "QueryCost", "QueryEvidence",
           "Recommendation", "ScanChoice", "explain_indexes"]

# ---------------------------------------------------------------------------------------------------
# Entry point


async def explain_indexes(
    *, spec: Schema | None, conn: psycopg.AsyncConnection | None, table: str | None = None,
    queries: list[str] | None = None, source: str | None = None, hypothetical: bool = True,
    owner_column: str = "user_id", lock_timeout_ms: int = 2000, max_build_rows: int = 1_000_000,
    progress: Callable[[str], Any] | None = None, build: bool = True,
) -> ExplainIndexesResult:
    """Explain the indexes of ``table`` (or every table): purpose, evidence, problems, recommendations.

    ``conn`` None means spec-only mode: purposes and static problems, nothing measured. ``build`` False:
    without hypopg, candidates are proved on a scratch copy (on_copy.py) rather than built in a rolled-back
    transaction on the database; left unchecked if the copy cannot be made.
    """
    chosen_source = _check_source(source, spec, conn)
    if lock_timeout_ms <= 0 or max_build_rows < 0:
        raise ExplainError("lock_timeout_ms must be positive and max_build_rows non-negative.")
    parsed = [parse_query(q) for q in queries or []]
    run = Run(conn=conn, owner=owner_column, lock_timeout_ms=lock_timeout_ms, progress=progress)

    db_schema: Schema | None = None
    stats: dict[str, IndexStats] = {}
    if conn is not None and chosen_source != "spec":
        schemas = sorted({"public"} | {t.schema_name for t in (spec.tables if spec else [])}
                         | ({table.rpartition(".")[0]} if table and "." in table else set()))
        # the caller's queries checked and the catalog read in one write: one round trip for both
        db_schema, stats = await read_live(run, schemas, hypothetical,
                                            send=(lambda stmts: _check_callers_queries(run, parsed, stmts))
                                            if parsed else None)
    spec_schema = spec if chosen_source in ("spec", "both") else None
    main = db_schema if db_schema is not None else spec_schema
    assert main is not None
    tables = tables_in_scope(main, spec_schema, table)
    notes: list[str] = []
    if chosen_source == "both" and spec_schema is not None and db_schema is not None:
        notes.append("Indexes, problems and plans come from the live database; the spec is compared with it.")

    patterns = query_patterns(tables, spec_schema, parsed, main, owner_column, notes)
    entries = index_entries(tables, spec_schema, db_schema, stats)
    problems = static_problems(main, tables, owner_column)
    if db_schema is not None:
        problems += live_problems(tables, db_schema, stats, notes)
        if spec_schema is not None:
            problems += spec_vs_database(tables, spec_schema, db_schema)
    candidates = candidates_for(tables, patterns, owner_column, spec_schema)

    evidence: list[QueryEvidence] = []
    recommendations: list[Recommendation] = []
    workload = None
    if db_schema is not None:
        rows = {t.qualified_name: table_row_count(t, stats) for t in tables}
        await run.note(f"planning {len(patterns)} queries")
        widths: dict[str, dict[str, int]] = {}
        shapes: dict = {}
        evidence = await gather_evidence(run, patterns, rows, notes, raise_for_caller=bool(parsed), widths=widths,
                                          shapes=shapes)
        for t in tables:
            if (count := rows[t.qualified_name]) is not None and count < SMALL_TABLE_ROWS:
                notes.append(f"{t.name} holds about {int(rows[t.qualified_name] or 0)} rows: at that size the "
                             "planner prefers a sequential scan whatever the indexes, so each plan is repeated "
                             "with enable_seqscan=off to show which index can serve it; costs are compared in "
                             "that mode.")
        proved = None
        if hypothetical and run.hypopg != "installed" and not build and candidates:
            # Never build on the user's database unasked: prove the candidates on a scratch copy (on_copy.py)
            proved = await prove_on_copy(run, db_schema, tables, candidates, patterns, rows, shapes, notes, widths)
        if proved is not None:
            recommendations, workload = proved
        else:
            checked: list = []
            recommendations = await check_candidates(run, candidates, evidence, rows, hypothetical,
                                                      max_build_rows, notes, workload_queries(patterns), checked,
                                                      build=build)
            recommendations, workload = await choose_set(run, checked, patterns, evidence, rows, run.hypopg,
                                                          max_build_rows, widths)
        add_query_problems(evidence, recommendations, problems)
        keep_needed(problems, entries, tables, evidence, owner_column)
    else:
        # Without a database only the foreign keys are certain; a query pattern's index is a question of
        # data and costs, so it is named in the notes rather than recommended.
        recommendations = [unchecked(c, "not checked: no database connection (spec-only mode)")
                           for c in candidates if c.fk is not None]
        notes += [f"{c.table.name}: {', '.join(repr(p.description) for p in c.patterns)} would want "
                  f"({', '.join(show_column(x) for x in c.columns)}), which no index in the spec gives; connect a "
                  "database with realistic data to measure whether it is worth an index."
                  for c in candidates if c.fk is None]
    attach_evidence(entries, evidence, patterns, tables, problems, owner_column)
    return ExplainIndexesResult(
        source=chosen_source, database=db_schema.source if db_schema else None,
        server_version=run.server_version, tables=[t.qualified_name for t in tables], indexes=entries,
        problems=sorted_problems(problems), recommendations=recommendations, workload=workload, evidence=evidence,
        notes=notes,
        statements=run.statements, round_trips=run.round_trips,
    )


async def _check_callers_queries(run: Run, parsed: list, also: list | None = None) -> None:
    """The caller's queries reach the planner, whose estimates evaluate stable functions
    (``current_setting('app.settings.jwt_secret')::int`` would print the secret in an error): they
    pass run_scoped_query's allowlist, as PostgreSQL itself resolves them, first (one round trip).

    ``also``: statements of session.py (the catalog reads) sent in the same write, after the check's own
    and with its settings reset (its transaction is rolled back anyway); each gets its rows, or keeps
    None if it did not run (the caller then sends it again)."""
    from ..database.pipeline import run_batch
    from ..sqlsafe import QueryRefused
    from ..sqlsafe.resolved import ResolutionFailed, resolve

    if not parsed:
        return
    run.round_trips += 1
    run.statements += len(parsed) + 4
    also = also or []
    extra = [("RESET statement_timeout", ()), ("RESET search_path", ())] if also else []
    extra += [(s.sql, s.params or ()) for s in also]  # run_batch statements already ($1 placeholders)

    async def batch(conn, statements, **kwargs):
        results = await run_batch(conn, [*statements, *extra], **kwargs)
        for s, r in zip(also, results[len(statements) + 2:], strict=True):
            if r.error is None and not r.aborted:
                s.rows, s.columns = list(r.rows), [name for name, _ in r.columns]
        return results[:len(statements)]

    run.statements += len(extra)
    assert run.conn is not None  # opened before any query is checked
    try:
        await resolve(run.conn, [(q.sql, [0] * q.params) for q in parsed], run_batch=batch if also else run_batch,
                      caller_setting="", timeout_ms=max(run.lock_timeout_ms, 2000))
    except ResolutionFailed as exc:
        raise ExplainError(f"The query {parsed[exc.index].sql!r} cannot be planned on this database: "
                           f"{getattr(getattr(exc.error, 'diag', None), 'message_primary', None) or exc.error}. "
                           "Pass queries the app really runs against this schema.") from None
    except QueryRefused as exc:
        raise ExplainError(f"A query was refused: {exc.finding.message} {exc.finding.fix or ''}".strip(),
                           rule_id=exc.rule) from None


def _check_source(source: str | None, spec: Schema | None, conn: psycopg.AsyncConnection | None) -> Source:
    if source is None:
        if conn is not None:
            return "both" if spec is not None else "database"
        if spec is None:
            raise ExplainError("Nothing to explain: pass a spec, a database connection, or both.",
                               rule_id="spec-unreadable")
        return "spec"
    if source not in ("spec", "database", "both"):
        raise ExplainError(f"source must be 'spec', 'database' or 'both', not {source!r}.")
    if source in ("database", "both") and conn is None:
        raise ExplainError(f"source={source!r} needs a reachable database; none is configured. "
                           "Pass source='spec' to explain the spec alone.", rule_id="database-unavailable")
    if source in ("spec", "both") and spec is None:
        raise ExplainError(f"source={source!r} needs a spec; none was found. Pass source='database'.",
                           rule_id="spec-unreadable")
    return source  # type: ignore[return-value]


