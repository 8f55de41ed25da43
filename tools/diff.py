"""The engine behind ``diff_models_vs_spec``: drift between two or three :class:`Schema` sides.

    sides = {"spec": ..., "models": ..., "database": ...}   (any two or three)
        │ align tables (by name, then singular/plural)   -> table groups
        │ align columns (by name, then possible renames)  -> column groups
        │ run the registered comparators over each group  -> Drift (one per object and kind)
        ▼
    DiffResult(drifts sorted by object then kind, managed_elsewhere, summary, clean)

The first side present in the order spec, models, database is the **reference** (the source of truth).
Every other side that disagrees with it gets a :class:`Fix` that makes it agree; when the reference is the
spec, each drift also offers the opposite fix (a ``spec_patch`` that accepts the code's version). An
object the reference does not have is compared among the remaining sides the same way (the first present
one leads), so models and database are still checked against each other.

Severities, from worst to mildest:

* ``breaking``: the side, as it stands, makes code that follows the reference fail or misbehave
  (a column or table missing from the database, a different type or FK target, NOT NULL where the
  reference allows NULL, an ON DELETE that blocks deletes the reference cascades).
* ``data-loss-risk``: the fix itself can destroy or reinterpret data (dropping a column or table,
  narrowing a varchar, timestamp <-> timestamptz, adding ON DELETE CASCADE).
* ``degraded``: nothing fails today, but the side enforces less or runs slower than the reference
  (a missing FK, CHECK, unique constraint or index, a nullable column the reference says is NOT NULL).
  Added because "missing index" and "missing FK" are neither breaking nor cosmetic.
* ``cosmetic``: names and spellings that change no behaviour (index names, text vs unbounded varchar,
  serial vs identity, a default that only lives in Python). ``clean`` ignores cosmetic drift.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from pglast import parse_sql
from pglast import ast as pg
from pglast.stream import RawStream
from pglast.visitors import Visitor
from pydantic import BaseModel, ConfigDict, Field

from .ddl import (canon_type, column_sql, create_index_sql, fk_sql, ident, identity, in_list_sql,
                  index_columns_sql, index_name, literal, nullable, pk_columns, table_ddl, type_sql)
from .modelgen import PY_TYPES, SA_TYPES
from .pgtypes import try_normalize_type
from .schema import BETTER_AUTH_TABLES, Check, Column, ForeignKey, Index, Location, Schema, Table

SideName = Literal["spec", "models", "database"]
SIDE_ORDER: tuple[str, ...] = ("spec", "models", "database")
Severity = Literal["breaking", "data-loss-risk", "degraded", "cosmetic"]
SEVERITIES: tuple[str, ...] = ("breaking", "data-loss-risk", "degraded", "cosmetic")

DriftKind = Literal[
    "missing-table", "extra-table", "table-name",
    "missing-column", "extra-column", "possible-rename",
    "column-type", "column-length", "timestamp-timezone", "nullability", "default", "identity",
    "primary-key", "fk-missing", "fk-extra", "fk-target", "fk-on-delete", "fk-on-update",
    "unique", "check", "enum-labels",
    "index-missing", "index-extra", "index-columns", "index-order", "index-predicate",
    "index-method", "index-unique", "index-include", "index-name",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Result model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SideValue(_Model):
    """What one side says about the object; ``value`` is None when the side does not have it."""

    value: str | None
    location: Location | None = None


class Fix(_Model):
    """One way to make ``side`` agree. Only the fields that apply to that side are set."""

    side: SideName
    action: str = Field(description="What this fix does, in one sentence")
    spec_patch: str | None = Field(None, description="The corrected spec line(s), canonical markdown")
    model_change: str | None = Field(None, description="SQLModel code to put in the model")
    migration_sql: str | None = Field(None, description="PostgreSQL to run, lock notes as comments")
    alembic_op: str | None = Field(None, description="The same change as Alembic operations")
    lock_notes: str | None = Field(None, description="Locks, rewrites and scans the SQL causes")


class Drift(_Model):
    object: str = Field(description='table, "table.column", "table.index_name" or an enum name')
    kind: DriftKind
    severity: Severity
    message: str
    sides: dict[str, SideValue] = Field(description="What each compared side says, with its location")
    fixes: list[Fix] = Field(default_factory=list)


class DiffResult(_Model):
    reference: SideName = Field(description="The side treated as the source of truth")
    compared: list[SideName]
    drifts: list[Drift]
    managed_elsewhere: list[str] = Field(description="Better Auth tables seen and skipped")
    summary: dict[str, int] = Field(description="Drift count per severity")
    clean: bool = Field(description="True when no drift is worse than cosmetic")


def worst(severities: Iterable[str]) -> Severity:
    return min(severities, key=SEVERITIES.index)  # type: ignore[return-value]


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
# tools.ddl, which renders the SQL from the same facts the comparators compare.


def base_type(t: str) -> str:
    return re.sub(r"\(.*?\)", "", canon_type(t))


def type_length(t: str) -> str | None:
    m = re.search(r"\((.*?)\)", canon_type(t))
    return m.group(1) if m else None


class _StripCasts(Visitor):
    def visit_TypeCast(self, ancestors, node):  # noqa: N802 (pglast's naming)
        return node.arg


def _parse_expr(expr: str):
    try:
        node = parse_sql(f"SELECT {expr}")[0].stmt.targetList[0].val
    except Exception:  # pglast raises ParseError and friends: not SQL we can normalise
        return None
    for _ in range(6):  # casts nest: ((x)::text)::varchar
        node = _StripCasts()(node)
    return node


def _lower_outside_quotes(s: str) -> str:
    parts = re.split(r"('(?:[^']|'')*')", s)
    return "".join(p if p.startswith("'") else p.lower() for p in parts)


def norm_expr(expr: str | None) -> str | None:
    """A CHECK/predicate/index expression with casts, parentheses, spacing and keyword case removed."""
    if expr is None:
        return None
    node = _parse_expr(expr)
    text = RawStream()(node) if node is not None else " ".join(expr.split())
    return _lower_outside_quotes(text)


_NOW = {"now()", "current_timestamp", "transaction_timestamp()", "current_timestamp()"}


def norm_default(default: str | None) -> str | None:
    """``now()`` == ``CURRENT_TIMESTAMP``; ``'false'::boolean`` == ``false``; casts stripped."""
    if default is None or default.strip().lower().startswith("nextval("):
        return None  # serial's nextval() is identity, not a default
    d = norm_expr(default)
    if d in _NOW:
        return "now()"
    if d in ("null",):
        return None
    if m := re.fullmatch(r"'(true|false|t|f|-?\d+(?:\.\d+)?)'", d or ""):
        v = m.group(1)
        return {"t": "true", "f": "false"}.get(v, v)
    if d in ("uuid_generate_v4()", "gen_random_uuid()"):  # both random v4 UUIDs
        return "gen_random_uuid()"
    return d


def _const(node) -> str | None:
    if isinstance(node, pg.A_Const) and node.val is not None:
        v = node.val
        return str(getattr(v, "sval", None) or getattr(v, "ival", None) or getattr(v, "fval", None) or "")
    return None


def _colref(node) -> str | None:
    if isinstance(node, pg.ColumnRef) and node.fields:
        return getattr(node.fields[-1], "sval", None)
    return None


def value_set_of(expr: str) -> tuple[str, frozenset[str]] | None:
    """``col IN ('a','b')``, ``col = ANY (ARRAY['a','b'])`` or ``col = 'a' OR col = 'b'`` -> (col, values)."""
    node = _parse_expr(expr)

    def walk(n) -> tuple[str, set[str]] | None:
        if isinstance(n, pg.A_Expr) and (col := _colref(n.lexpr)):
            kind = n.kind.name
            if kind == "AEXPR_IN" and isinstance(n.rexpr, tuple):
                vals = [_const(v) for v in n.rexpr]
            elif kind == "AEXPR_OP_ANY" and isinstance(n.rexpr, pg.A_ArrayExpr):
                vals = [_const(v) for v in n.rexpr.elements or ()]
            elif kind == "AEXPR_OP" and n.name[0].sval == "=":
                vals = [_const(n.rexpr)]
            else:
                return None
            return (col, set(vals)) if None not in vals else None
        if isinstance(n, pg.BoolExpr) and n.boolop.name == "OR_EXPR":
            parts = [walk(a) for a in n.args]
            if all(parts) and len({p[0] for p in parts}) == 1:
                return parts[0][0], set().union(*(p[1] for p in parts))
        return None

    found = walk(node) if node is not None else None
    return (found[0], frozenset(found[1])) if found else None


class _Columns(Visitor):
    def __init__(self):
        self.found: set[str] = set()

    def visit_ColumnRef(self, ancestors, node):  # noqa: N802
        if (name := _colref(node)) is not None:
            self.found.add(name)


def expr_columns(expr: str) -> set[str]:
    """The column names an expression reads."""
    node = _parse_expr(expr)
    if node is None:
        return set()
    v = _Columns()
    v(node)
    return v.found


def name_variants(name: str) -> list[str]:
    """Singular/plural spellings of a table name: task<->tasks, category<->categories, box<->boxes."""
    out = [name + "s", name + "es"]
    if name.endswith("ies"):
        out.append(name[:-3] + "y")
    if name.endswith("es"):
        out.append(name[:-2])
    if name.endswith("s"):
        out.append(name[:-1])
    if name.endswith("y"):
        out.append(name[:-1] + "ies")
    return out


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name.lower()) if t}


def rename_score(a: str, b: str) -> tuple[int, float]:
    return len(_tokens(a) & _tokens(b)), difflib.SequenceMatcher(None, a, b).ratio()


# ---------------------------------------------------------------------------------------------------
# Rendering: SQLAlchemy/SQLModel and spec text for one element (SQL comes from tools.ddl)


_SA_TYPES = {
    "text": "sa.Text()", "varchar": "sa.String()", "integer": "sa.Integer()", "bigint": "sa.BigInteger()",
    "smallint": "sa.SmallInteger()", "boolean": "sa.Boolean()", "uuid": "sa.Uuid()",
    "timestamptz": "sa.DateTime(timezone=True)", "timestamp": "sa.DateTime()", "date": "sa.Date()",
    "time": "sa.Time()", "double precision": "sa.Double()", "real": "sa.REAL()", "numeric": "sa.Numeric()",
    "jsonb": "postgresql.JSONB()", "json": "sa.JSON()", "bytea": "sa.LargeBinary()",
    "interval": "sa.Interval()", "citext": "postgresql.CITEXT()", "inet": "postgresql.INET()",
}


def sa_type(c: Column) -> str:
    t, base, arg = canon_type(c.type), base_type(c.type), type_length(c.type)
    if base == "varchar" and arg:
        return f"sa.String({arg})"
    if base == "char":
        return f"sa.CHAR({arg or 1})"
    if base == "numeric" and arg:
        return f"sa.Numeric({arg.replace(',', ', ')})"
    if t.endswith("[]"):
        return f"postgresql.ARRAY({sa_type(c.model_copy(update={'type': t[:-2]}))})"
    return _SA_TYPES.get(t) or f"postgresql.ENUM(name={t!r}, create_type=False)"


_PY_TYPES = {**PY_TYPES, "char": "str", "citext": "str", "inet": "str", "interval": "timedelta",
             "jsonb": "dict", "json": "dict"}
_SA_TYPE_KW = {**SA_TYPES, "citext": "CITEXT"}


def enum_class(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def model_field(t: Table, c: Column) -> str:
    """The SQLModel field declaration that produces column ``c`` of table ``t``."""
    base, arg = base_type(c.type), type_length(c.type)
    py = "list" if c.type.endswith("[]") else _PY_TYPES.get(base, enum_class(base))
    pk = c.name in pk_columns(t)
    gen = identity(c)
    if gen in ("identity always", "identity by default"):
        always = "always=True" if gen == "identity always" else "always=False"
        return (f"{c.name}: {py} | None = Field(default=None, sa_column=Column({sa_type(c)}, "
                f"Identity({always}), primary_key={pk}))")
    kw: list[str] = []
    optional = nullable(t, c) or (pk and gen == "serial")
    if optional:
        kw.append("default=None")
    elif pk and base == "uuid":
        kw.append("default_factory=uuid.uuid4")
    if pk:
        kw.append("primary_key=True")
    if fk := next((f for f in t.foreign_keys if f.columns == [c.name]), None):
        kw.append(f'foreign_key="{fk.ref_table}.{fk.ref_columns[0]}"')
        if fk.on_delete and fk.on_delete != "NO ACTION":
            kw.append(f'ondelete="{fk.on_delete}"')
    if _single_unique(t, c.name):
        kw.append("unique=True")
    if any(_plain_single(i, c.name) and not i.unique for i in t.indexes):
        kw.append("index=True")
    if base == "varchar" and arg:
        kw.append(f"max_length={arg}")
    if base == "numeric" and arg:
        p, _, s = arg.partition(",")
        kw += [f"max_digits={p}"] + ([f"decimal_places={s}"] if s else [])
    if base in _SA_TYPE_KW:
        kw.append(f"sa_type={_SA_TYPE_KW[base]}")
    elif base == "char":
        kw.append(f"sa_type=CHAR({arg or 1})")
    colkw = []
    if pk and gen is None and base in ("integer", "bigint", "smallint"):
        colkw.append('"autoincrement": False')  # an int PK is SERIAL unless told otherwise
    if c.default and gen != "serial":
        colkw.append(f'"server_default": text({c.default!r})')
    if colkw:
        kw.append("sa_column_kwargs={" + ", ".join(colkw) + "}")
    ann = f"{py} | None" if optional else py
    if kw == ["default=None"]:
        return f"{c.name}: {ann} = None"
    return f"{c.name}: {ann} = Field({', '.join(kw)})" if kw else f"{c.name}: {ann}"


def _plain_single(i: Index, col: str) -> bool:
    return (len(i.columns) == 1 and i.columns[0].name == col and not i.columns[0].descending
            and not i.columns[0].is_expression and not i.where and (i.method or "btree") == "btree"
            and not i.include and not i.primary)


def _single_unique(t: Table, col: str) -> bool:
    return (next((c for c in t.columns if c.name == col and c.unique), None) is not None
            or any(u.columns == [col] for u in t.unique_constraints)
            or any(_plain_single(i, col) and i.unique for i in t.indexes))


def model_index(t: Table, i: Index) -> str:
    cols = []
    for c in i.columns:
        if c.is_expression or c.descending:
            cols.append(f"text({index_columns_sql(Index(columns=[c]))!r})")
        else:
            cols.append(repr(c.name))
    kw = ["unique=True"] if i.unique else []
    if i.method and i.method != "btree":
        kw.append(f'postgresql_using="{i.method}"')
    if i.where:
        kw.append(f"postgresql_where=text({i.where!r})")
    if i.include:
        kw.append(f"postgresql_include={i.include!r}")
    return f"Index({', '.join([repr(index_name(t, i))] + cols + kw)})"


def model_class(t: Table) -> str:
    lines = [f"class {enum_class(t.name)}(SQLModel, table=True):", f'    __tablename__ = "{t.name}"']
    extras = [f"UniqueConstraint({', '.join(map(repr, u.columns))})" for u in t.unique_constraints]
    extras += [f"CheckConstraint({ck.expression!r})" for ck in t.checks]
    extras += [model_index(t, i) for i in t.indexes
               if not i.primary and not i.constraint and not any(_plain_single(i, c.name) for c in t.columns)]
    if extras:
        lines.append(f"    __table_args__ = ({', '.join(extras)},)")
    lines += ["", *(f"    {model_field(t, c)}" for c in t.columns)]
    return "\n".join(lines)


def spec_type(c: Column) -> str:
    t = type_sql(c)
    return t.upper() if try_normalize_type(c.type) else t


def spec_row(t: Table, c: Column) -> str:
    """``| col | TYPE | constraints | description |``: the spec's canonical column row."""
    cons = []
    if c.name in pk_columns(t):
        cons.append("PRIMARY KEY")
    elif not c.nullable:
        cons.append("NOT NULL")
    if _single_unique(t, c.name):
        cons.append("UNIQUE")
    if c.default and identity(c) != "serial":
        cons.append(f"DEFAULT {c.default}")
    if fk := next((f for f in t.foreign_keys if f.columns == [c.name]), None):
        cons.append(f"FK → {fk.ref_table}.{fk.ref_columns[0]}"
                    + (f" ON DELETE {fk.on_delete}" if fk.on_delete else ""))
    values = c.allowed_values or next(
        (sorted(vs[1]) for ck in t.checks if (vs := value_set_of(ck.expression)) and vs[0] == c.name), None)
    if values:
        cons.append(f"CHECK ({c.name} IN ({', '.join(map(literal, values))}))")
    return f"| {c.name} | {spec_type(c)} | {', '.join(cons)} | {c.description or ''} |"


