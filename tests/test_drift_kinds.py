"""The ten drift kinds most often seen in real projects (research/specs_analysis.md §9), each shown by
real SQLModel code and run through the ``diff_models_vs_spec`` MCP tool.

Every case copies the reference spec and a models file derived from specs/database/models.py by one
small change a developer would make, then checks what the tool says (object, kind, severity, each
side's value, the models file:line) and that the fix it gives is right: the model fix is applied to
the models file by replacing the drifted line(s), and where the database matters the database is
built from the drifted models (SQLModel.metadata.create_all in a child process), the migration SQL
the tool gives is executed, and a second run finds that object clean.

Kinds, in the order of §9:
 1. FK in the spec, plain indexed str in the model            test_fk_in_spec_but_plain_indexed_str_in_model
 2. implicit table names (task vs tasks)                       test_implicit_table_name
 3. composite and DESC indexes never declared                  test_spec_index_never_declared_in_models
 4. VARCHAR(n) vs unbounded str, TEXT vs max_length           test_string_length
 5. missing ON DELETE CASCADE                                  test_missing_on_delete_cascade
 6. timestamptz vs naive datetime                              test_timestamptz_vs_naive_datetime
 7. CHECK vs plain str or Python Enum                          test_value_set_check_*
 8. renamed columns (suggested, never assumed)                 test_renamed_column_*
 9. id type change (SERIAL vs UUID or str)                     test_id_type_serial_vs_uuid_or_str*
10. whole tables on one side (Better Auth, feature tables)     test_table_on_one_side_only, test_better_auth_*

Cases whose fix does not converge are product bugs: marked xfail(strict=True, raises=KnownProductBug),
raised only at the step that shows the bug, so any other failure in them still fails the run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE_MODELS = (REPO / "specs" / "database" / "models.py").read_text()
REFERENCE_SPEC = (REPO / "specs" / "database" / "schema.md").read_text()
MODELS = "backend/models.py"


class KnownProductBug(AssertionError):
    """Raised only by the final 'is it clean now' check of a case whose fix is known not to converge."""


# ---------------------------------------------------------------------------------------------------
# Helpers: a project, the drifted models, the tool call, applying fixes


def drifted(*edits: tuple[str, str]) -> str:
    """The reference models with each (old, new) edit applied; each ``old`` must occur exactly once."""
    text = REFERENCE_MODELS
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the reference models"
        text = text.replace(old, new)
    return text


def make_project(tmp_path: Path, models_text: str, spec_text: str = REFERENCE_SPEC) -> Path:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_text(spec_text)
    (tmp_path / "backend").mkdir()
    (tmp_path / MODELS).write_text(models_text)
    return tmp_path


async def check(project: Path, url: str | None = None, **arguments) -> dict:
    """Call diff_models_vs_spec through an in-memory MCP client; the structured result."""
    settings = Settings(project=project, database_url=url) if url else Settings(project=project, embedded=False)
    if url:
        arguments["include_database"] = True
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("diff_models_vs_spec", arguments)
    assert not result.is_error, result.content
    data = result.structured_content
    expected = ["spec", "models", "database"] if url else ["spec", "models"]
    assert [s["side"] for s in data["sides"]] == expected, data.get("findings")
    return data


def the_drift(data: dict, obj: str, kind: str, side: str | None = None) -> dict:
    """The one drift of this kind on ``obj`` (that ``side`` is part of: index drifts come one per side)."""
    found = [d for d in data["drifts"]
             if d["object"] == obj and d["kind"] == kind and (side is None or side in d["sides"])]
    assert len(found) == 1, f"expected one {kind} drift on {obj}:\n{data['report']}"
    return found[0]


def fix_for(drift: dict, side: str) -> dict:
    """The side's first fix, offered or withheld by the proof (what it says is tested here; whether it is
    proven is tests/test_proven_file_fixes.py's)."""
    found = [f for f in drift.get("fixes", []) + drift.get("withheld", []) if f["side"] == side]
    assert found, f"no {side} fix in {drift}"
    return found[0]


