"""PostgreSQL DDL from the Schema model: CREATE TYPE / TABLE / INDEX, and the updated_at trigger.

The one place SQL for a schema element is written: applying a spec to an empty database, dry-running a
proposed table, and the migration SQL of the drift engine (:mod:`tools.drift`) all render through here.
Identifiers are quoted only when PostgreSQL needs it, so the output reads like hand-written DDL.

Nothing is pasted: identifiers and literals are quoted by :mod:`tools.database.quoting`, and every
expression (defaults, CHECKs, index expressions and predicates) and non-builtin type is parsed as exactly
one expression and re-printed from the parse tree (:func:`tools.database.expressions.sql_expression`);
text that is not one expression raises :class:`ExpressionError`. :func:`execute_ddl` then sends only
statements that parse as one DDL statement of a kind we build, each on its own (extended protocol: the
server refuses a string holding several statements).
"""

from __future__ import annotations

import re

from ..schema.model import Column, Enum, ForeignKey, Index, Schema, Table
from .expressions import ExpressionError, sql_expression, sql_type, value_set_of
from .quoting import ident, ident_list, literal, literal_list, qualified_name  # noqa: F401 - literal: re-exported
from .types import try_normalize_type

#: The serial pseudo-type that creates a column of this integer type with its sequence.
_SERIAL_BY_TYPE = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def qualified(table: Table) -> str:
    return qualified_name(table.schema_name, table.name)


_FK_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION")
_METHOD = re.compile(r"[a-z_][a-z0-9_]*")


def _fk_action(action: str) -> str:
    if action not in _FK_ACTIONS:
        raise ExpressionError(f"The foreign-key action {action!r} is not one of {', '.join(_FK_ACTIONS)}.")
    return action


# ---------------------------------------------------------------------------------------------------
# Facts about a column the DDL depends on (the drift engine compares with the same ones)


def canon_type(t: str) -> str:
    """The canonical spelling of a type (``VARCHAR(200)`` -> ``varchar(200)``); unknown names lower-cased."""
    n = try_normalize_type(t)
    return n.type if n else " ".join(t.lower().split())


def pk_columns(table: Table) -> list[str]:
    return list(table.primary_key) or [c.name for c in table.columns if c.primary_key]


def nullable(table: Table, column: Column) -> bool:
    return column.nullable and column.name not in pk_columns(table)  # a primary key implies NOT NULL


def identity(column: Column) -> str | None:
    """serial / identity, folding bigserial/smallserial into serial and reading nextval() defaults."""
    kind = column.identity or ("serial" if (column.default or "").lower().startswith("nextval(") else None)
    return "serial" if kind in ("serial", "bigserial", "smallserial") else kind


# ---------------------------------------------------------------------------------------------------
# Columns, keys and constraints


def type_sql(column: Column) -> str:
    """The type as a column definition spells it: ``bigserial``, ``integer GENERATED ALWAYS AS IDENTITY``,
    the canonical type, or a user type's name (quoted if it needs it; ``vector(1536)`` left as written)."""
    t = canon_type(column.type)
    if t == "unknown":
        return "text"  # the spec did not say (the reader warned); PostgreSQL refuses its pseudo-type
    if identity(column) == "serial" and t in _SERIAL_BY_TYPE:
        return _SERIAL_BY_TYPE[t]
    if column.identity in ("identity always", "identity by default"):
        return f"{t} GENERATED {column.identity.removeprefix('identity ').upper()} AS IDENTITY"
    if try_normalize_type(column.type):
        return t
    if re.search(r"[(.\[]", t):
        return sql_type(t, f"type of {column.name}")  # vector(1536), public.mood, mood[]: re-printed
    return ident(t)


def column_sql(table: Table, column: Column, *, inline_pk: bool = False) -> str:
    """``name type [PRIMARY KEY | NOT NULL] [DEFAULT ...]``; a primary-key column is NOT NULL."""
    parts = [ident(column.name), type_sql(column)]
    if inline_pk:
        parts.append("PRIMARY KEY")
    elif not nullable(table, column):
        parts.append("NOT NULL")
    if column.default and identity(column) is None:  # serial / identity generate the value themselves
        parts.append(f"DEFAULT {sql_expression(column.default, f'default of {table.name}.{column.name}')}")
    return " ".join(parts)


