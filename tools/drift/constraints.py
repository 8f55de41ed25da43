"""Constraint comparators: primary key, foreign keys, unique constraints, CHECKs."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from ..database.ddl import (
    fk_sql,
    ident,
    pk_columns,
)
from ..database.expressions import expr_columns, norm_expr, value_set_of
from ..schema.model import (
    BETTER_AUTH_TABLES,
    Check,
    Column,
    ForeignKey,
    Index,
    Location,
    Table,
    UniqueConstraint,
    location_of,
)
from .core import (
    CONCURRENT_NOTE,
    Aspect,
    Ctx,
    TableGroup,
    alembic_autocommit,
    compare_aspect,
    make_drift,
    side_fix,
    spec_alt,
    table_comparator,
)
from .model import Drift, DriftKind, Fix, SideValue
from .render import model_field, spec_row


@table_comparator
def compare_primary_key(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    a = compare_aspect(tg.key, "primary-key", tg.tables, lambda t: tuple(pk_columns(t)),
                 lambda t: f"({', '.join(pk_columns(t))})" if pk_columns(t) else "none")
    if not a:
        return
    want = pk_columns(tg.tables[a.lead])

    def severity(side: str) -> str:
        return "degraded" if not want else "breaking"

    def fixes(side: str) -> list[Fix]:
        t = tg.tables[side]
        steps = [f"ALTER TABLE {ident(t.name)} DROP CONSTRAINT {ident(t.name + '_pkey')};"] if pk_columns(t) else []
        if want:
            steps += [f"CREATE UNIQUE INDEX CONCURRENTLY {ident(t.name + '_pkey_new')} ON {ident(t.name)} "
                      f"({', '.join(map(ident, want))});",
                      f"ALTER TABLE {ident(t.name)} ADD CONSTRAINT {ident(t.name + '_pkey')} PRIMARY KEY USING INDEX "
                      f"{ident(t.name + '_pkey_new')};"]
        lead = tg.tables[a.lead]
        return side_fix(side, f"Make ({', '.join(want)}) the primary key." if want else "Drop the primary key.",
                        model="\n".join(model_field(lead, c) for c in lead.columns if c.name in want) or None,
                        sql="\n".join(steps),
                        alembic=("op.drop_constraint(" + repr(t.name + "_pkey") + f", {t.name!r}, type_='primary')\n"
                                 if pk_columns(t) else "")
                                + (f"op.create_primary_key({t.name + '_pkey'!r}, {t.name!r}, {want!r})"
                                   if want else ""),
                        locks="PRIMARY KEY ... USING INDEX reuses an index built CONCURRENTLY (outside a "
                              "transaction); columns must be NOT NULL; FKs pointing at the old key must be "
                              "dropped first.")
    yield make_drift(ctx, a, severity, "the primary key", fixes)


def _fk_obj(t: str, cols: tuple[str, ...]) -> str:
    return f"{t}.{cols[0]}" if len(cols) == 1 else f"{t}.({', '.join(cols)})"


@table_comparator
def compare_foreign_keys(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    fks = {s: {tuple(f.columns): f for f in t.foreign_keys} for s, t in tg.tables.items()}
    keys = sorted({k for m in fks.values() for k in m})
    for key in keys:
        obj = _fk_obj(tg.key, key)
        items = {s: fks[s].get(key) for s in tg.tables}
        present = {s: f for s, f in items.items() if f is not None}
        lead, lead_fk = next(iter(present.items()))  # the first side that has it
        lead_t = tg.tables[lead]

        def target(side: str, f: ForeignKey | None) -> tuple[str, tuple[str, ...]] | None:
            return None if f is None else (ctx.ref_table(side, f.ref_table), tuple(f.ref_columns))

        shown = {s: SideValue(value=fk_sql(f) if f is not None else None,
                              location=location_of(f) or _fk_column_loc(tg.tables[s], key))
                 for s, f in items.items()}
        missing = [s for s in tg.tables if items[s] is None]

        # make_drift calls these before the next key; this key's values are bound explicitly all the same.
        def add_fix(side: str, lead_t: Table = lead_t, lead_fk: ForeignKey = lead_fk,
                    present: dict[str, ForeignKey] = present) -> list[Fix]:
            """The leading side's FK added; a side that has its own (a target or action differs) has it replaced."""
            return _fk_add_fix(tg, side, lead_t, lead_fk, replace=present.get(side))

        def drop_fix(side: str, present: dict[str, ForeignKey] = present) -> list[Fix]:
            return _fk_drop_fix(tg, side, present[side])

        if missing and lead == tg.lead:
            a = Aspect(obj, "fk-missing", lead, shown, missing)
            yield make_drift(ctx, a, "degraded", "the foreign key",
                             add_fix,  # a missing side: nothing to replace
                             hint=" Without it, rows can point at users or parents that do not exist."
                                  + (" Better Auth tables can be referenced by FK; they are only not altered."
                                     if lead_fk.ref_table in BETTER_AUTH_TABLES else ""))
        elif missing:
            a = Aspect(obj, "fk-extra", tg.lead, shown, [s for s in tg.tables if items[s] is not None])
            yield make_drift(ctx, a, "degraded", "the foreign key",
                             drop_fix,
                             spec_alt("Or document the foreign key in the spec.",
                                      _fk_spec_row(tg, a.differing[0], key)))
        tgt = compare_aspect(obj, "fk-target", {s: (s, f) for s, f in present.items()},
                             lambda sf: target(*sf), lambda sf: f"{sf[1].ref_table}.{', '.join(sf[1].ref_columns)}")
        fk_shown = {s: SideValue(value=fk_sql(f), location=location_of(f, tg.tables[s])) for s, f in present.items()}
        if tgt:
            tgt.shown = fk_shown
            yield make_drift(ctx, tgt, "breaking", "the FK target", add_fix,
                             spec_alt("Or accept the other target in the spec.",
                                      _fk_spec_row(tg, tgt.differing[0], key)))
            continue
        kind: DriftKind
        for kind, attr in (("fk-on-delete", "on_delete"), ("fk-on-update", "on_update")):
            acts = {s: getattr(f, attr) or ("NO ACTION" if s != "spec" else None) for s, f in present.items()}
            if acts.get(next(iter(acts))) is None:
                continue  # the spec does not say: nothing to compare against
            action = compare_aspect(obj, kind, acts, lambda v: v, lambda v: v or "unspecified")
            if not action:
                continue
            action.shown = fk_shown
            want = acts[action.lead]

            def severity(side: str, want=want, acts=acts) -> str:
                pair = {want, acts[side]}
                if pair == {"NO ACTION", "RESTRICT"}:
                    return "cosmetic"
                if acts[side] in ("CASCADE", "SET NULL", "SET DEFAULT") and want in ("NO ACTION", "RESTRICT", None):
                    return "data-loss-risk"  # deleting a parent silently deletes or clears children
                return "breaking"  # deletes the reference cascades are refused here
            yield make_drift(ctx, action, severity, f"ON {attr[3:].upper()}", add_fix,
                             spec_alt("Or accept this action in the spec.", _fk_spec_row(tg, action.differing[0], key)))


