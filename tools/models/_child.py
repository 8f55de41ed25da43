"""Import a project's SQLModel/SQLAlchemy models and describe their tables as JSON.

Run only as a standalone script in a child process, never imported by the server::

    python -I _child.py REQUEST.json RESULT.json

It uses the standard library plus sqlalchemy (and sqlmodel when the project does), never our own
package: the user's project may have a ``tools`` package of its own, and ``-I`` keeps this script's
folder off ``sys.path`` so theirs is the one that imports.

REQUEST: ``{"root", "sys_path", "cwd", "modules": [{"module", "file", "package_dir"}], "deadline"}``.
RESULT: ``{"versions", "imported", "errors", "tables", "enums"}``; the parent (models_reader.py)
normalises it into a Schema. Types are compiled here with SQLAlchemy's postgresql dialect, so they
say what ``create_all`` would create with the project's own library versions.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import json
import os
import re
import signal
import sys
import time
import traceback
import types

TRACEBACK_LINES = 12


class ImportTimeout(BaseException):
    """Raised by SIGALRM inside the hung import; a BaseException so ``except Exception`` in user code
    cannot swallow it."""


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        request = json.load(f)
    result_path = argv[2]
    # Anything user code prints (Python or C level) goes to stderr; our result goes to a file.
    os.dup2(2, 1)
    root = os.path.realpath(request["root"])
    for entry in reversed(request["sys_path"]):
        sys.path.insert(0, entry)
    os.chdir(request["cwd"])
    result: dict = {"versions": {"python": sys.version.split()[0]}, "imported": [], "errors": [],
                    "tables": [], "enums": []}
    try:
        import sqlalchemy
    except BaseException as exc:  # the interpreter has no SQLAlchemy: the parent tries another one
        result["fatal"] = f"{type(exc).__name__}: {exc}"
        result["missing"] = "SQLAlchemy"
        _write(result_path, result)
        return 3
    result["versions"]["sqlalchemy"] = sqlalchemy.__version__

    _import_all(request, root, result)
    if "fatal" in result:  # the models need sqlmodel and this interpreter has none: the parent tries another
        _write(result_path, result)
        return 3

    if "sqlmodel" in sys.modules:
        result["versions"]["sqlmodel"] = getattr(sys.modules["sqlmodel"], "__version__", None)
    _describe(root, result)
    _write(result_path, result)
    return 0


def _write(path: str, result: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, default=str)
    os.replace(tmp, path)


# --- importing -------------------------------------------------------------------------------------


def _import_all(request: dict, root: str, result: dict) -> None:
    def on_alarm(signum, frame):
        raise ImportTimeout("the time limit for importing the models was reached here")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.05, request["deadline"] - time.time()))
    failed_files: set[str] = set()  # project files whose code already ran and raised
    try:
        for target in request["modules"]:
            name = target["module"]
            if target["file"] in failed_files:  # importing it again would define its tables twice
                continue
            _write(request["progress"], {"module": name, "file": target["file"]})
            try:
                importlib.import_module(name)
                result["imported"].append(target["file"])
            except ImportTimeout as exc:
                result["errors"].append(_error(target, exc, root, kind="timeout"))
                break
            except BaseException as exc:  # SystemExit and friends from user code included
                if isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == "sqlmodel":
                    result["fatal"] = f"{type(exc).__name__}: {exc}"
                    result["missing"] = "sqlmodel"
                    break
                result["errors"].append(_error(target, exc, root, kind="import"))
                failed_files.update(
                    _rel(f.filename, root) for f in traceback.extract_tb(exc.__traceback__)
                    if _in_project(f.filename, root)
                )
                if target.get("package_dir") and name not in sys.modules:
                    _stub_package(name, target)
    except ImportTimeout as exc:  # fired between two imports
        result["errors"].append(_error({"module": None, "file": None}, exc, root, kind="timeout"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _stub_package(name: str, target: dict) -> None:
    """An empty stand-in for a package whose ``__init__`` failed, so its other submodules can still be
    imported one by one (what was defined before the failure stays registered)."""
    module = types.ModuleType(name)
    module.__path__ = [target["package_dir"]]
    module.__file__ = os.path.join(target["package_dir"], "__init__.py")
    module.__package__ = name
    sys.modules[name] = module
    parent, _, leaf = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], leaf, module)


def _error(target: dict, exc: BaseException, root: str, kind: str) -> dict:
    te = traceback.TracebackException.from_exception(exc)
    _drop_machinery(te)
    lines = "".join(te.format()).rstrip().splitlines()
    location = None
    if isinstance(exc, SyntaxError) and exc.filename:
        location = {"file": _rel(exc.filename, root), "line": exc.lineno}
    else:  # the innermost frame in the user's project: where it failed (or hung)
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if _in_project(frame.filename, root):
                location = {"file": _rel(frame.filename, root), "line": frame.lineno}
                break
    return {"kind": kind, "module": target["module"], "file": target["file"],
            "exc_type": type(exc).__name__, "message": str(exc), "location": location,
            "traceback": "\n".join(lines[-TRACEBACK_LINES:])}


def _drop_machinery(te: traceback.TracebackException | None) -> None:
    """Remove importlib's and this script's frames: the user needs their own lines only."""
    while te is not None:
        te.stack = traceback.StackSummary.from_list(
            [f for f in te.stack
             if not f.filename.startswith("<frozen") and f.filename not in (__file__, importlib.__file__)]
        )
        te = te.__cause__ or te.__context__


# --- describing ------------------------------------------------------------------------------------


def _describe(root: str, result: dict) -> None:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    ddl = dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]  # no statement: compiles expressions
    modules = _project_modules(root)
    metadatas, classes = _metadatas_and_classes(modules)
    places = _named_calls(modules, root)
    seen_tables: set[str] = set()
    enums: dict[str, dict] = {}
    for metadata in metadatas:
        for table in list(metadata.tables.values()):  # declaration order
            if table.fullname in seen_tables:
                continue
            seen_tables.add(table.fullname)
            cls = classes.get(id(table))
            try:
                result["tables"].append(_table(table, cls, root, dialect, ddl, places, enums))
            except Exception as exc:  # one odd table must not lose the others
                result["errors"].append({
                    "kind": "describe", "module": None, "file": None, "exc_type": type(exc).__name__,
                    "message": f"table {table.fullname}: {exc}", "location": None,
                    "traceback": "\n".join(traceback.format_exc().splitlines()[-TRACEBACK_LINES:]),
                })
    result["enums"] = list(enums.values())


def _project_modules(root: str) -> list[types.ModuleType]:
    """Modules imported from the user's project (not from a virtualenv inside it), in import order."""
    found = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and _in_project(file, root):
            found.append(module)
    return found


