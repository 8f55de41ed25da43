"""What every comparator shares: keyed-map differences, table and column alignment across the sides,
and building a Drift with its fixes; the comparator registries (alembic's comparators).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..database.ddl import (
    canon_type,
)
from ..schema.model import Column, Schema, Table, location_of
from ..schema.names import name_variants
from .model import SIDE_ORDER, Drift, DriftKind, Fix, SideValue, Unstated, worst

# ---------------------------------------------------------------------------------------------------
# The generic keyed-map difference (migra's ``differences``)

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class Differences(Generic[K, V]):
    added: dict[K, V]
    removed: dict[K, V]
    modified: dict[K, tuple[V, V]]
    unmodified: dict[K, tuple[V, V]]


def differences(old: dict[K, V], new: dict[K, V], same: Callable[[V, V], bool] = lambda a, b: a == b):
    """Split two keyed maps into added, removed, modified and unmodified entries, sorted by key."""
    keys = sorted(set(old) | set(new), key=str)
    out: Differences = Differences({}, {}, {}, {})
    for k in keys:
        if k not in old:
            out.added[k] = new[k]
        elif k not in new:
            out.removed[k] = old[k]
        elif same(old[k], new[k]):
            out.unmodified[k] = (old[k], new[k])
        else:
            out.modified[k] = (old[k], new[k])
    return out


# ---------------------------------------------------------------------------------------------------
# Normalisation (research/diff_index.md §5). canon_type, pk_columns, nullable and identity live in
# tools/database/ddl.py, which renders the SQL from the same facts the comparators compare.


def base_type(t: str) -> str:
    return re.sub(r"\(.*?\)", "", canon_type(t))


def type_length(t: str) -> str | None:
    m = re.search(r"\((.*?)\)", canon_type(t))
    return m.group(1) if m else None

def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name.lower()) if t}


def rename_score(a: str, b: str) -> tuple[int, float]:
    return len(_tokens(a) & _tokens(b)), difflib.SequenceMatcher(None, a, b).ratio()


# ---------------------------------------------------------------------------------------------------
# Alignment


@dataclass
class TableGroup:
    key: str  # the name on the leading side
    tables: dict[str, Table]  # side -> table, in SIDE_ORDER

    @property
    def lead(self) -> str:
        return next(iter(self.tables))


@dataclass
class ColumnGroup:
    key: str
    cols: dict[str, Column]  # side -> column, in SIDE_ORDER
    renamed: dict[str, str] = field(default_factory=dict)  # side -> the name that side uses

    @property
    def lead(self) -> str:
        return next(iter(self.cols))


@dataclass
class Ctx:
    schemas: dict[str, Schema]
    sides: list[str]
    owner_column: str
    alias: dict[str, dict[str, str]] = field(default_factory=dict)  # side -> its table name -> group key
    unstated: list[Unstated] = field(default_factory=list)  # aspects a side is silent about, where others differ
    unaliased: set[str] = field(default_factory=set)  # group keys whose spellings are different tables

    @property
    def reference(self) -> str:
        return self.sides[0]

    def enum_labels(self, side: str, type_name: str) -> list[str] | None:
        e = next((e for e in self.schemas[side].enums if e.name == canon_type(type_name)), None)
        return list(e.values) if e else None

    def is_enum(self, type_name: str) -> bool:
        return any(self.enum_labels(s, type_name) is not None for s in self.sides)

    def ref_table(self, side: str, name: str) -> str:
        """A FK target as the group key, so ``task`` and ``tasks`` matched as one table compare equal.

        Not for a group that is not compared (Better Auth's): no table-name drift would then say that
        ``user`` and ``users`` differ, and the FK-target difference is the only trace of it."""
        key = self.alias.get(side, {}).get(name, name)
        return name if key in self.unaliased else key


def _ordered(d: dict[str, V]) -> dict[str, V]:
    return {s: d[s] for s in SIDE_ORDER if s in d}


def align_tables(ctx: Ctx) -> list[TableGroup]:
    groups: dict[str, dict[str, Table]] = {}
    for side in ctx.sides:
        names = {t.name for t in ctx.schemas[side].tables}
        ctx.alias[side] = {}
        for t in sorted(ctx.schemas[side].tables, key=lambda t: t.name):
            key = t.name
            if key not in groups:  # task vs tasks: match only when this side lacks the other spelling
                key = next((v for v in name_variants(t.name)
                            if v in groups and side not in groups[v] and v not in names), t.name)
            groups.setdefault(key, {})[side] = t
            ctx.alias[side][t.name] = key
    return [TableGroup(k, _ordered(v)) for k, v in sorted(groups.items())]


def align_columns(tg: TableGroup) -> list[ColumnGroup]:
    cols: dict[str, dict[str, Column]] = {}
    for side, t in tg.tables.items():
        for c in t.columns:
            cols.setdefault(c.name, {})[side] = c
    lead = tg.lead
    renamed: dict[str, dict[str, str]] = {}
    for side in list(tg.tables)[1:]:
        diff = differences({c.name: c for c in tg.tables[lead].columns}, {c.name: c for c in tg.tables[side].columns})
        for ref_name, side_name in pair_renames(list(diff.removed.values()), list(diff.added.values())):
            cols[ref_name][side] = cols[side_name].pop(side)
            renamed.setdefault(ref_name, {})[side] = side_name
            if not cols[side_name]:
                del cols[side_name]
    return [ColumnGroup(k, _ordered(v), renamed.get(k, {})) for k, v in sorted(cols.items())]


def pair_renames(missing: list[Column], extra: list[Column]) -> list[tuple[str, str]]:
    """Columns only on one side and only on the other, of one base type and with related names."""
    pairs, used = [], set()
    for m in missing:
        cands = [e for e in extra if e.name not in used and base_type(e.type) == base_type(m.type)]
        scored = sorted(cands, key=lambda e: (rename_score(m.name, e.name), e.name), reverse=True)
        if scored:
            shared, ratio = rename_score(m.name, scored[0].name)
            if shared or ratio >= 0.6:
                pairs.append((m.name, scored[0].name))
                used.add(scored[0].name)
    return pairs


# ---------------------------------------------------------------------------------------------------
# Building drifts


@dataclass
class Aspect:
    """One aspect compared across the sides of a group: the values, the leading side and the differing ones."""

    obj: str
    kind: DriftKind
    lead: str
    shown: dict[str, SideValue]
    differing: list[str]
    silent: list[str] = field(default_factory=list)  # sides that do not state it (left out of the comparison)


def compare_aspect(obj: str, kind: DriftKind, items: dict[str, V], key: Callable[[V], object],
                   show: Callable[[V], str | None]) -> Aspect | None:
    """Compare ``key(item)`` of every side against the leading side; None when all agree."""
    if len(items) < 2:
        return None
    lead = next(iter(items))
    ref = key(items[lead])
    differing = [s for s, it in items.items() if s != lead and key(it) != ref]
    if not differing:
        return None
    shown = {s: SideValue(value=show(it), location=location_of(it)) for s, it in items.items()}
    return Aspect(obj, kind, lead, shown, differing)


def known(ctx: Ctx, obj: str, aspect: str, items: dict[str, V], column: Callable[[V], Column],
          key: Callable[[V], object], show: Callable[[V], str | None]) -> tuple[dict[str, V], list[str]]:
    """The sides that state ``aspect`` (``Column.unstated`` names it otherwise), and the silent ones.

    Silence is not compared: when a silent side's SQL reading (NULL allowed, no default) differs from
    what another side states, the difference is noted in ``ctx.unstated`` instead of being a drift."""
    word = {"nullability": "nullable"}.get(aspect, aspect)
    # A type the reader could not make out ("unknown": the column was only named) is silence too.
    silent = [s for s, it in items.items()
              if word in column(it).unstated or (aspect == "type" and column(it).type == "unknown")]
    stated = {s: it for s, it in items.items() if s not in silent}
    if silent and any(key(it) != key(items[silent[0]]) for it in stated.values()):
        said = {s: show(it) for s, it in stated.items()}
        shown = "; ".join(f"{s}: {v if v is not None else 'none'}" for s, v in said.items())
        ctx.unstated.append(Unstated(
            object=obj, aspect=aspect, silent=silent, said=said,  # type: ignore[arg-type]
            message=f"{obj}: the {' and the '.join(silent)} does not state the {aspect} ({shown}); not compared.",
        ))
    return stated, silent


def make_drift(ctx: Ctx, a: Aspect, severity: Callable[[str], str] | str, what: str,
               fixes: Callable[[str], list[Fix]], spec_alt: Fix | None = None, hint: str = "") -> Drift:
    sev = worst(severity(s) if callable(severity) else severity for s in a.differing)
    said = "; ".join(f"{s}: {v.value if v.value is not None else 'absent'}" for s, v in a.shown.items())
    who = " and the ".join(a.differing)
    lead = a.lead if a.lead == ctx.reference else f"{a.lead} ({ctx.reference} does not have it)"
    if ctx.reference in a.silent:
        lead = f"{a.lead} ({ctx.reference} does not state it)"
    verb = "differs" if a.differing in (["spec"], ["database"]) else "differ"  # "the models differ"
    message = f"{a.obj}: the {who} {verb} from the {lead} on {what} ({said}).{hint}"
    out = [f for s in a.differing for f in fixes(s)]
    if spec_alt and a.lead == "spec":
        out.append(spec_alt)
    return Drift(object=a.obj, kind=a.kind, severity=sev, message=message, sides=a.shown, fixes=out)


def side_fix(side: str, action: str, *, model: str | None = None, sql: str | None = None,
             alembic: str | None = None, locks: str | None = None) -> list[Fix]:
    """The fix for one side: models get model_change; the database gets SQL and the Alembic op."""
    if side == "models":
        return [Fix(side="models", action=action, model_change=model)]
    if side == "database":
        return [Fix(side="database", action=action, migration_sql=sql, alembic_op=alembic, lock_notes=locks)]
    return []


def spec_alt(action: str, patch: str | None) -> Fix | None:
    return Fix(side="spec", action=action, spec_patch=patch) if patch else None


CONCURRENT_NOTE = ("CREATE/DROP INDEX CONCURRENTLY does not block writes but cannot run inside a "
                   "transaction block (in Alembic, use op.get_context().autocommit_block()).")
REWRITE_NOTE = ("ALTER COLUMN TYPE takes an ACCESS EXCLUSIVE lock and rewrites the table and its "
                "indexes (only widening or removing a varchar length skips the rewrite).")


def alembic_autocommit(*ops: str) -> str:
    body = "\n".join(f"    {o}" for o in ops)
    return f"with op.get_context().autocommit_block():\n{body}"


def first_differing(a: Aspect) -> str:
    return a.differing[0]


# ---------------------------------------------------------------------------------------------------
# Comparators: table level and column level, registered in order (alembic's comparators)

TableComparator = Callable[[Ctx, TableGroup], Iterator[Drift]]
ColumnComparator = Callable[[Ctx, TableGroup, ColumnGroup], Iterator[Drift]]
TABLE_COMPARATORS: list[TableComparator] = []
COLUMN_COMPARATORS: list[ColumnComparator] = []


def table_comparator(fn: TableComparator) -> TableComparator:
    TABLE_COMPARATORS.append(fn)
    return fn


def column_comparator(fn: ColumnComparator) -> ColumnComparator:
    COLUMN_COMPARATORS.append(fn)
    return fn