def assert_clean(data: dict, *objects: str, known_bug: str | None = None) -> None:
    """No drift left on these objects (cosmetic ones included)."""
    left = [d for d in data["drifts"] if d["object"] in objects]
    if left and known_bug:
        raise KnownProductBug(f"{known_bug}: {[d['message'] for d in left]}")
    assert left == [], "\n".join(d["message"] for d in left)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the only line that is ``fragment`` (stripped) or, failing that, contains it."""
    lines = text.splitlines()
    hits = [n for n, line in enumerate(lines, 1) if line.strip() == fragment.strip()]
    hits = hits or [n for n, line in enumerate(lines, 1) if fragment in line]
    assert len(hits) == 1, f"{fragment!r} is on lines {hits}"
    return hits[0]


def models_loc(text: str, fragment: str) -> dict:
    return {"file": MODELS, "line": line_of(text, fragment)}


def replace_line(project: Path, fragment: str, code: str) -> None:
    """Replace the one models line containing ``fragment`` with ``code`` (same indentation)."""
    path = project / MODELS
    lines = path.read_text().splitlines()
    n = line_of(path.read_text(), fragment) - 1
    indent = lines[n][: len(lines[n]) - len(lines[n].lstrip())]
    lines[n : n + 1] = [indent + c if c else c for c in code.splitlines()]
    path.write_text("\n".join(lines) + "\n")


def insert_after(project: Path, fragment: str, code: str, indent: str) -> None:
    path = project / MODELS
    lines = path.read_text().splitlines()
    n = line_of(path.read_text(), fragment)
    lines[n:n] = [indent + c if c else c for c in code.splitlines()]
    path.write_text("\n".join(lines) + "\n")


def add_to_table_args(project: Path, class_line: str, item: str) -> None:
    """Put ``item`` first in the multi-line ``__table_args__ = (...)`` of the class on ``class_line``."""
    path = project / MODELS
    lines = path.read_text().splitlines()
    n = line_of(path.read_text(), class_line)
    n = next(i for i in range(n, len(lines)) if lines[i].strip() == "__table_args__ = (")
    lines.insert(n + 1, f"        {item},")
    path.write_text("\n".join(lines) + "\n")


def table_args_item(model_change: str) -> str:
    """``__table_args__ = (Index(...),)`` -> ``Index(...)``: the element to put in an existing tuple."""
    assert model_change.startswith("__table_args__ = (") and model_change.endswith(",)"), model_change
    return model_change.removeprefix("__table_args__ = (").removesuffix(",)")


CREATE_ALL = """
import importlib.util, sys
from sqlmodel import SQLModel, create_engine
spec = importlib.util.spec_from_file_location("drifted_models", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
SQLModel.metadata.create_all(create_engine(sys.argv[2]))
"""


def database_from_models(make_database, label: str, models_file: Path) -> str:
    """A new database built by SQLModel.metadata.create_all from the (drifted) models, in a child."""
    url = make_database(label)
    sa_url = re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", url)
    done = subprocess.run([sys.executable, "-c", CREATE_ALL, str(models_file), sa_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return url


def run_migration(url: str, sql: str) -> None:
    """Execute the migration SQL statement by statement in autocommit (CONCURRENTLY needs it)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in body.split(";") if s.strip()]
    assert statements, sql
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


# ---------------------------------------------------------------------------------------------------
# 1. FK in the spec, a plain indexed str in the model (against the database too)

TASK_TITLE = "\n    title: str = Field(max_length=200)"  # tasks.user_id is the owner line followed by this one
TASK_OWNER = '    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")' + TASK_TITLE


async def test_fk_in_spec_but_plain_indexed_str_in_model(tmp_path: Path, make_database) -> None:
    models = drifted((TASK_OWNER, '    user_id: str = Field(sa_type=Text, index=True)' + TASK_TITLE))
    project = make_project(tmp_path, models)
    url = database_from_models(make_database, "kind_fk", project / MODELS)

    data = await check(project, url)
    drift = the_drift(data, "tasks.user_id", "fk-missing")
    assert drift["severity"] == "degraded"
    fk = "FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    assert drift["sides"]["spec"]["value"] == fk
    assert drift["sides"]["models"]["value"] is None
    # the column's own line, the one the model fix replaces
    assert drift["sides"]["models"]["location"] == models_loc(models, "user_id: str = Field(sa_type=Text, index=True)")
    assert drift["sides"]["database"]["value"] is None
    model_fix = fix_for(drift, "models")["model_change"]
    # the FK is added; the model's own index=True (not part of this drift) stays
    assert model_fix == 'user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, sa_type=Text)'
    db_fix = fix_for(drift, "database")
    assert f"ADD CONSTRAINT tasks_user_id_fkey {fk} NOT VALID;" in db_fix["migration_sql"]
    assert "VALIDATE CONSTRAINT tasks_user_id_fkey" in db_fix["migration_sql"]
    assert "NOT VALID" in db_fix["lock_notes"] and "postgresql_not_valid=True" in db_fix["alembic_op"]
    # index=True is the single-column index the spec does not have: reported too, on its own object.
    extra = the_drift(data, "tasks.ix_tasks_user_id", "index-extra", side="models")
    assert extra["sides"]["models"]["location"] == models_loc(models, "user_id: str = Field(sa_type=Text, index=True)")

    replace_line(project, "user_id: str = Field(sa_type=Text, index=True)", model_fix)
    run_migration(url, db_fix["migration_sql"])
    data = await check(project, url)
    assert_clean(data, "tasks.user_id")
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO tasks (user_id, title) VALUES ('nobody', 't')")
    # the FK fix changes only the FK: index=True stays, and so does its own drift (models and database).
    left = [d for d in data["drifts"] if d["object"] == "tasks.ix_tasks_user_id"]
    assert sorted(map(sorted, (d["sides"] for d in left))) == [["database", "spec"], ["models", "spec"]]