def _fk_column_loc(t: Table, key: tuple[str, ...]) -> Location | None:
    """Where a side without the FK should get it: the column's own line when the side has that (single)
    column and knows its line, else the table's."""
    c = t.column(key[0]) if len(key) == 1 else None
    return found if c is not None and (found := location_of(c)) is not None and found.line else location_of(t)


def _fk_spec_row(tg: TableGroup, side: str, key: tuple[str, ...]) -> str | None:
    t = tg.tables[side]
    c = t.column(key[0]) if len(key) == 1 else None
    if c is not None:
        return spec_row(t, c)
    f = next(f for f in t.foreign_keys if tuple(f.columns) == key)
    return f"- {fk_sql(f)}"


def _fk_add_fix(tg: TableGroup, side: str, lead_t: Table, fk: ForeignKey,
                replace: ForeignKey | None = None) -> list[Fix]:
    tname = tg.tables[side].name
    name = f"{tname}_{'_'.join(fk.columns)}_fkey"
    drop_sql = drop_op = ""
    if replace is not None:
        old = replace.name or name
        drop_sql = f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(old)};\n"
        drop_op = f"op.drop_constraint({old!r}, {tname!r}, type_='foreignkey')\n"
    col = lead_t.column(fk.columns[0])
    model = (model_field(lead_t, col) if len(fk.columns) == 1 and col is not None
             else f"__table_args__ = (ForeignKeyConstraint({fk.columns!r}, "
                  f"{[f'{fk.ref_table}.{c}' for c in fk.ref_columns]!r}, ondelete={fk.on_delete!r}),)")
    kw = "".join(f", {k}={v!r}" for k, v in (("ondelete", fk.on_delete), ("onupdate", fk.on_update))
                 if v and v != "NO ACTION")
    return side_fix(side, f"{'Replace' if replace else 'Add'} the foreign key {fk_sql(fk)}.", model=model,
                    sql=(f"{drop_sql}ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} {fk_sql(fk)} "
                         "NOT VALID;\n"
                         f"ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(name)};"),
                    alembic=(f"{drop_op}op.create_foreign_key({name!r}, {tname!r}, {fk.ref_table!r}, "
                             f"{fk.columns!r}, {fk.ref_columns!r}{kw}, postgresql_not_valid=True)\n"
                             f"op.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(name)}'!r})"),
                    locks="NOT VALID adds the FK with a brief SHARE ROW EXCLUSIVE lock and no scan; VALIDATE "
                          "scans under SHARE UPDATE EXCLUSIVE (writes continue) and fails on orphan rows.")


