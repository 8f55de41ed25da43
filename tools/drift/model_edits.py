"""A models fix applied to the text of a copy of the model files, so the proof can re-read it.

A ``Fix.model_change`` is SQLModel code or a one-line instruction (modelfix.py, render.py and the
comparators write them). Each form is an edit of one class, found by its ``__tablename__``:

    completed: bool = Field(...)                a field declaration: replaces the field, or is added
    title: str = Field(...)  # was: name        a rename: replaces the field ``name``
    # and delete the field old                  the field goes
    __table_args__ = (Index('ix', ...),)        each element is added to the class's __table_args__,
                                                replacing one of the same name
    # delete the field: x: int                  the field goes
    __tablename__ = "t"  # ...                 the class's table name, set or replaced
    # delete the class mapped to table 't'      the class goes
    class T(SQLModel, table=True): ...          the class is added to the file
    # remove index=True / the Index('ix', ...) declaration;  # remove CheckConstraint('...')

Anything else raises :class:`CannotApply` with the reason: such a fix cannot be proven and is withheld.
Names the new code uses that the file does not bind are imported at its top (and said in the proof note),
as the user would have to.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Sequence

#: Where each name the fixes use comes from, for a file that does not import it yet.
IMPORTS = {
    **{n: f"from sqlalchemy import {n}" for n in (
        "text", "func", "Column", "Identity", "Index", "CheckConstraint", "UniqueConstraint",
        "ForeignKeyConstraint", "CHAR", "Text", "BigInteger", "SmallInteger", "REAL", "DateTime", "JSON")},
    "sa": "import sqlalchemy as sa", "postgresql": "from sqlalchemy.dialects import postgresql",
    "JSONB": "from sqlalchemy.dialects.postgresql import JSONB",
    "CITEXT": "from sqlalchemy.dialects.postgresql import CITEXT",
    "Field": "from sqlmodel import Field", "SQLModel": "from sqlmodel import SQLModel", "uuid": "import uuid",
    "datetime": "from datetime import datetime", "date": "from datetime import date",
    "time": "from datetime import time", "timedelta": "from datetime import timedelta",
    "Decimal": "from decimal import Decimal",
}


class CannotApply(ValueError):
    """The fix's code is not a form the proof knows how to put into the models."""


def apply_change(files: dict[str, str], table: str, change: str) -> tuple[dict[str, str], list[str]]:
    """``files`` (relative path -> text) with ``change`` applied to the class of ``table``; and the import
    lines it needed. Raises :class:`CannotApply`."""
    files = dict(files)
    if not change.strip():
        raise CannotApply("it has no code")
    first = change.lstrip().splitlines()[0]
    if first.startswith("class ") and "table=True" in first:
        name = _add_class(files, change)
        return files, _add_imports(files, name, change)
    if first.startswith("class "):
        raise CannotApply("it is an enum class: which column uses it, and how, is left to you")
    name, cls = _find_class(files, table)
    if first.startswith("# delete the class mapped to table"):
        files[name] = _cut(files[name], _start(cls), _end(cls))
        return files, []
    if first.startswith("# delete the field: "):
        files[name] = _delete_field(files[name], table, _field_name(first.removeprefix("# delete the field: ")))
        return files, []
    if m := re.match(r"# remove index=True / the Index\('([^']+)', \.\.\.\) declaration", first):
        files[name] = _drop_index(files[name], table, m.group(1))
        return files, []
    if first.startswith("# remove CheckConstraint("):
        expr = ast.literal_eval(first.removeprefix("# remove CheckConstraint(").rstrip(")"))
        files[name] = _edit_table_args(files[name], table, remove=lambda e: _check_expr(e) == _norm(expr))
        return files, []
    added = []
    for line in change.splitlines():
        text = line.strip()
        if not text or (text.startswith("#") and not text.startswith("# and delete the field ")):
            continue  # explanations for the reader
        if text.startswith("# and delete the field "):
            files[name] = _delete_field(files[name], table, text.removeprefix("# and delete the field ").strip())
        elif text.startswith("__table_args__"):
            files[name] = _edit_table_args(files[name], table, add=_tuple_elements(text))
            added.append(text)
        elif text.startswith("__tablename__"):
            files[name] = _set_tablename(files[name], table, text.split("  #")[0].strip())
            added.append(text)
        else:
            was = re.search(r"#\s*was:\s*(\w+)\s*$", text)
            files[name] = _set_field(files[name], table, text, was.group(1) if was else None)
            added.append(text)
    return files, _add_imports(files, name, "\n".join(added))


