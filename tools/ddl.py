"""PostgreSQL DDL from the Schema model: CREATE TYPE / TABLE / INDEX, and the updated_at trigger.

Used to apply a spec to an empty database, to dry-run a proposed table, and to write migration SQL.
Identifiers are quoted only when PostgreSQL needs it, so the output reads like hand-written DDL.
"""

from __future__ import annotations

import re

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from .schema import Column, Enum, Index, Schema, Table

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
_NEEDS_QUOTES = RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS

_SERIAL_TYPES = {"serial": "serial", "bigserial": "bigserial", "smallserial": "smallserial"}


def ident(name: str) -> str:
    """Quote an identifier if (and only if) PostgreSQL would otherwise read it differently."""
    if _PLAIN.fullmatch(name) and name not in _NEEDS_QUOTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(table: Table) -> str:
    return ident(table.name) if table.schema_name == "public" else f"{ident(table.schema_name)}.{ident(table.name)}"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def column_sql(column: Column, *, inline_pk: bool) -> str:
    if column.identity in _SERIAL_TYPES:
        type_sql = _SERIAL_TYPES[column.identity]
    else:
        type_sql = column.type
    parts = [ident(column.name), type_sql]
    if column.identity in ("identity always", "identity by default"):
        parts.append(f"GENERATED {column.identity.removeprefix('identity ').upper()} AS IDENTITY")
    if inline_pk:
        parts.append("PRIMARY KEY")
    elif not column.nullable:
        parts.append("NOT NULL")
    if column.default is not None and column.identity is None:
        parts.append(f"DEFAULT {column.default}")
    return " ".join(parts)


def _column_list(names: list[str]) -> str:
    return ", ".join(ident(n) for n in names)


def create_table_sql(table: Table) -> str:
    """One CREATE TABLE with columns, keys, foreign keys, unique constraints and checks."""
    single_pk = table.primary_key[0] if len(table.primary_key) == 1 else None
    lines = [column_sql(c, inline_pk=c.name == single_pk) for c in table.columns]
    if len(table.primary_key) > 1:
        lines.append(f"PRIMARY KEY ({_column_list(table.primary_key)})")
    for column in table.columns:
        if column.unique and not column.primary_key:
            lines.append(f"UNIQUE ({ident(column.name)})")
    for unique in table.unique_constraints:
        prefix = f"CONSTRAINT {ident(unique.name)} " if unique.name else ""
        lines.append(f"{prefix}UNIQUE ({_column_list(unique.columns)})")
    for fk in table.foreign_keys:
        prefix = f"CONSTRAINT {ident(fk.name)} " if fk.name else ""
        target = ident(fk.ref_table) if not fk.ref_schema or fk.ref_schema == "public" else (
            f"{ident(fk.ref_schema)}.{ident(fk.ref_table)}")
        clause = f"{prefix}FOREIGN KEY ({_column_list(fk.columns)}) REFERENCES {target} ({_column_list(fk.ref_columns)})"
        if fk.on_delete:
            clause += f" ON DELETE {fk.on_delete}"
        if fk.on_update:
            clause += f" ON UPDATE {fk.on_update}"
        lines.append(clause)
    for check in table.checks:
        prefix = f"CONSTRAINT {ident(check.name)} " if check.name else ""
        lines.append(f"{prefix}CHECK ({check.expression})")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {qualified(table)} (\n    {body}\n);"


def index_name(table: Table, index: Index) -> str:
    if index.name:
        return index.name
    suffix = "_".join(re.sub(r"\W+", "_", c.name).strip("_") for c in index.columns)
    return f"idx_{table.name}_{suffix}"[:63]


def create_index_sql(table: Table, index: Index, *, concurrently: bool = False,
                     if_not_exists: bool = False) -> str:
    keys = []
    for column in index.columns:
        key = column.name if column.is_expression else ident(column.name)
        if column.descending:
            key += " DESC"
        if column.nulls_first is not None:
            key += " NULLS FIRST" if column.nulls_first else " NULLS LAST"
        keys.append(key)
    sql = "CREATE UNIQUE INDEX" if index.unique else "CREATE INDEX"
    if concurrently:
        sql += " CONCURRENTLY"
    if if_not_exists:
        sql += " IF NOT EXISTS"
    sql += f" {ident(index_name(table, index))} ON {qualified(table)}"
    if index.method != "btree":
        sql += f" USING {index.method}"
    sql += f" ({', '.join(keys)})"
    if index.include:
        sql += f" INCLUDE ({_column_list(index.include)})"
    if index.where:
        sql += f" WHERE {index.where}"
    return sql + ";"


def create_enum_sql(enum: Enum) -> str:
    name = ident(enum.name) if enum.schema_name == "public" else f"{ident(enum.schema_name)}.{ident(enum.name)}"
    return f"CREATE TYPE {name} AS ENUM ({', '.join(literal(v) for v in enum.values)});"


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