def fk_sql(fk: ForeignKey) -> str:
    """``FOREIGN KEY (...) REFERENCES t (...) [ON DELETE ...]``, without the constraint name.
    NO ACTION is PostgreSQL's default and is left unsaid."""
    target = qualified_name(fk.ref_schema, fk.ref_table)
    s = f"FOREIGN KEY ({ident_list(fk.columns)}) REFERENCES {target} ({ident_list(fk.ref_columns)})"
    if fk.on_delete and fk.on_delete != "NO ACTION":
        s += f" ON DELETE {_fk_action(fk.on_delete)}"
    if fk.on_update and fk.on_update != "NO ACTION":
        s += f" ON UPDATE {_fk_action(fk.on_update)}"
    return s


def in_list_sql(column: str, values: list[str]) -> str:
    """``status IN ('done', 'todo')``: the CHECK expression for a fixed value set."""
    return f"{ident(column)} IN ({literal_list(values)})"


def _value_set_checked(table: Table, column: str) -> bool:
    return any((vs := value_set_of(ck.expression)) and vs[0] == column for ck in table.checks)


def _constraint(name: str | None, body: str) -> str:
    return f"CONSTRAINT {ident(name)} {body}" if name else body


def check_sql(table: Table, expression: str, name: str | None = None) -> str:
    """A CHECK's expression, parsed and re-printed (ExpressionError when it is not one expression)."""
    return sql_expression(expression, f"CHECK {name or ''} on {table.name}".replace("  ", " "),
                          example="status IN ('todo', 'done') or length(title) > 0")


def create_table_sql(table: Table) -> str:
    """One CREATE TABLE with columns, keys, foreign keys, unique constraints and checks.

    A column's ``allowed_values`` become a CHECK unless a CHECK already restricts the column, or its
    type is not a built-in one (an enum type restricts the values itself)."""
    pk = pk_columns(table)
    single_pk = pk[0] if len(pk) == 1 else None
    lines = [column_sql(table, c, inline_pk=c.name == single_pk) for c in table.columns]
    if len(pk) > 1:
        lines.append(f"PRIMARY KEY ({ident_list(pk)})")
    lines += [f"UNIQUE ({ident(c.name)})" for c in table.columns if c.unique and [c.name] != pk]
    lines += [_constraint(u.name, f"UNIQUE ({ident_list(u.columns)})") for u in table.unique_constraints]
    lines += [_constraint(fk.name, fk_sql(fk)) for fk in table.foreign_keys]
    lines += [_constraint(ck.name, f"CHECK ({check_sql(table, ck.expression, ck.name)})") for ck in table.checks]
    lines += [f"CHECK ({in_list_sql(c.name, c.allowed_values)})" for c in table.columns
              if c.allowed_values and try_normalize_type(c.type) and not _value_set_checked(table, c.name)]
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {qualified(table)} (\n    {body}\n);"


# ---------------------------------------------------------------------------------------------------
# Indexes


def index_name(table: Table, index: Index) -> str:
    """The index's own name, else ``ix_<table>_<columns>``: the prefix SQLAlchemy gives ``index=True``, so
    the SQL and the model fixes the drift engine offers for one index name it alike."""
    if index.name:
        return index.name
    suffix = "_".join(re.sub(r"\W+", "_", c.name).strip("_") for c in index.columns)
    return f"ix_{table.name}_{suffix}"[:63]


def index_columns_sql(index: Index) -> str:
    """The key list: expressions parenthesised, NULLS FIRST/LAST only where it is not the direction's default."""
    keys = []
    for column in index.columns:
        key = (f"({sql_expression(column.name, 'index expression', example='lower(email)')})"
               if column.is_expression else ident(column.name))
        if column.descending:
            key += " DESC"
        if column.nulls_first is not None and column.nulls_first != column.descending:
            key += " NULLS FIRST" if column.nulls_first else " NULLS LAST"
        keys.append(key)
    return ", ".join(keys)


def create_index_sql(table: Table, index: Index, *, concurrently: bool = False,
                     if_not_exists: bool = False) -> str:
    sql = "CREATE UNIQUE INDEX" if index.unique else "CREATE INDEX"
    if concurrently:
        sql += " CONCURRENTLY"
    if if_not_exists:
        sql += " IF NOT EXISTS"
    sql += f" {ident(index_name(table, index))} ON {qualified(table)}"
    if index.method and index.method.lower() != "btree":
        if not _METHOD.fullmatch(index.method.lower()):
            raise ExpressionError(f"The index method {index.method!r} is not a name; use btree, gin, gist, "
                                  "brin, hash or spgist.")
        sql += f" USING {index.method.lower()}"
    sql += f" ({index_columns_sql(index)})"
    if index.include:
        sql += f" INCLUDE ({ident_list(index.include)})"
    if index.where:
        sql += f" WHERE {sql_expression(index.where, 'index predicate (WHERE)', example='deleted_at IS NULL')}"
    return sql + ";"


