"""Problems: the static index rules shared with spec.lint, plus what only a live database can tell
(unused, invalid, spec and database disagreeing).
"""

from __future__ import annotations

from ..database.catalog import IndexStats
from ..database.ddl import create_index_sql, ident
from ..schema.findings import SEVERITY_RANK, Finding
from ..schema.model import Location, Schema, Table
from ..spec.lint import INDEX_RULE_IDS, index_shapes, lint_schema
from .entries import shape_key
from .model import QueryEvidence, Recommendation
from .patterns import show_column

# ---------------------------------------------------------------------------------------------------
# Problems


def _finding(rule: str, severity: str, message: str, obj: str | None, loc: Location | None,
             fix: str | None) -> Finding:
    return Finding(rule=rule, severity=severity, message=message, object=obj, location=loc, fix=fix)  # type: ignore[arg-type]


def static_problems(schema: Schema, tables: list[Table], owner: str) -> list[Finding]:
    """The lint rules about indexes (one definition of covered / redundant / duplicate, in lint.py)."""
    names = {t.qualified_name for t in tables}
    scoped = schema.model_copy(update={"tables": [t for t in schema.tables if t.qualified_name in names
                                                  or t.name in ("users", "user")]})
    return [f for f in lint_schema(scoped, owner_column=owner) if f.rule in INDEX_RULE_IDS]


def live_problems(tables: list[Table], db: Schema, stats: dict[str, IndexStats], notes: list[str]) -> list[Finding]:
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
                    "it but every write still maintains it.", f"{t.name}.{ix.name}", loc,
                    f"DROP INDEX CONCURRENTLY {ident(ix.name or '')}; then "
                    f"{create_index_sql(t, ix, concurrently=True)} (outside a transaction)"))
                continue
            st = stats.get(f"{t.schema_name}.{ix.name}")
            if st is None or ix.unique or ix.primary or ix.constraint or st.idx_scan > 0:
                continue
            out.append(_finding(
                "unused-index", "info",
                f"{ix.name} on {t.name} has had 0 scans {since} ({_size(st.size_bytes)}); each write to "
                f"{t.name} still updates it.", f"{t.name}.{ix.name}", loc,
                f"If no query needs it over a full business cycle: DROP INDEX CONCURRENTLY {ident(ix.name or '')};"
                " (on Neon the counters restart when the compute suspends: check stats_reset first)"))
    return out


def spec_vs_database(tables: list[Table], spec: Schema, db: Schema) -> list[Finding]:
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
        db_shapes = [shape_key(s) for s in index_shapes(t)]
        for s in index_shapes(spec_t):
            if shape_key(s) in db_shapes or s.source is None:
                continue
            ix = s.source
            same_name = next((i for i in t.indexes if ix.name and i.name == ix.name), None)
            what = (f"the database's {ix.name} has another definition "
                    f"({', '.join(show_column(c) for c in same_name.columns)})"
                    if same_name else "the database has no index like it")
            out.append(_finding(
                "index-missing-in-database", "warning",
                f"The spec declares {ix.name or 'an index'} on {t.name} "
                f"({', '.join(show_column(c) for c in ix.columns)}), but {what}.",
                f"{t.name}.{ix.name}" if ix.name else t.name, ix.location,
                (f"DROP INDEX CONCURRENTLY {ident(same_name.name or '')}; " if same_name else "")
                + create_index_sql(t, ix, concurrently=True)
                + " -- outside a transaction (Alembic: op.get_context().autocommit_block())"))
        spec_shapes = [shape_key(s) for s in index_shapes(spec_t)]
        for ix in t.indexes:
            if shape_key(ix) in spec_shapes or not ix.valid:
                continue
            out.append(_finding(
                "index-missing-in-spec", "info",
                f"{ix.name} on {t.name} ({', '.join(show_column(c) for c in ix.columns)}) is in the database but not "
                "in the spec.", f"{t.name}.{ix.name}", Location(file="database"),
                f"Add it to the Indexes table of '## Table: {t.name}' with the query it serves, or drop it: "
                f"DROP INDEX CONCURRENTLY {ident(ix.name or '')};"))
    return out


def add_query_problems(evidence: list[QueryEvidence], recs: list[Recommendation], problems: list[Finding]) -> None:
    for r in recs:
        if r.cost_before is None or r.checked_how.startswith("not checked"):
            continue
        if r.cost_after is not None and r.cost_after < r.cost_before:
            problems.append(_finding(
                "query-not-served", "warning",
                f"No index on {r.table.rpartition('.')[2]} fully serves {', '.join(repr(s) for s in r.serves)}: "
                f"estimated cost {r.cost_before:.1f}, {r.cost_after:.1f} with the recommended index.",
                r.table.rpartition(".")[2], None, r.ddl))


def sorted_problems(problems: list[Finding]) -> list[Finding]:
    unique = {(f.rule, f.object, f.message): f for f in problems}
    return sorted(unique.values(), key=lambda f: (SEVERITY_RANK[f.severity], f.object or "", f.rule, f.message))


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def table_row_count(t: Table, stats: dict[str, IndexStats]) -> float | None:
    st = next((s for s in stats.values() if s.schema_name == t.schema_name and s.table_name == t.name), None)
    return st.table_rows if st else None




def keep_needed(problems: list[Finding], entries: list, tables: list[Table], evidence: list[QueryEvidence],
                 owner: str) -> None:
    """Never advise dropping an index the house rules need or the planner chose in this very result.

    ``unused-index`` is not reported for an index covering a foreign key (the owner's included: every
    per-user query and the ON DELETE CASCADE need it) nor for one a plan here uses (its scan counter
    was reset, or the traffic has not reached it yet). Another rule's DROP advice for an index the
    planner chose is replaced by a keep, naming the query.
    """
    chosen: dict[str, str] = {}
    for ev in evidence:
        for name in ev.chosen.indexes if ev.chosen else []:
            chosen.setdefault(f"{ev.table.rpartition('.')[2]}.{name}", ev.query)
    needed: dict[str, str] = {}
    for t in tables:
        for ix in t.indexes:
            names = [c.name for c in ix.columns]
            for fk in t.foreign_keys:
                if ix.valid and ix.where is None and sorted(names[: len(fk.columns)]) == sorted(fk.columns):
                    needed[f"{t.name}.{ix.name}"] = (
                        f"it covers {owner}: every per-user query and the ON DELETE CASCADE from users use it"
                        if fk.columns == [owner] else
                        f"it covers the foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}")
    keep: list[Finding] = []
    for f in problems:
        obj = f.object or ""
        if f.rule == "unused-index" and (obj in needed or obj in chosen):
            continue
        if f.fix and "DROP INDEX" in f.fix and obj in chosen and f.rule != "invalid-index":
            name = obj.partition(".")[2]
            f = f.model_copy(update={"fix": f"Keep {name} for now: the planner chose it for {chosen[obj]!r} in this "
                                            "result. Drop it only once the plans no longer use it."})
        keep.append(f)
    problems[:] = keep