# ---------------------------------------------------------------------------------------------------
# 2. Implicit table name: a class without __tablename__ is named after the class


async def test_implicit_table_name(tmp_path: Path) -> None:
    models = drifted(('class Task(SQLModel, table=True):\n    __tablename__ = "tasks"\n',
                      "class Task(SQLModel, table=True):\n"),
                     ('task_id: int = Field(foreign_key="tasks.id"', 'task_id: int = Field(foreign_key="task.id"'))
    project = make_project(tmp_path, models)

    data = await check(project)
    drift = the_drift(data, "tasks", "table-name")
    assert drift["severity"] == "degraded"
    assert drift["sides"]["spec"]["value"] == "tasks"
    assert drift["sides"]["models"] == {"value": "task", "location": models_loc(models, "class Task(")}
    assert "implicit table name task" in drift["message"]
    model_fix = fix_for(drift, "models")["model_change"]
    assert model_fix.startswith('__tablename__ = "tasks"')
    # The FK that points at "task.id" agrees with the models' own table, so it is not a second drift.
    assert not [d for d in data["drifts"] if d["object"] == "task_tags.task_id"], data["drifts"]

    insert_after(project, "class Task(", model_fix, "    ")
    data = await check(project)
    assert_clean(data, "tasks")
    # Now the stale foreign_key="task.id" is the drift, with the fix that points it at tasks.id.
    stale = the_drift(data, "task_tags.task_id", "fk-target")
    assert 'foreign_key="tasks.id"' in fix_for(stale, "models")["model_change"]


# ---------------------------------------------------------------------------------------------------
# 3. Composite and DESC indexes in the spec, never declared in the models (against the database too)

MESSAGES_INDEX = '        Index("idx_messages_conversation_created", "conversation_id", "created_at"),\n'
TASKS_DESC = 'Index("idx_tasks_user_created", "user_id", "created_at", postgresql_ops={"created_at": "DESC"})'


@pytest.mark.parametrize("case", ["composite-missing", "desc-dropped"])
async def test_spec_index_never_declared_in_models(case: str, tmp_path: Path, make_database) -> None:
    if case == "composite-missing":
        models = drifted((MESSAGES_INDEX, ""))
        obj, kind, anchor = "messages.idx_messages_conversation_created", "index-missing", "class Message("
        spec_value = "CREATE INDEX idx_messages_conversation_created ON messages (conversation_id, created_at)"
        models_value = None
    else:
        models = drifted((TASKS_DESC, 'Index("idx_tasks_user_created", "user_id", "created_at")'))
        obj, kind, anchor = "tasks.idx_tasks_user_created", "index-order", 'Index("idx_tasks_user_created"'
        spec_value = "CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at DESC)"
        models_value = "CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at)"
    project = make_project(tmp_path, models)
    url = database_from_models(make_database, f"kind_{kind}", project / MODELS)

    data = await check(project, url)
    drift = the_drift(data, obj, kind, side="models")  # index drifts come one per side
    assert drift["severity"] == "degraded"
    assert drift["sides"]["spec"]["value"] == spec_value
    assert drift["sides"]["models"] == {"value": models_value, "location": models_loc(models, anchor)}
    item = table_args_item(fix_for(drift, "models")["model_change"])
    in_db = the_drift(data, obj, kind, side="database")
    assert in_db["severity"] == "degraded"
    assert in_db["sides"]["spec"]["value"] == spec_value
    assert in_db["sides"]["database"]["value"] == models_value
    db_fix = fix_for(in_db, "database")
    assert "CREATE INDEX CONCURRENTLY" in db_fix["migration_sql"]
    assert "autocommit_block" in db_fix["alembic_op"] and "transaction" in db_fix["lock_notes"]

    if case == "composite-missing":
        assert item == "Index('idx_messages_conversation_created', 'conversation_id', 'created_at')"
        add_to_table_args(project, "class Message(", item)
    else:
        assert item == "Index('idx_tasks_user_created', 'user_id', text('created_at DESC'))"
        replace_line(project, anchor, item + ",")
    run_migration(url, db_fix["migration_sql"])
    data = await check(project, url)
    assert_clean(data, obj)


