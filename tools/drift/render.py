"""One element rendered as SQLModel code and as spec text, for the fixes (SQL comes from database.ddl)."""

from __future__ import annotations

from ..database.ddl import (
    canon_type,
    identity,
    index_columns_sql,
    index_name,
    literal,
    nullable,
    pk_columns,
    type_sql,
)
from ..database.expressions import value_set_of
from ..database.types import try_normalize_type
from ..models.codegen import PY_TYPES, SA_TYPES
from ..schema.model import Column, Index, Table
from .core import base_type, type_length

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
    if any(field_index(t, i, c) for i in t.indexes):
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
    if c.name.lower() in ("updated_at", "updatedat", "modified_at", "modifiedat", "last_modified"):
        colkw.append('"onupdate": text("now()")')  # else nothing keeps it current (updated-at-not-maintained)
    if colkw:
        kw.append("sa_column_kwargs={" + ", ".join(colkw) + "}")
    ann = f"{py} | None" if optional else py
    if kw == ["default=None"]:
        return f"{c.name}: {ann} = None"
    return f"{c.name}: {ann} = Field({', '.join(kw)})" if kw else f"{c.name}: {ann}"


def plain_single(i: Index, col: str) -> bool:
    return (len(i.columns) == 1 and i.columns[0].name == col and not i.columns[0].descending
            and not i.columns[0].is_expression and not i.where and (i.method or "btree") == "btree"
            and not i.include and not i.primary)


def field_index(t: Table, i: Index, c: Column) -> bool:
    """``index=True`` on the field says ``i`` exactly: a plain index of that one column, declared on the
    field itself (the models reader puts such an index on the field's line), named as SQLModel names one
    (``ix_<table>_<column>``), or not named. Another name (``idx_tasks_user_id``) is written as an ``Index``
    in ``__table_args__``: ``index=True`` would come back under SQLModel's name."""
    return plain_single(i, c.name) and not i.unique and (
        not i.name or i.name == f"ix_{t.name}_{c.name}" or (i.location is not None and i.location == c.location))


def _single_unique(t: Table, col: str) -> bool:
    return (next((c for c in t.columns if c.name == col and c.unique), None) is not None
            or any(u.columns == [col] for u in t.unique_constraints)
            or any(plain_single(i, col) and i.unique for i in t.indexes))


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
    extras = [f"UniqueConstraint({', '.join(map(repr, u.columns))}" + (f", name={u.name!r})" if u.name else ")")
              for u in t.unique_constraints]
    extras += [f"CheckConstraint({ck.expression!r})" for ck in t.checks]
    extras += [model_index(t, i) for i in t.indexes
               if not i.primary and not i.constraint
               and not any(plain_single(i, c.name) if i.unique else field_index(t, i, c) for c in t.columns)]
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


