"""``updated_at`` that nothing keeps current: no SQLAlchemy ``onupdate`` in the models and no BEFORE UPDATE
trigger in the database, so the column keeps its insert time for ever (a drift users expect to be told).

Only the models and the database can keep it current; the spec is not a side of this drift.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..database.ddl import UPDATED_AT_FUNCTION, ident, qualified
from .core import ColumnGroup, Ctx, TableGroup, _loc, column_comparator, side_fix
from .model import Drift, Fix, SideValue

#: Column names that mean "when the row last changed" (snake and camel case, as real models write them).
UPDATED_AT = frozenset({"updated_at", "updatedat", "modified_at", "modifiedat", "last_modified"})

MODEL_FIX = ('updated_at: datetime = Field(default_factory=utcnow,\n'
             '                             sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})')


@column_comparator
def compare_updated_at(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    if cg.key.lower() not in UPDATED_AT:
        return
    keepers = {s: c for s, c in cg.cols.items() if s in ("models", "database")}
    if not keepers or any(c.on_update for c in keepers.values()):
        return  # an ORM onupdate or a trigger keeps it current (the trigger also covers raw SQL)
    obj = f"{tg.key}.{cg.key}"
    shown = {s: SideValue(value=("no onupdate" if s == "models" else "no BEFORE UPDATE trigger"),
                          location=_loc(c)) for s, c in keepers.items()}

    def fixes(side: str) -> list[Fix]:
        c = cg.cols[side]
        if side == "models":
            return side_fix(side, f"Set onupdate on {c.name} so every ORM update sets it.",
                            model=MODEL_FIX.replace("updated_at", c.name, 1))
        t = tg.tables[side]
        name = ident(f"set_{c.name.lower()}")  # set_updated_at(), the function the spec's DDL uses
        function = UPDATED_AT_FUNCTION.replace("NEW.updated_at", f"NEW.{ident(c.name)}").replace(
            "set_updated_at()", f"{name}()")
        trigger = (f"CREATE TRIGGER {ident(f'{t.name}_set_{c.name.lower()}')} BEFORE UPDATE ON {qualified(t)}\n"
                   f"    FOR EACH ROW EXECUTE FUNCTION {name}();")
        return side_fix(side, f"Add a BEFORE UPDATE trigger that sets {c.name}.", sql=f"{function}\n{trigger}",
                        alembic=f"op.execute({function!r})\nop.execute({trigger.rstrip(';')!r})",
                        locks="CREATE TRIGGER takes a brief SHARE ROW EXCLUSIVE lock on the table; no rewrite.")
    said = "; ".join(f"{s}: {v.value}" for s, v in shown.items())
    unseen = "" if "database" in keepers else " Unless a database trigger sets it (the database was not compared),"
    message = (f"{obj}: nothing keeps it current on UPDATE ({said}).{unseen} it keeps the row's insert time. "
               "The models' onupdate covers ORM updates; a BEFORE UPDATE trigger covers every UPDATE.")
    yield Drift(object=obj, kind="updated-at-not-maintained", severity="degraded", message=message, sides=shown,
                fixes=[f for s in keepers for f in fixes(s)])
