"""SQLModel code from the Schema model: a table class plus Create / Read / Update schemas.

The generated class declares every index, unique constraint and check explicitly (with the same names
the DDL uses), so the metadata it produces is the DDL's, exactly: propose_table proves that by importing
the code in a child process and diffing the two.
"""

from __future__ import annotations

import re

from ..database.ddl import index_name
from ..database.types import varchar_length
from ..schema.model import Column, ForeignKey, Table
from ..schema.names import singular

#: PostgreSQL type -> the annotation SQLModel maps back to it (diff's model snippets use the same).
PY_TYPES = {
    "varchar": "str", "text": "str", "integer": "int", "bigint": "int", "smallint": "int", "boolean": "bool",
    "double precision": "float", "real": "float", "bytea": "bytes", "numeric": "Decimal", "uuid": "uuid.UUID",
    "timestamptz": "datetime",  # SQLModel >= 0.0.45 maps datetime to TIMESTAMP WITH TIME ZONE
    "timestamp": "datetime", "date": "date", "time": "time",
}
#: PostgreSQL type -> ``Field(sa_type=...)`` where the annotation alone would map to another type.
SA_TYPES = {
    "text": "Text", "bigint": "BigInteger", "smallint": "SmallInteger", "real": "REAL",
    "timestamp": "DateTime(timezone=False)", "jsonb": "JSONB", "json": "JSON",
}
_ANNOTATION_IMPORTS = {
    "Decimal": "from decimal import Decimal", "uuid.UUID": "import uuid", "datetime": "from datetime import datetime",
    "date": "from datetime import date", "time": "from datetime import time", "dict[str, Any]": "from typing import Any",
}

_TIMESTAMP_DEFAULTS = {"now()", "current_timestamp", "clock_timestamp()", "statement_timestamp()"}


def class_name(table_name: str) -> str:
    """tasks -> Task, task_tags -> TaskTag, categories -> Category."""
    return "".join(singular(part).capitalize() for part in table_name.split("_") if part)


class _Imports:
    def __init__(self) -> None:
        self.lines: set[str] = set()
        self.sqlmodel: set[str] = {"Field", "SQLModel"}
        self.sqlalchemy: set[str] = set()

    def render(self) -> str:
        out = sorted(self.lines)
        if self.sqlalchemy:
            out.append(f"from sqlalchemy import {', '.join(sorted(self.sqlalchemy))}")
        out.append(f"from sqlmodel import {', '.join(sorted(self.sqlmodel))}")
        return "\n".join(out)


def _python_type(column: Column, imports: _Imports) -> tuple[str, list[str]]:
    """(annotation, extra Field kwargs) for a column's PostgreSQL type."""
    pg = column.type
    if (length := varchar_length(pg)) is not None:
        return "str", [f"max_length={length}"]
    if m := re.fullmatch(r"char\((\d+)\)", pg):
        imports.sqlalchemy.add("CHAR")
        return "str", [f"sa_type=CHAR({m.group(1)})"]
    if m := re.fullmatch(r"numeric\((\d+),(\d+)\)", pg):
        imports.lines.add("from decimal import Decimal")
        return "Decimal", [f"max_digits={m.group(1)}", f"decimal_places={m.group(2)}"]
    if pg == "numeric":
        imports.lines.add("from decimal import Decimal")
        imports.sqlalchemy.add("Numeric")
        return "Decimal", ["sa_type=Numeric"]
    if pg == "text[]":
        imports.sqlalchemy.update({"ARRAY", "Text"})
        return "list[str]", ["sa_type=ARRAY(Text)"]
    if pg not in PY_TYPES and pg not in ("jsonb", "json"):
        raise ValueError(f"no SQLModel mapping for the PostgreSQL type {pg!r}")
    annotation = PY_TYPES.get(pg, "dict[str, Any]")
    if line := _ANNOTATION_IMPORTS.get(annotation):
        imports.lines.add(line)
    if (sa_type := SA_TYPES.get(pg)) is None:
        return annotation, []
    if sa_type == "JSONB":
        imports.lines.add("from sqlalchemy.dialects.postgresql import JSONB")
    else:
        imports.sqlalchemy.add(sa_type.partition("(")[0])
    return annotation, [f"sa_type={sa_type}"]


