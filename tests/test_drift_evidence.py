"""Issue 14, drift half: say "unknown" where a real project said nothing, and decide from evidence.

Each case is a small project in the formats real specs use (bullets, markdown tables, prose that names
Better Auth; research/specs_analysis.md), real SQLModel code, and a real database where the database's
answer matters, run through the ``diff_models_vs_spec`` MCP tool:

* silence is not NULL: a spec that never says nullability or a default is not breaking drift
  (the aspect is listed in ``unstated``), while what it does say is still compared;
* Better Auth tables are skipped only on evidence, and the evidence is reported;
* ``user`` and ``users`` aliased as one table do not hide a different FK target.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from test_drift_kinds import check as diff, make_project as kinds_project

pytestmark = pytest.mark.anyio

MODELS = "backend/models.py"


def make_project(tmp_path: Path, spec: str, models: str) -> Path:
    return kinds_project(tmp_path, models, spec)


def drifts_on(data: dict, obj: str, kind: str | None = None) -> list[dict]:
    return [d for d in data["drifts"] if d["object"] == obj and (kind is None or d["kind"] == kind)]


# ---------------------------------------------------------------------------------------------------
# Item 10: silence is not NULL

BULLET_SPEC = """# Database schema

## Table: tasks

- id: integer, primary key
- title: varchar(200)
- description: text, not null
- created_at: timestamptz
"""

TASK_MODELS = '''from datetime import datetime, timezone

from sqlalchemy import Text, func
from sqlmodel import Field, SQLModel


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc),
                                 sa_column_kwargs={"server_default": func.now()})
'''


async def test_a_spec_silent_on_nullability_and_defaults_is_not_breaking_drift(tmp_path: Path) -> None:
    data = await diff(make_project(tmp_path, BULLET_SPEC, TASK_MODELS), detail="full")
    # title and created_at: the spec says nothing about NULL or a default, the models say NOT NULL / now()
    assert drifts_on(data, "tasks.title") == [], data["drifts"]
    assert drifts_on(data, "tasks.created_at") == [], data["drifts"]
    assert data["summary"]["breaking"] == 0, data["drifts"]
    unstated = {(u["object"], u["aspect"]): u for u in data["unstated"]}
    assert unstated[("tasks.title", "nullability")]["silent"] == ["spec"]
    assert unstated[("tasks.title", "nullability")]["said"] == {"models": "NOT NULL"}
    assert unstated[("tasks.created_at", "default")]["said"] == {"models": "now()"}
    assert "Not stated, so not compared: " in data["report"]
    # What the spec does say is still compared: description is NOT NULL there, nullable in the models.
    (drift,) = drifts_on(data, "tasks.description", "nullability")
    assert drift["severity"] == "degraded"
    assert drift["sides"]["spec"]["value"] == "NOT NULL" and drift["sides"]["models"]["value"] == "NULL"


async def test_silence_in_the_spec_does_not_hide_models_vs_database(tmp_path: Path, make_database) -> None:
    url = make_database("issue14_silent_spec")
    with psycopg.connect(url, autocommit=True) as conn:  # title nullable here, NOT NULL in the models
        conn.execute("CREATE TABLE tasks (id serial PRIMARY KEY, title varchar(200), "
                     "description text, created_at timestamptz NOT NULL DEFAULT now())")
    data = await diff(make_project(tmp_path, BULLET_SPEC, TASK_MODELS), url)
    (drift,) = drifts_on(data, "tasks.title", "nullability")
    assert "spec" not in drift["sides"], drift  # the silent spec is not a side of it
    assert drift["sides"]["models"]["value"] == "NOT NULL" and drift["sides"]["database"]["value"] == "NULL"
    assert drift["severity"] == "degraded"
    assert "from the models (spec does not state it)" in drift["message"]
    db_fix = next(f for f in drift["fixes"] if f["side"] == "database")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in db_fix["migration_sql"].split(";\n"):
            if statement.strip() and not statement.startswith("--"):
                conn.execute(statement)
    data = await diff(tmp_path, url)
    assert drifts_on(data, "tasks.title") == [], data["drifts"]


# ---------------------------------------------------------------------------------------------------
# Item 9: Better Auth from evidence, not from the name

OWN_USERS_SPEC = """# Database schema