# ---------------------------------------------------------------------------------------------------
# 4. VARCHAR(n) vs unbounded str, TEXT vs max_length


@pytest.mark.parametrize(("column", "old", "new", "severity", "spec_type", "models_type"), [
    ("title", "title: str = Field(max_length=200)", "title: str", "data-loss-risk", "varchar(200)", "varchar"),
    ("description", "description: str | None = Field(default=None, sa_type=Text)",
     "description: str | None = Field(default=None, max_length=1000)", "degraded", "text", "varchar(1000)"),
], ids=["varchar200-vs-bare-str", "text-vs-max_length"])
async def test_string_length(tmp_path: Path, column, old, new, severity, spec_type, models_type) -> None:
    models = drifted((old, new))
    project = make_project(tmp_path, models)

    data = await check(project)
    drift = the_drift(data, f"tasks.{column}", "column-length")
    assert drift["severity"] == severity
    assert drift["sides"]["spec"]["value"] == spec_type
    assert drift["sides"]["models"] == {"value": models_type, "location": models_loc(models, new)}
    model_fix = fix_for(drift, "models")["model_change"]
    assert model_fix == old

    replace_line(project, new, model_fix)
    assert_clean(await check(project), f"tasks.{column}")


# ---------------------------------------------------------------------------------------------------
# 5. Missing ON DELETE CASCADE (against the database too)


async def test_missing_on_delete_cascade(tmp_path: Path, make_database) -> None:
    models = drifted((TASK_OWNER, '    user_id: str = Field(sa_type=Text, foreign_key="users.id")' + TASK_TITLE))
    project = make_project(tmp_path, models)
    url = database_from_models(make_database, "kind_on_delete", project / MODELS)

    data = await check(project, url)
    drift = the_drift(data, "tasks.user_id", "fk-on-delete")
    assert drift["severity"] == "breaking"  # deleting a user is refused where the spec cascades
    no_action = "FOREIGN KEY (user_id) REFERENCES users (id)"
    assert drift["sides"]["spec"]["value"] == no_action + " ON DELETE CASCADE"
    assert drift["sides"]["models"] == {"value": no_action,
                                        "location": models_loc(models, 'Text, foreign_key="users.id")')}
    assert drift["sides"]["database"]["value"] == no_action
    model_fix = fix_for(drift, "models")["model_change"]
    assert 'ondelete="CASCADE"' in model_fix
    db_fix = fix_for(drift, "database")
    assert "DROP CONSTRAINT tasks_user_id_fkey" in db_fix["migration_sql"]
    assert "ON DELETE CASCADE NOT VALID" in db_fix["migration_sql"]

    replace_line(project, 'Text, foreign_key="users.id")', model_fix)
    run_migration(url, db_fix["migration_sql"])
    data = await check(project, url)
    assert_clean(data, "tasks.user_id")
    with psycopg.connect(url, autocommit=True) as conn:  # deleting a user now deletes their tasks
        conn.execute("INSERT INTO users (id, email, name) VALUES ('u1', 'a@example.com', 'A')")
        conn.execute("INSERT INTO tasks (user_id, title) VALUES ('u1', 't')")
        conn.execute("DELETE FROM users WHERE id = 'u1'")
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0


# ---------------------------------------------------------------------------------------------------
# 6. timestamptz in the spec, a naive datetime column in the model (against the database too)


