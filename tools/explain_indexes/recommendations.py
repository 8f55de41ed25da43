"""Recommendations: candidate indexes from the patterns no index serves, each tried hypothetically (hypopg,
or a build in a rolled-back transaction) with the cost before and after.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import psycopg

from ..database.ddl import create_index_sql, ident
from ..database.queries import query
from ..schema.model import BETTER_AUTH_TABLES, ForeignKey, Index, IndexColumn, Schema, Table
from ..spec.lint import index_shapes
from .entries import keys_serve, purpose_for_pattern
from .evidence import error_message, plan_statements, settings_statement, summarize_plan
from .model import MIN_COST, MIN_GAIN, SMALL_TABLE_ROWS, STATEMENT_TIMEOUT_MS, QueryCost, QueryEvidence, Recommendation
from .patterns import Pattern, show_column
from .session import Run, Stmt, TxError

# ---------------------------------------------------------------------------------------------------
# Recommendations


@dataclass
class Candidate:
    table: Table
    columns: list[IndexColumn]
    reason: str
    patterns: list[Pattern] = field(default_factory=list)
    fk: ForeignKey | None = None
    name: str | None = None

    @property
    def index(self) -> Index:
        ix = Index(columns=self.columns, name=self.name)
        from ..database.ddl import index_name
        ix.name = index_name(self.table, ix)
        return ix

    def ddl(self, concurrently: bool = True) -> str:
        return create_index_sql(self.table, self.index, concurrently=concurrently)


def _prefix_of(short: list[IndexColumn], long: list[IndexColumn]) -> bool:
    if len(short) > len(long):
        return False
    flips = {a.descending != b.descending for a, b in zip(short, long, strict=False)}
    return all(a.name == b.name for a, b in zip(short, long, strict=False)) and len(flips) <= 1


def candidates_for(tables: list[Table], patterns: list[Pattern], owner: str,
                spec: Schema | None = None) -> list[Candidate]:
    """Indexes the query patterns and foreign keys ask for that no valid index gives them."""
    out: list[Candidate] = []
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
            if any(keys_serve(keys, p)[2] for keys in keysets):
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
                reason = purpose_for_pattern(p.needs, p) or f"serves: {p.description}"
            out.append(Candidate(t, list(p.needs), reason, [p], p.fk))
    merged: list[Candidate] = []
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


def unchecked(c: Candidate, why: str) -> Recommendation:
    return Recommendation(table=c.table.qualified_name, ddl=c.ddl(), reason=c.reason,
                          serves=[p.description for p in c.patterns], checked_how=why, notes=[CONCURRENTLY_NOTE])


CONCURRENTLY_NOTE = ("CREATE INDEX CONCURRENTLY cannot run inside a transaction block: run it on its own "
                      "(Alembic: inside op.get_context().autocommit_block()). If it fails it leaves an INVALID "
                      "index behind: drop it and retry.")


async def check_candidates(run: Run, candidates: list[Candidate], evidence: list[QueryEvidence],
                            rows: dict[str, float | None], hypothetical: bool, max_build_rows: int,
                            notes: list[str], workload: list[tuple[str, int]] | None = None,
                            checked: list[Checked] | None = None, build: bool = True) -> list[Recommendation]:
    """Each candidate checked on its own (its patterns' costs before and after, and, in the same
    transaction, every query of ``workload``); the ones worth it are returned, and listed in ``checked``
    with what their check measured."""
    if not candidates:
        return []
    by_sql = {(e.table, e.sql): e for e in evidence}
    hypopg = run.hypopg if hypothetical else "absent"
    no_build = hypothetical and hypopg != "installed" and not build
    if run.copy_how:
        pass  # on a scratch copy: on_copy.py says how, and builds there lock nobody
    elif no_build:
        notes.append("hypopg is not created in this database, and checking a candidate without it means building "
                     "the index for real inside a rolled-back transaction (a SHARE lock that blocks writes to the "
                     "table while it builds): not done without build=true. CREATE EXTENSION hypopg (Neon supports "
                     "it) checks them without building anything.")
    elif hypothetical and hypopg == "absent":
        notes.append("hypopg is not available on this server: candidate indexes are checked by building them "
                     "inside a transaction that is rolled back (small tables only, under a lock timeout).")
    elif hypothetical and hypopg == "available":
        notes.append("hypopg is available on this server but not created in this database, and explain_indexes "
                     "does not create extensions: candidate indexes are checked by building them inside a "
                     "transaction that is rolled back (small tables only, under a lock timeout). Run CREATE "
                     "EXTENSION hypopg (Neon supports it) to check them without building anything or locking.")
    # Decide for every candidate first, check the ones to check together, then judge them in order.
    decided: list[tuple[Candidate, Recommendation | None, str | None]] = []  # candidate, rec, note
    to_check: list[_Trial] = []
    for c in candidates:
        before = [(p, by_sql.get((c.table.qualified_name, p.sql))) for p in c.patterns]
        table_rows = rows.get(c.table.qualified_name)
        small = table_rows is not None and table_rows < SMALL_TABLE_ROWS
        rec = unchecked(c, "")
        rec.cost_basis = ("plans with enable_seqscan=off (the table is too small for the planner's own choice to "
                          "mean anything)" if small else "the planner's estimates with the table's real statistics")
        if run.copy_how:
            rec.cost_basis += " on the scratch copy (synthetic rows shaped like the live statistics)" if small else \
                " (row counts, distinct values and NULLs) reproduced on the scratch copy with synthetic rows"
            rec.cost_basis = rec.cost_basis.replace("the table's real statistics", "the table's live statistics")
        rec.queries = [QueryCost(query=p.description, cost_before=_cost(ev, small), cost_after=None)
                       for p, ev in before if ev is not None and ev.chosen is not None]
        rec.cost_before = sum(q.cost_before for q in rec.queries) if rec.queries else None
        if c.fk is None and small:
            decided.append((c, None, f"{c.table.name}: {', '.join(repr(p.description) for p in c.patterns)} would "
                            f"want ({', '.join(show_column(x) for x in c.columns)}), which no index gives; "
                            f"{c.table.name} "
                            f"holds about {int(table_rows or 0)} rows, too few for costs to tell whether it is worth "
                            "it. Re-run on production-like data (a Neon branch) before adding it."))
            continue
        if c.fk is None and rec.cost_before is not None and rec.cost_before < MIN_COST:
            decided.append((c, None, f"{c.ddl(False)} not tried: the queries it would serve are already cheap "
                                     f"(cost {rec.cost_before:.1f} < {MIN_COST:.0f})."))
            continue
        if not hypothetical:
            rec.checked_how = "not checked: hypothetical=false"
        elif no_build:
            rec.checked_how = "not checked: needs hypopg, or build=true (a rolled-back build that blocks writes)"
        elif hypopg != "installed" and table_rows is not None and table_rows > max_build_rows:
            rec.checked_how = (f"not checked: {c.table.name} holds about {int(table_rows)} rows, over "
                               f"max_build_rows={max_build_rows}; building it to test would block writes too long. "
                               "Install hypopg (CREATE EXTENSION hypopg; Neon supports it) or test on a branch.")
        else:
            await run.note(f"checking {c.ddl(False)}")
            to_check.append(_Trial(c, rec, small, workload=list(workload or [])))
        decided.append((c, rec, None))
    await _check_all(run, to_check, hypopg)
    trial_of = {id(t.rec): t for t in to_check}
    out: list[Recommendation] = []
    for c, recommendation, note in decided:
        if recommendation is None:
            notes.append(note or "")
            continue
        if recommendation.cost_after is not None and recommendation.cost_before is not None and c.fk is None \
                and recommendation.cost_after > recommendation.cost_before * (1 - MIN_GAIN):
            notes.append(f"{c.ddl(False)} was checked ({recommendation.checked_how}) and dropped: cost "
                         f"{recommendation.cost_before:.1f} -> {recommendation.cost_after:.1f} is not a gain of "
                         f"{MIN_GAIN:.0%}.")
            continue
        out.append(recommendation)
        if checked is not None:
            t = trial_of.get(id(recommendation))
            checked.append(Checked(c, recommendation, t.costs if t else None, t.small if t else False))
    return out


@dataclass
class Checked:
    """A candidate worth adding, its recommendation, and the workload's costs with it alone."""

    c: Candidate
    rec: Recommendation
    costs: dict[str, float] | None
    small: bool


