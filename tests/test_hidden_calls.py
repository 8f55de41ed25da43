"""Calls the raw tree does not show, through MCP, in both roles (issue 25, classes 1, 4 and 5).

PostgreSQL reads ``(x).f`` and ``t.f`` as ``f(x)``; an operator or an implicit cast can call a user's
function; a function in ``public`` can fit the argument types better than the built-in. Every case
here was run by the tools before PostgreSQL's own analysis guarded them (sqlsafe/resolved.py).

Roles as on Neon: ``app_owner`` owns the tables with BYPASSRLS (the rewrite alone must hold), and
``agent_ro`` is a read-only role that row security binds to ``app.user_id``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from mcp import Client
from psycopg.conninfo import conninfo_to_dict

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from fence import rows_in_fence

pytestmark = pytest.mark.anyio

SECRET = "CANARY_JWT_SECRET"

FIXTURE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hc_owner') THEN
    CREATE ROLE hc_owner LOGIN BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hc_ro') THEN
    CREATE ROLE hc_ro LOGIN NOBYPASSRLS;
    ALTER ROLE hc_ro SET default_transaction_read_only = on;
  END IF;
END $$;
ALTER SCHEMA public OWNER TO hc_owner;
SET ROLE hc_owner;
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE users (id text PRIMARY KEY, email text NOT NULL);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id),
                    title varchar(200) NOT NULL, mood mood NOT NULL DEFAULT 'calm');
INSERT INTO users VALUES ('u_alice', 'alice@example.com'), ('u_bob', 'bob@example.com');
INSERT INTO tasks (user_id, title) VALUES ('u_alice', 'alice task'), ('u_bob', 'BOB_SECRET task');
CREATE TABLE leaks (what text);
-- The owner's helpers, as a real app might have them.
CREATE FUNCTION task_titles_for(u text) RETURNS text LANGUAGE sql SECURITY DEFINER
  AS $f$ SELECT string_agg(title, ',') FROM public.tasks WHERE user_id = u $f$;
CREATE FUNCTION count_all_tasks() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
  AS $f$ SELECT count(*) FROM public.tasks $f$;
-- A better fit than pg_catalog.lower(text) for a varchar argument.
CREATE FUNCTION lower(v varchar) RETURNS text LANGUAGE sql SECURITY DEFINER
  AS $f$ SELECT string_agg(title, ',') FROM public.tasks $f$;
CREATE FUNCTION spy_eq(a text, b text) RETURNS boolean LANGUAGE sql SECURITY DEFINER
  AS $f$ SELECT (SELECT count(*) FROM public.tasks) > 0 $f$;
CREATE OPERATOR === (LEFTARG = text, RIGHTARG = text, FUNCTION = spy_eq);
CREATE FUNCTION mood_text(m mood) RETURNS text LANGUAGE sql SECURITY DEFINER
  AS $f$ SELECT string_agg(title, ',') FROM public.tasks $f$;
CREATE CAST (mood AS text) WITH FUNCTION mood_text(mood) AS IMPLICIT;
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON tasks FOR SELECT TO hc_ro USING (user_id = current_setting('app.user_id', true));
GRANT USAGE ON SCHEMA public TO hc_ro;
GRANT SELECT ON users, tasks TO hc_ro;
RESET ROLE;
"""

# Each is run for u_alice; none may show Bob's rows, a secret, or leave anything behind.
HIDDEN_CALLS = {
    "definer-function-by-attribute": "SELECT ('u_bob'::text).task_titles_for AS t",
    "definer-function-on-a-column": "SELECT (t.user_id).task_titles_for AS t FROM tasks t",
    "secret-setting-by-attribute": "SELECT ('app.settings.jwt_secret'::text).current_setting AS s",
    "secret-setting-on-a-row-value": "SELECT (t.title || 'x').current_setting AS s FROM tasks t",
    "sql-in-a-string": "SELECT ('SELECT to_tsvector(title) FROM public.tasks'::text).ts_stat AS s",
    "advisory-lock": "SELECT ((4242)::bigint).pg_advisory_lock AS l",
    "prng-seed": "SELECT ((0.25)::float8).setseed AS s",
    "other-sessions": "SELECT (NULL::int).pg_stat_get_activity AS a",
    "signal-a-backend": "SELECT ((1)::int).pg_terminate_backend AS k",
    "server-files": "SELECT ('/etc'::text).pg_ls_dir AS f",
    "public-overload-by-attribute": "SELECT (title).lower AS l FROM tasks",
    "user-operator": "SELECT title FROM tasks WHERE title::text === 'x'",
    "implicit-user-cast": "SELECT upper(mood) AS m FROM tasks",
    "catalog-lookup-cast": "SELECT (replace(title, ' ', '.') || '.z')::regclass AS r FROM tasks",
}