# --- finding things ---------------------------------------------------------------------------------


def _parse(text: str, what: str = "the models file") -> ast.Module:
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        raise CannotApply(f"{what} does not parse after the change: {exc.msg} (line {exc.lineno})") from None


def _element(source: str) -> ast.expr:
    """One ``__table_args__`` element of a fix (``Index(...)``, ``CheckConstraint(...)``), parsed."""
    stmt = _parse(source, "the fix's __table_args__ element").body[0]
    if not isinstance(stmt, ast.Expr):
        raise CannotApply(f"the fix's __table_args__ element is not an expression: {source}")
    return stmt.value


def _tablename(cls: ast.ClassDef) -> str:
    for stmt in cls.body:
        value: ast.expr | None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "__tablename__" and isinstance(value, ast.Constant):
            return str(value.value)
    return cls.name.lower()  # SQLModel's own default


def _classes(text: str) -> list[ast.ClassDef]:
    return [n for n in _parse(text).body if isinstance(n, ast.ClassDef)]


def _find_class(files: dict[str, str], table: str) -> tuple[str, ast.ClassDef]:
    for name, text in files.items():
        for cls in _classes(text):
            if _tablename(cls).lower() == table.lower():
                return name, cls
    raise CannotApply(f"no class of the models copy is mapped to the table {table}")


def _cls(text: str, table: str) -> ast.ClassDef:
    found = next((c for c in _classes(text) if _tablename(c).lower() == table.lower()), None)
    if found is None:
        raise CannotApply(f"no class of the models copy is mapped to the table {table}")
    return found


def _start(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _end(node: ast.stmt) -> int:
    """The statement's last line (``end_lineno`` is set by ``ast.parse``; typeshed has it optional)."""
    return node.end_lineno if node.end_lineno is not None else node.lineno


def _fields(cls: ast.ClassDef) -> dict[str, ast.AnnAssign]:
    return {s.target.id: s for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}


def _field_name(declaration: str) -> str:
    node = _parse(declaration.strip(), "the fix's field declaration").body
    if len(node) != 1 or not isinstance(node[0], ast.AnnAssign) or not isinstance(node[0].target, ast.Name):
        raise CannotApply(f"it is not one field declaration: {declaration.strip()}")
    return node[0].target.id


# --- line edits -------------------------------------------------------------------------------------


def _cut(text: str, first: int, last: int, insert: list[str] | None = None) -> str:
    lines = text.splitlines()
    lines[first - 1:last] = insert or []
    return "\n".join(lines) + "\n"


def _indent(cls: ast.ClassDef) -> str:
    return " " * cls.body[0].col_offset


def _set_field(text: str, table: str, declaration: str, was: str | None) -> str:
    name = _field_name(declaration)
    cls = _cls(text, table)
    fields = _fields(cls)
    old = fields.get(was) if was else None
    old = old or fields.get(name)
    line = _indent(cls) + declaration.split("  # was:")[0].rstrip()
    if old is not None:
        return _cut(text, old.lineno, _end(old), [line])
    last = _end(cls.body[-1])
    return _cut(text, last + 1, last, [line])  # a new field after the class's last statement


def _set_tablename(text: str, table: str, assignment: str) -> str:
    """The class's ``__tablename__`` replaced, or put first in its body (after the docstring)."""
    cls = _cls(text, table)
    line = _indent(cls) + assignment
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__tablename__"
                                                for t in stmt.targets):
            return _cut(text, stmt.lineno, _end(stmt), [line])
    first = cls.body[0]
    docstring = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                 and isinstance(first.value.value, str))
    at = _end(first) if docstring else first.lineno - 1
    return _cut(text, at + 1, at, [line])


def _delete_field(text: str, table: str, name: str) -> str:
    field = _fields(_cls(text, table)).get(name)
    if field is None:
        raise CannotApply(f"the class of {table} has no field {name}")
    return _cut(text, field.lineno, _end(field))


def _add_class(files: dict[str, str], code: str) -> str:
    """The new class goes at the end of the file that declares the most tables (where it can see them)."""
    name = max(files, key=lambda n: (len(_classes(files[n])), n == sorted(files)[0]))
    files[name] = files[name].rstrip("\n") + "\n\n\n" + code.rstrip() + "\n"
    return name


# --- __table_args__ ---------------------------------------------------------------------------------