## Table: users

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | |
| email | varchar(255) | NOT NULL, UNIQUE | Login |
| password_hash | text | NOT NULL | bcrypt hash |
"""

OWN_USERS_MODELS = '''from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=100, unique=True)
    password_hash: str = Field(sa_type=Text)
'''


async def test_a_project_that_defines_its_own_users_table_gets_it_compared(tmp_path: Path) -> None:
    data = await diff(make_project(tmp_path, OWN_USERS_SPEC, OWN_USERS_MODELS))
    assert data["managed_elsewhere"] == []
    assert data["better_auth"]["users"].startswith("compared: the models define users themselves")
    (drift,) = drifts_on(data, "users.email", "column-length")
    assert drift["sides"]["spec"]["value"] == "varchar(255)" and drift["sides"]["models"]["value"] == "varchar(100)"


BA_USER_SQL = ('CREATE TABLE "user" (id text PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, '
               '"emailVerified" boolean NOT NULL, image text, "createdAt" timestamp NOT NULL, '
               '"updatedAt" timestamp NOT NULL)')

BOOKMARKS_SPEC_TAIL = """
## Table: bookmarks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| body | text | NOT NULL |
"""

BOOKMARKS_MODELS = '''from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class Bookmark(SQLModel, table=True):
    __tablename__ = "bookmarks"

    id: int | None = Field(default=None, primary_key=True)
    body: str = Field(sa_type=Text)
'''


async def test_better_auth_columns_in_the_database_are_the_evidence(tmp_path: Path, make_database) -> None:
    # The spec lists the user table it relies on and never names Better Auth; the database has the table
    # Better Auth created (emailVerified, image): skipped, and the result says why.
    url = make_database("issue14_ba_columns")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BA_USER_SQL)
        conn.execute("CREATE TABLE bookmarks (id serial PRIMARY KEY, body text NOT NULL)")
    spec = "# Schema\n\n## Table: user\n\n| Column | Type | Constraints |\n|---|---|---|\n" \
           "| id | text | PRIMARY KEY |\n| email | text | NOT NULL |\n" + BOOKMARKS_SPEC_TAIL
    data = await diff(make_project(tmp_path, spec, BOOKMARKS_MODELS), url)
    assert data["managed_elsewhere"] == ["user"], data["drifts"]
    assert data["better_auth"]["user"].startswith(
        "the database's user has Better Auth's columns (emailVerified, image)")
    assert data["drifts"] == [], data["drifts"]


async def test_a_users_table_nobody_says_is_better_auths_is_compared(tmp_path: Path, make_database) -> None:
    # No models for users, no Better Auth in the spec, no Better Auth columns: the project's own table.
    url = make_database("issue14_own_users_db")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, email varchar(100) NOT NULL UNIQUE, "
                     "password_hash text NOT NULL)")
        conn.execute("CREATE TABLE bookmarks (id serial PRIMARY KEY, body text NOT NULL)")
    data = await diff(make_project(tmp_path, OWN_USERS_SPEC + BOOKMARKS_SPEC_TAIL, BOOKMARKS_MODELS), url)
    assert data["managed_elsewhere"] == []
    assert data["better_auth"]["users"] == ("compared: only the name users suggests Better Auth "
                                            "(the spec never mentions it)")
    (drift,) = drifts_on(data, "users.email", "column-length")
    assert drift["severity"] == "breaking"  # the database rejects emails the spec allows
    assert drift["sides"]["database"]["value"] == "varchar(100)"


async def test_a_spec_that_mentions_better_auth_is_the_evidence(tmp_path: Path) -> None:
    spec = ("# Schema\n\nSign-in is handled by Better Auth (JWT plugin).\n\n"
            "## Table: user\n\n| Column | Type | Constraints |\n|---|---|---|\n| id | text | PRIMARY KEY |\n"
            + BOOKMARKS_SPEC_TAIL)
    data = await diff(make_project(tmp_path, spec, BOOKMARKS_MODELS))
    assert data["managed_elsewhere"] == ["user"]
    assert data["better_auth"]["user"].startswith("the spec mentions Better Auth (specs/database/schema.md:3) and "
                                                  "the table is named user")
    assert data["drifts"] == [], data["drifts"]


# ---------------------------------------------------------------------------------------------------
# Item 12: user (Better Auth's) and users (the project's) are different FK targets

BA_SPEC = """# Database schema

