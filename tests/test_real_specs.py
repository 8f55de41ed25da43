"""Faults found by reading 20 real specs no other test had seen (issue 14), one fixture per fault.

Each fixture is written the way people wrote their specs (field headings, bullets with labels, SQL with
comments, a Python class repeated later); each test says what a careful reader gets from it.
"""

from __future__ import annotations

from schema_architect.tools.spec.lint import lint_schema
from schema_architect.tools.spec.reader import parse_spec


def cols(table):
    return {c.name: c for c in table.columns}


def rules(findings):
    return sorted(f.rule for f in findings)


# 1. Field headings ("#### id" + "- **Type**: ..." bullets) are columns of the table above, not tables.
FIELD_HEADINGS = """\
# Database Schema

## Tasks Table

### Fields

#### id
- **Type**: UUID
- **Constraints**: Primary key

#### title
- **Type**: VARCHAR(200)
- **Required**: Yes
- **Description**: Short title of the task

#### completed
- **Type**: BOOLEAN
- **Default**: false
- **Required**: Yes

#### created_at
- **Type**: Timestamp of record creation (TIMESTAMP WITH TIME ZONE)

### Indexes
- `idx_tasks_completed` on (completed) - filter done tasks
"""


def test_field_headings_are_columns_not_tables():
    parsed = parse_spec(FIELD_HEADINGS, file="spec.md")
    assert [t.name for t in parsed.schema.tables] == ["tasks"]
    [tasks] = parsed.schema.tables
    c = cols(tasks)
    assert list(c) == ["id", "title", "completed", "created_at"]
    assert c["created_at"].type == "timestamptz"
    assert (c["id"].type, c["id"].primary_key) == ("uuid", True)
    assert (c["title"].type, c["title"].nullable, c["title"].description) == (
        "varchar(200)", False, "Short title of the task")
    assert (c["completed"].type, c["completed"].default, c["completed"].nullable) == ("boolean", "false", False)
    assert c["title"].location.line == 11
    assert [i.column_names for i in tasks.indexes] == [["completed"]]


# 2. A column listed by name only is still a column: type unknown, and a warning that says so.
NAME_ONLY = """\
## Table: tasks

### Columns
- `id`: SERIAL PRIMARY KEY
- `user_id`: TEXT NOT NULL, FK → users.id ON DELETE CASCADE
- `notes`
- **due_date** (Due date of the task)
"""


def test_column_listed_by_name_only_is_kept_with_unknown_type_and_a_warning():
    parsed = parse_spec(NAME_ONLY, file="spec.md")
    [tasks] = parsed.schema.tables
    c = cols(tasks)
    assert list(c) == ["id", "user_id", "notes", "due_date"]
    assert c["notes"].type == "unknown" and c["due_date"].type == "unknown"
    assert c["due_date"].description == "Due date of the task"
    untyped = [w for w in parsed.warnings if w.rule == "spec-unreadable-type"]
    assert [(w.object, w.location.line) for w in untyped] == [("tasks.notes", 6), ("tasks.due_date", 7)]
    # an unknown type is not a finding of its own kind: no lint claims anything about it
    assert not [f for f in lint_schema(parsed.schema) if f.object in ("tasks.notes", "tasks.due_date")]


def test_field_heading_without_a_type_is_a_column_of_unknown_type():
    text = FIELD_HEADINGS.replace("#### completed\n- **Type**: BOOLEAN\n", "#### completed\n")
    parsed = parse_spec(text, file="spec.md")
    [tasks] = parsed.schema.tables
    assert cols(tasks)["completed"].type == "unknown"
    assert [w.object for w in parsed.warnings if w.rule == "spec-unreadable-type"] == ["tasks.completed"]


# 3. A prose word ("Timestamp of record creation") is not the type when the type is in parentheses.
PROSE_TYPE = """\
## Table: tasks

- id: Integer, primary key, auto-increment
- title: String describing the task (VARCHAR(200), not null)
- created_at: Timestamp of record creation (TIMESTAMP WITH TIME ZONE)
- done: Boolean flag, default false
"""


def test_prose_word_is_not_taken_as_the_type():
    parsed = parse_spec(PROSE_TYPE, file="spec.md")
    [tasks] = parsed.schema.tables
    c = cols(tasks)
    assert c["created_at"].type == "timestamptz"
    assert c["created_at"].description == "Timestamp of record creation"
    assert (c["title"].type, c["title"].nullable) == ("varchar(200)", False)
    assert (c["done"].type, c["done"].default) == ("boolean", "false")
    assert "timestamp-without-time-zone" not in rules(lint_schema(parsed.schema))


