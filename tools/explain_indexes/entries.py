"""One entry per index: what it is, where it is declared, and which purposes its columns serve."""

from __future__ import annotations

from typing import Any

from ..database.catalog import IndexStats
from ..database.ddl import create_index_sql
from ..schema.findings import Finding
from ..schema.model import Index, IndexColumn, Schema, Table
from ..spec.lint import IndexShape, covers_columns, index_shapes, norm_where
from .model import IndexEntry, PlanSummary, QueryEvidence
from .patterns import Pattern, show_column

# ---------------------------------------------------------------------------------------------------
# Index entries and purposes


def index_entries(tables: list[Table], spec: Schema | None, db: Schema | None,
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
            if db is not None and spec is not None and spec_t is not None:  # spec_t is in spec
                twin = _spec_twin(spec_t, ix)
                if twin is not None:
                    declared.insert(0, str(twin.location or spec.source or "spec") if isinstance(twin, Index)
                                    else f"{spec.source or 'spec'} (implied by {twin})")
                    reason = twin.reason if isinstance(twin, Index) else None
            st = stats.get(f"{t.schema_name}.{name}")
            entries.append(IndexEntry(
                table=t.qualified_name, name=name, definition=create_index_sql(t, ix.model_copy(update={"name": name})),
                columns=[show_column(c) for c in ix.columns], method=ix.method, unique=ix.unique or ix.primary,
                primary=ix.primary, include=list(ix.include), where=ix.where, constraint=ix.constraint,
                valid=ix.valid, declared_in=declared or ["database" if db is not None else "spec"],
                spec_reason=reason, size_bytes=st.size_bytes if st else None, idx_scan=st.idx_scan if st else None,
                purposes=[], evidence=[],
            ))
    return entries


def _default_name(t: Table, ix: Index) -> str:
    from ..database.ddl import index_name
    return index_name(t, ix)


def shape_key(ix: Index | IndexShape) -> tuple[Any, ...]:
    if isinstance(ix, Index):
        keys = tuple((c.name, c.descending) for c in ix.columns)
        return keys, ix.method, _norm_pred(ix.where), ix.unique or ix.primary, tuple(sorted(ix.include))
    keys = tuple((k[0], k[2]) for k in ix.keys)
    return keys, ix.method, _norm_pred(ix.where), ix.unique, tuple(sorted(ix.include))


def _norm_pred(where: str | None) -> str | None:
    if where is None:
        return None
    from ..database.expressions import norm_expr
    try:
        return norm_expr(where)
    except Exception:  # an expression norm_expr cannot parse: compare it as text
        return norm_where(where)


def _spec_twin(spec_t: Table, ix: Index) -> Index | str | None:
    """The spec's index with the same shape (or the PK/UNIQUE constraint implying it)."""
    shape = shape_key(ix)
    for s in index_shapes(spec_t):
        if shape_key(s) == shape:
            if s.source is not None:
                return s.source
            what = "PRIMARY KEY" if s.primary else "UNIQUE"
            return f"{what} ({', '.join(s.names)})"
    return None


def keys_serve(keys: list[IndexColumn], p: Pattern) -> tuple[int, bool, bool]:
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


def purpose_for_pattern(keys: list[IndexColumn], p: Pattern) -> str | None:
    k, ordered, full = keys_serve(keys, p)
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
        shown = ", ".join(show_column(c) for c in sort)
        parts.append(f"then rows already in {shown} order" if ordered else f"then a sort on {shown}")
    return f"serves: {p.description} ({'; '.join(parts)})"


def attach_evidence(entries: list[IndexEntry], evidence: list[QueryEvidence], patterns: list[Pattern],
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
            any(keys_serve(k, p)[2] for k in keysets)
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
                        keys_serve(keys, p)[2] or id(p) not in served.get(e.table, set())):
                    if (text := purpose_for_pattern(keys, p)) is not None:
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
        here = f"{e.table.rpartition('.')[2]}.{e.name}"  # problems name an index as "table.index"
        e.problems = sorted({f.rule for f in problems if f.object == here})


def _has_order(ev: QueryEvidence) -> bool:
    return "ORDER BY" in ev.sql.upper()


def _describe_choice(plan: PlanSummary | None, table: str) -> str:
    if plan is None:
        return "nothing (planning failed)"
    mine = [s for s in plan.scans if s.table == table]
    if any(s.node == "Seq Scan" for s in mine):
        return "a sequential scan"
    return ", ".join(n for s in mine for n in s.indexes) or "another plan"