def _in_project(file: str, root: str) -> bool:
    if file.startswith("<"):  # <string>, <frozen ...>, code generated by a library
        return False
    path = os.path.realpath(file)
    if not path.startswith(root + os.sep):
        return False
    parts = path[len(root):].split(os.sep)
    return not ({"site-packages", "dist-packages", ".venv", "venv"} & set(parts))


def _metadatas_and_classes(modules):
    """Every MetaData the project refers to (SQLModel's included) and the class mapped to each table."""
    import sqlalchemy as sa

    metadatas: dict[int, sa.MetaData] = {}
    classes: dict[int, type] = {}

    def add(md):
        if isinstance(md, sa.MetaData):
            metadatas.setdefault(id(md), md)

    if "sqlmodel" in sys.modules:
        add(getattr(sys.modules["sqlmodel"].SQLModel, "metadata", None))
    for module in modules:
        for value in list(vars(module).values()):
            try:
                if isinstance(value, sa.MetaData):
                    add(value)
                elif isinstance(value, sa.Table):
                    add(value.metadata)
                elif isinstance(value, type):
                    add(getattr(value, "metadata", None))
                    table = value.__dict__.get("__table__")
                    if isinstance(table, sa.Table):
                        classes.setdefault(id(table), value)
            except Exception:
                continue
    # Mapped classes that are not module globals (defined in a function, re-exported elsewhere).
    try:
        from sqlalchemy.orm import mapperlib

        for registry in list(mapperlib._mapper_registries):
            for mapper in list(registry.mappers):
                if isinstance(mapper.local_table, sa.Table):
                    classes.setdefault(id(mapper.local_table), mapper.class_)
    except Exception:
        pass
    return list(metadatas.values()), classes


