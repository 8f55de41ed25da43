"""run_scoped_query as an agent calls it, over an MCP client session on a real PostgreSQL.

What tests/test_scoped_query_attacks.py and test_scoped_query_transaction.py check on the Python function,
here through the server: the row cap, the time limit and the call after it, the scoped role and the caller
setting row security keys on, shared views whose functions change settings, write, or leave a lock
behind (none of it survives the call), how values are encoded, and argument errors.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import psycopg
import pytest
from mcp import Client
from through_mcp import assert_annotations_as_its_page_states, listed_tool

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import with_database
from fence import rows_in_fence

pytestmark = pytest.mark.anyio

# Shared views run the owner's functions, which the agent could not call itself: one changes session
# settings, one writes, one takes a session advisory lock and seeds the random generator. `session_state`
# shows the backend's own state, so a later call on the same pooled connection can see what was left.
FIXTURE = """
CREATE TABLE users (id text PRIMARY KEY);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), title text NOT NULL);
INSERT INTO users VALUES ('alice'), ('bob');
INSERT INTO tasks (user_id, title) VALUES ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1');
CREATE TABLE audit (id serial PRIMARY KEY, note text);
CREATE TABLE notices (id serial PRIMARY KEY, body text NOT NULL);
INSERT INTO notices (body) VALUES ('hello');
CREATE FUNCTION touch_settings() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('app.leak', 'left behind', false);
  PERFORM set_config('search_path', 'nowhere', false);
  RETURN 'touched';
END $$;
CREATE FUNCTION write_audit() RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (note) VALUES ('written'); RETURN 'wrote'; END $$;
CREATE FUNCTION leave_state() RETURNS text LANGUAGE sql AS
  $f$ SELECT pg_advisory_lock(4242)::text || setseed(0.25)::text $f$;
CREATE VIEW notice_settings AS SELECT n.body, public.touch_settings() AS effect FROM public.notices n;
CREATE VIEW notice_audit AS SELECT n.body, public.write_audit() AS effect FROM public.notices n;
CREATE VIEW notice_state AS SELECT n.body, public.leave_state() AS effect FROM public.notices n;
CREATE VIEW session_state AS SELECT pg_backend_pid() AS pid, coalesce(current_setting('app.leak', true), '') AS leak,
    current_setting('search_path') AS search_path, current_setting('transaction_read_only') AS read_only;
