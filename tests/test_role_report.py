"""What the role run_scoped_query runs as can do: owner, BYPASSRLS, superuser, read-only and the role
`schema-architect scoped-role` prints, each on a real PostgreSQL; refused as an owner when the setting
says so; reported by `schema-architect check --database`."""

from __future__ import annotations

import io
import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.cli import run
from schema_architect.server.settings import Settings
from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.database.role import read_role_report
from schema_architect.tools.run_scoped_query import scoped_role_ddl
from schema_architect.tools.spec.reader import parse_spec

from conftest import REPO

pytestmark = pytest.mark.anyio

SUFFIX = uuid.uuid4().hex[:6]
OWNER, BYPASS, READER, SCOPED = (f"ra_{kind}_{SUFFIX}" for kind in ("owner", "bypass", "reader", "scoped"))


@pytest.fixture(scope="module")
def roles_db(make_database):
    """The reference schema; tables owned by OWNER; BYPASS may read and insert; READER reads, with RLS
    forced on tasks only; SCOPED made by the DDL `scoped-role --rls` prints."""
    url = make_database("roles")
    spec = parse_spec((REPO / "specs/database/schema.md").read_text()).schema
    user_tables = [t.name for t in spec.tables if t.column("user_id")] + ["users"]
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
        conn.execute("INSERT INTO users (id, name, email) VALUES ('alice', 'Alice', 'a@x'), ('bob', 'Bob', 'b@x')")
        conn.execute("INSERT INTO tasks (user_id, title) VALUES ('alice', 'alice task'), ('bob', 'bob task')")
        conn.execute(f"CREATE ROLE {OWNER} LOGIN; CREATE ROLE {BYPASS} LOGIN BYPASSRLS; CREATE ROLE {READER} LOGIN")
        for table in user_tables:
            conn.execute(f"ALTER TABLE {table} OWNER TO {OWNER}")
        conn.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {BYPASS}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}")
        conn.execute("ALTER TABLE tasks ENABLE ROW LEVEL SECURITY; ALTER TABLE tasks FORCE ROW LEVEL SECURITY")
        conn.execute(f"CREATE POLICY own ON tasks TO {READER} USING (user_id = current_setting('app.user_id', true))")
        conn.execute(scoped_role_ddl(SCOPED, user_tables=user_tables, users_table="users"))
        # A user table added after the role's DDL: no row security on it.
        conn.execute(f"CREATE TABLE scratch (id int PRIMARY KEY, user_id text REFERENCES users(id)); "
                     f"ALTER TABLE scratch OWNER TO {OWNER}; GRANT SELECT ON scratch TO {READER}")
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        for role in (OWNER, BYPASS, READER, SCOPED):
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role}")


