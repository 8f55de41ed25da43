"""The lenient spec reader, one format family at a time, with exact tables, columns and lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from schema_architect.tools.spec.reader import parse_spec

MD_TABLE = """\
# Schema

## 2. Tasks Table (`tasks`)

Stores todo items.

| Column | Data Type | Constraints | Description |
|--------|------|-------------|-------------|
| `id` | SERIAL | PRIMARY KEY | Task id |
| `user_id` | VARCHAR(255) | NOT NULL, FK → users.id ON DELETE CASCADE, INDEXED | Owner |
| `title` | VARCHAR(200) | NOT NULL | Title |
| `priority` | VARCHAR(10) | DEFAULT 'medium', CHECK (priority IN ('low','medium','high')) | |
| `done` | BOOLEAN | Not Null, Default false | a \\| b |
| created_at | TIMESTAMP WITH TIME ZONE | DEFAULT NOW() | - |
"""


def cols(table):
    return {c.name: c for c in table.columns}


def test_markdown_column_table():
    parsed = parse_spec(MD_TABLE, file="spec.md")
    assert parsed.warnings == [] and parsed.conflicts == []
    [tasks] = parsed.schema.tables
    assert tasks.name == "tasks" and tasks.description == "Stores todo items."
    assert tasks.location.model_dump() == {"file": "spec.md", "line": 3}
    c = cols(tasks)
    assert [n for n in c] == ["id", "user_id", "title", "priority", "done", "created_at"]
    assert (c["id"].type, c["id"].identity, c["id"].primary_key, c["id"].nullable) == ("integer", "serial", True, False)
    assert tasks.primary_key == ["id"]
    assert c["user_id"].type == "varchar(255)" and c["user_id"].location.line == 10
    assert c["title"].nullable is False and c["title"].description == "Title"
    assert c["priority"].default == "'medium'" and c["priority"].nullable is True
    assert c["priority"].allowed_values == ["low", "medium", "high"]
    assert [ch.expression for ch in tasks.checks] == ["priority IN ('low', 'medium', 'high')"]
    assert c["done"].default == "false" and c["done"].nullable is False and c["done"].description == "a | b"
    assert c["created_at"].type == "timestamptz" and c["created_at"].default == "now()"
    assert c["created_at"].description is None
    [fk] = tasks.foreign_keys
    assert (fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete, fk.location.line) == (
        ["user_id"], "users", ["id"], "CASCADE", 10)
    [index] = tasks.indexes
    assert index.column_names == ["user_id"] and index.location.line == 10


BULLETS = """\
# Database Schema

## Tables

### users (managed by Better Auth)
- id: string (primary key)
- email: string (unique)

### tasks
- id: integer (primary key, auto-increment)
- user_id: string (foreign key → users.id)
- title: string (not null, max 200)
- description: text (nullable, max 1000)
- completed: boolean (default false)
- priority: string enum ('low', 'medium', 'high', default 'medium') - Task priority
- `due_date` (DATE, Optional): When it is due
- **notes**: TEXT - Free text
- created_at

## Indexes
- tasks.user_id (filter by user)
- idx_tasks_user_done: Composite index on (`user_id`, `completed`) for filtered lists
"""


def test_bullet_variants_and_index_bullets():
    parsed = parse_spec(BULLETS)
    assert parsed.conflicts == []
    users, tasks = parsed.schema.tables
    assert users.managed_by == "better-auth" and tasks.managed_by is None
    assert cols(users)["id"].primary_key and cols(users)["email"].unique
    c = cols(tasks)
    assert c["id"].identity == "serial" and c["id"].type == "integer" and c["id"].location.line == 10
    assert c["title"].type == "varchar(200)" and c["title"].nullable is False
    assert c["description"].type == "text" and c["description"].nullable is True
    assert c["completed"].default == "false"
    assert c["priority"].allowed_values == ["low", "medium", "high"] and c["priority"].default == "'medium'"
    assert c["priority"].description == "Task priority"
    assert c["due_date"].type == "date" and c["due_date"].nullable is True
    assert c["due_date"].description == "When it is due"
    assert c["notes"].type == "text" and c["notes"].description == "Free text"
    assert c["created_at"].type == "unknown"  # named without a type: kept, and warned about
    assert [w.rule for w in parsed.warnings] == ["spec-unreadable-type"]
    assert parsed.warnings[0].location.line == 18
    [fk] = tasks.foreign_keys
    assert fk.ref_table == "users" and fk.location.line == 11
    first, second = tasks.indexes
    assert first.column_names == ["user_id"] and first.reason == "filter by user" and first.location.line == 21
    assert second.name == "idx_tasks_user_done" and second.column_names == ["user_id", "completed"]


SQL = """\
# Schema