async def test_timestamptz_vs_naive_datetime(tmp_path: Path, make_database) -> None:
    naive = "due_date: datetime | None = Field(default=None, sa_type=DateTime)"
    models = drifted(("from sqlalchemy import CheckConstraint,", "from sqlalchemy import CheckConstraint, DateTime,"),
                     ("    due_date: datetime | None = None", f"    {naive}"))
    project = make_project(tmp_path, models)
    url = database_from_models(make_database, "kind_timestamptz", project / MODELS)
    with psycopg.connect(url, autocommit=True) as conn:  # a row, so the USING clause really converts
        conn.execute("INSERT INTO users (id, email, name) VALUES ('u1', 'a@example.com', 'A')")
        conn.execute("INSERT INTO tasks (user_id, title, due_date) VALUES ('u1', 't', '2025-01-02 03:04:05')")

    data = await check(project, url)
    drift = the_drift(data, "tasks.due_date", "timestamp-timezone")
    assert drift["severity"] == "data-loss-risk"
    assert drift["sides"]["spec"]["value"] == "timestamptz"
    assert drift["sides"]["models"] == {"value": "timestamp", "location": models_loc(models, naive)}
    assert drift["sides"]["database"]["value"] == "timestamp"
    model_fix = fix_for(drift, "models")["model_change"]
    assert model_fix == "due_date: datetime | None = None"
    db_fix = fix_for(drift, "database")
    assert db_fix["migration_sql"] == (
        "ALTER TABLE tasks ALTER COLUMN due_date TYPE timestamptz USING due_date AT TIME ZONE 'UTC';")
    assert "UTC" in db_fix["lock_notes"] and "rewrites" in db_fix["lock_notes"]

    replace_line(project, naive, model_fix)
    run_migration(url, db_fix["migration_sql"])
    data = await check(project, url)
    assert_clean(data, "tasks.due_date")
    with psycopg.connect(url) as conn:  # the naive value was read as UTC
        got = conn.execute("SELECT due_date AT TIME ZONE 'UTC' FROM tasks").fetchone()[0]
    assert str(got) == "2025-01-02 03:04:05"


# ---------------------------------------------------------------------------------------------------
# 7. A CHECK value set in the spec vs a plain str or a Python Enum in the model

PRIORITY_CHECK = "        CheckConstraint(\"priority IN ('low', 'medium', 'high')\", name=\"ck_tasks_priority\"),\n"
PRIORITY_FIELD = ('    priority: str = Field(default="medium", max_length=10, '
                  'sa_column_kwargs={"server_default": text("\'medium\'")})')
PRIORITY_ENUM = '''class Priority(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"


class Task(SQLModel'''


async def test_value_set_check_dropped_plain_str(tmp_path: Path) -> None:
    models = drifted((PRIORITY_CHECK, ""))
    project = make_project(tmp_path, models)

    data = await check(project)
    drift = the_drift(data, "tasks.priority", "check")
    assert drift["severity"] == "degraded"
    assert drift["sides"]["spec"]["value"] == "high, low, medium"
    assert drift["sides"]["models"] == {"value": None, "location": models_loc(models, "priority: str")}
    item = table_args_item(fix_for(drift, "models")["model_change"])
    # the spec's own CHECK, as it names and spells it
    assert item == "CheckConstraint(\"priority IN ('low', 'medium', 'high')\", name='ck_tasks_priority')"

    add_to_table_args(project, "class Task(", item)
    assert_clean(await check(project), "tasks.priority")


async def test_value_set_check_replaced_by_python_enum(tmp_path: Path) -> None:
    enum_field = "    priority: Priority = Field(default=Priority.medium)"
    models = drifted(("from datetime import datetime, timezone\n",
                      "from datetime import datetime, timezone\nfrom enum import Enum\n"),
                     ("class Task(SQLModel", PRIORITY_ENUM), (PRIORITY_CHECK, ""), (PRIORITY_FIELD, enum_field))
    project = make_project(tmp_path, models)

    data = await check(project)
    drift = the_drift(data, "tasks.priority", "column-type")
    assert drift["severity"] == "degraded"  # the same value set, enforced as a native enum instead of a CHECK
    assert drift["sides"]["spec"]["value"] == "varchar(10)"
    assert drift["sides"]["models"] == {"value": "priority", "location": models_loc(models, enum_field)}
    # The enum's labels are the spec's values: no value-set drift.
    assert not [d for d in data["drifts"] if d["object"] == "tasks.priority" and d["kind"] in ("check", "enum-labels")]
    default = the_drift(data, "tasks.priority", "default")
    assert default["severity"] == "cosmetic"  # Python-side default only
    model_fix = fix_for(drift, "models")["model_change"]
    # The field back to varchar(10), and the CHECK the enum stood for, named and spelled as the spec has it.
    field_fix, note, table_args = model_fix.splitlines()
    assert field_fix.startswith("priority: str = Field(max_length=10")
    assert note.startswith("# and add to the class's __table_args__")
    item = table_args_item(table_args)
    assert item == "CheckConstraint(\"priority IN ('low', 'medium', 'high')\", name='ck_tasks_priority')"

    replace_line(project, enum_field, field_fix)
    add_to_table_args(project, "class Task(", item)
    data = await check(project)
    assert_clean(data, "tasks.priority", "tasks.ck_tasks_priority")