def _table(table, cls, root, dialect, ddl, places, enums) -> dict:
    from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint

    file, line = _class_place(cls, root) if cls is not None else places.get(("Table", table.name), (None, None))
    table_args = _member_place(cls, "__table_args__", root) if cls is not None else (None, None)
    where = {"file": file, "line": line}

    def at(place):
        return {"file": place[0], "line": place[1]} if place and place[0] else where

    def field(column):
        return at(_column_place(cls, column, root)) if cls is not None else where

    def named_or(constraint, fallback):
        name = _name(constraint, dialect)
        kind = type(constraint).__name__
        if name and (kind, name) in places:
            return at(places[(kind, name)])
        return fallback

    columns = [_column(c, table, dialect, ddl, field(c), enums, root) for c in table.columns]
    fks, uniques, checks = [], [], []
    # A set: sort by creation order (field order, then __table_args__), as create_all does.
    for constraint in sorted(table.constraints, key=lambda c: getattr(c, "_creation_order", 0)):
        if isinstance(constraint, ForeignKeyConstraint):
            cols = [c.name for c in constraint.columns]
            parts = [e.target_fullname.split(".") for e in constraint.elements]
            fallback = field(constraint.columns[cols[0]]) if len(cols) == 1 else at(table_args)
            fks.append({
                "name": _name(constraint, dialect), "columns": cols,
                "ref_schema": ".".join(parts[0][:-2]) or None, "ref_table": parts[0][-2],
                "ref_columns": [p[-1] for p in parts], "ondelete": constraint.ondelete,
                "onupdate": constraint.onupdate, "location": named_or(constraint, fallback),
            })
        elif isinstance(constraint, UniqueConstraint):
            cols = [c.name for c in constraint.columns]
            from_field = len(cols) == 1 and table.c[cols[0]].unique
            fallback = field(table.c[cols[0]]) if from_field else at(table_args)
            uniques.append({"name": _name(constraint, dialect), "columns": cols,
                            "location": named_or(constraint, fallback)})
        elif isinstance(constraint, CheckConstraint):
            checks.append({"name": _name(constraint, dialect),
                           "expression": _sql(constraint.sqltext, ddl),
                           "location": named_or(constraint, at(table_args))})
    indexes = []
    for index in sorted(table.indexes, key=lambda i: _name(i, dialect) or ""):
        options = index.dialect_options["postgresql"]
        elements = [_index_element(e, options.get("ops") or {}, ddl) for e in index.expressions]
        single = index.expressions[0] if len(index.expressions) == 1 else None
        from_field = single is not None and getattr(single, "table", None) is table and single.index
        fallback = field(single) if from_field else at(table_args)
        where_clause = options.get("where")
        indexes.append({
            "name": _name(index, dialect), "unique": bool(index.unique), "columns": elements,
            "using": (options.get("using") or "btree").lower(),
            "where": _sql(where_clause, ddl) if where_clause is not None else None,
            "include": [getattr(c, "name", c) for c in options.get("include") or []],
            "location": named_or(index, fallback),
        })
    return {
        "name": table.name, "schema": table.schema, "comment": table.comment,
        "class": cls.__name__ if cls is not None else None, "location": where,
        "columns": columns, "primary_key": [c.name for c in table.primary_key.columns],
        "foreign_keys": fks, "unique_constraints": uniques, "checks": checks, "indexes": indexes,
    }


_SERIAL = re.compile(r"^(SMALLSERIAL|BIGSERIAL|SERIAL)\b")