### Tables

```sql
-- tasks owned by users
CREATE TABLE tasks (
    id SERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title VARCHAR(200) NOT NULL,
    status task_status NOT NULL DEFAULT 'todo',
    body TEXT CHECK (length(body) < 5000),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_owner FOREIGN KEY (user_id)
        REFERENCES users(id)
        ON DELETE CASCADE
);
CREATE TABLE users (id TEXT PRIMARY KEY);
CREATE TYPE task_status AS ENUM ('todo', 'done');
```

#### Indexes

```sql
CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS uq_title ON tasks(user_id, title) WHERE status = 'todo';
CREATE INDEX idx_fts ON tasks USING GIN (to_tsvector('english', title));
ALTER TABLE tasks ADD CONSTRAINT uq_tasks_title UNIQUE (user_id, title);
CREATE TABLE broken (id INT AUTO INCREMENT PRIMARY KEY;
SELECT * FROM tasks WHERE user_id = 'x';
```
"""


def test_sql_ddl_block():
    parsed = parse_spec(SQL)
    assert [w.rule for w in parsed.warnings] == ["spec-sql-unparsable"]
    assert parsed.warnings[0].location.line == 29
    tasks, users = parsed.schema.tables
    assert users.primary_key == ["id"]
    assert tasks.location.line == 7
    c = cols(tasks)
    assert c["id"].identity == "serial" and c["id"].location.line == 8
    assert c["user_id"].nullable is False and c["user_id"].location.line == 9
    assert c["status"].type == "task_status" and c["status"].allowed_values == ["todo", "done"]
    assert c["status"].default == "'todo'"
    assert c["created_at"].default == "now()" and c["created_at"].type == "timestamptz"
    assert [e.name for e in parsed.schema.enums] == ["task_status"]
    [fk] = tasks.foreign_keys  # the inline and the table-level FK are one foreign key
    assert (fk.ref_table, fk.on_delete, fk.name) == ("users", "CASCADE", "fk_owner")
    [check] = tasks.checks
    assert check.expression == "length(body) < 5000" and check.columns == ["body"]
    by_name = {i.name: i for i in tasks.indexes}
    created = by_name["idx_tasks_user_created"]
    assert [(x.name, x.descending) for x in created.columns] == [("user_id", False), ("created_at", True)]
    assert created.location.line == 25
    assert by_name["uq_title"].unique and by_name["uq_title"].where == "status = 'todo'"
    fts = by_name["idx_fts"]
    assert fts.method == "gin" and fts.columns[0].is_expression
    assert fts.columns[0].name == "to_tsvector('english', title)"
    assert [u.columns for u in tasks.unique_constraints] == [["user_id", "title"]]


PYTHON = """\
# Models