## Table: user (managed by Better Auth)

| Column | Type | Constraints |
|---|---|---|
| id | text | PRIMARY KEY |

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| user_id | text | NOT NULL, FK → user.id ON DELETE CASCADE |
| title | varchar(200) | NOT NULL |
"""

OWN_USERS_FK_MODELS = '''from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(sa_type=Text, primary_key=True)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(max_length=200)
'''


async def test_user_and_users_are_not_one_fk_target(tmp_path: Path) -> None:
    data = await diff(make_project(tmp_path, BA_SPEC, OWN_USERS_FK_MODELS))
    assert data["managed_elsewhere"] == ["user", "users"]
    assert data["better_auth"]["user / users"].startswith("the spec says Better Auth manages it")
    (drift,) = drifts_on(data, "tasks.user_id", "fk-target")
    assert drift["severity"] == "breaking"
    spec_value = drift["sides"]["spec"]["value"]
    assert "REFERENCES \"user\"" in spec_value or "REFERENCES user" in spec_value
    assert "users" in drift["sides"]["models"]["value"]


# ---------------------------------------------------------------------------------------------------
# updated_at that nothing keeps current (no onupdate, no trigger)

STAMPED_SPEC = """# Database schema

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| updated_at | timestamptz | NOT NULL, DEFAULT now() |
"""

STAMPED_MODELS = '''from datetime import datetime, timezone

from sqlalchemy import func
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
'''


def advice_on(data: dict, obj: str) -> list[dict]:
    return [f for f in data.get("findings", []) if f["object"] == obj and f["rule"] == "updated-at-not-maintained"]


async def test_updated_at_without_onupdate_or_trigger_is_advice_unless_the_spec_says_a_trigger(
        tmp_path: Path, make_database) -> None:
    # Issue 29: only the app can know whether it sets updated_at itself, so this is advice, not drift ...
    project = make_project(tmp_path, STAMPED_SPEC, STAMPED_MODELS)
    data = await diff(project)
    assert drifts_on(data, "tasks.updated_at") == [] and data["clean"], data["drifts"]
    (advice,) = advice_on(data, "tasks.updated_at")
    assert advice["severity"] == "info" and "models: no onupdate" in advice["message"]
    assert "the database was not compared" in advice["message"]

    # ... unless the spec says the database keeps it current: then a database without the trigger drifts.
    said = STAMPED_SPEC.replace("| Constraints |\n|---|---|---|", "| Constraints | Description |\n|---|---|---|---|"
                                ).replace("| NOT NULL, DEFAULT now() |", "| NOT NULL, DEFAULT now() | Kept current by "
                                          "a BEFORE UPDATE trigger |")
    (project / "specs" / "database" / "schema.md").write_text(said)
    url = make_database("issue14_updated_at")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE tasks (id serial PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())")
    data = await diff(project, url)
    (drift,) = drifts_on(data, "tasks.updated_at", "updated-at-not-maintained")
    assert drift["severity"] == "degraded"
    assert drift["sides"]["database"]["value"] == "no BEFORE UPDATE trigger"
    assert advice_on(data, "tasks.updated_at") == []
    db_fix = next(f for f in drift["fixes"] if f["side"] == "database")
    with psycopg.connect(url, autocommit=True) as conn:  # the trigger the tool gives really keeps it current
        conn.execute(db_fix["migration_sql"])
        conn.execute("INSERT INTO tasks (updated_at) VALUES ('2000-01-01')")
        conn.execute("UPDATE tasks SET id = id")
        assert conn.execute("SELECT updated_at > '2001-01-01' FROM tasks").fetchone()[0]
    data = await diff(project, url)
    assert drifts_on(data, "tasks.updated_at") == [], data["drifts"]  # the trigger keeps it current
    assert advice_on(data, "tasks.updated_at") == []

    (project / "specs" / "database" / "schema.md").write_text(STAMPED_SPEC)
    (project / MODELS).write_text(STAMPED_MODELS.replace('{"server_default": func.now()}',
                                                         '{"server_default": func.now(), "onupdate": func.now()}'))
    data = await diff(project)
    assert drifts_on(data, "tasks.updated_at") == [] and advice_on(data, "tasks.updated_at") == []
