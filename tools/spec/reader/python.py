"""SQLModel classes with ``table=True`` written inside a spec, read with ``ast`` (never executed).

Spec code usually lacks imports and uses bare ``Column``/``String``/``Text``; that is fine, nothing is
resolved. Fields inherited from non-table base classes in the same spec are included.
"""

from __future__ import annotations

import ast
from contextvars import ContextVar
from dataclasses import dataclass, field

from ...schema.findings import Finding
from ...schema.model import Check, Column, ForeignKey, Index, IndexColumn, Location, UniqueConstraint
from .drafts import PYTHON, ColumnDraft, TableDraft
from .words import FK_ACTIONS, expression_columns, normalize_default, normalize_expression

_ANNOTATION_TYPES = {
    "str": "varchar", "int": "integer", "bool": "boolean", "float": "double precision",
    # SQLModel >= 0.0.45 creates TIMESTAMP WITH TIME ZONE for a datetime field (diff_index.md §3.1)
    "datetime": "timestamptz", "date": "date", "time": "time", "timedelta": "interval", "UUID": "uuid",
    "Decimal": "numeric", "bytes": "bytea", "dict": "json", "Dict": "json", "list": "json", "List": "json",
    "EmailStr": "varchar", "AnyUrl": "varchar", "HttpUrl": "varchar",
}
#: What a plain ``datetime`` annotation creates: timestamptz since SQLModel 0.0.45, timestamp before.
DATETIME_TYPE: ContextVar[str] = ContextVar("DATETIME_TYPE", default="timestamptz")
_SA_TYPES = {
    "String": "varchar", "Unicode": "varchar", "Text": "text", "UnicodeText": "text", "Integer": "integer",
    "BigInteger": "bigint", "SmallInteger": "smallint", "Boolean": "boolean", "DateTime": "timestamp",
    "Date": "date", "Time": "time", "Interval": "interval", "JSON": "json", "JSONB": "jsonb",
    "Float": "double precision", "Numeric": "numeric", "UUID": "uuid", "Uuid": "uuid",
    "LargeBinary": "bytea", "AutoString": "varchar", "TIMESTAMP": "timestamp", "VARCHAR": "varchar",
    "TEXT": "text", "INTEGER": "integer", "BOOLEAN": "boolean",
}


@dataclass
class PythonResult:
    drafts: list[TableDraft] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


@dataclass
class _ClassInfo:
    node: ast.ClassDef
    first_line: int
    is_table: bool
    enum_values: list[str] | None = None


def looks_like_models(text: str) -> bool:
    return "table=True" in text.replace(" ", "") or "(SQLModel" in text


def read_python(blocks: list[tuple[str, int]], file: str) -> PythonResult:
    """Read every ``table=True`` class in the spec's Python blocks ((text, first line) pairs).
    All blocks are read first so that a table class can inherit from a base class defined earlier."""
    result = PythonResult()
    classes: dict[str, _ClassInfo] = {}
    tables: list[_ClassInfo] = []  # every table class, in order, repeated names included
    for text, first_line in blocks:
        try:
            tree = ast.parse(text)
        except SyntaxError as error:
            line = first_line + (error.lineno or 1) - 1
            result.warnings.append(Finding(
                rule="spec-python-unparsable", severity="warning", location=Location(file=file, line=line),
                message=f"Line {line}: this Python block does not parse ({error.msg}); its models were skipped.",
                fix="Fix the Python syntax of the block (it is read, never run).",
            ))
            continue
        except Exception:  # ValueError for NUL bytes, RecursionError for absurd nesting
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                info = _ClassInfo(node, first_line, _is_table(node), _enum_values(node))
                if info.is_table:
                    tables.append(info)
                if not (info.is_table and node.name in classes and classes[node.name].is_table):
                    classes[node.name] = info  # a repeated table class: bases resolve to the first
    named: dict[str, str] = {}  # class name -> the table name a __tablename__ gave it
    for info in tables:
        draft = _read_class(info, classes, file)
        if draft.weak_name and info.node.name in named:
            # A later partial copy of the class ("class Task" again, new fields only): the same table.
            draft.name, draft.weak_name = named[info.node.name], False
        elif not draft.weak_name:
            named.setdefault(info.node.name, draft.name)
        result.drafts.append(draft)
    return result


def _is_table(node: ast.ClassDef) -> bool:
    return any(k.arg == "table" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in node.keywords)


def _enum_values(node: ast.ClassDef) -> list[str] | None:
    bases = {ast.unparse(b) for b in node.bases}
    if not bases & {"Enum", "enum.Enum", "StrEnum", "enum.StrEnum"}:
        return None
    values = [s.value.value for s in node.body if isinstance(s, ast.Assign)
              and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)]
    return values or None


def _line(info: _ClassInfo, node: ast.AST) -> int:
    return info.first_line + getattr(node, "lineno", 1) - 1


