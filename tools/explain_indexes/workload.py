"""One set of indexes for the whole workload, proved together.

Each candidate was checked on its own (recommendations.py). Two candidates on one table often want the
same leading columns, and one index then serves both; a candidate may be worth nothing once another is
there. So the candidates worth adding are checked together, as a set, on every query of the workload
(each distinct query explained, the foreign-key lookups aside), and the set is reduced step by step:

* **merge** two candidates of one table that share their leading column(s) into one index: the shared
  prefix, then the rest of one, then what the other adds (both orders tried);
* **leave out** a candidate (never one covering a foreign key: the house rule) when the others serve;
* on PostgreSQL 18+ (skip scan) a lone candidate whose leading column is a later key of an existing index
  is tried without, as the existing index may serve it.

A step is taken when the workload's cost stays within :data:`WORKLOAD_TOLERANCE` of the best set seen;
among those, the one with the fewest indexes, then the smallest size. Each set is checked as the
candidates were: with hypopg every set of a round goes in one round trip (nothing built, no lock);
without it, each set is built in a transaction that is rolled back (tables under ``max_build_rows``
only), one round trip each. A set of one candidate needs no new check: its own transaction already
planned the whole workload.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..database.ddl import create_index_sql, ident
from ..database.queries import query
from ..schema.model import IndexColumn, Table
from .evidence import plan_statements, settings_statement, summarize_plan
from .model import (
    SKIP_SCAN_MIN_VERSION,
    STATEMENT_TIMEOUT_MS,
    WORKLOAD_TOLERANCE,
    QueryCost,
    QueryEvidence,
    Recommendation,
    WorkloadCost,
)
from .patterns import Pattern, show_column
from .recommendations import CONCURRENTLY_NOTE, Candidate, Checked
from .session import Run, Stmt, TxError

_HYPOPG_RESET = query("hypopg_reset.sql")
_MAX_BUILT_SETS = 12  # without hypopg each set is a real (rolled-back) build


def workload_queries(patterns: list[Pattern]) -> list[tuple[str, int]]:
    """Every distinct query explained, the foreign keys' lookups aside (those are covered by rule)."""
    return list(dict.fromkeys((p.sql, p.params) for p in patterns if p.origin != "foreign key"))