# ---------------------------------------------------------------------------------------------------
# 8. Renamed columns: suggested as a possible rename (same type), never assumed


async def test_renamed_column_is_suggested_not_assumed(tmp_path: Path, make_database) -> None:
    models = drifted(("    due_date: datetime | None = None", "    due_at: datetime | None = None"))
    project = make_project(tmp_path, models)
    url = database_from_models(make_database, "kind_rename", project / MODELS)

    data = await check(project, url)
    drift = the_drift(data, "tasks.due_date", "possible-rename")
    assert drift["severity"] == "breaking"
    assert "Possibly renamed (due_at / due_date, same type)" in drift["message"]
    assert drift["sides"]["spec"]["value"] == "due_date timestamptz"
    assert drift["sides"]["models"] == {"value": "due_at timestamptz", "location": models_loc(models, "due_at:")}
    assert drift["sides"]["database"]["value"] == "due_at timestamptz"
    # Suggested, not assumed: each side gets both readings, a rename and add-then-drop.
    for side in ("models", "database"):
        actions = [f["action"] for f in drift["fixes"] if f["side"] == side]
        assert actions == ["If due_at was renamed: rename it to due_date.",
                           "If they are different columns: add due_date and drop due_at."]
    assert not [d for d in data["drifts"] if d["object"] == "tasks.due_at"], data["drifts"]
    rename = fix_for(drift, "models")["model_change"]
    assert rename == "due_date: datetime | None = None  # was: due_at"
    db_rename = fix_for(drift, "database")["migration_sql"]
    assert db_rename == "ALTER TABLE tasks RENAME COLUMN due_at TO due_date;"

    replace_line(project, "due_at:", rename)
    run_migration(url, db_rename)
    data = await check(project, url)
    assert_clean(data, "tasks.due_date", "tasks.due_at")


async def test_renamed_column_of_another_type_is_not_paired(tmp_path: Path) -> None:
    """completed (boolean) -> status (varchar): a different column, not a rename."""
    status = 'status: str = Field(default="todo", max_length=20)'
    models = drifted(('    completed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})',
                      f"    {status}"),
                     ('Index("idx_tasks_user_completed", "user_id", "completed")',
                      'Index("idx_tasks_user_completed", "user_id", "status")'))
    project = make_project(tmp_path, models)

    data = await check(project)
    assert not [d for d in data["drifts"] if d["kind"] == "possible-rename"], data["drifts"]
    missing = the_drift(data, "tasks.completed", "missing-column")
    assert missing["severity"] == "breaking"
    assert missing["sides"]["spec"]["value"] == "completed boolean"
    assert missing["sides"]["models"] == {"value": None, "location": models_loc(models, "class Task(")}
    extra = the_drift(data, "tasks.status", "extra-column")
    assert extra["severity"] == "degraded"
    assert extra["sides"]["models"] == {"value": "status varchar(20)", "location": models_loc(models, status)}
    index = the_drift(data, "tasks.idx_tasks_user_completed", "index-columns")

    # Add completed where status was (the extra-column fix is "delete the field"), restore the index.
    add = fix_for(missing, "models")["model_change"]
    assert fix_for(extra, "models")["model_change"].startswith("# delete the field: status: str")
    replace_line(project, status, add)
    index_fix = table_args_item(fix_for(index, "models")["model_change"])
    replace_line(project, 'Index("idx_tasks_user_completed"', index_fix + ",")
    data = await check(project)
    # completed now has a database default but no Python default: cosmetic only.
    assert [d["kind"] for d in data["drifts"]] in ([], ["default"]), data["drifts"]
    assert data["clean"], data["drifts"]


# ---------------------------------------------------------------------------------------------------
# 9. id type change: SERIAL in the spec, UUID in the model (against the database too)

MESSAGE_ID = '''    id: int | None = Field(default=None, primary_key=True)
    conversation_id'''


ID_TYPES = {  # how a developer writes a UUID or string id, and the type it maps to
    "uuid": ("id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)", "uuid"),
    "str": ("id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True)", "varchar"),
}