def _read_class(info: _ClassInfo, classes: dict[str, _ClassInfo], file: str) -> TableDraft:
    node = info.node
    explicit = None
    for statement in node.body:
        if isinstance(statement, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__tablename__" for t in statement.targets):
            if isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str):
                explicit = statement.value.value
    draft = TableDraft(name=(explicit or node.name.lower()), source=PYTHON, weak_name=explicit is None,
                       location=Location(file=file, line=_line(info, node)))
    # Base-class fields first, in method resolution order (good enough for specs).
    for owner in _lineage(node, classes):
        owner_info = classes.get(owner.name, info)
        for statement in owner.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                _read_field(statement, owner_info, draft, classes, file)
            elif isinstance(statement, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__table_args__" for t in statement.targets):
                _read_table_args(statement.value, owner_info, draft, file)
    return draft


def _lineage(node: ast.ClassDef, classes: dict[str, _ClassInfo], seen: set[str] | None = None) -> list[ast.ClassDef]:
    seen = seen if seen is not None else set()
    out: list[ast.ClassDef] = []
    for base in node.bases:
        name = ast.unparse(base)
        if name in classes and name not in seen and not classes[name].is_table:
            seen.add(name)
            out += _lineage(classes[name].node, classes, seen)
    return out + [node]


def _unwrap_optional(annotation: ast.AST) -> tuple[ast.AST, bool]:
    """``Optional[X]`` / ``X | None`` / ``Union[X, None]`` -> (X, True)."""
    if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) in ("Optional", "typing.Optional"):
        return annotation.slice, True
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        for side, other in ((annotation.left, annotation.right), (annotation.right, annotation.left)):
            if isinstance(other, ast.Constant) and other.value is None:
                return side, True
    if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) in ("Union", "typing.Union"):
        items = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        rest = [i for i in items if not (isinstance(i, ast.Constant) and i.value is None)]
        if len(rest) == 1 and len(rest) < len(items):
            return rest[0], True
    return annotation, False