"""

SHARED = ["notice_settings", "notice_audit", "notice_state", "session_state"]


@pytest.fixture(scope="module")
def url(make_database) -> str:
    return make_database("scoped_mcp", FIXTURE)


def settings_for(url: str, project: Path, **changes) -> Settings:
    # One pooled connection: every call of a session runs on the same backend, so what a call left
    # behind would be seen by the next one.
    return Settings(**{"project": project, "database_url": url, "statement_timeout_ms": 2000,
                       "pool_max_size": 1, "shared_tables": SHARED, **changes})


async def calls(settings: Settings, *arguments: dict) -> list:
    """Several calls in one client session, one server: the pool (and its connection) is shared."""
    async with Client(create_server(settings)) as client:
        return [await client.call_tool("run_scoped_query", a) for a in arguments]


def rows_of(result) -> list:
    assert not result.is_error, result.content
    return rows_in_fence(result.structured_content)


async def test_more_rows_than_the_limit_stop_at_the_limit(url: str, tmp_path: Path) -> None:
    [result] = await calls(settings_for(url, tmp_path), {
        "sql": "SELECT g, md5(g::text) FROM generate_series(1, 200000) g", "user_id": "alice", "limit": 7})
    rows = rows_of(result)
    data = result.structured_content
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0][1] == hashlib.md5(b"1").hexdigest()
    assert data["row_count"] == 7 and data["limit"] == 7 and data["truncated"] is True
    assert "cut_to_fit" not in data  # the cap, not the byte budget, stopped it
    assert "LIMIT 8) AS _sa_rows" in data["rewritten_sql"]  # the cap, inside the row-size bound


async def test_a_slow_query_is_stopped_and_the_next_call_answers(url: str, tmp_path: Path) -> None:
    slow, after = await calls(settings_for(url, tmp_path, statement_timeout_ms=300), {
        "sql": "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
        "user_id": "alice"}, {"sql": "SELECT count(*) FROM tasks", "user_id": "alice"})
    assert slow.is_error
    text = slow.content[0].text
    assert "[sql-timeout]" in text and "300 ms" in text and "avoid cross joins" in text, text
    assert rows_of(after) == [[2]]


async def test_settings_a_shared_view_changes_do_not_survive_the_call(url: str, tmp_path: Path) -> None:
    fresh, touched, after = await calls(
        settings_for(url, tmp_path),
        {"sql": "SELECT pid, leak, search_path, read_only FROM session_state", "user_id": "alice"},
        {"sql": "SELECT body, effect FROM notice_settings", "user_id": "alice"},
        {"sql": "SELECT pid, leak, search_path, read_only FROM session_state", "user_id": "alice"})
    assert rows_of(touched) == [["hello", "touched"]]
    assert touched.structured_content["shared_tables"] == ["public.notice_settings"]
    [before_row], [after_row] = rows_of(fresh), rows_of(after)
    assert after_row[0] == before_row[0], "not the same pooled backend: the test would prove nothing"
    assert after_row == before_row
    assert before_row[1] == "" and before_row[2] != "nowhere"
    assert before_row[3] == "on"  # inside the call the transaction is read-only


async def test_a_shared_view_that_writes_is_stopped_by_the_read_only_transaction(url: str, tmp_path: Path) -> None:
    refused, after = await calls(settings_for(url, tmp_path),
                                 {"sql": "SELECT body, effect FROM notice_audit", "user_id": "alice"},
                                 {"sql": "SELECT count(*) FROM tasks", "user_id": "bob"})
    assert refused.is_error
    text = refused.content[0].text
    assert "[sql-runtime-error]" in text and "read only sql transaction (SQLSTATE 25006)" in text, text
    assert rows_of(after) == [[1]]  # the connection is usable at once
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)


@pytest.mark.parametrize("failing", [False, True])
async def test_no_lock_or_seed_a_call_took_stays_on_the_pooled_connection(url: str, tmp_path: Path,
                                                                           failing: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        seeded = conn.execute("SELECT setseed(0.25), random()").fetchone()[1]
    # failing: the division runs on the row, after the view's function took the lock (a constant 1 / 0
    # would fail at planning, before anything ran)
    sql = ("SELECT body, 1 / (length(effect) - length(effect)) FROM notice_state" if failing
           else "SELECT body, effect FROM notice_state")
    state, random = await calls(settings_for(url, tmp_path), {"sql": sql, "user_id": "alice"},
                                {"sql": "SELECT random()", "user_id": "alice"})
    assert state.is_error == failing, state.content
    if failing:
        assert "division by zero (SQLSTATE 22012)" in state.content[0].text
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)
    assert rows_of(random) != [[seeded]]


async def test_values_come_back_in_their_documented_encoding(url: str, tmp_path: Path) -> None:
    sql = ("SELECT '2025-01-02 03:04:05+00'::timestamptz AS at, '2025-01-02'::date AS day, 1.5::numeric AS small, "
           "12345678901234567890::numeric AS big, '\\x0102ff'::bytea AS raw, '{\"a\": [1]}'::jsonb AS doc, "
           "NULL::text AS nothing, 7::int4 AS n")
    [result] = await calls(settings_for(url, tmp_path), {"sql": sql, "user_id": "alice"})
    assert rows_of(result) == [["2025-01-02T03:04:05+00:00", "2025-01-02", 1.5, "12345678901234567890",
                                "\\x0102ff", {"a": [1]}, None, 7]]
    assert [(c["name"], c["type"]) for c in result.structured_content["columns"]] == [
        ("at", "timestamptz"), ("day", "date"), ("small", "numeric"), ("big", "numeric"), ("raw", "bytea"),
        ("doc", "jsonb"), ("nothing", "text"), ("n", "int4")]
    assert result.structured_content["scoped_tables"] == []  # no table read: nothing to filter


async def test_an_unknown_user_sees_no_rows_not_an_error(url: str, tmp_path: Path) -> None:
    [result] = await calls(settings_for(url, tmp_path), {"sql": "SELECT title FROM tasks", "user_id": "carol"})
    assert rows_of(result) == []
    assert result.structured_content["scoped_tables"] == ["public.tasks"]


@pytest.mark.parametrize("arguments, words", [
    ({"sql": "SELECT 1", "user_id": "alice", "limit": 0}, ["[argument-invalid]", "`limit`", "from 1 to 1000"]),
    ({"sql": "SELECT 1", "user_id": "alice", "limit": 1001}, ["[argument-invalid]", "`limit`", "from 1 to 1000"]),
    ({"sql": "SELECT 1", "user_id": "alice", "limt": 5}, ["[argument-unknown]", "Did you mean `limit`?"]),
    ({"sql": "SELECT 1", "user_id": "alice", "params": "x"}, ["[argument-invalid]", "`params`"]),
    ({"user_id": "alice"}, ["[argument-invalid]", "`sql` is required"]),
    ({"sql": "SELECT count(*) FROM tasks"}, ["[sql-bad-argument]", "user_id", "Pass the id of the user"]),
    ({"sql": "SELECT * FROM audit", "user_id": "alice"},
     ["[sql-table-not-user-scoped]", "public.audit", "shared_tables"]),
    ({"sql": "SELECT current_setting('app.leak', true)", "user_id": "alice"},
     ["[sql-function-not-allowed]", "current_setting()", "current_setting('app.user_id')"]),
])
async def test_bad_arguments_are_tool_errors_saying_what_to_change(url: str, tmp_path: Path, arguments: dict,
                                                                   words: list[str]) -> None:
    [result] = await calls(settings_for(url, tmp_path), arguments)
    assert result.is_error
    text = result.content[0].text
    assert all(w in text for w in words), text
    assert "Traceback" not in text


async def test_a_wrong_params_type_is_told_what_params_hold(url: str, tmp_path: Path) -> None:
    [result] = await calls(settings_for(url, tmp_path), {"sql": "SELECT $1::int", "user_id": "alice", "params": "7"})
    assert result.is_error
    text = result.content[0].text
    assert "`params`" in text and "objects" not in text, text


@pytest.fixture
def scoped_role(url: str, pg_admin_url: str):
    """A least-privilege role that row security binds, keyed on the caller setting app.user_id."""
    role = f"agent_ro_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        conn.execute(f"GRANT SELECT ON tasks, users TO {role}")
        conn.execute("ALTER TABLE tasks ENABLE ROW LEVEL SECURITY")
        conn.execute(f"CREATE POLICY {role}_own ON tasks TO {role} "
                     "USING (user_id = current_setting('app.user_id', true))")
    yield role
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP POLICY {role}_own ON tasks")
        conn.execute("ALTER TABLE tasks DISABLE ROW LEVEL SECURITY")
        conn.execute(f"DROP OWNED BY {role}")
    with psycopg.connect(with_database(pg_admin_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP ROLE {role}")


async def test_queries_run_as_the_scoped_role_with_the_caller_setting(url: str, tmp_path: Path,
                                                                      scoped_role: str) -> None:
    [result] = await calls(settings_for(url, tmp_path, scoped_role=scoped_role), {
        "sql": "SELECT current_user::text, current_setting('app.user_id'), count(*) FROM tasks", "user_id": "bob"})
    assert rows_of(result) == [[scoped_role, "bob", 1]]
    with psycopg.connect(url) as conn:  # the login role is untouched outside the call
        assert conn.execute("SELECT current_user = session_user").fetchone() == (True,)


async def test_listed_with_the_annotations_its_page_states(tmp_path: Path) -> None:
    tool = await listed_tool(Settings(project=tmp_path, embedded=False), "run_scoped_query")
    assert_annotations_as_its_page_states(tool)
    assert tool.input_schema["required"] == ["sql"]
    assert tool.input_schema["properties"]["limit"]["maximum"] == 1000