# ---------------------------------------------------------------------------------------------------
# Types, triggers, whole tables and schemas


def create_enum_sql(enum: Enum) -> str:
    return f"CREATE TYPE {qualified_name(enum.schema_name, enum.name)} AS ENUM ({literal_list(enum.values)});"


UPDATED_AT_FUNCTION = """\
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;"""


def updated_at_trigger_sql(table: Table) -> str:
    """Keeps updated_at current for every UPDATE, not only the ones the ORM sends."""
    return (f"CREATE TRIGGER {ident(f'{table.name}_set_updated_at')} BEFORE UPDATE ON {qualified(table)}\n"
            f"    FOR EACH ROW EXECUTE FUNCTION set_updated_at();")


def table_ddl(table: Table) -> list[str]:
    """CREATE TABLE then its indexes (those not already implied by the PK or UNIQUE)."""
    statements = [create_table_sql(table)]
    statements += [create_index_sql(table, ix) for ix in table.indexes if not ix.primary and not ix.constraint]
    return statements


def schema_ddl(schema: Schema, *, include_managed: bool = True) -> list[str]:
    """Every statement to build the schema from nothing, tables ordered so FK targets come first."""
    statements = [create_enum_sql(e) for e in schema.enums]
    for table in dependency_order(schema.tables):
        if table.managed_by and not include_managed:
            continue
        statements += table_ddl(table)
    return statements


def dependency_order(tables: list[Table]) -> list[Table]:
    """Tables sorted so that a table comes after the tables its foreign keys reference."""
    by_name = {t.name: t for t in tables}
    ordered: list[Table] = []
    visiting: set[str] = set()

    def visit(table: Table) -> None:
        if table in ordered or table.name in visiting:
            return  # already placed, or a cycle: keep declaration order
        visiting.add(table.name)
        for fk in table.foreign_keys:
            if fk.ref_table in by_name and fk.ref_table != table.name:
                visit(by_name[fk.ref_table])
        visiting.discard(table.name)
        ordered.append(table)

    for table in tables:
        visit(table)
    return ordered


# ---------------------------------------------------------------------------------------------------
# Sending DDL: only what we built, one statement at a time

#: The statements this module builds; anything else (COMMIT, DELETE, SET ROLE...) is never sent.
_DDL_KINDS = ("CreateStmt", "IndexStmt", "CreateEnumStmt", "CreateFunctionStmt", "CreateTrigStmt")


class DDLRefused(ValueError):
    """A statement about to be sent is not one DDL statement of a kind we build (a bug or an injection)."""


def check_ddl(statement: str) -> str:
    """The statement itself if it parses as exactly one CREATE TABLE / INDEX / TYPE / FUNCTION / TRIGGER;
    DDLRefused otherwise (several statements, transaction control such as COMMIT, anything else)."""
    from pglast import parse_sql

    try:
        parsed = parse_sql(statement)
    except Exception as exc:  # pglast.parser.ParseError
        raise DDLRefused(f"Refused to send DDL that does not parse ({exc}): {statement[:200]!r}") from None
    kinds = [type(s.stmt).__name__ for s in parsed]
    if len(kinds) != 1 or kinds[0] not in _DDL_KINDS:
        raise DDLRefused(f"Refused to send {statement[:200]!r}: it is {', '.join(kinds) or 'empty'}, not one "
                         f"statement of {', '.join(_DDL_KINDS)}.")
    return statement


async def execute_ddl(conn, statements: list[str], on_sent=None) -> None:
    """Send each statement on its own, checked first (all of them before the first is sent).

    Each goes through the extended query protocol (``binary=True`` makes psycopg use it; ``prepare=False``
    keeps it out of the prepared-statement cache), in which PostgreSQL refuses a string holding more than
    one statement, so even a statement that slipped past :func:`check_ddl` could not smuggle a second."""
    for statement in statements:
        check_ddl(statement)
    for statement in statements:
        if on_sent is not None:
            on_sent(statement)
        await conn.execute(statement, prepare=False, binary=True)