def _cost(ev: QueryEvidence, small: bool) -> float:
    plan = ev.forced if small and ev.forced is not None else ev.chosen
    assert plan is not None
    return plan.total_cost


@dataclass
class _Trial:
    """One candidate index to check, and the statements of its transaction once built."""

    c: Candidate
    rec: Recommendation
    small: bool
    body: list[Stmt] = field(default_factory=list)
    trial: str = ""
    create_at: int = 0
    plans_at: list[int] = field(default_factory=list)
    workload: list[tuple[str, int]] = field(default_factory=list)  # the workload's queries (sql, params)
    workload_at: dict[str, int] = field(default_factory=dict)
    size_at: int | None = None
    costs: dict[str, float] | None = None  # the workload's cost per query with this index alone


_HYPOPG_RESET = query("hypopg_reset.sql")


def _trial_body(run: Run, t: _Trial, use_hypopg: bool) -> None:
    """BEGIN (added by the caller), timeouts, the hypothetical index, the plans after it, ROLLBACK.

    With hypopg the body ends with ``hypopg_reset()``: its indexes live in the session, not the
    transaction, and would outlive the ROLLBACK.
    """
    t.trial = f"explain_indexes_trial_{time.monotonic_ns() % 10**9}"
    build = create_index_sql(t.c.table, t.c.index.model_copy(update={"name": t.trial}))
    t.body = [settings_statement({"lock_timeout": f"{run.lock_timeout_ms}ms",
                         "statement_timeout": f"{STATEMENT_TIMEOUT_MS}ms"})]
    t.create_at = len(t.body)
    if use_hypopg:
        t.body.append(Stmt(query("hypopg_create_index.sql"), (build.rstrip(";"),), undo_after_failure=_HYPOPG_RESET))
    else:
        t.body.append(Stmt(build))
        t.size_at = len(t.body)
        t.body.append(Stmt(query("relation_size.sql"), (f"{ident(t.c.table.schema_name)}.{ident(t.trial)}",)))
    after = ({"enable_seqscan": "off"} if t.small else {}) | ({} if run.generic
                                                               else {"plan_cache_mode": "force_generic_plan"})
    if after:
        t.body.append(settings_statement(after))
    t.plans_at = []
    for _q, p in zip(t.rec.queries, list(t.c.patterns), strict=False):
        stmts, at, _ = plan_statements(run, p.sql, p.params)
        t.plans_at.append(len(t.body) + at)
        t.body.extend(stmts)
    t.workload_at = {}
    for sql, params in t.workload:
        stmts, at, _ = plan_statements(run, sql, params)
        t.workload_at[sql] = len(t.body) + at
        t.body.extend(stmts)
    if use_hypopg:
        t.body.append(Stmt(_HYPOPG_RESET))


