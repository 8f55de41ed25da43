"""Real specs, round 3 (issue 29): value lists, relationship lines, spellings of one fact, drift that only the
app could know, and the models read in the project's own way.

Each fixture is written as people write their specs and projects (value lists under a heading, the
architect roles' relationship lines, prose with a target in parentheses, UTF-16 requirements files written
by PowerShell, pins in a phase folder, an app that sets updated_at in its CRUD code).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from through_mcp import diff_models_vs_spec as diff

from schema_architect.server.cli import run
from schema_architect.tools.database.ddl import create_table_sql
from schema_architect.tools.diff_models_vs_spec import mark_version_dependent
from schema_architect.tools.drift import Drift, SideValue
from schema_architect.tools.models.pins import Pin, project_pins, version_mismatches
from schema_architect.tools.spec.lint import lint_schema
from schema_architect.tools.spec.reader import parse_spec


def cols(table):
    return {c.name: c for c in table.columns}


def rules(findings):
    return sorted(f.rule for f in findings)


# ---------------------------------------------------------------------------------------------------
# 1. A value list under a heading is the value set of the column it names: never a table, never columns.

VALUE_LISTS = """\
# Database Schema

## Table: tasks

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | |
| user_id | text | NOT NULL, FK → users.id ON DELETE CASCADE | |
| title | varchar(200) | NOT NULL | |
| priority | varchar(10) | NOT NULL, DEFAULT 'medium' | Task priority |
| status | varchar(20) | NOT NULL | Where the task stands |
| category | varchar(20) | | |

### Priority
- `low`
- `medium`
- `high`

### Status Values
The workflow of a task:
- `pending` - not started
- `in_progress`: being worked on
- `done`

**Category options:**
- "work"
- "personal"

## Enums

### Task Kind
* 'bug'
* 'feature'
"""


def test_a_value_list_under_a_heading_is_the_columns_values_not_a_table():
    parsed = parse_spec(VALUE_LISTS, file="spec.md")
    assert [t.name for t in parsed.schema.tables] == ["tasks"]  # no invented "priority" table
    tasks = parsed.schema.tables[0]
    c = cols(tasks)
    assert list(c) == ["id", "user_id", "title", "priority", "status", "category"]  # no "pending" column
    assert c["priority"].allowed_values == ["low", "medium", "high"]
    assert c["status"].allowed_values == ["pending", "in_progress", "done"]
    assert c["category"].allowed_values == ["work", "personal"]
    assert [(e.name, e.values) for e in parsed.schema.enums] == [("task_kind", ["bug", "feature"])]
    assert parsed.warnings == [] and parsed.conflicts == []
    lints = rules(lint_schema(parsed.schema))
    assert "missing-primary-key" not in lints and "table-ownership-unclear" not in lints
    assert lints.count("allowed-values-not-enforced") == 3  # the values are the spec's; a CHECK enforces them
    ddl = create_table_sql(tasks)
    assert "CHECK (priority IN ('low', 'medium', 'high'))" in ddl, ddl


def test_a_bullet_list_under_a_table_heading_without_types_is_still_columns():
    text = "## Table: notes\n\n- id\n- user_id\n- body: text\n- created_at\n"
    parsed = parse_spec(text, file="spec.md")
    [notes] = parsed.schema.tables
    assert list(cols(notes)) == ["id", "user_id", "body", "created_at"]


def test_a_value_list_naming_no_column_is_reported_with_its_line():
    text = VALUE_LISTS.replace("### Priority\n", "### Urgency\n")
    parsed = parse_spec(text, file="spec.md")
    assert [t.name for t in parsed.schema.tables] == ["tasks"]
    (warning,) = [w for w in parsed.warnings if w.rule == "spec-value-list-unplaced"]
    assert warning.location.line == 14 and warning.message.startswith("Line 14: a list of values (low, medium, high)")
    assert cols(parsed.schema.tables[0])["priority"].allowed_values is None


# ---------------------------------------------------------------------------------------------------
# 3. Relationship lines: the roles' own format, a target in prose, ON DELETE on a bullet of its own.

RELATIONSHIPS = """\
# Database Schema

## Table: users (Better Auth managed)

| Column | Type | Constraints |
|---|---|---|
| id | text | PRIMARY KEY |

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| user_id | text | NOT NULL, FK → users.id |
| project_id | integer | |
| parent_id | integer | |

## Table: projects

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| owner_id | text | NOT NULL |

### Relationships
- owner_id -> users.id (Better Auth managed, CASCADE on delete: CASCADE)

## Relationships

- One user has many tasks (`tasks.user_id` → `users.id`, ON DELETE CASCADE)
- A project groups tasks: tasks.project_id → projects.id
  - ON DELETE SET NULL
- **tasks.parent_id** references **tasks(id)**
    - Cascade on delete