@pytest.fixture(scope="module")
def database(make_database) -> str:
    url = make_database("hidden_calls")
    dbname = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FIXTURE)
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET app.settings.jwt_secret = '{SECRET}'")
        conn.execute("GRANT hc_ro TO hc_owner")
    return url


def as_role(url: str, role: str) -> str:
    return re.sub(r"^(postgres(?:ql)?://)[^:@/]*", lambda m: m.group(1) + role, url)


def settings(url: str, role: str, tmp_path: Path) -> Settings:
    return Settings(project=tmp_path, database_url=as_role(url, role), statement_timeout_ms=2000)


async def call(s: Settings, tool: str, arguments: dict):
    async with Client(create_server(s)) as client:
        return await client.call_tool(tool, arguments)


def _advisory_locks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]


@pytest.mark.parametrize("role", ["hc_owner", "hc_ro"])
@pytest.mark.parametrize("case", sorted(HIDDEN_CALLS))
async def test_a_hidden_call_is_refused_before_it_runs(database: str, tmp_path: Path, role: str, case: str) -> None:
    with psycopg.connect(database, autocommit=True) as victim:
        victim_pid = victim.info.backend_pid
        sql = HIDDEN_CALLS[case].replace("((1)::int).pg_terminate", f"(({victim_pid})::int).pg_terminate")
        result = await call(settings(database, role, tmp_path), "run_scoped_query",
                            {"sql": sql, "user_id": "u_alice"})
        text = json.dumps(result.model_dump(mode="json"))
        assert result.is_error, (case, text[:500])
        assert "BOB_" not in text and SECRET not in text and "bob@" not in text
        assert any(why in text for why in ("not on the allowlist", "not built in", "not a literal, readable",
                                           "looks names up in the system catalog")), text[:600]
        assert victim.execute("SELECT 1").fetchone() == (1,)  # still alive
    assert _advisory_locks(database) == 0


@pytest.mark.parametrize("role", ["hc_owner", "hc_ro"])
async def test_ordinary_attribute_notation_still_works(database: str, tmp_path: Path, role: str) -> None:
    """A real field selection, a whole-row reference and the caller's own setting are not calls."""
    s = settings(database, role, tmp_path)
    result = await call(s, "run_scoped_query", {
        "sql": "SELECT (t).title, t.id > 0 AS has_id, lower(t.title) AS low, current_setting('app.user_id') AS me "
               "FROM tasks t", "user_id": "u_alice"})
    assert not result.is_error, result.content
    assert rows_in_fence(result.structured_content) == [["alice task", True, "alice task", "u_alice"]]
    again = await call(s, "run_scoped_query", {"sql": "SELECT count(*) FROM tasks WHERE title = $1",
                                               "user_id": "u_alice", "params": ["alice task"]})
    assert rows_in_fence(again.structured_content) == [[1]]


