"""SQLModel code from the Schema model: a table class plus Create / Read / Update schemas.

The generated class declares every index, unique constraint and check explicitly (with the same names
the DDL uses), so the metadata it produces is the DDL's, exactly: propose_table proves that by importing
the code in a child process and diffing the two.

The code is built, never pasted: every string that comes from a name, a description, a default or an
expression is a Python literal made by ``repr`` (so quotes, newlines and backslashes stay inside it), every
attribute and class name is a checked identifier (a column whose name is not one gets a safe attribute and
``sa_column_kwargs={"name": ...}``), and no comment is generated. :func:`verify_generated` then parses the
module and refuses anything but imports, classes, literals and calls to the names we use.
"""

from __future__ import annotations

import ast
import keyword
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
    "Decimal": "from decimal import Decimal", "uuid.UUID": "import uuid",
    "datetime": "from datetime import datetime", "date": "from datetime import date",
    "time": "from datetime import time", "dict[str, Any]": "from typing import Any",
}

_TIMESTAMP_DEFAULTS = {"now()", "current_timestamp", "clock_timestamp()", "statement_timestamp()"}


def class_name(table_name: str) -> str:
    """tasks -> Task, task_tags -> TaskTag, categories -> Category; always a plain Python identifier."""
    name = "".join(singular(part).capitalize() for part in re.split(r"[^A-Za-z0-9]+", table_name) if part)
    if not name or not name.isidentifier() or not name.isascii():
        name = "Table" + name
    return name + "_" if keyword.iskeyword(name) else name


def attribute_name(column_name: str) -> str:
    """The Python attribute for a column: its name when that is a plain identifier, else a safe spelling
    (the column keeps its real name through ``sa_column_kwargs={"name": ...}``)."""
    if column_name.isidentifier() and column_name.isascii() and not keyword.iskeyword(column_name) \
            and not column_name.startswith("_"):
        return column_name
    name = re.sub(r"[^A-Za-z0-9_]+", "_", column_name).strip("_") or "column"
    if not name[0].isalpha():
        name = "c_" + name
    return name + "_" if keyword.iskeyword(name) or name == column_name else name


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
        kwargs.append(f"foreign_key={f'{fk.ref_table}.{fk.ref_columns[0]}'!r}")
        if fk.on_delete:
            kwargs.append(f"ondelete={fk.on_delete!r}")
    if column.unique and not column.primary_key:
        kwargs.append("unique=True")
    if column.primary_key and len(table.primary_key) > 1 and "primary_key=True" not in kwargs:
        kwargs.append("primary_key=True")
    column_kwargs = []
    if (attribute := attribute_name(column.name)) != column.name:
        column_kwargs.append(f"'name': {column.name!r}")
    if column.default is not None and column.identity is None:
        imports.sqlalchemy.add("text")
        if column.default.lower() in _TIMESTAMP_DEFAULTS and annotation == "datetime":
            # the database fills it in; the Python side must not send a value of its own
            kwargs = [k for k in kwargs if k != "default=None"] + ["default=None"]
            optional = True
        column_kwargs.append(f"'server_default': text({column.default!r})")
    if column_kwargs:
        kwargs.append(f"sa_column_kwargs={{{', '.join(column_kwargs)}}}")
    if not column.nullable and not column.primary_key and optional:
        kwargs.append("nullable=False")
    if column.description:
        kwargs.append(f"description={column.description!r}")
    type_text = f"{annotation} | None" if optional and not (column.primary_key and not column.identity) else annotation
    return f"    {attribute}: {type_text} = Field({', '.join(kwargs)})"


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
    if table.description and table.description.strip():
        body.append(f"    {_docstring(table.description.strip())}")
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
              f"    {_docstring(f'What a client sends to create a {name}; {owner_column} comes from the session.')}"]
    update = [f"class {name}Update(SQLModel):", f"    {_docstring('A partial update: every field optional.')}"]
    for column in client_columns:
        annotation, kwargs = _python_type(column, imports)
        keep = [k for k in kwargs if k.startswith(("max_length", "max_digits", "decimal_places"))]
        required = not column.nullable and column.default is None
        default = [] if required else ["default=None"]
        attribute = attribute_name(column.name)
        alias = [f"alias={column.name!r}"] if attribute != column.name else []  # the API keeps the column's name
        create.append(f"    {attribute}: {annotation}{'' if required else ' | None'} = "
                      f"Field({', '.join(default + keep + alias)})")
        update.append(f"    {attribute}: {annotation} | None = Field({', '.join(['default=None'] + keep + alias)})")
    if not client_columns:
        create.append("    pass")
        update.append("    pass")
    read = [f"class {name}Read(SQLModel):", f"    {_docstring(f'A {name} as the API returns it.')}"]
    for column in table.columns:
        annotation, _ = _python_type(column, imports)
        attribute = attribute_name(column.name)
        read_alias = f" = Field(alias={column.name!r})" if attribute != column.name else ""
        read.append(f"    {attribute}: {annotation}{' | None' if column.nullable else ''}{read_alias}")

    header = _docstring(f"SQLModel code for the {table.name} table (generated by schema-architect).")
    classes = ["\n".join(body), "\n".join(create), "\n".join(read), "\n".join(update)]
    code = f"{header}\n\n{imports.render()}\n\n\n" + "\n\n\n".join(classes) + "\n"
    verify_generated(code)
    return code