# 4. "Composite index on user_id and completed" keeps both columns (bullets and index tables).
COMPOSITE = """\
## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | SERIAL | PRIMARY KEY |
| user_id | TEXT | NOT NULL |
| completed | BOOLEAN | NOT NULL DEFAULT false |
| created_at | TIMESTAMPTZ | NOT NULL DEFAULT now() |

### Indexes
- Composite index on user_id and completed for filtered task lists

| Index | Columns | Purpose |
|---|---|---|
| idx_tasks_user_created | user_id and created_at | a user's tasks by date |
"""


def test_composite_index_in_words_keeps_every_column():
    parsed = parse_spec(COMPOSITE, file="spec.md")
    [tasks] = parsed.schema.tables
    assert [i.column_names for i in tasks.indexes] == [["user_id", "completed"], ["user_id", "created_at"]]
    assert tasks.indexes[0].reason == "For filtered task lists"


# 5. Foreign keys and ON DELETE written as bullets.
FK_BULLETS = """\
## Table: users

| Column | Type | Constraints |
|---|---|---|
| id | TEXT | PRIMARY KEY |

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | SERIAL | PRIMARY KEY |
| user_id | TEXT | NOT NULL |
| owner_id | TEXT | |
| list_id | INTEGER | |
| tag_id | INTEGER | Foreign Key to Tags |

### Relationships
- Foreign key: tasks.user_id → users.id
- ON DELETE CASCADE

### Constraints
- `fk_tasks_owner`: REFERENCES users(id)
- FK: list_id → lists.id
  - On delete: set null

## Table: lists

| Column | Type | Constraints |
|---|---|---|
| id | SERIAL | PRIMARY KEY |

## Table: tags

| Column | Type | Constraints |
|---|---|---|
| id | SERIAL | PRIMARY KEY |
"""


def test_foreign_keys_and_on_delete_written_as_bullets_are_read():
    parsed = parse_spec(FK_BULLETS, file="spec.md")
    tasks = parsed.schema.table("tasks")
    fks = {tuple(fk.columns): (fk.ref_table, fk.ref_columns, fk.on_delete, fk.location.line)
           for fk in tasks.foreign_keys}
    assert fks == {
        ("tag_id",): ("tags", ["id"], None, 15),
        ("user_id",): ("users", ["id"], "CASCADE", 18),
        ("owner_id",): ("users", ["id"], None, 22),
        ("list_id",): ("lists", ["id"], "SET NULL", 23),
    }
    assert next(fk for fk in tasks.foreign_keys if fk.columns == ["owner_id"]).name == "fk_tasks_owner"
    assert not [w for w in parsed.warnings if w.rule == "spec-unknown-fk-target"]


# 6. Cell words are not constraints: "Auto" in a Required column, "Unique ..." opening a description.
CELL_WORDS = """\
## Table: tasks

| Field | Type | Required | Description |
|---|---|---|---|
| id | UUID | Auto | Unique task identifier, primary key |
| user_id | TEXT | Yes | Owner of the task |
| slug | VARCHAR(80) | Yes | Unique slug within the user's tasks |
| code | VARCHAR(20) | No | Must be unique |
| created_at | TIMESTAMPTZ | Auto | Set when the task is created |

### Constraints
- tasks.created_at: NOT NULL
"""


def test_cell_words_are_not_read_as_constraints():
    parsed = parse_spec(CELL_WORDS, file="spec.md")
    [tasks] = parsed.schema.tables
    c = cols(tasks)
    assert c["id"].primary_key and not c["id"].unique
    assert not c["slug"].unique and c["slug"].nullable is False
    assert c["code"].unique and c["code"].nullable is True
    assert c["created_at"].nullable is False  # "Auto" said nothing, so the constraint below is not overruled
    assert "nullable" not in {x.aspect for x in parsed.conflicts}


# 7. A later partial copy of a class (no __tablename__) adds to the table, it is not a new one.
PARTIAL_CLASS = """\
## Models

```python
class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True)
    title: str = Field(max_length=200)
```

## Phase 3 additions

```python
class Task(SQLModel, table=True):
    # new in phase 3
    priority: str = Field(default="medium", max_length=10)
```
"""


def test_later_partial_copy_of_a_class_is_the_same_table():
    parsed = parse_spec(PARTIAL_CLASS, file="spec.md")
    assert [t.name for t in parsed.schema.tables] == ["tasks"]
    [tasks] = parsed.schema.tables
    assert list(cols(tasks)) == ["id", "user_id", "title", "priority"]
    assert [fk.ref_table for fk in tasks.foreign_keys] == ["users"]
    assert parsed.conflicts == []


