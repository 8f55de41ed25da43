"""Better Auth's tables, compared for what our tables depend on; never altered.

A managed table (see :mod:`.managed`) is Better Auth's: it creates and migrates it, and DDL from us on
it breaks sign-in. Our tables still depend on it, so these are real drift, at their usual severity:

* its existence in the database (our foreign keys point at it), under the name the models map;
* the type of every column the spec or the models declare for it, the referenced key first (text,
  uuid or integer decides whether our foreign keys work), and their nullability and names: a column
  the spec or the models declare is one the app reads, so a side that spells it otherwise, or a
  database without it, breaks those reads.

Every other difference (a column the stub leaves out, defaults, indexes, constraints, the table's
spelling) is at ``info`` severity, listed only with ``include_managed``. Whatever the severity, fixes
change only the spec or the models: the live table is Better Auth's, so it leads the comparison when
it was read, and no fix carries SQL or an Alembic operation.
"""

from __future__ import annotations

from dataclasses import replace

from ..schema.model import location_of
from .core import COLUMN_COMPARATORS, TABLE_COMPARATORS, ColumnGroup, Ctx, TableGroup, align_columns
from .model import SIDE_ORDER, Drift, Fix, SideValue
from .render import spec_row

#: Column aspects the app's reads depend on; presence counts only where the database lacks the column.
READ_ASPECTS = frozenset({"column-type", "column-length", "timestamp-timezone", "nullability", "possible-rename"})
MIGRATE = "npx @better-auth/cli migrate"


def compare_managed(ctx: Ctx, tg: TableGroup) -> list[Drift]:
    """Every difference on a managed table group, each with its severity (``info`` for what our tables do
    not depend on) and fixes for the spec and the models only."""
    db = "database" in tg.tables
    order = ["database", "spec", "models"] if db else list(SIDE_ORDER)
    sides = [s for s in order if s in ctx.sides and (db or s != "database")]
    mctx = replace(ctx, sides=sides)  # the live table (Better Auth's truth) is the reference when read
    mtg = TableGroup(tg.key, {s: tg.tables[s] for s in order if s in tg.tables})
    out: list[Drift] = []
    if "database" in ctx.sides and not db:
        out.append(_missing_in_database(tg))
    for tcmp in TABLE_COMPARATORS:
        # the models map another spelling than the database has: the ORM's queries and FKs miss it
        out += [_settle(d, mtg, None, depended=d.kind == "table-name" and d.severity == "breaking")
                for d in tcmp(mctx, mtg)]
    if len(mtg.tables) > 1:
        for cg in align_columns(mtg):
            cg = ColumnGroup(cg.key, {s: cg.cols[s] for s in order if s in cg.cols}, cg.renamed)
            for ccmp in COLUMN_COMPARATORS:
                for d in ccmp(mctx, mtg, cg):
                    depended = d.kind in READ_ASPECTS or (d.kind == "extra-column" and mtg.lead == "database")
                    out.append(_settle(d, mtg, cg, depended=depended))
    return out


def _missing_in_database(tg: TableGroup) -> Drift:
    name = next(iter(tg.tables.values())).name
    sides = {s: SideValue(value=t.name, location=location_of(t)) for s, t in tg.tables.items()}
    sides["database"] = SideValue(value=None)
    return Drift(object=tg.key, kind="missing-table", severity="breaking", sides=sides, message=(
        f"{tg.key}: the database lacks {name}, Better Auth's table (the {' and the '.join(tg.tables)} "
        f"{'has' if len(tg.tables) == 1 else 'have'} it): our foreign keys to it cannot exist. Run Better "
        f"Auth's own migration ({MIGRATE}) before ours; schema-architect never creates its tables."))


def _settle(d: Drift, tg: TableGroup, cg: ColumnGroup | None, *, depended: bool) -> Drift:
    """The drift as it stands for a managed table: its severity, and fixes for the spec and models only."""
    severity = d.severity if depended and d.severity != "cosmetic" else "info"
    fixes = [f for f in d.fixes if f.side != "database"  # and never delete a stub's class or fields
             and not (f.side == "models" and d.kind in ("extra-table", "extra-column") and severity == "info")]
    if cg is not None and "database" in cg.cols and "spec" in d.sides and not any(f.side == "spec" for f in fixes):
        if "spec" not in cg.cols:
            pass  # the spec is silent on a column Better Auth's table has: nothing to correct
        elif d.kind == "extra-column":
            fixes.append(Fix(side="spec", action=(
                f"Remove {cg.cols['spec'].name} from the spec's {tg.tables['spec'].name}: Better Auth's table has "
                f"no such column (or add it in Better Auth, e.g. additionalFields, and run {MIGRATE}).")))
        elif d.sides["spec"].value != d.sides.get("database", SideValue(value=None)).value:
            db_t, db_c = tg.tables["database"], cg.cols["database"]
            fixes.append(Fix(side="spec", action=f"Describe {db_c.name} in the spec as Better Auth's table has it.",
                             spec_patch=spec_row(db_t, db_c)))
    message = d.message
    if severity != "info":
        message += (" Better Auth manages this table: change the spec or the models, never its table.")
    return d.model_copy(update={"severity": severity, "fixes": fixes, "message": message})