def spec_index(t: Table, i: Index) -> str:
    s = f"- `{index_name(t, i)}`: {'UNIQUE ' if i.unique else ''}({index_columns_sql(i)})"
    if i.method and i.method != "btree":
        s += f" USING {i.method}"
    if i.include:
        s += f" INCLUDE ({', '.join(i.include)})"
    if i.where:
        s += f" WHERE {i.where}"
    return s + (f" — {i.reason}" if i.reason else "")


def spec_section(t: Table) -> str:
    rows = "\n".join(spec_row(t, c) for c in t.columns)
    idx = "\n".join(spec_index(t, i) for i in t.indexes if not i.primary and not i.constraint)
    out = f"### {t.name}\n\n| Column | Type | Constraints | Description |\n|---|---|---|---|\n{rows}"
    return out + (f"\n\n**Indexes:**\n{idx}" if idx else "")


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

    @property
    def reference(self) -> str:
        return self.sides[0]

    def enum_labels(self, side: str, type_name: str) -> list[str] | None:
        e = next((e for e in self.schemas[side].enums if e.name == canon_type(type_name)), None)
        return list(e.values) if e else None

    def is_enum(self, type_name: str) -> bool:
        return any(self.enum_labels(s, type_name) is not None for s in self.sides)

    def ref_table(self, side: str, name: str) -> str:
        """A FK target as the group key, so ``user`` and ``users`` matched as one table compare equal."""
        return self.alias.get(side, {}).get(name, name)


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


