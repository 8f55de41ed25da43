"""Evidence: EXPLAIN of each query pattern (generic plans on PostgreSQL 16+, PREPARE before), summarised
into which index the planner chose and why.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from ..database.queries import query
from .model import (
    SMALL_TABLE_ROWS,
    STATEMENT_TIMEOUT_MS,
    ColumnShape,
    ExplainError,
    PlanSummary,
    QueryEvidence,
    ScanChoice,
)
from .patterns import Pattern, show_column
from .session import Run, Stmt, TxError

# ---------------------------------------------------------------------------------------------------
# Evidence: EXPLAIN of each pattern


def summarize_plan(plan: Any) -> PlanSummary:
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


def plan_statements(run: Run, sql: str, params: int) -> tuple[list[Stmt], int, str]:
    """The statements that plan one query, which of them returns the plan, and how it is planned.

    Parameters get a generic plan: ``EXPLAIN (GENERIC_PLAN)`` on 16+, else PREPARE / EXPLAIN EXECUTE
    with NULLs / DEALLOCATE, all three inside the caller's one transaction (so through a transaction-mode
    pooler they reach the same server session), under ``plan_cache_mode = force_generic_plan`` (set by
    the caller with :func:`settings_statement`).
    """
    if params == 0:
        return [Stmt(f"EXPLAIN (FORMAT JSON) {sql}")], 0, _PLANNED_HOW["plain"]
    if run.generic:
        return [Stmt(f"EXPLAIN (FORMAT JSON, GENERIC_PLAN) {sql}")], 0, _PLANNED_HOW["generic"]
    name = run.statement_name()
    nulls = ", ".join(["NULL"] * params)
    return ([Stmt(f"PREPARE {name} AS {sql}", prepared=name),
             Stmt(f"EXPLAIN (FORMAT JSON) EXECUTE {name} ({nulls})"),
             Stmt(f"DEALLOCATE {name}", deallocates=name)], 1, _PLANNED_HOW["prepared"])


#: Up to this many patterns, every bigger table's forced plan is planned with the chosen ones (one round
#: trip, at most twice the planning); past it, only those the chosen plans show are wanted (two).
_GUESS_FORCED_UP_TO = 200


def settings_statement(values: dict[str, str]) -> Stmt:
    """All the SET LOCALs of a transaction in one statement (``set_config(..., true)``)."""
    calls = ", ".join(["set_config(%s, %s, true)"] * len(values))
    return Stmt(f"SELECT {calls}", [x for kv in values.items() for x in kv])


def error_message(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).strip()


async def gather_evidence(run: Run, patterns: list[Pattern], rows: dict[str, float | None],
                           notes: list[str], raise_for_caller: bool,
                           widths: dict[str, dict[str, int]] | None = None,
                           shapes: dict | None = None) -> list[QueryEvidence]:
    """Plan every pattern in one READ ONLY transaction, sent as one pipeline: one round trip.

    First each pattern as the planner chooses, then (after ``enable_seqscan = off`` for the rest of the
    transaction) again for the nearly empty tables, where the forced plan is always wanted, and for the
    bigger ones, whose forced plan is wanted when the chosen plan scans the table sequentially (kept
    only then; past :data:`_GUESS_FORCED_UP_TO` patterns those are planned in one more round trip,
    once the chosen plans say which). The EXPLAINs need no savepoints: a plan is computed, never executed.
    Should one fail (a caller's or the spec's SQL that does not fit the database), the transaction is rolled back, that
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
    width_stmt: Stmt | None = None
    if widths is not None:  # the columns' average widths (pg_stats), for the WAL estimate of a new index
        width_stmt = Stmt(query("column_widths.sql"), [sorted({p.table.qualified_name for p in patterns})])
    while todo_chosen or todo_forced:
        body = [settings_statement(base)]
        if width_stmt is not None and width_stmt.rows is None:
            body.append(width_stmt)
        jobs: list[tuple[int, bool, int, int, str]] = []  # pattern, forced, first statement, plan statement, how

        # called in this pass only; its lists are bound explicitly all the same (ruff B023)
        def add(i: int, is_forced: bool, body: list[Stmt] = body,
                jobs: list[tuple[int, bool, int, int, str]] = jobs) -> None:
            stmts, at, how = plan_statements(run, patterns[i].sql, patterns[i].params)
            jobs.append((i, is_forced, len(body), len(body) + at, how))
            body.extend(stmts)

        for i in todo_chosen:
            add(i, False)
        # A bigger table's forced plan is wanted only if its chosen plan scans it sequentially, which is
        # known only once the plans come back: planned in the same write (a plan costs far less than a
        # round trip), then kept only where wanted, so the answer is as if asked afterwards.
        guessed = [i for i in todo_chosen if not small[i] and i not in forced] \
            if len(todo_chosen) <= _GUESS_FORCED_UP_TO else []
        want_forced = list(dict.fromkeys(todo_forced + [i for i in todo_chosen if small[i]] + guessed))
        if want_forced:
            body.append(settings_statement({"enable_seqscan": "off"}))
            for i in want_forced:
                add(i, True)
        failure: TxError | None = None
        try:
            await run.transactions([body])
        except TxError as exc:
            failure = exc
        for i, is_forced, _, at, how in jobs:
            plan_rows = body[at].rows
            if plan_rows is None:
                continue
            plan = summarize_plan(json.loads(plan_rows[0][0]))
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
            message = error_message(failure.error)
            if raise_for_caller and patterns[i].origin == "caller":
                raise ExplainError(f"The query {patterns[i].sql!r} cannot be planned on this database: "
                                   f"{message}. Fix the SQL (table and column names as in the database).") from None
            failed[i] = message
        if width_stmt is not None and width_stmt.rows is not None and widths is not None and not widths:
            for table, column, width, n_distinct, null_frac in width_stmt.rows:
                widths.setdefault(table, {})[column] = int(width)
                if shapes is not None:  # the live statistics a scratch copy reproduces (on_copy.py)
                    shapes.setdefault(table, {})[column] = ColumnShape(float(n_distinct), float(null_frac))
        todo_chosen = [i for i in todo_chosen if i not in chosen and i not in failed]
        todo_forced = [i for i in dict.fromkeys(todo_forced + [i for i in want_forced if i not in guessed])
                       if i not in forced and i not in failed and i not in todo_chosen]
    out: list[QueryEvidence] = []
    for i, p in enumerate(patterns):
        fields: dict[str, Any] = dict(table=p.table.qualified_name, query=p.description, sql=p.sql, origin=p.origin,
                      location=p.location, needs=[show_column(c) for c in p.needs])
        if i in failed:
            out.append(QueryEvidence(**fields, planned_how="not planned", verdict=f"could not be planned: {failed[i]}"))
            continue
        plan, how = chosen[i]
        wanted = small[i] or p.table.name in plan.seq_scans
        extra = forced[i] if wanted else None
        out.append(QueryEvidence(**fields, planned_how=how, chosen=plan, forced=extra,
                                 verdict=_verdict(p, plan, extra, table_rows[i])))
    return out


def _verdict(p: Pattern, chosen: PlanSummary, forced: PlanSummary | None, table_rows: float | None) -> str:
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