def _tuple_elements(assignment: str) -> list[str]:
    node = _parse(assignment, "the fix's __table_args__").body[0]
    if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Tuple):
        raise CannotApply(f"it is not a __table_args__ tuple: {assignment}")
    return [ast.get_source_segment(assignment, e) or ast.unparse(e) for e in node.value.elts]


def _element_name(node: ast.expr) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    named = next((k.value.value for k in node.keywords if k.arg == "name" and isinstance(k.value, ast.Constant)), None)
    callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if named is None and callee == "Index" and node.args and isinstance(node.args[0], ast.Constant):
        named = node.args[0].value
    return named if isinstance(named, str) else None


def _norm(expression: str) -> str:
    return " ".join(expression.replace('"', "'").split()).lower()


def _check_expr(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "CheckConstraint" \
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return _norm(node.args[0].value)
    return None


def _edit_table_args(text: str, table: str, *, add: Sequence[str] = (),
                     remove: Callable[[ast.expr], bool] = lambda e: False) -> str:
    """Add elements to the class's ``__table_args__`` (an element of the same name, or a CHECK of the same
    expression, is replaced) and drop those ``remove`` says; the tuple is written back on one line."""
    cls = _cls(text, table)
    new = [_element(a) for a in add]
    names = {_element_name(n) for n in new} - {None}
    checks = {_check_expr(n) for n in new} - {None}
    stmt = next((s for s in cls.body if isinstance(s, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__table_args__" for t in s.targets)), None)
    if stmt is None and not add:
        raise CannotApply("the class has no __table_args__")
    kept, options = [], None
    if stmt is not None:
        value = stmt.value
        elements = value.elts if isinstance(value, ast.Tuple) else [value] if isinstance(value, ast.Dict) else None
        if elements is None:
            raise CannotApply("the class's __table_args__ is not a literal tuple or dict")
        for e in elements:
            if isinstance(e, ast.Dict):
                options = e
            elif not (remove(e) or _element_name(e) in names
                      or (_check_expr(e) is not None and _check_expr(e) in checks)):
                kept.append(e)
    elements = [e for e in getattr(stmt.value, "elts", []) if not isinstance(e, ast.Dict)] if stmt is not None else []
    if stmt is not None and not add and len(kept) == len(elements):
        raise CannotApply("the class's __table_args__ has no such element")
    source = [ast.get_source_segment(text, e) or ast.unparse(e) for e in kept] + list(add)
    if options is not None:
        source.append(ast.get_source_segment(text, options) or ast.unparse(options))
    line = _indent(cls) + "__table_args__ = (" + ", ".join(source) + ("," if source else "") + ")"
    if stmt is not None:
        return _cut(text, stmt.lineno, _end(stmt), [line])
    after = next((s for s in cls.body if isinstance(s, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__tablename__" for t in s.targets)), None)
    at = _end(after) if after is not None else cls.body[0].lineno - 1
    return _cut(text, at + 1, at, [line])


def _drop_index(text: str, table: str, index: str) -> str:
    try:
        return _edit_table_args(text, table, remove=lambda e: _element_name(e) == index)
    except CannotApply:
        pass
    cls = _cls(text, table)
    for name, field in _fields(cls).items():  # index=True names its index ix_<table>_<column>
        if index == f"ix_{table}_{name}" and isinstance(field.value, ast.Call):
            field.value.keywords = [k for k in field.value.keywords if k.arg != "index"]
            return _cut(text, field.lineno, _end(field), [_indent(cls) + ast.unparse(field)])
    raise CannotApply(f"the class of {table} declares no index {index}")


# --- imports ----------------------------------------------------------------------------------------


def _add_imports(files: dict[str, str], name: str, code: str) -> list[str]:
    """Import, at the top of the file, the names ``code`` uses that the file does not bind."""
    if not code.strip():
        return []
    module = _parse(files[name])
    bound = set(dir(builtins))
    for node in module.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            bound |= {t.id for t in ast.walk(node) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
    try:
        used = {n.id for n in ast.walk(ast.parse("\n".join(line.strip() for line in code.splitlines())
                                                 if not code.startswith("class ") else code))
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    except SyntaxError as exc:
        raise CannotApply(f"its code does not parse: {exc.msg}") from None
    lines = sorted({IMPORTS[n] for n in used - bound if n in IMPORTS})
    if lines:
        imports = [n for n in module.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        at = _end(imports[-1]) if imports else 0
        files[name] = _cut(files[name], at + 1, at, lines)
    return lines