async def test_explain_shows_no_estimate_from_other_users_rows(database: str, tmp_path: Path) -> None:
    """Estimates come from statistics over every user's rows: EXPLAIN of Bob's id and of a made-up id
    read the same, so the plan says nothing about who exists or how much they hold."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO tasks (user_id, title) "
                     "SELECT 'u_bob', 'BOB_SECRET ' || g FROM generate_series(1, 3000) g")
        conn.execute("ANALYZE tasks")
    s = settings(database, "hc_owner", tmp_path)
    plans = []
    for who in ("u_bob", "u_nobody"):
        result = await call(s, "run_scoped_query", {
            "sql": f"EXPLAIN (FORMAT JSON, COSTS ON) SELECT id FROM tasks WHERE user_id = '{who}'",
            "user_id": "u_alice"})
        assert not result.is_error, result.content
        plan = json.dumps(rows_in_fence(result.structured_content))
        assert "Plan Rows" not in plan and "Total Cost" not in plan
        plans.append(plan)
    assert plans[0] == plans[1]


async def test_explain_indexes_checks_the_callers_queries_first(database: str, tmp_path: Path) -> None:
    """The planner evaluates stable functions while estimating: a secret or another user's count must
    not come back in a plan or an error."""
    s = settings(database, "hc_owner", tmp_path)
    for sql in ("SELECT id FROM tasks WHERE id = current_setting('app.settings.jwt_secret')::int",
                "SELECT id FROM tasks WHERE id = ('app.settings.jwt_secret'::text).current_setting::int",
                "SELECT id FROM tasks WHERE id = ('x' || count_all_tasks())::int",
                "SELECT id FROM tasks WHERE title::text === 'x'"):
        result = await call(s, "explain_indexes", {"table": "tasks", "queries": [sql], "source": "database"})
        text = json.dumps(result.model_dump(mode="json"))
        assert result.is_error, (sql, text[:400])
        assert SECRET not in text, (sql, text)
        assert not any(count in text for count in ("3002", "x3002", "3,002")), (sql, text)
    fine = await call(s, "explain_indexes", {"table": "tasks", "source": "database",
                                             "queries": ["SELECT id FROM tasks WHERE user_id = $1 ORDER BY id"]})
    assert not fine.is_error, fine.content


async def test_explain_indexes_reads_the_spec_only_under_identity_binding(database: str, tmp_path: Path) -> None:
    """With identity binding on, callers are end users bound to their own rows: index evidence (row
    counts, scans, estimates) is made of everyone's rows, so only the spec is explained."""
    (tmp_path / "specs" / "database").mkdir(parents=True)
    (tmp_path / "specs" / "database" / "schema.md").write_text(
        "### Table: tasks\n\n| Column | Type | Constraints |\n|---|---|---|\n| id | SERIAL | PK |\n"
        "| user_id | TEXT | FK -> users.id, NOT NULL, INDEX |\n")
    s = Settings(project=tmp_path, database_url=as_role(database, "hc_owner"),
                 jwt_jwks_url="https://auth.example.invalid/api/auth/jwks", jwt_issuer="https://auth.example.invalid",
                 jwt_audience="https://auth.example.invalid")
    refused = await call(s, "explain_indexes", {"source": "database"})
    assert refused.is_error and "identity" in json.dumps(refused.model_dump(mode="json"))
    spec_only = await call(s, "explain_indexes", {})
    assert not spec_only.is_error, spec_only.content
    assert spec_only.structured_content["source"] == "spec"


async def test_a_cached_verdict_does_not_outlive_a_new_operator(make_database) -> None:
    """A verdict is kept per query shape; an operator created since (a better fit than the built-in)
    changes what the same text resolves to, and is seen when the catalog map is next checked."""
    from schema_architect.tools.run_scoped_query import run_scoped_query
    from schema_architect.tools.sqlsafe import ClassificationCache, QueryRefused

    url = make_database("hidden_calls_cache",
                        "CREATE TABLE users (id text PRIMARY KEY); CREATE TABLE tasks (id serial PRIMARY KEY, "
                        "user_id text NOT NULL REFERENCES users(id), title varchar(50) NOT NULL);"
                        "INSERT INTO users VALUES ('u_alice'); "
                        "INSERT INTO tasks (user_id, title) VALUES ('u_alice', 'x');")
    cache = ClassificationCache(ttl=0)  # every call compares the catalog's version
    sql = "SELECT count(*) FROM tasks t WHERE t.title = 'x'::varchar"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        assert (await run_scoped_query(conn, sql, "u_alice", cache=cache)).rows == [[1]]
        await conn.execute("CREATE FUNCTION public.spy(a varchar, b varchar) RETURNS boolean LANGUAGE sql "
                           "AS 'SELECT true'; CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, "
                           "FUNCTION = public.spy)")
        with pytest.raises(QueryRefused, match="not built in"):
            await run_scoped_query(conn, sql, "u_alice", cache=cache)