def as_role(url: str, role: str) -> str:
    """The same database as ``role``, as a postgresql:// URL (what DATABASE_URL takes)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


async def report_for(url: str, role: str | None = None, **kwargs):
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await read_role_report(conn, role=role, **kwargs)


async def test_an_owner_role_is_not_bound_by_row_security(roles_db: str) -> None:
    report = await report_for(as_role(roles_db, OWNER))
    assert report.role == OWNER and not report.superuser and not report.bypass_rls
    assert not report.least_privilege and report.owns_user_data
    tasks = next(t for t in report.tables if t.table == "public.tasks")
    assert tasks.owner and tasks.rls_enabled and tasks.rls_forced
    assert set(tasks.write) == {"INSERT", "UPDATE", "DELETE", "TRUNCATE"}
    unforced = {t.table for t in report.tables if t.owner and not t.rls_forced}
    assert "public.users" in unforced and "public.tasks" not in unforced  # forced: its policies bind the owner
    assert f"owns {len(unforced)} user table(s) without FORCE ROW LEVEL SECURITY" in report.problems[0]
    assert any(p.startswith("may write") for p in report.problems)


async def test_a_bypassrls_role_is_reported_with_what_it_may_write(roles_db: str) -> None:
    report = await report_for(as_role(roles_db, BYPASS))
    assert report.bypass_rls and report.owns_user_data and not report.least_privilege
    assert "has BYPASSRLS: row-level security policies do not apply to it" in report.problems
    writes = next(p for p in report.problems if p.startswith("may write"))
    assert "public.tasks (INSERT)" in writes


async def test_a_superuser_is_reported(roles_db: str) -> None:
    report = await report_for(roles_db)  # the test server's admin
    assert report.superuser and report.owns_user_data
    assert report.problems[0].startswith("is a superuser")


async def test_a_read_only_role_is_least_privilege_with_a_note_on_unprotected_tables(roles_db: str) -> None:
    report = await report_for(as_role(roles_db, READER))
    assert report.least_privilege and not report.owns_user_data and report.problems == []
    assert all(t.write == [] and not t.owner for t in report.tables)
    assert {t.table for t in report.tables if t.rls_forced} == {"public.tasks"}
    assert len(report.notes) == 1 and "1 user table(s) have no row-level security" in report.notes[0]
    assert "public.scratch" in report.notes[0]


async def test_the_role_scoped_role_prints_is_least_privilege_with_row_security_everywhere(roles_db: str) -> None:
    report = await report_for(roles_db, role=SCOPED)  # as SET ROLE would see it: the report of another role
    assert report.role == SCOPED
    assert report.least_privilege, report.lines()
    from_ddl = [t for t in report.tables if t.table != "public.scratch"]
    assert from_ddl and all(t.rls_enabled and not t.owner and t.write == [] for t in from_ddl)
    assert len(report.notes) == 1 and "public.scratch" in report.notes[0]


async def test_an_unknown_role_is_a_clear_error(roles_db: str) -> None:
    with pytest.raises(ValueError, match="No role named 'nobody_here'"):
        await report_for(roles_db, role="nobody_here")


async def _query(settings: Settings):
    async with Client(create_server(settings)) as client:
        return await client.call_tool("run_scoped_query", {"sql": "SELECT title FROM tasks", "user_id": "alice"})


async def test_refuse_owner_role_refuses_an_owner_and_serves_a_read_only_role(roles_db: str, tmp_path: Path) -> None:
    owner = Settings(project=tmp_path, database_url=as_role(roles_db, OWNER), refuse_owner_role=True)
    refused = await _query(owner)
    assert refused.is_error
    text = refused.content[0].text
    assert f"({OWNER})" in text and "owns" in text and "scoped-role" in text
    served = await _query(Settings(project=tmp_path, database_url=as_role(roles_db, READER),
                                   refuse_owner_role=True))
    assert not served.is_error, served.content
    assert "alice task" in served.structured_content["wrapped_rows"]
    assert "bob task" not in served.structured_content["wrapped_rows"]
    # Off by default: the owner is served, still scoped by the rewrite.
    default = await _query(Settings(project=tmp_path, database_url=as_role(roles_db, OWNER)))
    assert not default.is_error and "bob task" not in default.structured_content["wrapped_rows"]


async def test_refuse_owner_role_judges_the_scoped_role_not_the_login(roles_db: str, tmp_path: Path) -> None:
    with psycopg.connect(roles_db, autocommit=True) as conn:
        conn.execute(f"GRANT {SCOPED} TO {OWNER}")
    settings = Settings(project=tmp_path, database_url=as_role(roles_db, OWNER), refuse_owner_role=True,
                        scoped_role=SCOPED)
    result = await _query(settings)
    assert not result.is_error, result.content


def test_check_database_reports_the_role(roles_db: str, tmp_path: Path, monkeypatch) -> None:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    shutil.copy(REPO / "specs" / "database" / "schema.md", spec)
    monkeypatch.setenv("DATABASE_URL", as_role(roles_db, BYPASS))
    out, err = io.StringIO(), io.StringIO()
    run(["--project", str(tmp_path), "check", "--database"], out, err)
    assert f"note: role {BYPASS}: has BYPASSRLS" in out.getvalue(), out.getvalue() + err.getvalue()
    out = io.StringIO()
    run(["--project", str(tmp_path), "check", "--database", "--format", "json"], out, err)
    role = json.loads(out.getvalue())["role"]
    assert role["role"] == BYPASS and role["bypass_rls"] is True and role["least_privilege"] is False