def _column(column, table, dialect, ddl, location, enums, root) -> dict:
    from sqlalchemy.schema import CreateColumn

    out = {"name": column.name, "nullable": bool(column.nullable), "primary_key": column.primary_key,
           "comment": column.comment, "location": location, "serial": None, "identity": None,
           "server_default": None, "computed": None, "enum": None, "type": None, "type_error": None,
           "onupdate": column.onupdate is not None or column.server_onupdate is not None}
    try:
        out["type"] = str(column.type.compile(dialect=dialect))
    except Exception as exc:  # a custom type without a PostgreSQL spelling
        out["type_error"] = f"{type(exc).__name__}: {exc}"
    try:
        # The DDL create_all would emit decides serial: exactly SQLAlchemy's own rule.
        spec = str(CreateColumn(column).compile(dialect=dialect))
        rest = spec[len(dialect.identifier_preparer.format_column(column)):].strip()
        if m := _SERIAL.match(rest):
            out["serial"] = m.group(1).lower()
    except Exception:
        pass
    if column.identity is not None:
        out["identity"] = "always" if column.identity.always else "by default"
    with contextlib.suppress(Exception):
        out["server_default"] = ddl.get_column_default_string(column)
    if column.computed is not None:
        out["computed"] = _sql(column.computed.sqltext, ddl)
    enum = _enum_of(column.type)
    if enum is not None:
        name = enum.name or ""
        out["enum"] = {"name": name, "native": bool(enum.native_enum), "labels": list(enum.enums),
                       "constrained": bool(getattr(enum, "create_constraint", False))}
        if enum.native_enum and name not in enums:
            file, line = _class_place(enum.enum_class, root) if enum.enum_class else (None, None)
            enums[name] = {"name": name, "schema": enum.schema, "labels": list(enum.enums),
                           "location": {"file": file or location["file"], "line": line or location["line"]}}
    return out


def _enum_of(type_):
    """The sa.Enum inside a column type (directly, in a TypeDecorator or an ARRAY), if any."""
    import sqlalchemy as sa

    for _ in range(5):
        if isinstance(type_, sa.Enum):
            return type_
        if isinstance(type_, sa.TypeDecorator):
            type_ = getattr(type_, "impl_instance", None) or type_.impl
        elif isinstance(type_, sa.ARRAY):
            type_ = type_.item_type
        else:
            return None
    return None


def _index_element(expr, ops: dict, ddl) -> dict:
    from sqlalchemy.sql import operators
    from sqlalchemy.sql.elements import ColumnClause, UnaryExpression

    descending, nulls_first = False, None
    nulls_first_op = getattr(operators, "nulls_first_op", None) or operators.nullsfirst_op
    nulls_last_op = getattr(operators, "nulls_last_op", None) or operators.nullslast_op
    while isinstance(expr, UnaryExpression) and expr.modifier in (
        operators.desc_op, operators.asc_op, nulls_first_op, nulls_last_op
    ):
        if expr.modifier is operators.desc_op:
            descending = True
        elif expr.modifier is nulls_first_op:
            nulls_first = True
        elif expr.modifier is nulls_last_op:
            nulls_first = False
        expr = expr.element
    if isinstance(expr, ColumnClause) and getattr(expr, "table", None) is not None:
        name, is_expression = expr.name, False
        text = ops.get(name) or ops.get(getattr(expr, "key", name)) or ""
    else:  # a function or text: its SQL, as CREATE INDEX would print it
        text, name, is_expression = _sql(expr, ddl), None, True
    # "created_at DESC" in a text() element or postgresql_ops={"created_at": "DESC"}: PostgreSQL
    # reads the trailing words as ordering, not as an operator class.
    words = text.split()
    while words and words[-1].upper() in ("ASC", "DESC", "FIRST", "LAST"):
        word = words.pop().upper()
        if word == "DESC":
            descending = True
        elif word in ("FIRST", "LAST") and words and words[-1].upper() == "NULLS":
            words.pop()
            nulls_first = word == "FIRST"
    if is_expression:
        body = " ".join(words)
        if re.fullmatch(r'[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"', body):  # a bare column written as text
            name, is_expression = body.strip('"'), False
        else:
            name = body
        opclass = None
    else:
        opclass = " ".join(words) or None
    return {"name": name, "descending": descending, "nulls_first": nulls_first,
            "is_expression": is_expression, "opclass": opclass}