def _fk_drop_fix(tg: TableGroup, side: str, fk: ForeignKey) -> list[Fix]:
    tname = tg.tables[side].name
    name = fk.name or f"{tname}_{'_'.join(fk.columns)}_fkey"
    c = tg.tables[side].column(fk.columns[0])
    plain = c.model_copy() if c is not None else None
    t_wo = tg.tables[side].model_copy(
        update={"foreign_keys": [f for f in tg.tables[side].foreign_keys if f is not fk]})
    return side_fix(side, f"Drop the foreign key {fk_sql(fk)} (or add it to the reference).",
                    model=model_field(t_wo, plain) if plain is not None else None,
                    sql=f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(name)};",
                    alembic=f"op.drop_constraint({name!r}, {tname!r}, type_='foreignkey')",
                    locks="Dropping an FK takes a brief lock on both tables.")


#: How a side declares a column set unique: a column's UNIQUE, a constraint, or a unique index.
UniqueElement = Column | UniqueConstraint | Index


def unique_sets(t: Table) -> dict[frozenset[str], UniqueElement]:
    """Every column set declared unique, however it is spelled (column flag, constraint, unique index)."""
    out: dict[frozenset[str], UniqueElement] = {}
    for c in t.columns:
        if c.unique:
            out.setdefault(frozenset([c.name]), c)
    for u in t.unique_constraints:
        out.setdefault(frozenset(u.columns), u)
    for i in t.indexes:
        if plain_unique(i):
            out.setdefault(frozenset(i.column_names), i)
    out.pop(frozenset(pk_columns(t)), None)  # the primary key is unique already
    return out


def _declared_columns(el: UniqueElement) -> list[str]:
    """The columns of a unique element in the order it declares them (PostgreSQL keeps that order in the
    index, and a later FK or lookup may rely on it)."""
    if isinstance(el, Index):
        return list(el.column_names)
    if isinstance(el, UniqueConstraint):
        return list(el.columns)
    return [el.name]  # a column's own UNIQUE


def _declared_name(el: UniqueElement | None) -> str | None:
    """The constraint or index name the side declares, if any."""
    if isinstance(el, Index):
        return el.constraint or el.name
    if isinstance(el, UniqueConstraint):
        return el.name
    return None


def _unique_shown(cols: list[str], unique: bool) -> str:
    return f"UNIQUE ({', '.join(cols)})" if unique else "not unique"


def plain_unique(i: Index) -> bool:
    return (i.unique and not i.primary and not i.where and (i.method or "btree") == "btree"
            and not any(c.is_expression or c.descending for c in i.columns) and not i.include)


@table_comparator
def compare_unique(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    sets = {s: unique_sets(t) for s, t in tg.tables.items()}
    for key in sorted({k for m in sets.values() for k in m}, key=sorted):
        declared = next(sets[s][key] for s in tg.tables if key in sets[s])  # the leading side's spelling
        cols = _declared_columns(declared)
        obj = _fk_obj(tg.key, tuple(cols))
        items = {s: (key in sets[s]) for s in tg.tables}
        a = compare_aspect(obj, "unique", items, lambda v: v, partial(_unique_shown, cols))
        if not a:
            continue
        for s in a.shown:
            a.shown[s].location = location_of(sets[s].get(key)) or location_of(tg.tables[s])
        want = items[a.lead]

        # Called inside make_drift, before the next key; bound explicitly all the same (ruff B023).
        def fixes(side: str, want: bool = want, key: frozenset[str] = key, cols: list[str] = cols,
                  a: Aspect = a) -> list[Fix]:
            tname = tg.tables[side].name
            lead_el = sets[a.lead].get(key)
            name = _declared_name(lead_el) or f"{tname}_{'_'.join(cols)}_key"
            lead = tg.tables[a.lead]
            model = (model_field(lead, lead_col) if len(cols) == 1 and (lead_col := lead.column(cols[0]))
                     else f"__table_args__ = (UniqueConstraint({', '.join(map(repr, cols))}, name={name!r}),)")
            if want:
                add = f"ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} UNIQUE USING INDEX {ident(name)}"
                return side_fix(side, f"Make ({', '.join(cols)}) unique.", model=model,
                                sql=(f"CREATE UNIQUE INDEX CONCURRENTLY {ident(name)} ON {ident(tname)} "
                                     f"({', '.join(map(ident, cols))});\n{add};"),
                                alembic=(alembic_autocommit(f"op.create_index({name!r}, {tname!r}, {cols!r}, "
                                                            "unique=True, postgresql_concurrently=True)")
                                         + f"\nop.execute({add!r})"),
                                locks=CONCURRENT_NOTE + " Fails if duplicates exist: check with GROUP BY ... "
                                                        "HAVING count(*) > 1.")
            el = sets[side][key]
            if isinstance(el, Index) and not el.constraint:
                iname = el.name or name
                return side_fix(side, f"Drop the unique index on ({', '.join(cols)}).", model=model,
                                sql=f"DROP INDEX CONCURRENTLY {ident(iname)};",
                                alembic=alembic_autocommit(f"op.drop_index({iname!r}, table_name={tname!r}, "
                                                           "postgresql_concurrently=True)"),
                                locks=CONCURRENT_NOTE)
            cname = getattr(el, "constraint", None) or getattr(el, "name", None) or name
            return side_fix(side, f"Drop the unique constraint on ({', '.join(cols)}).", model=model,
                            sql=f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(cname)};",
                            alembic=f"op.drop_constraint({cname!r}, {tname!r}, type_='unique')",
                            locks="Dropping a constraint is a catalog change (brief ACCESS EXCLUSIVE lock).")
        s0 = a.differing[0]
        patch = (spec_row(tg.tables[s0], s0_col) if len(cols) == 1 and (s0_col := tg.tables[s0].column(cols[0]))
                 else f"- UNIQUE ({', '.join(cols)})")
        yield make_drift(ctx, a, "degraded", "uniqueness", fixes, spec_alt("Or accept this in the spec.", patch))


