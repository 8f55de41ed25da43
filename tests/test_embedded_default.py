"""The embedded default, end to end through MCP (issue 27): a faithful, populated, safe copy of the spec.

A project whose spec is in the architect roles' own format references Better Auth's ``users`` without
defining it; no DATABASE_URL. Its tables exist, diff is clean, a table proposed into the spec exists at the
next call, ``schema-architect seed`` fills it so that run_scoped_query returns only the caller's seeded rows
and explain_indexes shows real plans, and the role run_scoped_query runs as has nothing to warn about.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.project.scratch import READER_ROLE, follow_spec, read_state
from schema_architect.tools.project.seed import SeedPlan

pytestmark = pytest.mark.anyio

#: The child (the `seed` command, a second process sharing the embedded server) imports the package this
#: test imported, wherever it came from (an editable install, or PYTHONPATH).
CHILD_PATH = os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", "")] + sys.path if p)

ROLES_SPEC = """\
# Database Schema

### Table: tasks

| Column | Type | Constraints | Description |
|--------|------|-------------|-------------|
| id | SERIAL | PRIMARY KEY | Task id |
| user_id | TEXT | FK -> users.id, NOT NULL, INDEX | Owner reference |
| title | VARCHAR(200) | NOT NULL | Title |
| description | TEXT | NULLABLE | Details |
| completed | BOOLEAN | NOT NULL, DEFAULT false | Done |
| priority | VARCHAR(10) | NOT NULL, DEFAULT 'medium', CHECK (priority IN ('low','medium','high')) | Priority |
| created_at | TIMESTAMPTZ | NOT NULL, DEFAULT now() | Created |
| updated_at | TIMESTAMPTZ | NOT NULL, DEFAULT now() | Updated |

**Relationships:**
- user_id -> users.id (Better Auth managed, CASCADE on delete: CASCADE)