def _sql(clause, ddl) -> str:
    from sqlalchemy import text

    if isinstance(clause, str):
        clause = text(clause)
    return str(ddl.sql_compiler.process(clause, include_table=False, literal_binds=True))


def _name(constraint, dialect) -> str | None:
    """The name create_all would give (naming conventions applied, long names truncated)."""
    if constraint.name is None:
        return None
    try:
        return dialect.identifier_preparer.format_constraint(constraint, _alembic_quote=False)
    except Exception:
        return str(constraint.name)


# --- source locations ------------------------------------------------------------------------------

_TREES: dict[str, ast.AST | None] = {}


def _tree(file: str):
    if file not in _TREES:
        try:
            with open(file, encoding="utf-8") as f:
                _TREES[file] = ast.parse(f.read(), filename=file)
        except Exception:
            _TREES[file] = None
    return _TREES[file]


def _rel(file: str, root: str) -> str:
    path = os.path.realpath(file)
    if path.startswith(root + os.sep):
        return os.path.relpath(path, root).replace(os.sep, "/")
    return path


def _class_node(cls):
    """(file, ClassDef) for a class, found by its qualified name in its source file's syntax tree."""
    try:
        file = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return None, None
    tree = _tree(file) if file else None
    if tree is None:
        return file, None
    node = tree
    for part in cls.__qualname__.split("."):
        if part == "<locals>":  # defined in a function: take the first class of that name
            return file, next((n for n in ast.walk(tree)
                               if isinstance(n, ast.ClassDef) and n.name == cls.__name__), None)
        node = next((n for n in getattr(node, "body", []) if isinstance(n, ast.ClassDef) and n.name == part),
                    None)
        if node is None:
            return file, None
    return file, node


def _class_place(cls, root):
    file, node = _class_node(cls)
    if file is None:
        return None, None
    return _rel(file, root), node.lineno if node is not None else None


def _member_place(cls, attr: str, root):
    """Where ``attr`` is assigned in the class body, searching base classes (fields inherited from a
    non-table base live there)."""
    for klass in cls.__mro__:
        file, node = _class_node(klass)
        if node is None:
            continue
        for stmt in node.body:
            targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else getattr(stmt, "targets", [])
            if isinstance(stmt, (ast.AnnAssign, ast.Assign)) and any(
                isinstance(t, ast.Name) and t.id == attr for t in targets
            ):
                return _rel(file, root), stmt.lineno
    return None, None


def _column_place(cls, column, root):
    attr = column.key
    # the mapped attribute can differ from the column name: sa_column=Column("userId", ...)
    with contextlib.suppress(Exception):
        attr = cls.__mapper__.get_property_by_column(column).key
    return _member_place(cls, attr, root)


_CALLS = {"Index", "UniqueConstraint", "CheckConstraint", "ForeignKeyConstraint", "PrimaryKeyConstraint",
          "Table"}


def _named_calls(modules, root: str) -> dict[tuple[str, str], tuple[str, int]]:
    """``Index("ix_name", ...)``, ``Table("name", ...)``, ``CheckConstraint(..., name="ck")``: where each
    named schema object is written, anywhere in the project's imported files."""
    places: dict[tuple[str, str], tuple[str, int]] = {}
    for module in modules:
        file = module.__file__
        tree = _tree(file)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if kind not in _CALLS:
                continue
            name = next((k.value for k in node.keywords if k.arg == "name"), None)
            if kind in ("Index", "Table") and node.args:
                name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                places.setdefault((kind, name.value), (_rel(file, root), node.lineno))
    return places


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stderr.flush()
    # Skip interpreter shutdown: non-daemon threads or atexit hooks of user code could hang it.
    os._exit(code)