def _docstring(text: str) -> str:
    """A docstring literal: the text in triple double quotes when that spells exactly the text (printable,
    so one line; no double quote; no backslash), else ``repr(text)``. Never text that could end it."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"""' + text + '"""'
    return repr(text)


#: Names generated code may use: the imports above, builtins of the annotations, nothing else.
_ALLOWED_NAMES = frozenset({
    "SQLModel", "Field", "text", "Index", "UniqueConstraint", "CheckConstraint", "ForeignKeyConstraint",
    "CHAR", "ARRAY", "Text", "Numeric", "BigInteger", "SmallInteger", "REAL", "DateTime", "JSONB", "JSON",
    "Decimal", "uuid", "datetime", "date", "time", "Any", "str", "int", "float", "bool", "bytes", "dict", "list",
})
_ALLOWED_ATTRIBUTES = frozenset({("uuid", "UUID"), ("uuid", "uuid4")})


class GeneratedCodeError(ValueError):
    """The generated module holds something the generator never writes: a bug, never passed on."""


def verify_generated(code: str) -> None:
    """Refuse generated code that is more than imports, classes of fields, literals and calls to the
    names of :data:`_ALLOWED_NAMES` (a second line of defence behind ``repr``: text that escaped a
    literal would show up here as a statement, a call or a name we never write)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise GeneratedCodeError(f"generated code does not parse: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if not isinstance(node, ast.ClassDef) or node.decorator_list or \
                [b.id for b in node.bases if isinstance(b, ast.Name)] != ["SQLModel"] or len(node.bases) != 1:
            raise GeneratedCodeError(f"unexpected top-level statement at line {node.lineno}")
        for item in node.body:
            if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant) or isinstance(item, ast.Pass):
                continue
            if not isinstance(item, (ast.Assign, ast.AnnAssign)):
                raise GeneratedCodeError(f"unexpected statement in class {node.name} at line {item.lineno}")
    for element in ast.walk(tree):
        if isinstance(element, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom, ast.Starred,
                                ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.JoinedStr,
                                ast.FunctionDef, ast.AsyncFunctionDef)):
            raise GeneratedCodeError(f"unexpected {type(element).__name__} at line {element.lineno}")
        if isinstance(element, ast.Call) and not isinstance(element.func, (ast.Name, ast.Attribute)):
            raise GeneratedCodeError(f"unexpected call at line {element.lineno}")
        if isinstance(element, ast.Name) and element.id not in _ALLOWED_NAMES and isinstance(element.ctx, ast.Load):
            raise GeneratedCodeError(f"unexpected name {element.id!r} at line {element.lineno}")
        if isinstance(element, ast.Attribute) and \
                (getattr(element.value, "id", None), element.attr) not in _ALLOWED_ATTRIBUTES:
            raise GeneratedCodeError(f"unexpected attribute {element.attr!r} at line {element.lineno}")