def _loc(x) -> Location | None:
    return getattr(x, "location", None)


@dataclass
class Aspect:
    """One aspect compared across the sides of a group: the values, the leading side and the differing ones."""

    obj: str
    kind: str
    lead: str
    shown: dict[str, SideValue]
    differing: list[str]


def _compare(obj: str, kind: str, items: dict[str, object], key: Callable, show: Callable) -> Aspect | None:
    """Compare ``key(item)`` of every side against the leading side; None when all agree."""
    if len(items) < 2:
        return None
    lead = next(iter(items))
    ref = key(items[lead])
    differing = [s for s, it in items.items() if s != lead and key(it) != ref]
    if not differing:
        return None
    shown = {s: SideValue(value=show(it), location=_loc(it)) for s, it in items.items()}
    return Aspect(obj, kind, lead, shown, differing)


def make_drift(ctx: Ctx, a: Aspect, severity: Callable[[str], str] | str, what: str,
               fixes: Callable[[str], list[Fix]], spec_alt: Fix | None = None, hint: str = "") -> Drift:
    sev = worst(severity(s) if callable(severity) else severity for s in a.differing)
    said = "; ".join(f"{s}: {v.value if v.value is not None else 'absent'}" for s, v in a.shown.items())
    who = " and the ".join(a.differing)
    lead = a.lead if a.lead == ctx.reference else f"{a.lead} ({ctx.reference} does not have it)"
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


def _first_other(a: Aspect) -> str:
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


