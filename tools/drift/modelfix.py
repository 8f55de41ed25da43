"""One model change per column: the models fix of every drift on a column, rendered from the models'
own column with only the drifted aspects taken from the leading side.

A comparator renders its model fix from the leading side's column, so a fix for the default also carried
that side's nullability (a spec that leaves NOT NULL unstated made ``completed: bool`` come back as
``bool | None``), and two drifts on one column gave two incompatible lines. Here every drift on
``table.column`` whose models fix is a field declaration gets the same line: the models' column, with the
type, nullability, default, identity, foreign key or uniqueness of each drift applied, and nothing else.
"""

from __future__ import annotations

from ..schema.model import Column, Table
from .constraints import unique_sets
from .core import ColumnGroup, TableGroup
from .model import Drift
from .render import model_field, plain_single

#: Drift kinds whose models fix is the column's field declaration, and what each one changes.
COLUMN_ASPECTS = {
    "column-type": ("type",), "column-length": ("type",), "timestamp-timezone": ("type",),
    "nullability": ("nullable", "primary_key"), "default": ("default",), "identity": ("identity", "default"),
}
TABLE_ASPECTS = ("fk-missing", "fk-extra", "fk-target", "fk-on-delete", "fk-on-update", "unique",
                 "updated-at-not-maintained")


def unify_model_changes(tg: TableGroup, columns: list[ColumnGroup], drifts: list[Drift]) -> None:
    """Rewrite, in place, the models fix of every drift on a column the models have (see the module doc)."""
    if "models" not in tg.tables:
        return
    for cg in columns:
        if "models" not in cg.cols:
            continue
        obj = f"{tg.key}.{cg.key}"
        mine = [d for d in drifts if d.object == obj and (d.kind in COLUMN_ASPECTS or d.kind in TABLE_ASPECTS)
                and any(f.side == "models" and f.model_change for f in d.fixes)]
        if not mine or [d.kind for d in mine] == ["updated-at-not-maintained"]:
            continue  # onupdate alone: its own fix (which keeps the field's Python default_factory)
        table, column = _merged(tg, cg, mine)
        text = model_field(table, column)
        for d in mine:
            for f in d.fixes:
                if f.side == "models":  # what follows the field line (a CHECK to add) stays
                    rest = (f.model_change or "").partition("\n")[2]
                    f.model_change = text + ("\n" + rest if rest.startswith("#") else "")


def _merged(tg: TableGroup, cg: ColumnGroup, drifts: list[Drift]) -> tuple[Table, Column]:
    table, column = tg.tables["models"], cg.cols["models"]
    name = column.name
    for d in drifts:
        lead = next((s for s in d.sides if s != "models" and s in tg.tables), None)
        src_t = tg.tables.get(lead) if lead else None
        src_c = cg.cols.get(lead) if lead else None
        if d.kind in COLUMN_ASPECTS and src_c is not None:
            aspects = COLUMN_ASPECTS[d.kind]
            if d.kind == "column-type" and src_c.identity != column.identity:
                aspects += ("identity", "default")  # uuid -> serial: the type brings its generator
            column = column.model_copy(update={a: getattr(src_c, a) for a in aspects})
        elif d.kind == "updated-at-not-maintained":
            column = column.model_copy(update={"on_update": "onupdate"})
        elif d.kind.startswith("fk-") and src_t is not None:
            src_name = src_c.name if src_c is not None else name
            want = [f.model_copy(update={"columns": [name]}) for f in src_t.foreign_keys if f.columns == [src_name]]
            keep = [f for f in table.foreign_keys if f.columns != [name]]
            table = table.model_copy(update={"foreign_keys": keep + want})
        elif d.kind == "unique" and src_t is not None:
            unique = frozenset([src_c.name if src_c is not None else name]) in unique_sets(src_t)
            column = column.model_copy(update={"unique": unique})
            if not unique:
                table = table.model_copy(update={
                    "unique_constraints": [u for u in table.unique_constraints if u.columns != [name]],
                    "indexes": [i for i in table.indexes if not (i.unique and plain_single(i, name))]})
    # An index declared elsewhere than on the field (an Index in __table_args__) stays there: ``index=True``
    # on the field would add a second one (the proof's re-read found it). The reader puts an index=True
    # index on its field's line.
    here = cg.cols["models"].location
    table = table.model_copy(update={
        "columns": [column if c.name == name else c for c in table.columns],
        "indexes": [i for i in table.indexes if i.unique or not plain_single(i, name)
                    or i.location is None or here is None or i.location == here]})
    return table, column