```python
class TaskBase(SQLModel):
    title: str = Field(max_length=200)
    description: Optional[str] = None

class Task(TaskBase, table=True):
    __tablename__ = "tasks"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    tags: list = Field(sa_column=Column(JSONB))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), server_default=text("now()"), \
nullable=False))
    owner: "User" = Relationship(back_populates="tasks")

class User(SQLModel, table=True):
    id: str = Field(primary_key=True)
    email: str = Field(sa_column=Column("email_address", String(255), unique=True, nullable=False))
```
"""


def test_python_models():
    parsed = parse_spec(PYTHON)
    assert parsed.warnings == []
    tasks, user = parsed.schema.tables
    assert tasks.name == "tasks" and user.name == "user"  # implicit name: lower-cased class name
    c = cols(tasks)
    assert list(c) == ["title", "description", "id", "user_id", "tags", "created_at"]
    assert c["title"].type == "varchar(200)" and c["title"].nullable is False and c["title"].location.line == 5
    assert c["description"].type == "varchar" and c["description"].nullable is True
    assert c["id"].primary_key and c["id"].identity == "serial" and c["id"].nullable is False
    assert c["tags"].type == "jsonb"
    assert c["created_at"].type == "timestamptz" and c["created_at"].default == "now()"
    assert c["created_at"].nullable is False
    [fk] = tasks.foreign_keys
    assert (fk.ref_table, fk.on_delete, fk.location.line) == ("users", "CASCADE", 11)
    assert [i.column_names for i in tasks.indexes] == [["user_id"]]
    assert cols(user)["email_address"].type == "varchar(255)" and cols(user)["email_address"].unique


MIXED = """\
# Schema

## Table: tasks

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | SERIAL | PRIMARY KEY | |
| user_id | TEXT | NOT NULL | |
| description | TEXT | | |

```sql
CREATE TABLE tasks (
  id SERIAL PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL REFERENCES users(id),
  description TEXT
);
```

```python
class Task(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="user.id")
    description: Optional[str] = Field(default=None, max_length=1000)
```
"""


def test_conflicts_between_representations():
    parsed = parse_spec(MIXED)
    [tasks] = parsed.schema.tables
    assert cols(tasks)["user_id"].type == "text" and cols(tasks)["description"].type == "text"
    found = {(c.object, c.aspect, c.loser): c for c in parsed.conflicts}
    type_conflict = found[("tasks.user_id", "type", "varchar(36)")]
    assert (type_conflict.winner, type_conflict.loser) == ("text", "varchar(36)")
    assert (type_conflict.winner_location.line, type_conflict.loser_location.line) == (8, 14)
    assert "markdown table wins over SQL DDL" in type_conflict.why
    assert ("tasks.description", "type", "varchar(1000)") in found
    assert ("tasks.user_id", "type", "varchar") in found  # the Python model's str, overruled too
    fk_conflict = found[("tasks.user_id", "foreign_key", "user(id)")]
    assert (fk_conflict.winner, fk_conflict.loser) == ("users(id)", "user(id)")
    assert "SQL DDL wins over Python model" in fk_conflict.why
    assert ("tasks", "table_name", "task") in found
    assert [fk.ref_table for fk in tasks.foreign_keys] == ["users"]


def test_prose_only_spec_gets_a_hint_not_an_error():
    parsed = parse_spec("# Data\n\nUsers own tasks. Each task has a title and a due date.\n")
    assert parsed.schema.tables == []
    [warning] = parsed.warnings
    assert warning.rule == "spec-no-tables" and warning.severity == "warning"
    assert "markdown column tables" in warning.fix and "specs/format.md" in warning.fix


def test_oddities_unclosed_md_fence_crlf_kv_block_er_diagram_and_future_section():
    text = (
        "### 2.8 `specs/database/schema.md`\r\n\r\n```md\r\n# Database Schema\r\n\r\n"
        "### tasks\r\n\r\n```\r\nid: UUID (Primary Key, Default: gen_random_uuid())\r\n"
        "title: VARCHAR(255) (Not Null)\r\nuser_id: UUID (Foreign Key: users.id, Not Null)\r\n```\r\n\r\n"
        "```\r\n┌────────┐     ┌────────┐\r\n│ users  │────<│ tasks  │\r\n└────────┘     └────────┘\r\n```\r\n\r\n"
        "## Future Schema Enhancements\r\n\r\n### categories\r\n- id: integer (primary key)\r\n"
    )
    parsed = parse_spec(text)
    [tasks] = parsed.schema.tables
    c = cols(tasks)
    assert c["id"].type == "uuid" and c["id"].default == "gen_random_uuid()" and c["id"].location.line == 9
    assert c["title"].nullable is False and c["title"].type == "varchar(255)"
    assert tasks.foreign_keys[0].ref_table == "users"
    assert [(w.rule, w.location.line) for w in parsed.warnings] == [("spec-section-skipped", 20)]


def test_relationship_and_constraint_sections_complete_the_tables():
    text = """\