def _before(workload: list[tuple[str, int]], evidence: list[QueryEvidence], small: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for sql, _ in workload:
        ev = next((e for e in evidence if e.sql == sql and e.chosen is not None), None)
        if ev is not None and ev.chosen is not None:
            plan = ev.forced if small and ev.forced is not None else ev.chosen
            out[sql] = plan.total_cost
    return out


def _key(c: Candidate) -> tuple[str, tuple[tuple[str, bool], ...]]:
    return c.table.qualified_name, tuple((x.name, x.descending) for x in c.columns)


def _merges(a: Candidate, b: Candidate) -> list[Candidate]:
    """One index for both: the shared leading columns, then the rest of one, then what the other adds."""
    p = 0
    while p < min(len(a.columns), len(b.columns)) and a.columns[p].name == b.columns[p].name:
        p += 1
    if p == 0:
        return []
    out: list[Candidate] = []
    for first, second in ((a, b), (b, a)):
        cols = list(first.columns)
        cols += [x for x in second.columns[p:] if x.name not in {y.name for y in cols}]
        if [(x.name, x.descending) for x in cols] in ([(x.name, x.descending) for x in y.columns] for y in (a, b)):
            continue
        m = Candidate(a.table, cols, f"one index for both: {_cols(a.columns)} and {_cols(b.columns)} share "
                       f"their leading {_cols(a.columns[:p])}", a.patterns + b.patterns, a.fk or b.fk)
        if all(_key(m) != _key(o) for o in out):
            out.append(m)
    return out


def _cols(cols: list[IndexColumn]) -> str:
    return "(" + ", ".join(show_column(c) for c in cols) + ")"


def _skip_scan_table(run: Run, c: Candidate) -> bool:
    if (run.server_version or 0) < SKIP_SCAN_MIN_VERSION or not c.columns:
        return False
    lead = c.columns[0].name
    return any(ix.valid and ix.method == "btree" and ix.where is None and
               lead in [x.name for x in ix.columns[1:]] for ix in c.table.indexes)


@dataclass
class _Eval:
    members: list[Candidate]
    costs: dict[str, float] | None = None  # per query; None: not checked
    sizes: list[int | None] | None = None
    error: str | None = None

    @property
    def total(self) -> float | None:
        return None if self.costs is None else sum(self.costs.values())

    @property
    def size(self) -> int:
        return sum(s or 0 for s in self.sizes or [])


def _body(run: Run, ev: _Eval, workload: list[tuple[str, int]], small: bool, use_hypopg: bool,
          k: int) -> tuple[list[Stmt], list[int], dict[str, int]]:
    body = [settings_statement({"lock_timeout": f"{run.lock_timeout_ms}ms",
                                "statement_timeout": f"{STATEMENT_TIMEOUT_MS}ms"}
                      | ({"enable_seqscan": "off"} if small else {})
                      | ({} if run.generic else {"plan_cache_mode": "force_generic_plan"}))]
    sizes_at: list[int] = []
    for i, c in enumerate(ev.members):
        name = f"explain_indexes_set_{time.monotonic_ns() % 10**6}_{k}_{i}"
        build = create_index_sql(c.table, c.index.model_copy(update={"name": name}))
        if use_hypopg:
            sizes_at.append(len(body))
            body.append(Stmt(query("hypopg_create_index.sql"), (build.rstrip(";"),), undo_after_failure=_HYPOPG_RESET))
        else:
            body.append(Stmt(build))
            sizes_at.append(len(body))
            body.append(Stmt(query("relation_size.sql"), (f"{ident(c.table.schema_name)}.{ident(name)}",)))
    plans_at: dict[str, int] = {}
    for sql, params in workload:
        stmts, at, _ = plan_statements(run, sql, params)
        plans_at[sql] = len(body) + at
        body.extend(stmts)
    if use_hypopg:
        body.append(Stmt(_HYPOPG_RESET))
    return body, sizes_at, plans_at


async def _evaluate(run: Run, evals: list[_Eval], workload: list[tuple[str, int]], small: bool,
                    use_hypopg: bool) -> None:
    """The workload planned with each set's indexes: all sets in one round trip with hypopg, else one
    rolled-back build per set."""
    pending = [e for e in evals if e.costs is None and e.error is None]
    while pending:
        group = pending if use_hypopg else pending[:1]
        built = [_body(run, e, workload, small, use_hypopg, k) for k, e in enumerate(group)]
        failure: TxError | None = None
        try:
            await run.transactions([b[0] for b in built])
        except TxError as exc:
            failure = exc
        for k, (e, (body, sizes_at, plans_at)) in enumerate(zip(group, built, strict=True)):
            if failure is not None and k >= failure.body:
                if k == failure.body:
                    e.error = (failure.error.diag.message_primary or str(failure.error)).strip()
                continue
            e.sizes = [int(stmt_rows[0][0]) if (stmt_rows := body[at].rows) else None for at in sizes_at]
            e.costs = {sql: summarize_plan(json.loads(stmt_rows[0][0])).total_cost
                       for sql, at in plans_at.items() if (stmt_rows := body[at].rows)}
        pending = [e for e in evals if e.costs is None and e.error is None]


async def choose_set(run: Run, checked: list[Checked], patterns: list[Pattern], evidence: list[QueryEvidence],
                      rows: dict[str, float | None], hypopg: str, max_build_rows: int,
                      widths: dict[str, dict[str, int]]) -> tuple[list[Recommendation], WorkloadCost | None]:
    """The smallest set of the checked candidates whose workload cost is within a few percent of the best."""
    recs = [k.rec for k in checked]
    workload = workload_queries(patterns)
    if not workload:
        return recs, None
    usable = [k for k in checked if k.rec.checked_how in ("hypopg", "transaction", run.copy_how)]
    # nearly empty tables are compared with enable_seqscan=off, as the candidates were
    small = any(k.small for k in usable)
    before = _before(workload, evidence, small)
    workload = [(sql, n) for sql, n in workload if sql in before]
    result = WorkloadCost(queries=[QueryCost(query=sql, cost_before=before[sql], cost_after=None)
                                   for sql, _ in workload],
                          cost_before=sum(before.values()), checked_how="not checked")
    if not usable:
        result.checked_how = "not checked: no recommendation could be checked hypothetically"
        return recs, result
    use_hypopg = usable[0].rec.checked_how == "hypopg"
    how = "hypopg" if use_hypopg else (run.copy_how or "transaction")
    per_table: dict[str, int] = {}
    for k in usable:
        per_table[k.c.table.qualified_name] = per_table.get(k.c.table.qualified_name, 0) + 1
    searched = {k.c.table.qualified_name for k in usable
                if per_table[k.c.table.qualified_name] > 1 or _skip_scan_table(run, k.c)}
    too_big = not use_hypopg and any((rows.get(k.c.table.qualified_name) or 0) > max_build_rows for k in usable)
    seen: dict[frozenset, _Eval] = {}

    def ev_of(members: list[Candidate]) -> _Eval:
        key = frozenset(_key(c) for c in members)
        if key not in seen:
            seen[key] = _Eval(members)
        return seen[key]

    state = ev_of([k.c for k in usable])
    if len(usable) == 1 and usable[0].costs is not None and usable[0].small == small:
        state.costs, state.sizes = dict(usable[0].costs), [usable[0].rec.size_bytes]
    if len(usable) == 1 and usable[0].costs is not None:
        # the lone index's own transaction planned the whole workload: only an empty set to compare
        seen[frozenset()] = _Eval([], costs=dict(before), sizes=[])
    considered: list[str] = []
    if too_big:
        result.checked_how = (f"not checked: a table is over max_build_rows={max_build_rows} and hypopg is not "
                              "installed, so the set was not built to test it")
        return recs, result
    await _evaluate(run, [state], workload, small, use_hypopg)
    for _round in range(3):
        options = [ev_of(m) for m in _neighbours(state.members, searched)]
        if not use_hypopg and len(seen) + len(options) > _MAX_BUILT_SETS:
            considered.append(f"stopped after {len(seen)} sets: each is a real build without hypopg")
            break
        await _evaluate(run, options, workload, small, use_hypopg)
        best = min(e.total for e in seen.values() if e.total is not None and e.members) if any(
            e.total is not None and e.members for e in seen.values()) else None
        if best is None or state.total is None:
            break
        fine = [e for e in options if e.total is not None and e.total <= best * (1 + WORKLOAD_TOLERANCE) + 1e-9]
        if not fine:
            break
        nxt = min(fine, key=lambda e: (len(e.members), e.size, e.total))
        if (len(nxt.members), nxt.size) >= (len(state.members), state.size):
            break
        considered.append(_step(state, nxt, best))
        state = nxt
    if state.costs is None:
        result.checked_how = f"not checked: {state.error or 'the set could not be planned'}"
        return recs, result
    if len(state.members) > 1 and (use_hypopg or len(seen) + len(state.members) <= _MAX_BUILT_SETS):
        await _evaluate(run, [ev_of([m for m in state.members if m is not c]) for c in state.members], workload,
                        small, use_hypopg)  # each index's worth: the workload without it
    elif len(state.members) == 1:
        seen.setdefault(frozenset(), _Eval([], costs=dict(before), sizes=[]))
    final = _recommendations(state, checked, before, how)
    _hand_over(state, usable, final, before)
    final += [k.rec for k in checked if k not in usable]
    for rec in final:  # each one's worth in the set: the workload without it
        c = next(m for m in state.members if m.ddl() == rec.ddl)
        without = seen.get(frozenset(_key(m) for m in state.members if m is not c))
        rec.workload_cost_without = without.total if without is not None else None
        rec.wal_bytes_per_insert = _wal_per_insert(c, widths)
    result.queries = [QueryCost(query=sql, cost_before=before[sql], cost_after=state.costs.get(sql))
                      for sql, _ in workload]
    result.cost_after = sum(q.cost_after for q in result.queries if q.cost_after is not None)
    result.indexes = len(final)
    result.size_bytes = state.size if state.sizes and all(s is not None for s in state.sizes) else None
    wal: dict[str, int] = {}
    for rec in final:
        if rec.wal_bytes_per_insert is not None:
            wal[rec.table] = wal.get(rec.table, 0) + rec.wal_bytes_per_insert
    result.wal_bytes_per_insert = wal
    result.checked_how = how
    result.considered = considered + [f"{len(seen)} set(s) planned on the whole workload ({len(workload)} "
                                      f"queries); tolerance {WORKLOAD_TOLERANCE:.0%} of the best set's cost"]
    return final, result


def _hand_over(state: _Eval, usable: list[Checked], final: list[Recommendation], before: dict[str, float]) -> None:
    """A candidate left out: its queries are served by an index of the set on the same table (the one
    sharing its leading column, else the first); that recommendation lists them, with their costs in
    the set."""
    kept = {_key(c) for c in state.members}
    for k in usable:
        if _key(k.c) in kept or any(set(map(id, k.c.patterns)) <= set(map(id, m.patterns)) for m in state.members):
            continue
        hosts = [(m, r) for m, r in zip(state.members, final, strict=False) if m.table is k.c.table]
        if not hosts:
            continue
        m, rec = next(((m, r) for m, r in hosts if m.columns[0].name == k.c.columns[0].name), hosts[0])
        m.patterns = m.patterns + k.c.patterns
        for p in k.c.patterns:
            if p.description not in rec.serves:
                rec.serves.append(p.description)
            if p.sql in before and state.costs and p.sql in state.costs and \
                    all(q.query != p.description for q in rec.queries):
                rec.queries.append(QueryCost(query=p.description, cost_before=before[p.sql],
                                             cost_after=state.costs[p.sql]))
        rec.cost_before = sum(q.cost_before for q in rec.queries)
        after = [q.cost_after for q in rec.queries if q.cost_after is not None]
        rec.cost_after = sum(after) if len(after) == len(rec.queries) else None
        rec.notes.append(f"It also serves {', '.join(repr(p.description) for p in k.c.patterns)}: a separate "
                         f"{k.c.ddl(False)} was left out, as the workload's cost with this set is within "
                         f"{WORKLOAD_TOLERANCE:.0%} of the best.")


def _neighbours(members: list[Candidate], searched: set[str]) -> list[list[Candidate]]:
    out: list[list[Candidate]] = []
    for c in members:
        if c.table.qualified_name in searched and c.fk is None:
            out.append([m for m in members if m is not c])
    for i, a in enumerate(members):
        for b in members[i + 1:]:
            if a.table is b.table and a.table.qualified_name in searched:
                for m in _merges(a, b):
                    out.append([x for x in members if x is not a and x is not b] + [m])
    return out


def _step(state: _Eval, nxt: _Eval, best: float) -> str:
    gone = [c for c in state.members if _key(c) not in {_key(m) for m in nxt.members}]
    new = [c for c in nxt.members if _key(c) not in {_key(m) for m in state.members}]
    what = (f"merged {' and '.join(f'{c.table.name} {_cols(c.columns)}' for c in gone)} into {_cols(new[0].columns)}"
            if new else f"left out {', '.join(f'{c.table.name} {_cols(c.columns)}' for c in gone)}")
    return (f"{what}: workload cost {nxt.total:.1f} against {best:.1f} for the best set, "
            f"{len(nxt.members)} index(es), {nxt.size} bytes instead of {state.size}")


def _recommendations(state: _Eval, checked: list[Checked], before: dict[str, float],
                     how: str) -> list[Recommendation]:
    by_key = {_key(k.c): k for k in checked}
    out: list[Recommendation] = []
    for c, size in zip(state.members, state.sizes or [None] * len(state.members), strict=True):
        k = by_key.get(_key(c))
        if k is not None:
            rec = k.rec
        else:  # a merged index: its queries' costs come from the set's plans
            rec = Recommendation(table=c.table.qualified_name, ddl=c.ddl(), reason=c.reason,
                                 serves=list(dict.fromkeys(p.description for p in c.patterns)), checked_how=how,
                                 cost_basis="the whole recommended set, planned together on the workload",
                                 notes=[CONCURRENTLY_NOTE])
            seen: set[str] = set()
            for p in c.patterns:
                if p.sql in before and p.description not in seen and state.costs and p.sql in state.costs:
                    seen.add(p.description)
                    rec.queries.append(QueryCost(query=p.description, cost_before=before[p.sql],
                                                 cost_after=state.costs[p.sql]))
            if rec.queries:
                rec.cost_before = sum(q.cost_before for q in rec.queries)
                rec.cost_after = sum(q.cost_after or 0 for q in rec.queries)
        rec.size_bytes = size if size is not None else rec.size_bytes
        out.append(rec)
    return out


#: A btree leaf insert's WAL record without its tuple: XLogRecord (24) + block reference (4 + 12 + 4)
#: + main data header (2) + xl_btree_insert (2).
_WAL_RECORD = 48


def _wal_per_insert(c: Candidate, widths: dict[str, dict[str, int]]) -> int | None:
    """WAL one INSERT writes into this index: one leaf-insert record carrying the index tuple (8-byte
    header + the keys' average widths, aligned). Page splits and full-page images come on top."""
    table = widths.get(c.table.qualified_name, {})
    data = 0
    for col in c.columns:
        w = table.get(col.name) or _type_width(c.table, col.name)
        data += w
    return _align(_WAL_RECORD + 8 + _align(data))


def _type_width(t: Table, name: str) -> int:
    col = t.column(name)
    fixed = {"boolean": 1, "smallint": 2, "integer": 4, "bigint": 8, "uuid": 16, "date": 4,
             "timestamp with time zone": 8, "timestamp without time zone": 8, "double precision": 8, "real": 4}
    return fixed.get(col.type if col else "", 16)


def _align(n: int) -> int:
    return (n + 7) // 8 * 8