**Indexes:**
- (user_id, completed) for filtered lists
- (user_id, created_at DESC) for sorted lists
"""

BROKEN = ROLES_SPEC.replace("| created_at | TIMESTAMPTZ | NOT NULL, DEFAULT now() | Created |",
                            "| created_at | TIMESTAMPTZ | NOT NULL, DEFAULT nosuchfunction() | Created |")


def project_with(tmp_path: Path, spec: str) -> Path:
    (tmp_path / "specs" / "database").mkdir(parents=True)
    (tmp_path / "specs" / "database" / "schema.md").write_text(spec)
    return tmp_path


def data(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def rows(result) -> list:
    body = data(result)["wrapped_rows"]
    return json.loads(body.split(">\n", 1)[1].rsplit("\n</", 1)[0])["rows"]


@pytest.fixture
def no_database_url(monkeypatch):
    for name in ("DATABASE_URL", "SCHEMA_ARCHITECT_DATABASE_URL", "DIRECT_DATABASE_URL", "SCHEMA_ARCHITECT_SCOPED_ROLE",
                 "SCHEMA_ARCHITECT_SEED_USERS"):
        monkeypatch.delenv(name, raising=False)


async def test_the_roles_spec_works_end_to_end_on_the_embedded_default(tmp_path, no_database_url, caplog) -> None:
    project = project_with(tmp_path, ROLES_SPEC)
    settings = Settings(project=project)
    caplog.set_level(logging.INFO, logger="schema_architect")
    async with Client(create_server(settings)) as client:
        # the spec's tables exist, and Better Auth's users, minimally, for the foreign key
        first = data(await client.call_tool("run_scoped_query", {"sql": "SELECT id, title FROM tasks",
                                                                 "user_id": "u1"}))
        assert first["row_count"] == 0
        embedded = first["embedded"]
        assert embedded["holds"] == "the spec's schema" and embedded["managed_tables_created"] == ["users"]
        assert embedded["rows"].startswith("none") and "schema-architect seed" in embedded["rows"]
        assert embedded["scoped_role"] == READER_ROLE
        resource = await client.read_resource("schema://database/tasks")
        assert '"name":"tasks"' in resource.contents[0].text  # compact, as tool results are

        diff = data(await client.call_tool("diff_models_vs_spec", {"include_database": True}))
        assert diff.get("drifts", []) == [], diff.get("drifts")
        assert diff["embedded"]["holds"] == "the spec's schema"

        explained = data(await client.call_tool("explain_indexes", {"table": "tasks"}))
        assert explained["tables"], explained

        # propose_table writes tags into the spec: the next call finds the table
        spec = data(await client.call_tool("read_schema_spec", {}))
        proposed = data(await client.call_tool("propose_table", {
            "name": "tags", "purpose": "Labels a user puts on tasks.",
            "columns": [{"name": "name", "type": "varchar(50)", "required": True, "description": "Label"}],
            "apply": True, "expected_spec_hash": spec["content_hash"]}))
        assert proposed["applied"], proposed
        tags = data(await client.call_tool("run_scoped_query", {"sql": "SELECT * FROM tags", "user_id": "u1"}))
        assert tags["row_count"] == 0 and tags["embedded"]["spec_hash"] == proposed["spec_hash"]

        # seed: the CLI fills the same database while the server runs
        done = await anyio.run_process(
            [sys.executable, "-m", "schema_architect.server.cli", "--project", str(project), "seed", "--users", "200",
             "--rows-per-user", "50"], check=False, env=os.environ | {"PYTHONPATH": CHILD_PATH})
        assert done.returncode == 0, done.stderr.decode()
        printed = done.stdout.decode()
        assert "seed-user-0001" in printed and "heavy users" in printed and "tasks 9500, tags 9500" in printed, printed

        heavy = await client.call_tool("run_scoped_query", {
            "sql": "SELECT user_id, count(*) AS n FROM tasks GROUP BY user_id", "user_id": "seed-user-0001"})
        assert rows(heavy) == [["seed-user-0001", 250]]
        assert data(heavy)["embedded"]["rows"].startswith("seeded: 200 synthetic users")
        light = await client.call_tool("run_scoped_query", {"sql": "SELECT count(*) FROM tasks",
                                                            "user_id": "seed-user-0030"})
        assert rows(light) == [[25]]
        values = await client.call_tool("run_scoped_query", {
            "sql": "SELECT DISTINCT priority FROM tasks ORDER BY 1", "user_id": "seed-user-0001"})
        assert {r[0] for r in rows(values)} <= {"low", "medium", "high"}

        explained = data(await client.call_tool("explain_indexes", {"table": "tasks", "detail": "full"}))
        assert explained["evidence"], explained
        chosen = [scan["node"] for e in explained["evidence"] for scan in e["chosen"]["scans"]]
        assert any("Index" in node for node in chosen), explained["evidence"]  # real plans: the indexes are used

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [], warnings
    assert any("least privilege" in r.getMessage() for r in caplog.records)


async def test_a_spec_the_database_refuses_is_a_finding_in_every_result(tmp_path, no_database_url) -> None:
    project = project_with(tmp_path, BROKEN)
    async with Client(create_server(Settings(project=project))) as client:
        diff = data(await client.call_tool("diff_models_vs_spec", {"include_database": True}))
        finding = diff["embedded"]["finding"]
        assert finding["rule"] == "embedded-spec-not-applied" and "nosuchfunction" in finding["message"]
        assert "rebuilt" in finding["fix"]
        refused = await client.call_tool("run_scoped_query", {"sql": "SELECT id FROM tasks", "user_id": "u1"})
        assert refused.is_error and "embedded-spec-not-applied" not in refused.content[0].text
        assert "does not hold the spec's schema" in refused.content[0].text
        # fixed in the spec: the next call rebuilds
        (project / "specs/database/schema.md").write_text(ROLES_SPEC)
        fixed = data(await client.call_tool("run_scoped_query", {"sql": "SELECT id FROM tasks", "user_id": "u1"}))
        assert fixed["embedded"]["holds"] == "the spec's schema" and "finding" not in fixed["embedded"]


async def test_follow_spec_is_deterministic_and_keeps_seeding_across_changes(tmp_path, pg_url) -> None:
    project = project_with(tmp_path, ROLES_SPEC)
    plan = SeedPlan(users=30, rows_per_user=8, seed=7)

    async def snapshot() -> list:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            state = await follow_spec(conn, project, None, seed=plan, force=True)
            assert state.seeded.rows == {"users": 30, "tasks": 3 * 40 + 27 * 4}
            cur = await conn.execute("SELECT user_id, title, priority, completed, created_at FROM tasks ORDER BY id")
            return await cur.fetchall()

    assert await snapshot() == await snapshot()
    (project / "specs/database/schema.md").write_text(ROLES_SPEC + "\n<!-- edited -->\n")
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        state = await follow_spec(conn, project, None)
        assert state.seeded is not None and state.seeded.rows["tasks"] == 228  # rebuilt, and seeded again
        assert (await read_state(conn)).spec_hash == state.spec_hash
        lengths = await (await conn.execute("SELECT max(length(title)) <= 200 FROM tasks")).fetchone()
        assert lengths == (True,)
        forced = await (await conn.execute(
            "SELECT bool_and(relrowsecurity AND relforcerowsecurity) FROM pg_class "
            "WHERE relname IN ('tasks', 'users') AND relnamespace = 'public'::regnamespace")).fetchone()
        assert forced == (True,)


def test_seed_refuses_a_database_that_is_not_the_embedded_one(tmp_path, monkeypatch) -> None:
    """seed empties every table first: never on DATABASE_URL (a real database)."""
    import io

    from schema_architect.server.cli import run

    monkeypatch.setenv("DATABASE_URL", "postgresql://app:secret@db.example.com/app")
    out, err = io.StringIO(), io.StringIO()
    assert run(["--project", str(project_with(tmp_path, ROLES_SPEC)), "seed"], out, err) == 2
    assert "fills only the embedded database" in err.getvalue() and "secret" not in err.getvalue()