def _kwargs(call: ast.Call) -> dict[str, ast.AST]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _const(node: ast.AST | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _text(node: ast.AST | None) -> str | None:
    """The string a node is, written as a literal; else None."""
    value = _const(node)
    return value if isinstance(value, str) else None


def _sa_type(node: ast.AST) -> str | None:
    """``String(200)`` -> varchar(200); ``DateTime(timezone=True)`` -> timestamptz; ``ARRAY(Integer)``."""
    call = node if isinstance(node, ast.Call) else None
    name = ast.unparse(call.func if call else node).rsplit(".", 1)[-1]
    if name == "ARRAY" and call and call.args:
        inner = _sa_type(call.args[0])
        return inner + "[]" if inner else None
    base = _SA_TYPES.get(name)
    if base is None:
        return None
    if call:
        kwargs = _kwargs(call)
        if base == "timestamp" and _const(kwargs.get("timezone")) is True:
            return "timestamptz"
        length = _const(call.args[0]) if call.args else _const(kwargs.get("length"))
        if base == "varchar" and isinstance(length, int):
            return f"varchar({length})"
    return base


def _server_default(node: ast.AST | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Call):
        func = ast.unparse(node.func)
        if func.endswith("text") and node.args and isinstance(text := _const(node.args[0]), str):
            return normalize_default(text)
        if func.startswith(("func.", "sa.func.", "sqlalchemy.func.")):
            return normalize_default(func.rsplit(".", 1)[-1] + "()")
    value = _const(node)
    if isinstance(value, str):
        return normalize_default(value if value[:1] == "'" or "(" in value or value.lower() in (
            "true", "false") or value.replace(".", "").isdigit() else f"'{value}'")
    return None


def _read_field(statement: ast.AnnAssign, info: _ClassInfo, draft: TableDraft,
                classes: dict[str, _ClassInfo], file: str) -> None:
    assert isinstance(statement.target, ast.Name)  # the caller reads plain names only
    name = statement.target.id
    annotation, optional = _unwrap_optional(statement.annotation)
    spelled = ast.unparse(annotation).strip("'\"")
    if spelled.startswith("ClassVar") or name.startswith("_"):
        return
    call = statement.value if isinstance(statement.value, ast.Call) else None
    call_name = ast.unparse(call.func).rsplit(".", 1)[-1] if call else ""
    if call_name == "Relationship" or spelled.startswith(("List[", "list[")) and call_name != "Field":
        return
    location = Location(file=file, line=_line(info, statement))
    base_name = spelled.rsplit(".", 1)[-1].split("[", 1)[0]
    pg_type = _ANNOTATION_TYPES.get(base_name)
    if base_name == "datetime":
        pg_type = DATETIME_TYPE.get()  # the meaning of the SQLModel the project runs (parse_spec(sqlmodel=))
    allowed = classes[base_name].enum_values if base_name in classes else None
    if allowed:
        pg_type = "varchar"
    column = Column(name=name, type=pg_type or "", location=location)
    stated = {"type", "nullable", "primary_key"}
    unreadable = None if pg_type else spelled
    kwargs = _kwargs(call) if call is not None and call_name == "Field" else {}
    nullable_kwarg = _const(kwargs.get("nullable"))
    primary = _const(kwargs.get("primary_key")) is True
    column.primary_key = primary
    if allowed:
        column.allowed_values = allowed
        stated.add("allowed_values")
    if isinstance(max_length := _const(kwargs.get("max_length")), int) and column.type == "varchar":
        column.type = f"varchar({max_length})"
    if _const(kwargs.get("unique")) is True:
        column.unique = True
        stated.add("unique")
    if isinstance(description := _const(kwargs.get("description")), str):
        column.description = description
    if isinstance(kwargs.get("sa_type"), ast.AST) and (sa := _sa_type(kwargs["sa_type"])):
        column.type, unreadable = sa, None
    extra = kwargs.get("sa_column_kwargs")
    if isinstance(extra, ast.Dict):
        for key, value in zip(extra.keys, extra.values, strict=True):
            if _const(key) == "server_default" and (default := _server_default(value)):
                column.default = default
                stated.add("default")
            if _const(key) == "nullable" and isinstance(_const(value), bool):
                nullable_kwarg = _const(value)
    foreign = _const(kwargs.get("foreign_key"))
    on_delete = _const(kwargs.get("ondelete"))
    sa_column = kwargs.get("sa_column")
    if isinstance(sa_column, ast.Call) and ast.unparse(sa_column.func).rsplit(".", 1)[-1] == "Column":
        for arg in sa_column.args:
            if isinstance(db_name := _const(arg), str):
                column.name = db_name  # Column("userId", ...) names the database column
            elif isinstance(arg, ast.Call) and ast.unparse(arg.func).rsplit(".", 1)[-1] == "ForeignKey":
                if arg.args and isinstance(target := _const(arg.args[0]), str):
                    foreign = target
                on_delete = _const(_kwargs(arg).get("ondelete")) or on_delete
            elif sa := _sa_type(arg):
                column.type, unreadable = sa, None
        column_kwargs = _kwargs(sa_column)
        if isinstance(nullable := _const(column_kwargs.get("nullable")), bool):
            nullable_kwarg = nullable
        if _const(column_kwargs.get("primary_key")) is True:
            primary = column.primary_key = True
        if _const(column_kwargs.get("unique")) is True:
            column.unique = True
            stated.add("unique")
        if _const(column_kwargs.get("index")) is True:
            draft.indexes.append(Index(columns=[IndexColumn(name=column.name)], location=location))
        if default := _server_default(column_kwargs.get("server_default")):
            column.default = default
            stated.add("default")
    # SQLModel: NOT NULL unless Optional; a primary key is never null; nullable= overrides.
    column.nullable = (nullable_kwarg if isinstance(nullable_kwarg, bool) else optional) and not primary
    if primary and column.type in ("integer", "bigint") and "sa_column" not in kwargs:
        column.identity = "serial" if column.type == "integer" else "bigserial"
        stated.add("identity")
    if _const(kwargs.get("index")) is True:
        draft.indexes.append(Index(columns=[IndexColumn(name=column.name)], location=location))
    if isinstance(foreign, str) and "." in foreign:
        parts = foreign.split(".")
        action = FK_ACTIONS.get(str(on_delete).lower()) if on_delete else None
        draft.foreign_keys.append(ForeignKey(
            columns=[column.name], ref_table=parts[-2], ref_columns=[parts[-1]],
            ref_schema=parts[0] if len(parts) > 2 else None, on_delete=action, location=location))
    draft.add_column(ColumnDraft(column, stated, unreadable_type=unreadable))


def _read_table_args(value: ast.AST, info: _ClassInfo, draft: TableDraft, file: str) -> None:
    items = value.elts if isinstance(value, ast.Tuple | ast.List) else [value]
    for item in items:
        if not isinstance(item, ast.Call):
            continue
        kind = ast.unparse(item.func).rsplit(".", 1)[-1]
        location = Location(file=file, line=_line(info, item))
        strings = [text for a in item.args if (text := _text(a)) is not None]
        kwargs = _kwargs(item)
        if kind == "Index" and strings:
            ops = kwargs.get("postgresql_ops")
            descending = set()
            if isinstance(ops, ast.Dict):
                descending = {_const(k) for k, v in zip(ops.keys, ops.values, strict=True)
                              if str(_const(v)).upper() == "DESC"}
            draft.indexes.append(Index(
                name=strings[0], unique=_const(kwargs.get("unique")) is True,
                method=str(_const(kwargs.get("postgresql_using")) or "btree").lower(),
                columns=[IndexColumn(name=c, descending=c in descending) for c in strings[1:]],
                location=location))
        elif kind == "UniqueConstraint" and strings:
            draft.unique_constraints.append(UniqueConstraint(name=_text(kwargs.get("name")), columns=strings,
                                                             location=location))
        elif kind == "CheckConstraint" and strings:
            expression = normalize_expression(strings[0]) or strings[0]
            draft.checks.append(Check(name=_text(kwargs.get("name")), expression=expression,
                                      columns=expression_columns(expression), location=location))