async def _check_all(run: Run, trials: list[_Trial], hypopg: str) -> None:
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
        failure: TxError | None = None
        try:
            await run.transactions([t.body for t in group])
        except TxError as exc:
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
            _trial_done(t, use_hypopg, elapsed_ms, run.copy_how)
        pending = retry + pending[len(group):]


def _trial_done(t: _Trial, use_hypopg: bool, elapsed_ms: float, copy_how: str | None = None) -> None:
    rec, trial = t.rec, t.trial
    if use_hypopg:
        created = t.body[t.create_at].rows
        assert created is not None
        rec.size_bytes, trial = int(created[0][0]), created[0][1]
    else:
        sized = t.body[t.size_at].rows if t.size_at is not None else None
        rec.size_bytes = int(sized[0][0]) if sized else None
    if copy_how:
        rec.notes.append("Built on the scratch copy (our embedded PostgreSQL), in a transaction that was rolled back "
                         "and a database that was dropped: nothing was built or locked on your database; the size "
                         "is the copy's.")
    elif not use_hypopg:
        rec.notes.append(f"Built for real inside a transaction that was rolled back: this held a SHARE lock "
                         f"on {t.c.table.name} (writes blocked, reads fine) for at most {elapsed_ms:.0f} ms "
                         "(build, plans and rollback); nothing was kept but the table's page and "
                         "visibility counts in pg_class, which PostgreSQL refreshes in place on any build.")
    for q, at in zip(rec.queries, t.plans_at, strict=False):
        plan_rows = t.body[at].rows
        assert plan_rows is not None
        plan = summarize_plan(json.loads(plan_rows[0][0]))
        q.cost_after = plan.total_cost
        q.uses_new_index = any(trial in n for n in plan.indexes)
    rec.checked_how = "hypopg" if use_hypopg else (copy_how or "transaction")
    t.costs = {}
    for sql, at in t.workload_at.items():
        plan_rows = t.body[at].rows
        if plan_rows is not None:
            t.costs[sql] = summarize_plan(json.loads(plan_rows[0][0])).total_cost
    after = [q.cost_after for q in rec.queries if q.cost_after is not None]
    rec.cost_after = sum(after) if after and len(after) == len(rec.queries) else None
    if rec.queries and not any(q.uses_new_index for q in rec.queries):
        rec.notes.append("The planner did not choose the candidate for any of these queries.")


def _trial_failed(run: Run, t: _Trial, error: psycopg.Error, elapsed_ms: float) -> None:
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
        rec.checked_how = f"not checked: {error_message(error)}"
