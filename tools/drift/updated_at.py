"""``updated_at`` that nothing in the schema keeps current: no SQLAlchemy ``onupdate`` in the models and no
BEFORE UPDATE trigger in the database.

Most apps set ``updated_at`` in their own CRUD code (``task.updated_at = datetime.now(...)``), which no
schema shows, so by itself this is **advice**, not drift (:func:`updated_at_advice`: info findings that
never fail ``check``), naming the app's own assignments where the project's Python files have them.

It is drift only when the spec says the database keeps the column current (a trigger in its SQL, or words
such as "maintained by a trigger") and neither the compared database (a trigger) nor the models (onupdate)
do; either one is enough.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..database.ddl import UPDATED_AT_FUNCTION, ident, qualified
from ..schema.findings import Finding
from ..schema.model import Column, Schema, Table, location_of
from .core import ColumnGroup, Ctx, TableGroup, align_columns, align_tables, column_comparator, side_fix
from .model import SIDE_ORDER, Drift, Fix, SideValue

#: Column names that mean "when the row last changed" (snake and camel case, as real models write them).
UPDATED_AT = frozenset({"updated_at", "updatedat", "modified_at", "modifiedat", "last_modified"})

# The spec says the database keeps it current: a trigger, "ON UPDATE", "set by the database on update".
_DATABASE_KEEPS = re.compile(r"\btrigger\b|\bon\s+update\s+(?:current_timestamp|now)\b|"
                             r"\b(?:database|db|postgres(?:ql)?)\s+(?:sets|updates|maintains|keeps)\b", re.I)


def spec_says_database_keeps(table: Table, column: Column) -> bool:
    """Whether the spec says the database keeps ``column`` current: its own trigger (``on_update``
    ``trigger ...``, read from the spec's SQL) or words in the column's description or the table's notes."""
    if (column.on_update or "").startswith("trigger"):
        return True
    texts = [column.description or ""]
    texts += [t for t in [table.description or "", *table.notes] if column.name.lower() in t.lower()]
    return any(_DATABASE_KEEPS.search(t) for t in texts)


@column_comparator
def compare_updated_at(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    """Drift only where the spec says a trigger keeps the column current and the database has none."""
    if cg.key.lower() not in UPDATED_AT or "spec" not in cg.cols or "database" not in cg.cols:
        return
    spec = cg.cols["spec"]
    if not spec_says_database_keeps(tg.tables["spec"], spec) or any(
            c.on_update for s, c in cg.cols.items() if s in ("models", "database")):
        return  # either keeps it current: an ORM onupdate (ORM updates) or a trigger (every UPDATE)
    c, t = cg.cols["database"], tg.tables["database"]
    obj = f"{tg.key}.{cg.key}"
    shown = {"spec": SideValue(value="a trigger keeps it current", location=location_of(spec)),
             "database": SideValue(value="no BEFORE UPDATE trigger", location=location_of(c))}
    name = ident(f"set_{c.name.lower()}")  # set_updated_at(), the function the spec's DDL uses
    function = UPDATED_AT_FUNCTION.replace("NEW.updated_at", f"NEW.{ident(c.name)}").replace(
        "set_updated_at()", f"{name}()")
    trigger = (f"CREATE TRIGGER {ident(f'{t.name}_set_{c.name.lower()}')} BEFORE UPDATE ON {qualified(t)}\n"
               f"    FOR EACH ROW EXECUTE FUNCTION {name}();")
    fixes: list[Fix] = side_fix("database", f"Add the BEFORE UPDATE trigger the spec describes for {c.name}.",
                                sql=f"{function}\n{trigger}",
                                alembic=f"op.execute({function!r})\nop.execute({trigger.rstrip(';')!r})",
                                locks="CREATE TRIGGER takes a brief SHARE ROW EXCLUSIVE lock on the table; "
                                      "no rewrite.")
    yield Drift(object=obj, kind="updated-at-not-maintained", severity="degraded", sides=shown, fixes=fixes,
                message=f"{obj}: the spec says a database trigger keeps it current, but the database has no "
                        "BEFORE UPDATE trigger that sets it, so it keeps the row's insert time unless the app "
                        "sets it.")


# ---------------------------------------------------------------------------------------------------
# Advice: nothing in the schema keeps it current (the app may)

_SKIP_DIRS = {".venv", "venv", "env", "node_modules", "__pycache__", ".git", "site-packages", "tests", "test",
              "migrations", "alembic", "dist", "build", ".tox", ".mypy_cache", ".pytest_cache"}
_MAX_FILES = 2000
_MAX_BYTES = 1_000_000
_MAX_SHOWN = 5


def _assignment(name: str) -> re.Pattern:
    n = re.escape(name)
    return re.compile(
        rf"\.{n}\s*=(?!=)"                                    # task.updated_at = ...
        rf"|[\"']{n}[\"']\s*:(?!\s*(?:Mapped|Optional|datetime|str)\b)"  # {"updated_at": now} / update={...}
        rf"|[\"']{n}[\"']\s*\)\s*,\s*(?=\w)"                   # setattr(task, "updated_at", now)
        rf"|(?<![\w.]){n}\s*=(?!=)\s*(?:[\w.]*\b(?:now|utcnow|today)\b|func\.|datetime\b|utc_?now\b)",
        re.I)                                                 # updated_at=datetime.now(...) in .values()


def app_assignments(project: Path, names: set[str]) -> dict[str, list[str]]:
    """Where the project's own Python code assigns each of ``names`` (``backend/crud.py:42``), read as text
    and never imported; virtualenvs, tests and migrations are not the app."""
    root = project.resolve()
    patterns = {n: _assignment(n) for n in names}
    found: dict[str, list[str]] = {n: [] for n in names}
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for file in sorted(files):
            if not file.endswith(".py") or file.startswith("test_") or file == "conftest.py":
                continue
            seen += 1
            if seen > _MAX_FILES:
                return found
            path = Path(folder) / file
            try:
                if not path.resolve().is_relative_to(root) or path.stat().st_size > _MAX_BYTES:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if not any(n.lower() in text.lower() for n in names):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.match(r"^\s*\w+\s*:", code):  # an annotation: the model's own field definition
                    continue
                for name, pattern in patterns.items():
                    if pattern.search(code):
                        found[name].append(f"{path.relative_to(root)}:{number}")
    return found


def updated_at_advice(sides: dict[str, Schema], project: Path | None = None,
                      skip: set[str] | frozenset[str] = frozenset(), owner_column: str = "user_id") -> list[Finding]:
    """One info finding per ``updated_at`` column that neither the models (``onupdate``) nor the database
    (a trigger) keeps current, where the spec does not say the database does (that is drift, above).
    ``skip``: tables not ours (Better Auth's). The app's own assignments are named when found."""
    present = [s for s in SIDE_ORDER if s in sides]
    if len(present) < 2:
        return []
    ctx = Ctx(schemas=dict(sides), sides=present, owner_column=owner_column)
    wanting: list[tuple[str, dict[str, Column]]] = []
    for tg in align_tables(ctx):
        if {tg.key, *(t.name for t in tg.tables.values())} & set(skip):
            continue
        groups = align_columns(tg) if len(tg.tables) > 1 else []
        for cg in groups:
            if cg.key.lower() not in UPDATED_AT:
                continue
            keepers = {s: c for s, c in cg.cols.items() if s in ("models", "database")}
            if not keepers or any(c.on_update for c in keepers.values()):
                continue
            spec = cg.cols.get("spec")
            if spec is not None and spec_says_database_keeps(tg.tables["spec"], spec):
                continue  # the comparator's business: drift if the database is compared and lacks it
            wanting.append((f"{tg.key}.{cg.key}", keepers))
    if not wanting:
        return []
    names = {c.name for _, keepers in wanting for c in keepers.values()}
    assigned = app_assignments(project, names) if project is not None else {}
    out = []
    for obj, keepers in wanting:
        said = "; ".join(f"{s}: {'no onupdate' if s == 'models' else 'no BEFORE UPDATE trigger'}"
                         for s in keepers)
        column = next(iter(keepers.values()))
        where = assigned.get(column.name) or []
        if where:
            shown = ", ".join(where[:_MAX_SHOWN]) + (f" and {len(where) - _MAX_SHOWN} more"
                                                     if len(where) > _MAX_SHOWN else "")
            message = (f"{obj}: the app sets it itself ({shown}); nothing in the schema keeps it current ({said}), "
                       "so an UPDATE that does not go through that code keeps the row's insert time.")
        else:
            unseen = "" if "database" in keepers else " (the database was not compared)"
            message = (f"{obj}: nothing in the schema keeps it current ({said}){unseen}, and no assignment to it "
                       f"was found in the project's Python files; unless the app sets it, it keeps the row's "
                       "insert time.")
        fix = ("If the app sets it on every update, nothing to do. Otherwise give the model's field "
               'sa_column_kwargs={"onupdate": func.now()} (ORM updates), or add a BEFORE UPDATE trigger that '
               "sets it (every UPDATE) and say so in the spec.")
        out.append(Finding(rule="updated-at-not-maintained", severity="info", object=obj, message=message,
                           location=location_of(column), fix=fix))
    return out