## Table: tags

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | |
| user_id | text | NOT NULL, FOREIGN KEY | |
| name | varchar(50) | NOT NULL | |

### Relationships

- user_id → users.id ON DELETE CASCADE

### Constraints

- `uq_tags_user_name`: UNIQUE (user_id, name)
- CHECK (length(name) > 0)
"""
    parsed = parse_spec(text)
    assert parsed.warnings == [] and parsed.conflicts == []
    [tags] = parsed.schema.tables
    [fk] = tags.foreign_keys
    assert (fk.ref_table, fk.on_delete, fk.location.line) == ("users", "CASCADE", 11)
    assert [(u.name, u.columns) for u in tags.unique_constraints] == [("uq_tags_user_name", ["user_id", "name"])]
    assert [c.expression for c in tags.checks] == ["length(name) > 0"]


def test_fk_without_target_is_warned():
    text = "## Table: tasks\n\n| Column | Type | Constraints |\n|---|---|---|\n| user_id | TEXT | FOREIGN KEY |\n"
    parsed = parse_spec(text)
    assert [(w.rule, w.location.line) for w in parsed.warnings] == [("spec-unknown-fk-target", 5)]


def test_description_cell_states_keys_when_there_is_no_constraints_column():
    text = """\
#### `session`

| Column | Type | Description |
|--------|------|-------------|
| `id` | `VARCHAR` | Session ID (primary key) |
| `userId` | `VARCHAR` | FK → `user.id` |
| `ipAddress` | `VARCHAR` | Client IP (nullable) |

## Table: tasks

| Column | Type | Nullable | Description |
|---|---|---|---|
| id | UUID | No | Primary Key (auto-generated) |

## Table: tags

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | SERIAL | PRIMARY KEY | Unique tag identifier |
| name | TEXT | NOT NULL | Primary key of the old system |
"""
    parsed = parse_spec(text)
    session, tasks, tags = parsed.schema.tables
    assert session.primary_key == ["id"] and cols(session)["id"].nullable is False
    assert [(f.columns, f.ref_table) for f in session.foreign_keys] == [(["userId"], "user")]
    assert cols(session)["ipAddress"].nullable is True
    assert tasks.primary_key == ["id"] and cols(tasks)["id"].identity is None  # a uuid is never serial
    # With a Constraints column the description is prose: it states nothing.
    assert tags.primary_key == ["id"] and not cols(tags)["id"].unique


def test_primary_key_label_in_a_constraints_list():
    text = """\
### 3.1 Tasks Table (`tasks`)

| Column | Type | Nullable | Description |
|---|---|---|---|
| `id` | `UUID` | No | Task id |
| `title` | `TEXT` | No | Title |

**Constraints:**
- **Primary Key**: `id`
- **Ownership**: `user_id` MUST be present.

## Table: tags

| Column | Type |
|---|---|
| user_id | TEXT |
| name | TEXT |

### Constraints
- Primary key: (user_id, name)
"""
    parsed = parse_spec(text)
    assert parsed.conflicts == []
    tasks, tags = parsed.schema.tables
    assert tasks.primary_key == ["id"] and cols(tasks)["id"].nullable is False
    assert tags.primary_key == ["user_id", "name"]


def test_nested_aspect_bullets_under_a_column_name():
    text = """\