# 8. Index reasons written as an SQL comment above CREATE INDEX, or as the heading above the block.
INDEX_REASONS = """\
## Table: tasks

```sql
CREATE TABLE tasks (
    id SERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    completed BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
```

### Indexes

```sql
-- List a user's tasks, newest first
CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at DESC);
CREATE INDEX idx_tasks_user ON tasks (user_id);
```

#### Filter a user's open tasks

```sql
CREATE INDEX idx_tasks_user_completed ON tasks (user_id, completed);
```

#### Index for the recent-activity feed

```sql
CREATE INDEX idx_tasks_created ON tasks (created_at DESC);
```

#### Performance Indexes

```sql
-- Users table indexes
CREATE INDEX idx_tasks_completed ON tasks (completed);
```
"""


def test_index_reasons_in_sql_comments_and_headings_are_read():
    parsed = parse_spec(INDEX_REASONS, file="spec.md")
    [tasks] = parsed.schema.tables
    reasons = {i.name: i.reason for i in tasks.indexes}
    assert reasons == {"idx_tasks_user_created": "List a user's tasks, newest first",
                       "idx_tasks_user": None,
                       "idx_tasks_user_completed": "Filter a user's open tasks",
                       "idx_tasks_created": "Index for the recent-activity feed",
                       "idx_tasks_completed": None}  # section titles are not reasons


UNTYPED_OWNER = """\
## Table: users

| Column | Type | Constraints |
|---|---|---|
| id | TEXT | PRIMARY KEY |

## Table: memos

- `id`: SERIAL PRIMARY KEY
- `user_id` (owner of the memo, FK → users.id ON DELETE CASCADE)
- `body`: TEXT NOT NULL
"""


def test_an_unknown_type_is_not_reported_as_a_type_mismatch():
    parsed = parse_spec(UNTYPED_OWNER, file="spec.md")
    memos = parsed.schema.table("memos")
    assert memos.column("user_id").type == "unknown"
    assert [w.object for w in parsed.warnings if w.rule == "spec-unreadable-type"] == ["memos.user_id"]
    assert "owner-type-mismatch" not in rules(lint_schema(parsed.schema))


def test_a_spec_with_unknown_types_still_applies_to_postgresql(pg_url):
    """The embedded database is built from the spec (tools/project/bootstrap.py): a column whose type the
    spec did not say must not make the whole CREATE TABLE fail (PostgreSQL refuses its pseudo-type
    ``unknown`` in a table)."""
    import psycopg

    from schema_architect.tools.database.ddl import schema_ddl

    schema = parse_spec(UNTYPED_OWNER + NAME_ONLY.replace("tasks", "jobs"), file="spec.md").schema
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in schema_ddl(schema):
            conn.execute(statement)
        types = dict(conn.execute(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE (table_name, column_name) IN (('memos', 'user_id'), ('jobs', 'notes'), ('jobs', 'due_date'))"
        ).fetchall())
    assert types == {"memos.user_id": "text", "jobs.notes": "text", "jobs.due_date": "text"}


def test_a_lower_case_heading_with_its_own_column_table_is_still_a_table():
    tags = "#### tags\n\n| Column | Type |\n|---|---|\n| id | SERIAL |\n| name | TEXT |\n\n"
    text = FIELD_HEADINGS.replace("### Indexes", tags + "### Indexes")
    parsed = parse_spec(text, file="spec.md")
    assert [t.name for t in parsed.schema.tables] == ["tasks", "tags"]
    assert list(cols(parsed.schema.table("tags"))) == ["id", "name"]
    assert "tags" not in cols(parsed.schema.table("tasks"))


FK_AMONG_COLUMNS = """\
## Table: users

- `id`: TEXT PRIMARY KEY

## Table: tasks

- `id`: SERIAL PRIMARY KEY
- `user_id`: TEXT NOT NULL
- **Foreign Key**: user_id → users.id
- ON DELETE CASCADE
- `parent_id`: INTEGER, references tasks(id)
  - ON DELETE SET NULL
"""


def test_foreign_key_bullets_among_the_column_bullets_are_read():
    parsed = parse_spec(FK_AMONG_COLUMNS, file="spec.md")
    tasks = parsed.schema.table("tasks")
    assert list(cols(tasks)) == ["id", "user_id", "parent_id"]
    assert {tuple(fk.columns): (fk.ref_table, fk.on_delete) for fk in tasks.foreign_keys} == {
        ("user_id",): ("users", "CASCADE"), ("parent_id",): ("tasks", "SET NULL")}