def models_with_id(id_type: str) -> tuple[str, str]:
    line, _ = ID_TYPES[id_type]
    return line, drifted(("from datetime import datetime, timezone\n",
                          "import uuid\nfrom datetime import datetime, timezone\n"),
                         (MESSAGE_ID, f"    {line}\n    conversation_id"))


@pytest.mark.parametrize("id_type", list(ID_TYPES))
async def test_id_type_serial_vs_uuid_or_str(id_type: str, tmp_path: Path) -> None:
    line, models = models_with_id(id_type)
    project = make_project(tmp_path, models)

    data = await check(project)
    drift = the_drift(data, "messages.id", "column-type")
    assert drift["severity"] == "breaking"
    assert drift["sides"]["spec"]["value"] == "integer"
    assert drift["sides"]["models"] == {"value": ID_TYPES[id_type][1], "location": models_loc(models, line)}
    model_fix = fix_for(drift, "models")["model_change"]
    assert model_fix == "id: int | None = Field(default=None, primary_key=True)"

    replace_line(project, line, model_fix)
    assert_clean(await check(project), "messages.id")


ID_ROWS = {"uuid": ["8d1c4f1e-93a4-4d55-9d43-1d2c1b2a3f40", "0b6f0c52-6f1e-4c8e-a3a1-5f0e7c7d9b21"],
           "str": ["7", "42"]}  # a str id converts in place only where it holds digits


@pytest.mark.parametrize("id_type", list(ID_TYPES))
async def test_id_type_serial_vs_uuid_or_str_in_database(id_type: str, tmp_path: Path, make_database) -> None:
    """The database was created from the drifted models; the models are already fixed."""
    _, models = models_with_id(id_type)
    old_models = tmp_path / "old_models.py"
    old_models.write_text(models)
    url = database_from_models(make_database, f"kind_id_{id_type}", old_models)
    project = make_project(tmp_path / "project", REFERENCE_MODELS)
    with psycopg.connect(url, autocommit=True) as conn:  # rows, so the migration really converts ids
        conn.execute("INSERT INTO users (id, email, name) VALUES ('u1', 'a@example.com', 'A')")
        conv = conn.execute("INSERT INTO conversations (user_id) VALUES ('u1') RETURNING id").fetchone()[0]
        for old_id in ID_ROWS[id_type]:
            conn.execute("INSERT INTO messages (id, conversation_id, user_id, role, content) "
                         "VALUES (%s, %s, 'u1', 'user', 'hi')", (old_id, conv))

    data = await check(project, url)
    drift = the_drift(data, "messages.id", "column-type")
    assert drift["severity"] == "breaking"
    assert drift["sides"]["spec"]["value"] == drift["sides"]["models"]["value"] == "integer"
    assert {f["side"] for f in drift["fixes"]} == {"database", "spec"}  # only the database is off
    assert drift["sides"]["database"]["value"] == ID_TYPES[id_type][1]
    db_fix = fix_for(drift, "database")
    sql = db_fix["migration_sql"]
    assert "ALTER TABLE messages ALTER COLUMN id TYPE integer" in sql
    assert "OWNED BY messages.id;" in sql
    assert "ALTER TABLE messages ALTER COLUMN id SET DEFAULT nextval('messages_id_seq');" in sql
    assert "SELECT setval('messages_id_seq', coalesce(max(id), 0) + 1, false) FROM messages;" in sql
    assert "No foreign key in this database references messages.id" in sql
    if id_type == "uuid":  # no cast: renumbered through a new column, said loudly
        assert "USING id::integer" not in sql and "USING id_new;" in sql
        assert "BREAKING, DATA-LOSS RISK" in sql and "the old uuid ids are discarded" in sql
        assert "Breaking and data-loss risk" in db_fix["lock_notes"] and "ACCESS EXCLUSIVE" in db_fix["lock_notes"]
    else:  # digits cast in place, after checking they are digits
        assert "ALTER TABLE messages ALTER COLUMN id TYPE integer USING id::integer;" in sql
        assert "-- check first (must be 0): SELECT count(*) FROM messages WHERE id !~ '^[0-9]+$';" in sql
        assert "ACCESS EXCLUSIVE" in db_fix["lock_notes"]

    run_migration(url, sql)
    data = await check(project, url)
    assert_clean(data, "messages.id")
    with psycopg.connect(url, autocommit=True) as conn:  # the old rows kept (renumbered); new ids generated
        ids = [r[0] for r in conn.execute("SELECT id FROM messages ORDER BY id")]
        assert ids == ([1, 2] if id_type == "uuid" else [7, 42])
        new = conn.execute("INSERT INTO messages (conversation_id, user_id, role, content) "
                           "SELECT conversation_id, user_id, 'user', 'again' FROM messages LIMIT 1 RETURNING id")
        assert new.fetchone()[0] == max(ids) + 1