- users 1──N tasks via user_id → users(id)
"""


def test_relationship_lines_in_the_roles_format_in_prose_and_with_a_nested_action():
    parsed = parse_spec(RELATIONSHIPS, file="spec.md")
    tables = {t.name: t for t in parsed.schema.tables}
    fks = {(t, tuple(fk.columns)): (fk.ref_table, fk.ref_columns, fk.on_delete)
           for t, table in tables.items() for fk in table.foreign_keys}
    assert fks == {
        ("projects", ("owner_id",)): ("users", ["id"], "CASCADE"),
        ("tasks", ("user_id",)): ("users", ["id"], "CASCADE"),
        ("tasks", ("project_id",)): ("projects", ["id"], "SET NULL"),
        ("tasks", ("parent_id",)): ("tasks", ["id"], "CASCADE"),
    }
    assert parsed.conflicts == []
    assert "owner-fk-on-delete" not in rules(lint_schema(parsed.schema))
    # the last line names a key it does not state readably: said, with its line, not guessed
    (unread,) = [w for w in parsed.warnings if w.rule == "spec-unread-relationship"]
    assert unread.location.line == 35 and unread.message.startswith("Line 35:")


def test_a_foreign_key_on_a_column_the_table_lacks_is_reported():
    text = RELATIONSHIPS.replace("tasks.project_id → projects.id", "tasks.projectid → projects.id")
    parsed = parse_spec(text, file="spec.md")
    (w,) = [w for w in parsed.warnings if w.rule == "spec-unknown-column"]
    assert w.location.line == 31 and "tasks.projectid" in w.message


# ---------------------------------------------------------------------------------------------------
# 4. Spellings of one fact

SPELLINGS = """\
# Database Schema

## Table: users

**Purpose:** A user's account, *managed* by Better Auth.

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | text | Primary key, unique | **Purpose:** the user's id |
| email | varchar(255) | NOT NULL | |
| | varchar(100) | NOT NULL | Display name |

```sql
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email VARCHAR(255) NOT NULL
);
```

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | uuid | Primary identifier |
| user_id | varchar | NOT NULL, FK → users(id) |
| description | TEXT | max 1000 chars |

### Fields

#### status
- **Type**: varchar(20)
- Nullable: yes

### SQLModel

```python
class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(foreign_key="users.id")
```
"""


def test_spellings_of_one_fact_are_one_fact():
    parsed = parse_spec(SPELLINGS, file="spec.md")
    assert parsed.conflicts == []  # users.id / users(id); "Primary key, unique" / PRIMARY KEY
    users, tasks = parsed.schema.tables
    assert users.description == "A user's account, managed by Better Auth."
    assert cols(users)["id"].description == "the user's id"
    c = cols(tasks)
    assert list(c) == ["id", "user_id", "description", "status"]  # no column named "Type"
    assert c["id"].primary_key  # "Primary identifier"
    assert c["status"].type == "varchar(20)" and c["status"].nullable is True
    assert c["description"].type == "text" and "max 1000" in c["description"].description
    assert "prose-length-not-enforced" in rules(lint_schema(parsed.schema))
    (row,) = [w for w in parsed.warnings if w.rule == "spec-unreadable-column"]
    assert row.location.line == 11 and "no column name" in row.message


# ---------------------------------------------------------------------------------------------------
# 2. updated_at kept current by the app's own code: advice, never drift; `check` passes

MODELS = '''from datetime import datetime, timezone
from typing import Optional

from sqlmodel import Field, SQLModel


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=255)
    title: str = Field(max_length=200)
    completed: bool = Field(default=False)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
'''

CRUD = '''from datetime import datetime, timezone


def update_task(session, task, data):
    for key, value in data.items():
        setattr(task, key, value)
    task.updated_at = datetime.now(timezone.utc)
    session.add(task)


def touch(session, task_id):
    session.execute(update(Task).where(Task.id == task_id).values(updated_at=datetime.now(timezone.utc)))
'''


def make_project(tmp_path: Path, spec: str, models: str = MODELS, crud: str | None = CRUD) -> Path:
    (tmp_path / "specs" / "database").mkdir(parents=True)
    (tmp_path / "specs" / "database" / "schema.md").write_text(spec)
    (tmp_path / "backend" / "app").mkdir(parents=True)
    (tmp_path / "backend" / "app" / "models.py").write_text(models)
    if crud is not None:
        (tmp_path / "backend" / "app" / "crud.py").write_text(crud)
    return tmp_path


def spec_of_models(models: str = MODELS) -> str:
    return f"# Database Schema\n\n## Tasks\n\nThe app's tasks.\n\n```python\n{models}```\n"


@pytest.mark.anyio
async def test_spec_code_equal_to_the_models_is_no_drift_and_the_apps_own_updated_at_is_named(tmp_path: Path):
    project = make_project(tmp_path, spec_of_models())
    data = await diff(project)
    assert data["drifts"] == [] and data["clean"], data["drifts"]
    (advice,) = [f for f in data.get("findings", []) if f["rule"] == "updated-at-not-maintained"]
    assert advice["severity"] == "info" and advice["object"] == "tasks.updated_at"
    assert "backend/app/crud.py:7" in advice["message"] and "backend/app/crud.py:12" in advice["message"]


def test_check_passes_when_the_spec_code_equals_the_models(tmp_path: Path):
    project = make_project(tmp_path, spec_of_models())
    out, err = io.StringIO(), io.StringIO()
    assert run(["--project", str(project), "check"], out, err) == 0, out.getvalue() + err.getvalue()
    assert "No drift." in out.getvalue()
    out = io.StringIO()
    assert run(["--project", str(project), "check", "--format", "json"], out, err) == 0
    assert json.loads(out.getvalue())["drifts"] == []


@pytest.mark.anyio
async def test_updated_at_advice_says_when_no_assignment_was_found(tmp_path: Path):
    project = make_project(tmp_path, spec_of_models(), crud=None)
    data = await diff(project)
    assert data["drifts"] == []
    (advice,) = [f for f in data.get("findings", []) if f["rule"] == "updated-at-not-maintained"]
    assert "no assignment to it was found" in advice["message"]


def test_a_trigger_in_the_specs_sql_says_the_database_keeps_it_current():
    text = """## Table: tasks