### Tasks Table

#### Column Definitions

- **id** (Primary Key)
  - Type: Integer (Auto-incrementing)
  - Constraints: NOT NULL, PRIMARY KEY
  - Purpose: Unique identifier for each task

- **title** (Task Title)
  - Type: String (VARCHAR)
  - Constraints: NOT NULL, 1-200 characters
  - Note: References nothing at all

- **description** (Task Description)
  - Type: Text (TEXT)
  - Constraints: OPTIONAL, NULLABLE
"""
    parsed = parse_spec(text)
    assert parsed.warnings == [] and parsed.conflicts == []
    [tasks] = parsed.schema.tables
    c = cols(tasks)
    assert list(c) == ["id", "title", "description"]  # no column named Purpose, Note or Type
    assert c["id"].type == "integer" and c["id"].identity == "serial" and tasks.primary_key == ["id"]
    assert c["id"].description == "Unique identifier for each task"
    assert c["title"].type == "varchar(200)" and c["title"].nullable is False
    assert c["title"].location.line == 10 and tasks.foreign_keys == []
    assert c["description"].type == "text" and c["description"].nullable is True


def test_string_enum_bullet_is_a_varchar_with_allowed_values():
    text = "### tasks\n- priority: string enum ('low', 'medium', 'high', default 'medium') - Task priority\n"
    [tasks] = parse_spec(text).schema.tables
    priority = cols(tasks)["priority"]
    assert priority.type == "varchar" and priority.allowed_values == ["low", "medium", "high"]
    assert priority.default == "'medium'"


def test_prose_bullets_and_a_model_heading_named_by_the_text():
    text = """\
## Overview

Model definitions (tasks table with foreign key to users.id from Better Auth).

### Task Model Fields
- id: Integer primary key, auto-incrementing
- title: String, max length 200, NOT NULL
- description: Optional string, max length 1000

### Database Indexes
- Index on tasks.title for search
"""
    parsed = parse_spec(text)
    [tasks] = parsed.schema.tables
    assert tasks.name == "tasks"  # the text says "tasks table"; the heading only guesses "task"
    [conflict] = parsed.conflicts
    assert (conflict.aspect, conflict.loser, conflict.winner_location.line) == ("table_name", "task", 3)
    c = cols(tasks)
    assert c["description"].type == "varchar(1000)" and c["description"].nullable is True
    assert c["title"].type == "varchar(200)" and c["title"].nullable is False
    assert [i.column_names for i in tasks.indexes] == [["title"]]
    # Without such a mention the heading's name stands.
    [task] = parse_spec(text.replace("tasks table", "the table").replace("tasks.title", "title")).schema.tables
    assert task.name == "task"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("#|-*`:()_ \n\r\tabcxyz01'\"→,.;CREATE TABLE class=True")), max_size=400))
def test_never_raises_on_any_text(text):
    parsed = parse_spec(text)
    assert all(w.rule != "spec-reader-error" for w in parsed.warnings), parsed.warnings


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_unicode_noise(text):
    # parse_spec turns any exception into a "spec-reader-error" warning, so that warning is what a crash looks like.
    parsed = parse_spec("## Table: t\n\n| Column | Type |\n|---|---|\n" + text)
    assert all(w.rule != "spec-reader-error" for w in parsed.warnings), parsed.warnings


@pytest.mark.parametrize("heading, expected", [
    ("## Table: notes", ["notes"]),  # what explain_indexes tells users to write for a table named notes
    ("### `notes`", ["notes"]),
    ("## Notes", []),  # a section of remarks, not a table
    ("### Tables", []),
])
def test_a_table_named_like_a_section_is_read_when_the_heading_says_table(heading, expected):
    text = f"{heading}\n\n| Column | Type | Constraints |\n|---|---|---|\n| id | SERIAL | PRIMARY KEY |\n"
    assert [t.name for t in parse_spec(text).schema.tables] == expected