# ---------------------------------------------------------------------------------------------------
# 10. Whole tables on one side: a feature table only in the models, a spec table never modelled

NOTES = '''

class Note(SQLModel, table=True):
    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE", index=True)
    body: str = Field(sa_type=Text)
'''


@pytest.mark.parametrize("case", ["extra-feature-table", "spec-table-never-modelled"])
async def test_table_on_one_side_only(case: str, tmp_path: Path) -> None:
    if case == "extra-feature-table":
        models = REFERENCE_MODELS + NOTES
        obj, kind, severity = "notes", "extra-table", "degraded"
        spec_value, models_value, location = None, "notes", models_loc(models, "class Note(")
    else:
        models = REFERENCE_MODELS[: REFERENCE_MODELS.index("class Message(SQLModel")].rstrip() + "\n"
        obj, kind, severity = "messages", "missing-table", "breaking"
        spec_value, models_value, location = "messages", None, None
    project = make_project(tmp_path, models)

    data = await check(project)
    drift = the_drift(data, obj, kind)
    assert drift["severity"] == severity
    assert drift["sides"]["spec"]["value"] == spec_value
    assert drift["sides"]["models"] == ({"value": models_value, "location": location} if location
                                        else {"value": models_value})  # a null location is left out
    model_fix = fix_for(drift, "models")["model_change"]

    path = project / MODELS
    if case == "extra-feature-table":
        assert model_fix == "# delete the class mapped to table 'notes'"
        assert "## Table: notes" in fix_for(drift, "spec")["spec_patch"]  # or document it
        path.write_text(path.read_text().replace(NOTES, "\n"))
    else:
        assert model_fix.startswith('class Messages(SQLModel, table=True):\n    __tablename__ = "messages"')
        path.write_text(path.read_text() + "\n\n" + model_fix + "\n")
    data = await check(project)
    assert_clean(data, obj)
    assert not [d for d in data["drifts"] if d["object"].startswith(obj + ".") and d["severity"] != "cosmetic"], \
        data["drifts"]


# ---------------------------------------------------------------------------------------------------
# 10b. Better Auth's tables in the spec: compared only for what ours depend on; the rest on request

SESSION = '''
## Table: session (managed by Better Auth)

Sign-in sessions.

> Reference only: Better Auth creates and migrates this table.

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | text | PRIMARY KEY | Session id |
| user_id | text | NOT NULL | The signed-in user |
| token | text | NOT NULL, UNIQUE | Session token |
| expires_at | timestamptz | NOT NULL | When it expires |

### Relationships

- user_id → users.id ON DELETE CASCADE
'''


async def test_better_auth_tables_are_managed_elsewhere(tmp_path: Path) -> None:
    project = make_project(tmp_path, REFERENCE_MODELS, REFERENCE_SPEC + SESSION)
    data = await check(project, detail="full")
    assert data["managed_elsewhere"] == ["session", "users"]
    assert data["drifts"] == [], data["drifts"]  # session has no model: not drift
    assert "Better Auth's (compared only for what our tables depend on, never altered): session, users" \
        in data["report"]


async def test_better_auth_tables_compared_with_include_managed(tmp_path: Path) -> None:
    # include_managed lists every difference; one our tables do not depend on (the models have no class
    # for session) is at info severity, and its fixes change only the spec or the models (issue 26).
    project = make_project(tmp_path, REFERENCE_MODELS, REFERENCE_SPEC + SESSION)
    data = await check(project, include_managed=True)
    assert data["managed_elsewhere"] == ["session", "users"]
    drift = the_drift(data, "session", "missing-table")
    assert drift["severity"] == "info" and data["clean"]
    assert {f["side"] for f in drift["fixes"]} == {"models"}
    assert drift["sides"]["spec"]["value"] == "session"
    assert drift["sides"]["models"]["value"] is None
    assert not [d for d in data["drifts"] if d["object"].split(".")[0] != "session"], data["drifts"]  # users agrees
    model_fix = fix_for(drift, "models")["model_change"]
    assert model_fix.startswith('class Session(SQLModel, table=True):\n    __tablename__ = "session"')

    path = project / MODELS
    path.write_text(path.read_text() + "\n\n" + model_fix + "\n")
    data = await check(project, include_managed=True)
    assert data["drifts"] == [], data["drifts"]