```sql
CREATE TABLE tasks (id serial PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_tasks_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();
```
"""
    parsed = parse_spec(text, file="spec.md")
    assert cols(parsed.schema.tables[0])["updated_at"].on_update == "trigger update_tasks_updated_at"
    assert "updated-at-trigger" not in rules(lint_schema(parsed.schema))


# ---------------------------------------------------------------------------------------------------
# 5. The models read in the project's way: pins in any encoding and folder; caveats only where they hold


@pytest.mark.anyio
async def test_a_utf16_requirements_file_does_not_break_the_diff(tmp_path: Path):
    project = make_project(tmp_path, spec_of_models())
    (project / "backend" / "requirements.txt").write_bytes("fastapi\r\nsqlmodel==0.0.14\r\n".encode("utf-16"))
    (project / "requirements-dev.txt").write_bytes(b"\xff\xfe\x00garbage\xd8\x00")  # not text at all
    data = await diff(project)
    (finding,) = [f for f in data.get("findings", []) if f["rule"] == "models-versions-differ"]
    assert "sqlmodel==0.0.14 (backend/requirements.txt)" in finding["message"]


def test_pins_in_a_sub_folder_are_read_nearest_the_models_first(tmp_path: Path):
    (tmp_path / "phase1").mkdir()
    (tmp_path / "phase1" / "requirements.txt").write_text("sqlmodel==0.0.8\n")
    (tmp_path / "phase2" / "backend" / "app").mkdir(parents=True)
    (tmp_path / "phase2" / "backend" / "requirements.txt").write_text("sqlmodel==0.0.14\nsqlalchemy==2.0.25\n")
    (tmp_path / "phase2" / "backend" / "app" / "models.py").write_text(MODELS)
    pins = project_pins(tmp_path, near=["phase2/backend/app/models.py"])
    assert str(pins["sqlmodel"]) == "sqlmodel==0.0.14 (phase2/backend/requirements.txt)"
    assert pins["sqlalchemy"].spec == "==2.0.25"
    assert "sqlmodel" in project_pins(tmp_path)  # found without knowing where the models are, too
    assert [p.package for p, _ in version_mismatches(tmp_path, {"sqlmodel": "0.0.14", "sqlalchemy": "2.0.36"},
                                                      near=["phase2/backend/app/models.py"])] == ["sqlalchemy"]


def test_the_version_caveat_is_only_on_drifts_whose_mapping_differs():
    from schema_architect.tools.models.pins import mapping_caveats  # new in issue 29

    def drift(kind: str, models: str) -> Drift:
        return Drift(object="t.c", kind=kind, severity="breaking", message="m",
                     sides={"spec": SideValue(value="x"), "models": SideValue(value=models)})

    sqlalchemy_patch = [(Pin("sqlalchemy", "==2.0.25", "requirements.txt"), "2.0.36")]
    assert mapping_caveats(sqlalchemy_patch) == {}
    old_sqlmodel = [(Pin("sqlmodel", "==0.0.14", "requirements.txt"), "0.0.49")]
    drifts = [drift("timestamp-timezone", "timestamptz"), drift("column-type", "varchar(200)"),
              drift("column-length", "varchar(100)")]
    mark_version_dependent(drifts, sqlalchemy_patch + old_sqlmodel)
    assert [d.caveat is not None for d in drifts] == [True, False, False]
    assert "maps a plain `datetime` field to timestamptz; the pinned version maps it to timestamp" in drifts[0].caveat
    newer_pin = [(Pin("sqlmodel", ">=0.0.46", "pyproject.toml"), "0.0.45")]  # same mapping on both sides
    drifts = [drift("timestamp-timezone", "timestamptz")]
    mark_version_dependent(drifts, newer_pin)
    assert drifts[0].caveat is None


def test_the_specs_sqlmodel_classes_mean_what_the_projects_sqlmodel_makes_of_them():
    text = spec_of_models()
    assert cols(parse_spec(text).schema.tables[0])["created_at"].type == "timestamptz"
    old = parse_spec(text, datetime_type="timestamp")
    assert cols(old.schema.tables[0])["created_at"].type == "timestamp"
    assert cols(parse_spec(text).schema.tables[0])["created_at"].type == "timestamptz"  # not left behind