def _plain_checks(t: Table) -> list[Check]:
    return [ck for ck in t.checks if value_set_of(ck.expression) is None]  # value sets: compare_value_set


@table_comparator
def compare_checks(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    lead = tg.lead
    lead_t = tg.tables[lead]
    for side in list(tg.tables)[1:]:
        t = tg.tables[side]
        rest = _plain_checks(t)
        unmatched = []
        for ck in _plain_checks(lead_t):
            m = next((o for o in rest if norm_expr(o.expression) == norm_expr(ck.expression)), None)
            if m is None:
                unmatched.append(ck)
            else:
                rest.remove(m)
        for ck in unmatched:  # a same-named check (or one on the same columns) differs: one drift
            other = next((o for o in rest if ck.name and o.name == ck.name), None) or next(
                (o for o in rest if expr_columns(o.expression) & expr_columns(ck.expression)), None)
            if other is not None:
                rest.remove(other)
            yield _check_drift(ctx, tg, side, ck, other)
        for o in rest:
            yield _check_drift(ctx, tg, side, None, o)


def _check_drift(ctx: Ctx, tg: TableGroup, side: str, ck: Check | None, other: Check | None) -> Drift:
    lead = tg.lead
    t = tg.tables[side]
    some = ck or other
    assert some is not None  # a CHECK on one side at least
    named = (ck and ck.name) or (other and other.name)
    obj = f"{tg.key}.{named}" if named else f"{tg.key}.check({norm_expr(some.expression)})"
    shown = {lead: SideValue(value=f"CHECK ({ck.expression})" if ck else None,
                             location=location_of(ck, tg.tables[lead])),
             side: SideValue(value=f"CHECK ({other.expression})" if other else None,
                             location=location_of(other, t))}
    a = Aspect(obj, "check", lead, shown, [side])
    name = ((other.name if other else None) or (ck.name if ck else None)
            or f"{t.name}_{'_'.join((some.columns or ['expr'])[:1])}_check")
    steps, ops = [], []
    if other is not None:
        steps.append(f"ALTER TABLE {ident(t.name)} DROP CONSTRAINT {ident(name)};")
        ops.append(f"op.drop_constraint({name!r}, {t.name!r}, type_='check')")
    if ck is not None:
        steps += [f"ALTER TABLE {ident(t.name)} ADD CONSTRAINT {ident(name)} CHECK ({ck.expression}) NOT VALID;",
                  f"ALTER TABLE {ident(t.name)} VALIDATE CONSTRAINT {ident(name)};"]
        ops += [f"op.create_check_constraint({name!r}, {t.name!r}, {ck.expression!r}, postgresql_not_valid=True)",
                f"op.execute({f'ALTER TABLE {ident(t.name)} VALIDATE CONSTRAINT {ident(name)}'!r})"]
    model = (f"__table_args__ = (CheckConstraint({ck.expression!r}, name={name!r}),)" if ck
             else f"# remove CheckConstraint({some.expression!r})")  # no ck: some is other
    fixes = side_fix(side, "Add the CHECK." if ck and not other else "Drop the CHECK." if other and not ck
                     else "Replace the CHECK.", model=model, sql="\n".join(steps), alembic="\n".join(ops),
                     locks="NOT VALID adds the CHECK without a scan; VALIDATE scans without blocking writes.")
    return make_drift(ctx, a, "degraded", "the CHECK constraint", lambda s: fixes,
                      spec_alt("Or accept this CHECK in the spec.", f"- CHECK ({other.expression})" if other else None))


