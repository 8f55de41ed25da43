"""Comparators for tables as a whole: presence, name, and enum types."""

from __future__ import annotations

from collections.abc import Iterator

from ..database.ddl import (
    ident,
    literal,
    table_ddl,
)
from ..schema.model import Enum, location_of
from ..spec.writer import render_table_section
from .core import (
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
from .model import Drift, Fix, SideValue
from .render import enum_class, model_class


@table_comparator
def compare_table_presence(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    lead, t = tg.lead, tg.tables[tg.lead]
    absent = [s for s in ctx.sides if s not in tg.tables]
    if not absent:
        return
    shown = {s: SideValue(value=tg.tables[s].name if s in tg.tables else None,
                          location=location_of(tg.tables.get(s))) for s in ctx.sides}
    if lead == ctx.reference:  # the reference has it; some side does not
        a = Aspect(tg.key, "missing-table", lead, shown, absent)

        def fixes(side: str) -> list[Fix]:
            return side_fix(side, f"Create the table {t.name}.", model=model_class(t),
                            sql="\n".join(table_ddl(t)),
                            alembic=f"op.create_table({t.name!r}, ...)  # columns as in the CREATE TABLE above",
                            locks="A new table: no lock on existing data.")
        yield make_drift(ctx, a, "breaking", "the table's existence", fixes)
        return
    # The reference lacks it: remove it from the sides that have it, or document it.
    present = list(tg.tables)
    a = Aspect(tg.key, "extra-table", ctx.reference, shown, present)

    def severity(side: str) -> str:
        if side == "models" and "database" in absent:
            return "breaking"  # the app maps a table the database does not have
        return "data-loss-risk" if side == "database" else "degraded"

    def drop_fixes(side: str) -> list[Fix]:
        return side_fix(side, f"Drop the table {t.name} (or add it to the {ctx.reference}).",
                        model=f"# delete the class mapped to table {t.name!r}",
                        sql=f"DROP TABLE {ident(tg.tables[side].name)};",
                        alembic=f"op.drop_table({tg.tables[side].name!r})",
                        locks="DROP TABLE deletes its rows for good: back them up first.")
    yield make_drift(ctx, a, severity, "the table's existence", drop_fixes,
                     spec_alt(f"Or document the table {t.name} in the spec.", render_table_section(t)))


@table_comparator
def compare_table_name(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    a = compare_aspect(tg.key, "table-name", tg.tables, lambda t: t.name, lambda t: t.name)
    if not a:
        return
    want = tg.tables[a.lead].name
    names = {s: t.name for s, t in tg.tables.items()}

    def severity(side: str) -> str:
        return "breaking" if "models" in names and "database" in names and names["models"] != names["database"] \
            else "degraded"

    def fixes(side: str) -> list[Fix]:
        old = names[side]
        return side_fix(side, f"Name the table {want} (it is {old} here).",
                        model=f'__tablename__ = "{want}"  # SQLModel names a class without it after the class: {old}',
                        sql=f"ALTER TABLE {ident(old)} RENAME TO {ident(want)};",
                        alembic=f"op.rename_table({old!r}, {want!r})",
                        locks="RENAME takes a brief ACCESS EXCLUSIVE lock; no rewrite.")
    other = tg.tables[a.differing[0]]
    yield make_drift(ctx, a, severity, "the table name", fixes,
                     spec_alt(f"Or rename the table to {other.name} in the spec.", f"### {other.name}"),
                     hint=f" Possibly the implicit table name {other.name} (class name) vs {want}.")


def compare_enums(ctx: Ctx) -> Iterator[Drift]:
    """Enum types present on several sides: labels compared in order (order is the sort order)."""
    by_name: dict[str, dict[str, Enum]] = {}
    for s in ctx.sides:
        for e in ctx.schemas[s].enums:
            by_name.setdefault(e.name, {})[s] = e
    for name, items in sorted(by_name.items()):
        a = compare_aspect(name, "enum-labels", items, lambda e: tuple(e.values), lambda e: ", ".join(e.values))
        if not a:
            continue
        want = list(items[a.lead].values)

        # make_drift calls these before the next enum; its values are bound explicitly all the same.
        def severity(side: str, want: list[str] = want, items: dict[str, Enum] = items) -> str:
            have = items[side].values
            if set(want) - set(have):
                return "breaking"  # the app writes labels this side rejects
            return "degraded" if set(have) - set(want) else "cosmetic"  # extra labels / another order

        def fixes(side: str, want: list[str] = want, name: str = name, items: dict[str, Enum] = items) -> list[Fix]:
            have = list(items[side].values)
            adds = [v for v in want if v not in have]
            steps = []
            for v in adds:
                pos = want.index(v)
                after = next((w for w in reversed(want[:pos]) if w in have or w in adds[: adds.index(v)]), None)
                steps.append(f"ALTER TYPE {ident(name)} ADD VALUE IF NOT EXISTS {literal(v)}"
                             + (f" AFTER {literal(after)}" if after else "") + ";")
            removed = [v for v in have if v not in want]
            sql = "\n".join(steps + ([f"-- labels {', '.join(removed)} cannot be dropped: create a new type, "
                                      "recast the columns, drop the old type"] if removed else []))
            return side_fix(side, f"Give the enum {name} the labels {', '.join(want)}.",
                            model=f"class {enum_class(name)}(str, Enum):\n"
                                  + "\n".join(f"    {v} = {v!r}" for v in want)
                                  + "\n# SQLModel stores member NAMES as labels",
                            sql=sql or None,
                            alembic=(alembic_autocommit(*(f"op.execute({s.rstrip(';')!r})" for s in steps))
                                     if steps else None),
                            locks="ADD VALUE is a catalog change; a new label cannot be used in the transaction "
                                  "that adds it.")
        yield make_drift(ctx, a, severity, "the enum labels", fixes,
                         spec_alt("Or accept these labels in the spec.",
                                  f"- enum {name}: {', '.join(items[a.differing[0]].values)}"))