@table_comparator
def compare_table_presence(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    lead, t = tg.lead, tg.tables[tg.lead]
    absent = [s for s in ctx.sides if s not in tg.tables]
    if not absent:
        return
    shown = {s: SideValue(value=tg.tables[s].name if s in tg.tables else None,
                          location=_loc(tg.tables.get(s))) for s in ctx.sides}
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

    def fixes(side: str) -> list[Fix]:
        return side_fix(side, f"Drop the table {t.name} (or add it to the {ctx.reference}).",
                        model=f"# delete the class mapped to table {t.name!r}",
                        sql=f"DROP TABLE {ident(tg.tables[side].name)};",
                        alembic=f"op.drop_table({tg.tables[side].name!r})",
                        locks="DROP TABLE deletes its rows for good: back them up first.")
    yield make_drift(ctx, a, severity, "the table's existence", fixes,
                     spec_alt(f"Or document the table {t.name} in the spec.", spec_section(t)))


@table_comparator
def compare_table_name(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    a = _compare(tg.key, "table-name", tg.tables, lambda t: t.name, lambda t: t.name)
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


@column_comparator
def compare_column_presence(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    lead = cg.lead
    absent = [s for s in tg.tables if s not in cg.cols]
    shown = {s: SideValue(value=(f"{cg.cols[s].name} {canon_type(cg.cols[s].type)}" if s in cg.cols else None),
                          location=_loc(cg.cols.get(s)) or _loc(tg.tables[s])) for s in tg.tables}
    c, t = cg.cols[lead], tg.tables[lead]
    if cg.renamed:
        a = Aspect(obj, "possible-rename", lead, shown, list(cg.renamed))

        def rfixes(side: str) -> list[Fix]:
            old = cg.renamed[side]
            tname = tg.tables[side].name
            out = side_fix(side, f"If {old} was renamed: rename it to {c.name}.",
                           model=model_field(t, c) + f"  # was: {old}",
                           sql=f"ALTER TABLE {ident(tname)} RENAME COLUMN {ident(old)} TO {ident(c.name)};",
                           alembic=f"op.alter_column({tname!r}, {old!r}, new_column_name={c.name!r})",
                           locks="RENAME COLUMN is a catalog change (brief ACCESS EXCLUSIVE lock).")
            out += side_fix(side, f"If they are different columns: add {c.name} and drop {old}.",
                            model=f"{model_field(t, c)}\n# and delete the field {old}",
                            sql=(f"ALTER TABLE {ident(tname)} ADD COLUMN {column_sql(t, c.model_copy(update={'nullable': True}))};\n"
                                 f"ALTER TABLE {ident(tname)} DROP COLUMN {ident(old)};"),
                            alembic=(f"op.add_column({tname!r}, sa.Column({c.name!r}, {sa_type(c)}, nullable=True))\n"
                                     f"op.drop_column({tname!r}, {old!r})"),
                            locks=f"DROP COLUMN {old} loses its data; backfill {c.name} first.")
            return out
        first = a.differing[0]
        yield make_drift(ctx, a, "breaking", "the column name", rfixes,
                         spec_alt(f"Or name the column {cg.renamed[first]} in the spec.",
                                  spec_row(tg.tables[first], cg.cols[first])),
                         hint=f" Possibly renamed ({' / '.join(sorted({c.name, *cg.renamed.values()}))}, same type).")
    if not absent:
        return
    if lead == tg.lead:
        a = Aspect(obj, "missing-column", lead, shown, absent)
        owner = " It is the owner column: rows cannot be scoped to a user." if c.name == ctx.owner_column else ""

        def fixes(side: str) -> list[Fix]:
            tname = tg.tables[side].name
            needs_backfill = not nullable(t, c) and not c.default and identity(c) is None
            if needs_backfill:  # a NOT NULL column without default cannot be added to a table with rows
                sql = (f"ALTER TABLE {ident(tname)} ADD COLUMN {column_sql(t, c.model_copy(update={'nullable': True}))};\n"
                       f"-- backfill: UPDATE {ident(tname)} SET {ident(c.name)} = ... WHERE {ident(c.name)} IS NULL;\n"
                       f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(c.name)} SET NOT NULL;")
                locks = "ADD COLUMN is a catalog change; SET NOT NULL scans the table under ACCESS EXCLUSIVE."
            else:
                sql = f"ALTER TABLE {ident(tname)} ADD COLUMN {column_sql(t, c)};"
                locks = "ADD COLUMN with a constant (or no) default is a catalog change: no rewrite."
            fk = next((f for f in t.foreign_keys if f.columns == [c.name]), None)
            if fk:
                name = f"{tname}_{c.name}_fkey"
                sql += (f"\nALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} {fk_sql(fk)} NOT VALID;"
                        f"\nALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(name)};")
            return side_fix(side, f"Add the column {c.name}.", model=model_field(t, c), sql=sql,
                            alembic=f"op.add_column({tname!r}, sa.Column({c.name!r}, {sa_type(c)}, "
                                    f"nullable={nullable(t, c) or needs_backfill}))",
                            locks=locks)
        yield make_drift(ctx, a, "breaking", "the column's existence", fixes, hint=owner)
        return
    present = list(cg.cols)
    a = Aspect(obj, "extra-column", tg.lead, shown, present)

    def severity(side: str) -> str:
        if side == "models" and "database" in absent:
            return "breaking"  # the app reads and writes a column the database does not have
        return "data-loss-risk" if side == "database" else "degraded"

    def xfixes(side: str) -> list[Fix]:
        tname = tg.tables[side].name
        return side_fix(side, f"Drop the column {cg.cols[side].name} (or add it to the {ctx.reference}).",
                        model=f"# delete the field: {model_field(tg.tables[side], cg.cols[side])}",
                        sql=f"ALTER TABLE {ident(tname)} DROP COLUMN {ident(cg.cols[side].name)};",
                        alembic=f"op.drop_column({tname!r}, {cg.cols[side].name!r})",
                        locks="DROP COLUMN is a catalog change, but its data is gone for good.")
    yield make_drift(ctx, a, severity, "the column's existence", xfixes,
                     spec_alt(f"Or document the column {c.name} in the spec.", spec_row(t, c)))


def _alter(tg: TableGroup, side: str, cg: ColumnGroup) -> tuple[str, str]:
    return tg.tables[side].name, cg.cols[side].name


def _column_spec_alt(tg: TableGroup, cg: ColumnGroup, a: Aspect, what: str) -> Fix | None:
    s = _first_other(a)
    return spec_alt(f"Or accept what the {s} say{'s' if s == 'database' else ''} ({what}) in the spec.",
                    spec_row(tg.tables[s], cg.cols[s]))


def _type_kind(a: str, b: str) -> str:
    ba, bb = base_type(a), base_type(b)
    if {ba, bb} == {"timestamp", "timestamptz"}:
        return "timestamp-timezone"
    if ba == bb or ({ba, bb} == {"text", "varchar"} and (type_length(a) or type_length(b))):
        return "column-length"
    return "column-type"


def _length(t: str) -> float:
    """A varchar/char length (or numeric precision) for ordering; unbounded is infinite."""
    arg = type_length(t)
    return float(arg.split(",")[0]) if arg else float("inf")


@column_comparator
def compare_column_type(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    a = _compare(obj, "column-type", cg.cols, lambda c: canon_type(c.type), lambda c: canon_type(c.type))
    if not a:
        return
    lead_c, lead_t = cg.cols[a.lead], tg.tables[a.lead]
    want = canon_type(lead_c.type)
    kinds = {s: _type_kind(want, canon_type(cg.cols[s].type)) for s in a.differing}
    a.kind = worst_kind = sorted(kinds.values(), key=["column-type", "timestamp-timezone", "column-length"].index)[0]
    enumish = any(ctx.is_enum(c.type) for c in cg.cols.values())

    def severity(side: str) -> str:
        have = canon_type(cg.cols[side].type)
        kind = kinds[side]
        if kind == "timestamp-timezone":
            return "data-loss-risk"
        if kind == "column-length":
            if _length(have) < _length(want):  # values the reference allows are rejected here
                return "breaking" if side == "database" else "degraded"
            return "data-loss-risk"  # the fix narrows the column
        if {base_type(have), base_type(want)} == {"text", "varchar"}:
            return "cosmetic"  # same storage and behaviour in PostgreSQL; ALTER is binary-coercible
        if enumish and ({base_type(have), base_type(want)} & {"text", "varchar"}):
            return "degraded"  # a fixed value set as native enum vs text + CHECK
        return "breaking"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        have = canon_type(cg.cols[side].type)
        gen = identity(lead_c)
        if side == "database" and kinds[side] == "column-type" and gen and identity(cg.cols[side]) != gen:
            return _retype_generated(ctx, side, tg.tables[side], cg.cols[side], lead_c, want)
        ck = _enum_value_check(ctx, side, tg, cg)
        using = ""
        if kinds[side] == "timestamp-timezone":
            using = f" USING {ident(cname)} AT TIME ZONE 'UTC'"  # state the zone the naive values are in
        elif kinds[side] == "column-type" and not {base_type(have), base_type(want)} <= {"text", "varchar"}:
            using = f" USING {ident(cname)}::{type_sql(lead_c.model_copy(update={'identity': None}))}"
        target = type_sql(lead_c.model_copy(update={"identity": None}))
        widening = kinds[side] == "column-length" and _length(have) < _length(want) and base_type(have) == base_type(want)
        check = ""
        if kinds[side] == "column-length" and _length(want) < _length(have) and base_type(want) in ("varchar", "char"):
            check = (f"-- check first: SELECT count(*) FROM {ident(tname)} WHERE length({ident(cname)}) > "
                     f"{int(_length(want))};\n")
        locks = ("Widening a varchar is a catalog change: no rewrite." if widening else REWRITE_NOTE)
        if kinds[side] == "timestamp-timezone":
            locks += " The values are reinterpreted in the zone given by USING: check it is UTC."
        model = model_field(lead_t, lead_c)
        sql = f"{check}ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} TYPE {target}{using};"
        alembic = (f"op.alter_column({tname!r}, {cname!r}, type_={sa_type(lead_c)}"
                   + (f", postgresql_using={using[7:]!r}" if using else "") + ")")
        action = f"Make {cname} {want} (it is {have} here)."
        if ck is not None:  # the enum type enforced the value set: the CHECK must take over
            action = f"Make {cname} {want} (it is the enum {have} here) and restrict it with the CHECK {ck.name}."
            model += ("\n# and add to the class's __table_args__ (the enum enforced these values):\n"
                      f"__table_args__ = (CheckConstraint({ck.expression!r}, name={ck.name!r}),)")
            sql += (f"\nALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck.name)} CHECK ({ck.expression}) NOT VALID;"
                    f"\nALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck.name)};"
                    f"\n-- then, once no column uses it: DROP TYPE {ident(have)};")
            alembic += (f"\nop.create_check_constraint({ck.name!r}, {tname!r}, {ck.expression!r}, "
                        "postgresql_not_valid=True)"
                        f"\nop.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck.name)}'!r})")
            locks += " The CHECK is added NOT VALID (no scan), then VALIDATE scans without blocking writes."
        return side_fix(side, action, model=model, sql=sql, alembic=alembic, locks=locks)
    what = {"column-length": "the length", "timestamp-timezone": "the time zone",
            "column-type": "the type"}[worst_kind]
    hint = ""
    if worst_kind == "timestamp-timezone":
        hint = " SQLModel >= 0.0.45 maps datetime to timestamptz; timestamp stores naive values."
    elif worst_kind == "column-type" and all(severity(s) == "cosmetic" for s in a.differing):
        hint = " text and unbounded varchar behave the same in PostgreSQL; bare str maps to varchar."
    yield make_drift(ctx, a, severity, what, fixes, _column_spec_alt(tg, cg, a, "type"), hint=hint)


def _enum_value_check(ctx: Ctx, side: str, tg: TableGroup, cg: ColumnGroup) -> Check | None:
    """The CHECK a side's column needs when its type changes from an enum to the reference's plain type.

    An enum whose labels are the reference's value set is not a value-set drift (compare_value_set finds
    the same set), so the type fix is the only one that sees the enum go: it must bring the CHECK, named
    and spelled as the reference has it."""
    lead_t, lead_c = tg.tables[cg.lead], cg.cols[cg.lead]
    side_t, side_c = tg.tables[side], cg.cols[side]
    if ctx.is_enum(lead_c.type) or not ctx.is_enum(side_c.type):
        return None
    if any((vs := value_set_of(ck.expression)) and vs[0] == side_c.name for ck in side_t.checks):
        return None  # the side checks the values already
    tname = side_t.name
    ck = next((ck for ck in lead_t.checks if (vs := value_set_of(ck.expression)) and vs[0] == lead_c.name), None)
    if ck is not None:
        return Check(name=ck.name or f"{tname}_{lead_c.name}_check", expression=ck.expression, columns=[lead_c.name])
    if lead_c.allowed_values:
        return Check(name=f"{tname}_{lead_c.name}_check", expression=in_list_sql(lead_c.name, lead_c.allowed_values),
                     columns=[lead_c.name])
    return None


#: Types PostgreSQL casts to an integer with ``USING col::integer`` (text only when it holds digits).
_CASTS_TO_INTEGER = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "text", "varchar",
                     "char", "citext"}


def _retype_generated(ctx: Ctx, side: str, t: Table, c: Column, lead_c: Column, want: str) -> list[Fix]:
    """A column the reference generates (serial or identity) has another type in the database, e.g. a uuid
    or varchar id where the spec says ``id serial``: change the type AND make the database generate it.

    Castable types (varchar of digits, bigint, ...) are converted in place with ``USING id::integer``. A uuid
    has no cast to integer: every row gets a new number, computed into a new column and swapped in with
    ``ALTER COLUMN id TYPE integer USING id_new`` (the column keeps its position, primary key and name)."""
    tname, cname = t.name, c.name
    gen = identity(lead_c)
    have = canon_type(c.type)
    target = type_sql(lead_c.model_copy(update={"identity": None}))
    base = base_type(target)
    seq = f"{tname}_{cname}_seq"
    tbl, col = ident(tname), ident(cname)
    alter = f"ALTER TABLE {tbl} ALTER COLUMN {col}"
    refs = sorted(f"{o.name}.{o_col}" for o in ctx.schemas[side].tables for fk in o.foreign_keys
                  if fk.ref_table == tname and cname in fk.ref_columns
                  for o_col, r_col in zip(fk.columns, fk.ref_columns, strict=False) if r_col == cname)
    castable = base_type(have) in _CASTS_TO_INTEGER and base in ("smallint", "integer", "bigint")
    head: list[str] = []
    steps: list[str] = []
    if not castable:
        head += [f"-- BREAKING, DATA-LOSS RISK: {have} cannot be cast to {target}. Every row gets a NEW id; the old "
                 f"{have} ids are discarded.",
                 "-- Whatever stored them breaks: referencing columns, URLs, caches, other services."]
    if refs:
        head.append(f"-- Foreign keys reference {tname}.{cname}: {', '.join(refs)}. Migrate them in the same "
                    "transaction (the ALTER below fails while they exist): drop each FK, add an integer column, "
                    + (f"UPDATE it from {tname}.{cname}_new joined on the old id (before {cname}_new is dropped), "
                       if not castable else "convert it the same way, ")
                    + "then swap it in and re-add the FK.")
    else:
        head.append(f"-- No foreign key in this database references {tname}.{cname}; if another database or "
                    "service stores these ids, migrate it too.")
    if c.default:
        steps.append(f"{alter} DROP DEFAULT;")  # the old default (gen_random_uuid(), ...) has no integer cast
    if castable:
        if base_type(have) in ("text", "varchar", "char", "citext"):
            head += [f"-- check first (must be 0): SELECT count(*) FROM {tbl} WHERE {col} !~ '^[0-9]+$';",
                     "-- if it is not, the ids are not numbers: renumber every row as for a uuid id (a new column "
                     "filled from the sequence, swapped in with USING), which discards the old ids."]
        steps.append(f"{alter} TYPE {target} USING {col}::{target};")
    elif gen == "serial":
        steps += [f"CREATE SEQUENCE IF NOT EXISTS {ident(seq)} AS {base};",
                  f"ALTER TABLE {tbl} ADD COLUMN {ident(cname + '_new')} {target} NOT NULL "
                  f"DEFAULT nextval({literal(seq)});",
                  f"{alter} TYPE {target} USING {ident(cname + '_new')};",
                  f"ALTER TABLE {tbl} DROP COLUMN {ident(cname + '_new')};"]
    else:
        steps += [f"ALTER TABLE {tbl} ADD COLUMN {ident(cname + '_new')} {target} GENERATED BY DEFAULT AS IDENTITY;",
                  f"{alter} TYPE {target} USING {ident(cname + '_new')};",
                  f"ALTER TABLE {tbl} DROP COLUMN {ident(cname + '_new')};"]
    if gen == "serial":
        steps += ([f"CREATE SEQUENCE IF NOT EXISTS {ident(seq)} AS {base} OWNED BY {tbl}.{col};"] if castable
                  else [f"ALTER SEQUENCE {ident(seq)} OWNED BY {tbl}.{col};"])
        steps += [f"{alter} SET DEFAULT nextval({literal(seq)});",
                  f"SELECT setval({literal(seq)}, coalesce(max({col}), 0) + 1, false) FROM {tbl};"]
    else:
        steps += [f"{alter} ADD GENERATED {gen.split(' ', 1)[1].upper()} AS IDENTITY;",
                  f"SELECT setval(pg_get_serial_sequence({literal(tbl)}, {literal(cname)}), "
                  f"coalesce(max({col}), 0) + 1, false) FROM {tbl};"]
    if castable:
        action = (f"Make {cname} {want} {gen} (it is {have} here, not generated): cast the ids in place and let "
                  "the database generate the next ones.")
        generator = "sequence" if gen == "serial" else "identity"
        locks = (REWRITE_NOTE + f" The cast fails on a value that is not an integer. The {generator} and its setval "
                 f"past max({cname}) are catalog changes. Run it in one transaction, and deploy models that no longer "
                 f"write {cname} themselves.")
    else:
        action = (f"Make {cname} {want} {gen} (it is {have} here): {have} has no cast, so every row is renumbered "
                  "and the old ids are lost.")
        locks = (f"Breaking and data-loss risk: the old {have} ids are replaced, so deploy the integer-id models at "
                 f"the same moment. Run it in one transaction: ADD COLUMN with a volatile default and ALTER COLUMN "
                 f"TYPE each rewrite the table (and its indexes, the primary key's included) under ACCESS "
                 f"EXCLUSIVE, so reads and writes wait until commit: plan downtime for a large table. "
                 f"Rows are numbered in no particular order.")
    if refs:
        locks += f" Referencing FKs ({', '.join(refs)}) must be migrated in the same transaction."
    return side_fix(side, action, sql="\n".join(head + steps),
                    alembic="\n".join(f"op.execute({s.rstrip(';')!r})" for s in steps), locks=locks)


@column_comparator
def compare_nullability(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    items = {s: (tg.tables[s], c) for s, c in cg.cols.items()}
    a = _compare(obj, "nullability", items, lambda tc: nullable(*tc),
                 lambda tc: "NULL" if nullable(*tc) else "NOT NULL")
    if not a:
        return
    for s in a.shown:
        a.shown[s].location = _loc(cg.cols[s])
    want_null = nullable(tg.tables[a.lead], cg.cols[a.lead])
    lead_t, lead_c = tg.tables[a.lead], cg.cols[a.lead]

    def severity(side: str) -> str:
        if want_null:
            return "breaking"  # NOT NULL here rejects rows the reference allows
        return "breaking" if cg.key == ctx.owner_column else "degraded"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        if want_null:
            return side_fix(side, f"Allow NULL in {cname}.", model=model_field(lead_t, lead_c),
                            sql=f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} DROP NOT NULL;",
                            alembic=f"op.alter_column({tname!r}, {cname!r}, nullable=True)",
                            locks="DROP NOT NULL is a catalog change.")
        ck = f"{tname}_{cname}_not_null"
        sql = (f"-- check first: SELECT count(*) FROM {ident(tname)} WHERE {ident(cname)} IS NULL;\n"
               f"ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck)} CHECK ({ident(cname)} IS NOT NULL) NOT VALID;\n"
               f"ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)};\n"
               f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} SET NOT NULL;\n"
               f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(ck)};")
        return side_fix(side, f"Make {cname} NOT NULL.", model=model_field(lead_t, lead_c), sql=sql,
                        alembic=(f"op.execute({f'ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck)} CHECK ({ident(cname)} IS NOT NULL) NOT VALID'!r})\n"
                                 f"op.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)}'!r})\n"
                                 f"op.alter_column({tname!r}, {cname!r}, nullable=False)\n"
                                 f"op.drop_constraint({ck!r}, {tname!r}, type_='check')"),
                        locks=("SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated "
                               "CHECK (col IS NOT NULL) proves it; the NOT VALID + VALIDATE steps make that "
                               "scan without blocking writes. Fails if NULLs exist: backfill them first."))
    yield make_drift(ctx, a, severity, "nullability", fixes, _column_spec_alt(tg, cg, a, "nullability"))


@column_comparator
def compare_default(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    a = _compare(obj, "default", cg.cols, lambda c: norm_default(c.default),
                 lambda c: c.default if norm_default(c.default) is not None else None)
    if not a:
        return
    lead_c, lead_t = cg.cols[a.lead], tg.tables[a.lead]
    want = norm_default(lead_c.default)

    def severity(side: str) -> str:
        have = norm_default(cg.cols[side].default)
        if want is not None and have is None:
            return "cosmetic" if side == "models" else "degraded"  # ORM inserts still get a value
        return "cosmetic" if want is None else "degraded"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        action = f"Set the database default of {cname} to {lead_c.default}." if want else f"Drop the default of {cname}."
        sql = (f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} "
               + (f"SET DEFAULT {lead_c.default};" if want else "DROP DEFAULT;"))
        return side_fix(side, action, model=model_field(lead_t, lead_c), sql=sql,
                        alembic=f"op.alter_column({tname!r}, {cname!r}, server_default="
                                + (f"sa.text({lead_c.default!r}))" if want else "None)"),
                        locks="Changing a default is a catalog change; existing rows keep their values.")
    python_only = want is not None and "models" in a.differing and norm_default(cg.cols["models"].default) is None
    hint = (" The models declare no server_default, so the default is Python-side only: inserts made "
            "outside the ORM get none." if python_only else "")
    yield make_drift(ctx, a, severity, "the default", fixes, _column_spec_alt(tg, cg, a, "default"), hint=hint)


@column_comparator
def compare_identity(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    lead_base = base_type(cg.cols[cg.lead].type)  # a type change (serial -> uuid) is compare_column_type's
    same_type = {s: c for s, c in cg.cols.items() if base_type(c.type) == lead_base}
    a = _compare(obj, "identity", same_type, identity, lambda c: identity(c) or "none")
    if not a:
        return
    lead_c, lead_t = cg.cols[a.lead], tg.tables[a.lead]
    want = identity(lead_c)

    def severity(side: str) -> str:
        have = identity(cg.cols[side])
        if want and not have:
            return "breaking"  # inserts that leave the id to the database fail
        if "identity always" in (want, have):
            return "degraded"  # ALWAYS refuses explicit ids
        return "cosmetic"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        have = identity(cg.cols[side])
        alter = f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)}"
        steps = []
        if have == "serial":
            steps.append(f"{alter} DROP DEFAULT;")
        elif have:
            steps.append(f"{alter} DROP IDENTITY;")
        if want == "serial":
            seq = f"{tname}_{cname}_seq"
            steps += [f"CREATE SEQUENCE IF NOT EXISTS {ident(seq)} OWNED BY {ident(tname)}.{ident(cname)};",
                      f"{alter} SET DEFAULT nextval({literal(seq)});",
                      f"SELECT setval({literal(seq)}, coalesce(max({ident(cname)}), 0) + 1, false) FROM {ident(tname)};"]
        elif want:
            steps.append(f"{alter} ADD GENERATED {want.split(' ', 1)[1].upper()} AS IDENTITY;")
        return side_fix(side, f"Make {cname} {want or 'not generated'} (it is {have or 'not generated'} here).",
                        model=model_field(lead_t, lead_c), sql="\n".join(steps),
                        alembic="\n".join(f"op.execute({s.rstrip(';')!r})" for s in steps),
                        locks="Catalog changes; an identity added to a filled table must restart above max(id).")
    yield make_drift(ctx, a, severity, "how values are generated", fixes, _column_spec_alt(tg, cg, a, "identity"))


def value_set(ctx: Ctx, side: str, t: Table, c: Column) -> frozenset[str] | None:
    if c.allowed_values is not None:
        return frozenset(c.allowed_values)
    if (labels := ctx.enum_labels(side, c.type)) is not None:
        return frozenset(labels)
    return next((vs[1] for ck in t.checks if (vs := value_set_of(ck.expression)) and vs[0] == c.name), None)


@column_comparator
def compare_value_set(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    types = {canon_type(c.type) for c in cg.cols.values()}
    if len(types) == 1 and ctx.is_enum(next(iter(types))):
        return  # one enum type on every side: compare_enums compares its labels once
    obj = f"{tg.key}.{cg.key}"
    sets = {s: value_set(ctx, s, tg.tables[s], c) for s, c in cg.cols.items()}
    a = _compare(obj, "check", dict(sets), lambda v: v, lambda v: ", ".join(sorted(v)) if v is not None else None)
    if not a:
        return
    for s in a.shown:
        a.shown[s].location = _loc(cg.cols[s])
    enum = any(ctx.is_enum(c.type) for c in cg.cols.values())
    a.kind = "enum-labels" if enum else "check"
    want = sets[a.lead]
    lead_t, lead_c = tg.tables[a.lead], cg.cols[a.lead]

    def severity(side: str) -> str:
        have = sets[side]
        if want is None or have is None:
            return "degraded"  # one side does not constrain the values at all
        return "breaking" if want - have else "degraded"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        if want is None:
            return side_fix(side, f"Drop the value restriction on {cname}.", model=model_field(lead_t, lead_c),
                            sql=f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(f'{tname}_{cname}_check')};",
                            alembic=f"op.drop_constraint({f'{tname}_{cname}_check'!r}, {tname!r}, type_='check')",
                            locks="Dropping a CHECK is a catalog change.")
        values = sorted(want)
        expr = in_list_sql(cname, values)
        ck = f"{tname}_{cname}_check"
        enum_type = canon_type(cg.cols[side].type)
        if ctx.is_enum(enum_type) and side == "database":
            sql = "\n".join(f"ALTER TYPE {ident(enum_type)} ADD VALUE IF NOT EXISTS {literal(v)};"
                            for v in values if v not in (sets[side] or ()))
            removed = sorted((sets[side] or frozenset()) - want)
            if removed:
                sql += f"\n-- removing labels {', '.join(removed)} needs a new type and a column recast"
            return side_fix(side, f"Give the enum {enum_type} the labels {', '.join(values)}.", sql=sql or None,
                            alembic=alembic_autocommit(*(f"op.execute({s!r})" for s in sql.splitlines()
                                                         if not s.startswith("--"))),
                            locks="ADD VALUE is a catalog change; the new label cannot be used in the same "
                                  "transaction.")
        model = (f"class {enum_class(cname)}(str, Enum):\n"
                 + "\n".join(f"    {v} = {v!r}" for v in values)
                 + "\n# SQLModel stores member NAMES as enum labels, not the .values"
                 if enum else f"__table_args__ = (CheckConstraint({expr!r}, name={ck!r}),)")
        drop = f"ALTER TABLE {ident(tname)} DROP CONSTRAINT IF EXISTS {ident(ck)};\n" if sets[side] is not None else ""
        return side_fix(side, f"Restrict {cname} to {', '.join(values)}.", model=model,
                        sql=(f"{drop}ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck)} CHECK ({expr}) NOT VALID;\n"
                             f"ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)};"),
                        alembic=(f"op.create_check_constraint({ck!r}, {tname!r}, {expr!r}, postgresql_not_valid=True)\n"
                                 f"op.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)}'!r})"),
                        locks="NOT VALID adds the CHECK without a scan; VALIDATE scans without blocking writes "
                              "and fails on rows outside the set.")
    hint = (" SQLModel stores enum member names, not their values." if enum and "models" in a.differing else "")
    yield make_drift(ctx, a, severity, "the allowed values", fixes, _column_spec_alt(tg, cg, a, "value set"), hint=hint)


@table_comparator
def compare_primary_key(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    a = _compare(tg.key, "primary-key", tg.tables, lambda t: tuple(pk_columns(t)),
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
            steps += [f"CREATE UNIQUE INDEX CONCURRENTLY {ident(t.name + '_pkey_new')} ON {ident(t.name)} ({', '.join(map(ident, want))});",
                      f"ALTER TABLE {ident(t.name)} ADD CONSTRAINT {ident(t.name + '_pkey')} PRIMARY KEY USING INDEX {ident(t.name + '_pkey_new')};"]
        lead = tg.tables[a.lead]
        return side_fix(side, f"Make ({', '.join(want)}) the primary key." if want else "Drop the primary key.",
                        model="\n".join(model_field(lead, c) for c in lead.columns if c.name in want) or None,
                        sql="\n".join(steps),
                        alembic=("op.drop_constraint(" + repr(t.name + "_pkey") + f", {t.name!r}, type_='primary')\n"
                                 if pk_columns(t) else "")
                                + (f"op.create_primary_key({t.name + '_pkey'!r}, {t.name!r}, {want!r})" if want else ""),
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
        lead = next((s for s in tg.tables if items[s] is not None))
        lead_t, lead_fk = tg.tables[lead], items[lead]

        def target(side: str, f: ForeignKey | None):
            return None if f is None else (ctx.ref_table(side, f.ref_table), tuple(f.ref_columns))

        shown = {s: SideValue(value=f and fk_sql(f), location=_loc(f) or _fk_column_loc(tg.tables[s], key))
                 for s, f in items.items()}
        missing = [s for s in tg.tables if items[s] is None]
        if missing and lead == tg.lead:
            a = Aspect(obj, "fk-missing", lead, shown, missing)
            yield make_drift(ctx, a, "degraded", "the foreign key",
                             lambda s: _fk_add_fix(tg, s, lead_t, lead_fk),
                             hint=" Without it, rows can point at users or parents that do not exist."
                                  + (" Better Auth tables can be referenced by FK; they are only not altered."
                                     if lead_fk.ref_table in BETTER_AUTH_TABLES else ""))
        elif missing:
            a = Aspect(obj, "fk-extra", tg.lead, shown, [s for s in tg.tables if items[s] is not None])
            yield make_drift(ctx, a, "degraded", "the foreign key",
                             lambda s: _fk_drop_fix(tg, s, items[s]),
                             spec_alt("Or document the foreign key in the spec.",
                                      _fk_spec_row(tg, a.differing[0], key)))
        present = {s: f for s, f in items.items() if f is not None}
        tgt = _compare(obj, "fk-target", {s: (s, f) for s, f in present.items()},
                       lambda sf: target(*sf), lambda sf: f"{sf[1].ref_table}.{', '.join(sf[1].ref_columns)}")
        fk_shown = {s: SideValue(value=fk_sql(f), location=_loc(f) or _loc(tg.tables[s])) for s, f in present.items()}
        if tgt:
            tgt.shown = fk_shown
            yield make_drift(ctx, tgt, "breaking", "the FK target",
                             lambda s: _fk_add_fix(tg, s, lead_t, lead_fk, replace=present[s]),
                             spec_alt("Or accept the other target in the spec.", _fk_spec_row(tg, tgt.differing[0], key)))
            continue
        for kind, attr in (("fk-on-delete", "on_delete"), ("fk-on-update", "on_update")):
            acts = {s: getattr(f, attr) or ("NO ACTION" if s != "spec" else None) for s, f in present.items()}
            if acts.get(next(iter(acts))) is None:
                continue  # the spec does not say: nothing to compare against
            a = _compare(obj, kind, acts, lambda v: v, lambda v: v or "unspecified")
            if not a:
                continue
            a.shown = fk_shown
            want = acts[a.lead]

            def severity(side: str, want=want, acts=acts) -> str:
                pair = {want, acts[side]}
                if pair == {"NO ACTION", "RESTRICT"}:
                    return "cosmetic"
                if acts[side] in ("CASCADE", "SET NULL", "SET DEFAULT") and want in ("NO ACTION", "RESTRICT", None):
                    return "data-loss-risk"  # deleting a parent silently deletes or clears children
                return "breaking"  # deletes the reference cascades are refused here
            yield make_drift(ctx, a, severity, f"ON {attr[3:].upper()}",
                             lambda s: _fk_add_fix(tg, s, lead_t, lead_fk, replace=present[s]),
                             spec_alt("Or accept this action in the spec.", _fk_spec_row(tg, a.differing[0], key)))


def _fk_column_loc(t: Table, key: tuple[str, ...]) -> Location | None:
    """Where a side without the FK should get it: the column's own line when the side has that (single)
    column and knows its line, else the table's."""
    c = t.column(key[0]) if len(key) == 1 else None
    return _loc(c) if c is not None and _loc(c) is not None and _loc(c).line else _loc(t)


def _fk_spec_row(tg: TableGroup, side: str, key: tuple[str, ...]) -> str | None:
    t = tg.tables[side]
    c = t.column(key[0]) if len(key) == 1 else None
    if c is not None:
        return spec_row(t, c)
    f = next(f for f in t.foreign_keys if tuple(f.columns) == key)
    return f"- {fk_sql(f)}"


def _fk_add_fix(tg: TableGroup, side: str, lead_t: Table, fk: ForeignKey, replace: ForeignKey | None = None) -> list[Fix]:
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
                    sql=(f"{drop_sql}ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} {fk_sql(fk)} NOT VALID;\n"
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
    t_wo = tg.tables[side].model_copy(update={"foreign_keys": [f for f in tg.tables[side].foreign_keys if f is not fk]})
    return side_fix(side, f"Drop the foreign key {fk_sql(fk)} (or add it to the reference).",
                    model=model_field(t_wo, plain) if plain is not None else None,
                    sql=f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(name)};",
                    alembic=f"op.drop_constraint({name!r}, {tname!r}, type_='foreignkey')",
                    locks="Dropping an FK takes a brief lock on both tables.")


def unique_sets(t: Table) -> dict[frozenset[str], object]:
    """Every column set declared unique, however it is spelled (column flag, constraint, unique index)."""
    out: dict[frozenset[str], object] = {}
    for c in t.columns:
        if c.unique:
            out.setdefault(frozenset([c.name]), c)
    for u in t.unique_constraints:
        out.setdefault(frozenset(u.columns), u)
    for i in t.indexes:
        if _plain_unique(i):
            out.setdefault(frozenset(i.column_names), i)
    out.pop(frozenset(pk_columns(t)), None)  # the primary key is unique already
    return out


def _plain_unique(i: Index) -> bool:
    return (i.unique and not i.primary and not i.where and (i.method or "btree") == "btree"
            and not any(c.is_expression or c.descending for c in i.columns) and not i.include)


@table_comparator
def compare_unique(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    sets = {s: unique_sets(t) for s, t in tg.tables.items()}
    for key in sorted({k for m in sets.values() for k in m}, key=sorted):
        cols = sorted(key)
        obj = _fk_obj(tg.key, tuple(cols))
        items = {s: (key in sets[s]) for s in tg.tables}
        a = _compare(obj, "unique", items, lambda v: v, lambda v: f"UNIQUE ({', '.join(cols)})" if v else "not unique")
        if not a:
            continue
        for s in a.shown:
            a.shown[s].location = _loc(sets[s].get(key)) or _loc(tg.tables[s])
        want = items[a.lead]

        def fixes(side: str, want=want, key=key, cols=cols) -> list[Fix]:
            tname = tg.tables[side].name
            name = f"{tname}_{'_'.join(cols)}_key"
            lead = tg.tables[a.lead]
            model = (model_field(lead, lead.column(cols[0])) if len(cols) == 1 and lead.column(cols[0])
                     else f"__table_args__ = (UniqueConstraint({', '.join(map(repr, cols))}),)")
            if want:
                return side_fix(side, f"Make ({', '.join(cols)}) unique.", model=model,
                                sql=(f"CREATE UNIQUE INDEX CONCURRENTLY {ident(name)} ON {ident(tname)} ({', '.join(map(ident, cols))});\n"
                                     f"ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} UNIQUE USING INDEX {ident(name)};"),
                                alembic=(alembic_autocommit(f"op.create_index({name!r}, {tname!r}, {cols!r}, unique=True, postgresql_concurrently=True)")
                                         + f"\nop.execute({f'ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} UNIQUE USING INDEX {ident(name)}'!r})"),
                                locks=CONCURRENT_NOTE + " Fails if duplicates exist: check with GROUP BY ... HAVING count(*) > 1.")
            el = sets[side][key]
            if isinstance(el, Index) and not el.constraint:
                iname = el.name or name
                return side_fix(side, f"Drop the unique index on ({', '.join(cols)}).", model=model,
                                sql=f"DROP INDEX CONCURRENTLY {ident(iname)};",
                                alembic=alembic_autocommit(f"op.drop_index({iname!r}, table_name={tname!r}, postgresql_concurrently=True)"),
                                locks=CONCURRENT_NOTE)
            cname = getattr(el, "constraint", None) or getattr(el, "name", None) or name
            return side_fix(side, f"Drop the unique constraint on ({', '.join(cols)}).", model=model,
                            sql=f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(cname)};",
                            alembic=f"op.drop_constraint({cname!r}, {tname!r}, type_='unique')",
                            locks="Dropping a constraint is a catalog change (brief ACCESS EXCLUSIVE lock).")
        s0 = a.differing[0]
        patch = (spec_row(tg.tables[s0], tg.tables[s0].column(cols[0])) if len(cols) == 1 and tg.tables[s0].column(cols[0])
                 else f"- UNIQUE ({', '.join(cols)})")
        yield make_drift(ctx, a, "degraded", "uniqueness", fixes, spec_alt("Or accept this in the spec.", patch))


def _index_key(i: Index) -> tuple:
    cols = tuple((norm_expr(c.name) if c.is_expression else c.name, c.descending,
                  c.descending if c.nulls_first is None else c.nulls_first) for c in i.columns)
    return cols, i.unique, (i.method or "btree").lower(), norm_expr(i.where), tuple(i.include)


def _relevant_indexes(t: Table) -> list[Index]:
    """Indexes compared as indexes: not the PK's, not plain unique ones (compare_unique covers those)."""
    pk = pk_columns(t)
    return [i for i in t.indexes if not i.primary and not _plain_unique(i)
            and not (i.column_names == pk and not i.where and not any(c.descending for c in i.columns))]


def _index_aspects(a: Index, b: Index) -> list[str]:
    ka, kb = _index_key(a), _index_key(b)
    out = []
    if {c[0] for c in ka[0]} != {c[0] for c in kb[0]}:
        out.append("index-columns")
    elif ka[0] != kb[0]:
        out.append("index-order")
    for n, kind in ((1, "index-unique"), (2, "index-method"), (3, "index-predicate"), (4, "index-include")):
        if ka[n] != kb[n]:
            out.append(kind)
    return out


def _index_text(t: Table, i: Index) -> str:
    return create_index_sql(t, i).removesuffix(";")


@table_comparator
def compare_indexes(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    lead = tg.lead
    lead_t = tg.tables[lead]
    ref = _relevant_indexes(lead_t)
    for side in list(tg.tables)[1:]:
        t = tg.tables[side]
        rest = _relevant_indexes(t)
        pairs: list[tuple[Index, Index]] = []
        unmatched: list[Index] = []
        for how in ("structure", "name", "columns"):
            for i in (ref if how == "structure" else list(unmatched)):
                match = next((j for j in rest if (
                    _index_key(j) == _index_key(i) if how == "structure"
                    else (i.name and j.name == i.name) if how == "name"
                    else sorted(j.column_names) == sorted(i.column_names))), None)
                if match is not None:
                    rest.remove(match)
                    pairs.append((i, match))
                    if how != "structure":
                        unmatched.remove(i)
                elif how == "structure":
                    unmatched.append(i)
        for i, j in pairs:
            yield from _index_pair_drift(ctx, tg, side, i, j)
        side_uniques = unique_sets(t)
        for i in unmatched:
            if frozenset(i.column_names) in side_uniques and not i.where and not i.unique:
                continue  # a unique constraint's index serves the same lookups
            obj = f"{tg.key}.{index_name(lead_t, i)}"
            shown = {lead: SideValue(value=_index_text(lead_t, i), location=i.location),
                     side: SideValue(value=None, location=_loc(t))}
            a = Aspect(obj, "index-missing", lead, shown, [side])
            idx = i.model_copy(update={"name": index_name(lead_t, i)})
            yield make_drift(ctx, a, "degraded", "the index", lambda s, idx=idx: side_fix(
                s, f"Create the index {idx.name}.", model=_model_index_line(lead_t, idx),
                sql=create_index_sql(t, idx, concurrently=True),
                alembic=alembic_autocommit(_alembic_create_index(t, idx)), locks=CONCURRENT_NOTE),
                hint=f" It serves: {i.reason}." if i.reason else "")
        for j in rest:
            obj = f"{tg.key}.{index_name(t, j)}"
            shown = {lead: SideValue(value=None, location=_loc(lead_t)),
                     side: SideValue(value=_index_text(t, j), location=j.location)}
            a = Aspect(obj, "index-extra", lead, shown, [side])
            name = index_name(t, j)
            yield make_drift(ctx, a, "degraded", "the index", lambda s, name=name, t=t: side_fix(
                s, f"Drop the index {name} (or add it to the {lead}).",
                model=f"# remove index=True / the Index({name!r}, ...) declaration",
                sql=f"DROP INDEX CONCURRENTLY {ident(name)};",
                alembic=alembic_autocommit(f"op.drop_index({name!r}, table_name={t.name!r}, postgresql_concurrently=True)"),
                locks=CONCURRENT_NOTE), spec_alt("Or document the index in the spec.", spec_index(t, j)))


def _model_index_line(t: Table, i: Index) -> str:
    col = t.column(i.columns[0].name)
    if len(i.columns) == 1 and col is not None and _plain_single(i, col.name) and not i.unique:
        with_index = t.model_copy(update={"indexes": [*t.indexes, i]})
        return model_field(with_index, col)
    return f"__table_args__ = ({model_index(t, i)},)"


def _alembic_create_index(t: Table, i: Index) -> str:
    cols = [f"sa.text({index_columns_sql(Index(columns=[c]))!r})" if (c.is_expression or c.descending) else repr(c.name)
            for c in i.columns]
    kw = ", unique=True" if i.unique else ""
    kw += f", postgresql_using={i.method!r}" if i.method and i.method != "btree" else ""
    kw += f", postgresql_where=sa.text({i.where!r})" if i.where else ""
    kw += f", postgresql_include={i.include!r}" if i.include else ""
    return f"op.create_index({index_name(t, i)!r}, {t.name!r}, [{', '.join(cols)}]{kw}, postgresql_concurrently=True)"


def _index_pair_drift(ctx: Ctx, tg: TableGroup, side: str, i: Index, j: Index) -> Iterator[Drift]:
    lead = tg.lead
    lead_t, t = tg.tables[lead], tg.tables[side]
    aspects = _index_aspects(i, j)
    obj = f"{tg.key}.{index_name(lead_t, i)}"
    shown = {lead: SideValue(value=_index_text(lead_t, i), location=i.location),
             side: SideValue(value=_index_text(t, j), location=j.location)}
    if not aspects:
        if i.name and j.name and i.name != j.name:
            a = Aspect(obj, "index-name", lead, shown, [side])
            yield make_drift(ctx, a, "cosmetic", "the index name", lambda s: side_fix(
                s, f"Rename the index {j.name} to {i.name}.", model=_model_index_line(lead_t, i),
                sql=f"ALTER INDEX {ident(j.name)} RENAME TO {ident(i.name)};",
                alembic=f"op.execute({f'ALTER INDEX {ident(j.name)} RENAME TO {ident(i.name)}'!r})",
                locks="RENAME is a catalog change."), hint=" Same structure; only the name differs.")
        return
    a = Aspect(obj, aspects[0], lead, shown, [side])
    new = i.model_copy(update={"name": index_name(lead_t, i)})
    old_name = index_name(t, j)
    tmp = new.name + "_new" if new.name == old_name else new.name
    steps = [create_index_sql(t, new.model_copy(update={"name": tmp}), concurrently=True), f"DROP INDEX CONCURRENTLY {ident(old_name)};"]
    if tmp != new.name:
        steps.append(f"ALTER INDEX {ident(tmp)} RENAME TO {ident(new.name)};")
    ops = [_alembic_create_index(t, new.model_copy(update={"name": tmp})),
           f"op.drop_index({old_name!r}, table_name={t.name!r}, postgresql_concurrently=True)"]
    rename = f"\nop.execute({f'ALTER INDEX {ident(tmp)} RENAME TO {ident(new.name)}'!r})" if tmp != new.name else ""
    what = ", ".join(k.removeprefix("index-") for k in aspects)
    yield make_drift(ctx, a, "degraded", f"the index ({what})", lambda s: side_fix(
        s, f"Rebuild the index as {_index_text(t, new)}.", model=_model_index_line(lead_t, new),
        sql="\n".join(steps), alembic=alembic_autocommit(*ops) + rename, locks=CONCURRENT_NOTE),
        spec_alt("Or accept this index in the spec.", spec_index(t, j)))


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
    named = (ck and ck.name) or (other and other.name)
    obj = f"{tg.key}.{named}" if named else f"{tg.key}.check({norm_expr(some.expression)})"
    shown = {lead: SideValue(value=ck and f"CHECK ({ck.expression})", location=_loc(ck) or _loc(tg.tables[lead])),
             side: SideValue(value=other and f"CHECK ({other.expression})", location=_loc(other) or _loc(t))}
    a = Aspect(obj, "check", lead, shown, [side])
    name = (other.name if other else None) or (ck.name if ck else None) or f"{t.name}_{'_'.join((some.columns or ['expr'])[:1])}_check"
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
             else f"# remove CheckConstraint({other.expression!r})")
    fixes = side_fix(side, "Add the CHECK." if ck and not other else "Drop the CHECK." if other and not ck
                     else "Replace the CHECK.", model=model, sql="\n".join(steps), alembic="\n".join(ops),
                     locks="NOT VALID adds the CHECK without a scan; VALIDATE scans without blocking writes.")
    return make_drift(ctx, a, "degraded", "the CHECK constraint", lambda s: fixes,
                      spec_alt("Or accept this CHECK in the spec.", f"- CHECK ({other.expression})" if other else None))


def compare_enums(ctx: Ctx) -> Iterator[Drift]:
    """Enum types present on several sides: labels compared in order (order is the sort order)."""
    by_name: dict[str, dict[str, object]] = {}
    for s in ctx.sides:
        for e in ctx.schemas[s].enums:
            by_name.setdefault(e.name, {})[s] = e
    for name, items in sorted(by_name.items()):
        a = _compare(name, "enum-labels", items, lambda e: tuple(e.values), lambda e: ", ".join(e.values))
        if not a:
            continue
        want = list(items[a.lead].values)

        def severity(side: str, want=want) -> str:
            have = items[side].values
            if set(want) - set(have):
                return "breaking"  # the app writes labels this side rejects
            return "degraded" if set(have) - set(want) else "cosmetic"  # extra labels / another order

        def fixes(side: str, want=want, name=name) -> list[Fix]:
            have = list(items[side].values)
            adds = [v for v in want if v not in have]
            steps = []
            for v in adds:
                pos = want.index(v)
                after = next((w for w in reversed(want[:pos]) if w in have or w in adds[: adds.index(v)]), None)
                steps.append(f"ALTER TYPE {ident(name)} ADD VALUE IF NOT EXISTS {literal(v)}" + (f" AFTER {literal(after)}" if after else "") + ";")
            removed = [v for v in have if v not in want]
            sql = "\n".join(steps + ([f"-- labels {', '.join(removed)} cannot be dropped: create a new type, "
                                      "recast the columns, drop the old type"] if removed else []))
            return side_fix(side, f"Give the enum {name} the labels {', '.join(want)}.",
                            model=f"class {enum_class(name)}(str, Enum):\n" + "\n".join(f"    {v} = {v!r}" for v in want)
                                  + "\n# SQLModel stores member NAMES as labels",
                            sql=sql or None,
                            alembic=alembic_autocommit(*(f"op.execute({s.rstrip(';')!r})" for s in steps)) if steps else None,
                            locks="ADD VALUE is a catalog change; a new label cannot be used in the transaction that adds it.")
        yield make_drift(ctx, a, severity, "the enum labels", fixes,
                         spec_alt("Or accept these labels in the spec.",
                                  f"- enum {name}: {', '.join(items[a.differing[0]].values)}"))


# ---------------------------------------------------------------------------------------------------
# Entry point


def _managed(t: Table) -> bool:
    return t.managed_by == "better-auth" or t.name in BETTER_AUTH_TABLES


def diff_schemas(sides: dict[str, Schema], *, tables: list[str] | None = None, include_managed: bool = False,
                 owner_column: str = "user_id") -> DiffResult:
    """Compare two or three schemas; the first of spec, models, database present is the reference."""
    unknown = set(sides) - set(SIDE_ORDER)
    if unknown or len(sides) < 2:
        raise ValueError(f"diff_schemas needs two or three of {', '.join(SIDE_ORDER)}; got "
                         f"{', '.join(sorted(sides)) or 'none'}. Pass e.g. {{'spec': ..., 'models': ...}}.")
    ctx = Ctx(schemas=dict(sides), sides=[s for s in SIDE_ORDER if s in sides], owner_column=owner_column)
    wanted = {n.lower().rpartition(".")[2] for n in tables or []}
    managed: set[str] = set()
    drifts: list[Drift] = []
    for tg in align_tables(ctx):
        names = {t.name for t in tg.tables.values()} | {tg.key}
        if wanted and not names & wanted and not any(v in wanted for n in names for v in name_variants(n)):
            continue
        if any(_managed(t) for t in tg.tables.values()) and not include_managed:
            managed |= {t.name for t in tg.tables.values()}
            continue
        for tcmp in TABLE_COMPARATORS:
            drifts += tcmp(ctx, tg)
        if len(tg.tables) > 1:
            for cg in align_columns(tg):
                for ccmp in COLUMN_COMPARATORS:
                    drifts += ccmp(ctx, tg, cg)
    if not wanted:
        drifts += compare_enums(ctx)
    drifts.sort(key=lambda d: (d.object, d.kind, d.message))
    summary = {s: sum(d.severity == s for d in drifts) for s in SEVERITIES}
    return DiffResult(reference=ctx.reference, compared=ctx.sides, drifts=drifts,  # type: ignore[arg-type]
                      managed_elsewhere=sorted(managed), summary=summary,
                      clean=not any(d.severity != "cosmetic" for d in drifts))


__all__ = [
    "DiffResult", "Drift", "DriftKind", "Fix", "SideValue", "Severity", "diff_schemas", "differences",
    "norm_default", "norm_expr", "value_set_of",
]  # fmt: skip