def _field_line(table: Table, column: Column, imports: _Imports) -> str:
    annotation, kwargs = _python_type(column, imports)
    fk = _single_column_fk(table, column.name)
    optional = column.nullable or column.identity is not None
    if column.primary_key and column.identity in ("serial", "bigserial", "smallserial"):
        kwargs = ["default=None", "primary_key=True", *kwargs]
    elif column.primary_key and column.type == "uuid" and column.default:
        kwargs = ["default_factory=uuid.uuid4", "primary_key=True", *kwargs]
    elif column.primary_key:
        kwargs = ["primary_key=True", *kwargs]
    elif optional:
        kwargs = ["default=None", *kwargs]
    if fk:
        kwargs.append(f'foreign_key="{fk.ref_table}.{fk.ref_columns[0]}"')
        if fk.on_delete:
            kwargs.append(f'ondelete="{fk.on_delete}"')
    if column.unique and not column.primary_key:
        kwargs.append("unique=True")
    if column.primary_key and len(table.primary_key) > 1 and "primary_key=True" not in kwargs:
        kwargs.append("primary_key=True")
    if column.default is not None and column.identity is None:
        imports.sqlalchemy.add("text")
        if column.default.lower() in _TIMESTAMP_DEFAULTS and annotation == "datetime":
            # the database fills it in; the Python side must not send a value of its own
            kwargs = [k for k in kwargs if k != "default=None"] + ["default=None"]
            optional = True
        kwargs.append(f'sa_column_kwargs={{"server_default": text({column.default!r})}}')
    if not column.nullable and not column.primary_key and optional:
        kwargs.append("nullable=False")
    if column.description:
        kwargs.append(f"description={column.description!r}")
    type_text = f"{annotation} | None" if optional and not (column.primary_key and not column.identity) else annotation
    return f"    {column.name}: {type_text} = Field({', '.join(kwargs)})"


def _single_column_fk(table: Table, column_name: str) -> ForeignKey | None:
    return next((fk for fk in table.foreign_keys if fk.columns == [column_name]), None)


def _table_args(table: Table, imports: _Imports) -> list[str]:
    args: list[str] = []
    for unique in table.unique_constraints:
        imports.sqlalchemy.add("UniqueConstraint")
        name = f", name={unique.name!r}" if unique.name else ""
        args.append(f"UniqueConstraint({', '.join(repr(c) for c in unique.columns)}{name})")
    for check in table.checks:
        imports.sqlalchemy.add("CheckConstraint")
        name = f", name={check.name!r}" if check.name else ""
        args.append(f"CheckConstraint({check.expression!r}{name})")
    for fk in table.foreign_keys:
        if len(fk.columns) > 1:
            imports.sqlalchemy.add("ForeignKeyConstraint")
            refs = [f"{fk.ref_table}.{c}" for c in fk.ref_columns]
            on_delete = f", ondelete={fk.on_delete!r}" if fk.on_delete else ""
            args.append(f"ForeignKeyConstraint({fk.columns!r}, {refs!r}{on_delete})")
    for index in table.indexes:
        if index.primary or index.constraint:
            continue
        imports.sqlalchemy.add("Index")
        parts = [repr(index_name(table, index))] + [repr(c.name) for c in index.columns]
        if index.unique:
            parts.append("unique=True")
        if index.method != "btree":
            parts.append(f"postgresql_using={index.method!r}")
        ops = {c.name: "DESC" for c in index.columns if c.descending}
        if ops:
            parts.append(f"postgresql_ops={ops!r}")
        if index.include:
            parts.append(f"postgresql_include={index.include!r}")
        if index.where:
            imports.sqlalchemy.add("text")
            parts.append(f"postgresql_where=text({index.where!r})")
        args.append(f"Index({', '.join(parts)})")
    return args


#: Columns an API client never sends: the database or the server fills them in.
_SERVER_SET = {"id", "created_at", "updated_at"}


def sqlmodel_code(table: Table, *, owner_column: str = "user_id") -> str:
    """A module: the table model and its Create / Read / Update schemas."""
    imports = _Imports()
    name = class_name(table.name)
    fields = [_field_line(table, c, imports) for c in table.columns]
    table_args = _table_args(table, imports)
    body = [f"class {name}(SQLModel, table=True):"]
    if table.description:
        body.append(f'    """{table.description.strip()}"""')
        body.append("")
    body.append(f"    __tablename__ = {table.name!r}")
    if table_args:
        body.append("    __table_args__ = (")
        body += [f"        {arg}," for arg in table_args]
        body.append("    )")
    body.append("")
    body += fields

    client_columns = [c for c in table.columns
                      if c.name not in _SERVER_SET and c.name != owner_column and c.identity is None]
    create = [f"class {name}Create(SQLModel):",
              f'    """What a client sends to create a {name}; {owner_column} comes from the session."""']
    update = [f"class {name}Update(SQLModel):", '    """A partial update: every field optional."""']
    for column in client_columns:
        annotation, kwargs = _python_type(column, imports)
        keep = [k for k in kwargs if k.startswith(("max_length", "max_digits", "decimal_places"))]
        required = not column.nullable and column.default is None
        default = [] if required else ["default=None"]
        create.append(f"    {column.name}: {annotation}{'' if required else ' | None'} = Field({', '.join(default + keep)})")
        update.append(f"    {column.name}: {annotation} | None = Field({', '.join(['default=None'] + keep)})")
    if not client_columns:
        create.append("    pass")
        update.append("    pass")
    read = [f"class {name}Read(SQLModel):", f'    """A {name} as the API returns it."""']
    for column in table.columns:
        annotation, _ = _python_type(column, imports)
        read.append(f"    {column.name}: {annotation}{' | None' if column.nullable else ''}")

    header = f'"""SQLModel code for the {table.name} table (generated by schema-architect)."""'
    classes = ["\n".join(body), "\n".join(create), "\n".join(read), "\n".join(update)]
    return f"{header}\n\n{imports.render()}\n\n\n" + "\n\n\n".join(classes) + "\n"
