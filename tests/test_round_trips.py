"""run_scoped_query at Neon's distance: one round trip per call whatever the pause, nothing in the
server's log per call, a connection cut between calls costs no error (issue 31).

The statements a call sends are counted from PostgreSQL's own log (``log_statement = all`` on this
test's database), on the embedded server of the test run.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client
from psycopg.conninfo import conninfo_to_dict

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

pytestmark = pytest.mark.anyio

FIXTURE = """
CREATE TABLE users (id text PRIMARY KEY);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), title text NOT NULL);
INSERT INTO users VALUES ('u_alice'), ('u_bob');
INSERT INTO tasks (user_id, title) VALUES ('u_alice', 'a'), ('u_bob', 'b');
"""


#: The statements of one call reading plain tables, as PostgreSQL logs them (one write).
CALL = ["SELECT", "SELECT"]  # the settings and the query, one implicit transaction


@pytest.fixture(scope="module")
def logged(make_database, pg_admin_url: str):
    """(database URL, the server's log file); only on the embedded server, whose log file we know."""
    if os.environ.get("SCHEMA_ARCHITECT_TEST_ADMIN_URL"):
        pytest.skip("reads the embedded server's log file; this run uses another server")
    url = make_database("round_trips", FIXTURE)
    host = conninfo_to_dict(url).get("host") or ""
    log = Path(host) / "log"
    if not log.is_file():
        pytest.skip(f"no server log at {log}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{conninfo_to_dict(url)['dbname']}\" SET log_statement = 'all'")
    return url, log


def _statements(text: str) -> list[str]:
    return re.findall(r"LOG:  (?:statement|execute [^:]*): (.*)", text)


async def test_one_round_trip_after_a_pause_and_nothing_in_the_log(logged, tmp_path: Path) -> None:
    url, log = logged
    settings = Settings(project=tmp_path, database_url=url, statement_timeout_ms=2000)
    sql = "SELECT title FROM tasks"
    async with Client(create_server(settings)) as client:
        failing_sql = {"sql": "SELECT 1 / (id - id) FROM tasks", "user_id": "u_alice"}
        first = await client.call_tool("run_scoped_query", {"sql": sql, "user_id": "u_alice"})
        assert not first.is_error, first.content
        await client.call_tool("run_scoped_query", failing_sql)  # both shapes checked once (resolved.py)
        await anyio.sleep(2.5)  # longer than the old idle check's threshold (2 s)
        start = log.stat().st_size
        again = await client.call_tool("run_scoped_query", {"sql": sql, "user_id": "u_alice"})
        await anyio.sleep(0.2)
        middle = log.stat().st_size
        failing = await client.call_tool("run_scoped_query", failing_sql)
        await anyio.sleep(0.2)
    assert not again.is_error and failing.is_error
    with log.open(errors="replace") as f:
        f.seek(start)
        text = f.read()
    statements = _statements(text[:middle - start])
    # The settings and the query: one write and one implicit transaction, no check before it (plain tables
    # without row security, views forbidden: nothing but built-ins ran, so there is no session state to
    # reset).
    assert [(s.split() or [""])[0] for s in statements] == CALL, statements
    assert "restrict_nonsystem_relation_kind" in text[:middle - start]  # in the settings: no view may run
    # A failed query: PostgreSQL rolled its implicit transaction back at the Sync, so nothing follows it
    # but one more statement (were the tables it reads changed?), and no warning.
    assert [(s.split() or [""])[0] for s in _statements(text[middle - start:])] == ["SELECT", "SELECT", "SELECT"]
    assert "WARNING" not in text, text


async def test_a_server_that_cannot_forbid_views_resets_after_every_call(logged, tmp_path: Path,
                                                                          monkeypatch) -> None:
    """Before PostgreSQL 15.8 / 16.4 / 17 there is no restrict_nonsystem_relation_kind: a call cannot
    forbid a view in its settings, so even on plain tables the reset follows the query in its write."""
    from schema_architect.tools.sqlsafe import classify

    build_map = classify.build_map
    monkeypatch.setattr(classify, "build_map",
                        lambda *a, **k: replace(build_map(*a, **k), restricts_relation_kinds=False))
    url, log = logged
    settings = Settings(project=tmp_path, database_url=url, statement_timeout_ms=2000)
    call = {"sql": "SELECT title FROM tasks", "user_id": "u_alice"}
    async with Client(create_server(settings)) as client:
        assert not (await client.call_tool("run_scoped_query", call)).is_error  # reads the map
        start = log.stat().st_size
        result = await client.call_tool("run_scoped_query", call)
        await anyio.sleep(0.2)
    assert not result.is_error, result.content
    statements = _statements(_log_since(log, start))
    assert [(s.split() or [""])[0] for s in statements] == ["BEGIN", "SELECT", "SELECT", "ROLLBACK", "SELECT"]
    assert "pg_advisory_unlock_all" in statements[-1] and "restrict_nonsystem" not in _log_since(log, start)


async def test_a_connection_cut_between_calls_costs_no_error(logged, tmp_path: Path) -> None:
    url, _ = logged
    settings = Settings(project=tmp_path, database_url=url, statement_timeout_ms=2000)
    dbname = conninfo_to_dict(url)["dbname"]
    async with Client(create_server(settings)) as client:
        first = await client.call_tool("run_scoped_query", {"sql": "SELECT count(*) FROM tasks", "user_id": "u_alice"})
        assert not first.is_error
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                          "AND pid <> pg_backend_pid()", [dbname])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # pg_terminate_backend only signals: wait until they are gone
            with psycopg.connect(url, autocommit=True) as admin:
                if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                 "pg_backend_pid()", [dbname]).fetchone()[0] == 0:
                    break
            await anyio.sleep(0.05)
        second = await client.call_tool("run_scoped_query", {"sql": "SELECT count(*) FROM tasks", "user_id": "u_alice"})
    assert not second.is_error, second.content


async def test_a_map_past_its_age_is_checked_in_the_calls_own_write(logged) -> None:
    """Once a minute the whole catalog's version is compared with the cached map's: inside the call's
    own statement (a change makes it fail before the query runs), not in a round trip of its own."""
    from schema_architect.tools.run_scoped_query import run_scoped_query
    from schema_architect.tools.sqlsafe import ClassificationCache

    url, log = logged
    cache = ClassificationCache(ttl=0)  # every call finds the map past its age
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await run_scoped_query(conn, "SELECT title FROM tasks", "u_alice", cache=cache)
        await anyio.sleep(0.2)
        start = log.stat().st_size
        result = await run_scoped_query(conn, "SELECT title FROM tasks", "u_alice", cache=cache)
        await anyio.sleep(0.2)
    assert result.rows == [["a"]]
    with log.open(errors="replace") as f:
        f.seek(start)
        statements = _statements(f.read())
    assert [(s.split() or [""])[0] for s in statements] == CALL, statements


def _catalog_checks(text: str) -> list[str]:
    """Statements in ``text`` that compare the whole catalog's version (classify.CATALOG_VERSION_SQL)."""
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d )", text)  # a logged statement runs over several lines
    return [e for e in entries if re.search(r"LOG:  (?:statement|execute [^:]*): ", e) and "rows_of_user_objects" in e]


def _log_since(log: Path, start: int) -> str:
    with log.open(errors="replace") as f:
        f.seek(start)
        return f.read()


async def test_a_map_past_half_its_age_is_checked_after_the_call_not_in_the_next(logged, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """Calls seconds apart never carry the whole catalog's version: a call that finds the map past half
    its age answers first, then the server compares the version on a connection of its own, and the
    next call finds the map fresh. (The server's map lives 60 s; here 2 s, so the test takes 2 s.)"""
    from schema_architect.tools.sqlsafe import ClassificationCache

    monkeypatch.setattr(ClassificationCache.__init__, "__defaults__", (2.0,))
    url, log = logged
    settings = Settings(project=tmp_path, database_url=url, statement_timeout_ms=2000)
    call = {"sql": "SELECT title FROM tasks", "user_id": "u_alice"}
    async with Client(create_server(settings)) as client:
        assert not (await client.call_tool("run_scoped_query", call)).is_error
        await anyio.sleep(1.05)  # past half the map's age
        start = log.stat().st_size
        second = await client.call_tool("run_scoped_query", call)
        deadline = time.monotonic() + 5
        while not _catalog_checks(_log_since(log, start)) and time.monotonic() < deadline:
            await anyio.sleep(0.02)  # the check runs after the answer, in a task of its own
        after_second = log.stat().st_size
        await anyio.sleep(1.05)  # past the map's age since it was read, within it since it was checked
        third = await client.call_tool("run_scoped_query", call)
        await anyio.sleep(0.2)
    assert not second.is_error and not third.is_error
    checked = _log_since(log, start)
    assert len(_catalog_checks(checked[:after_second - start])) == 1  # the check, as a statement of its own
    assert [(s.split() or [""])[0] for s in _statements(checked[:after_second - start])] == \
        [*CALL, "SELECT"]
    assert not any("set_config" in c for c in _catalog_checks(checked)), "a call carried the check"
    # the third call: one write, no check in it (it found the map past half its age again: a check of
    # its own may follow it)
    third_statements = _statements(checked[after_second - start:])
    assert [(s.split() or [""])[0] for s in third_statements[:len(CALL)]] == CALL
    assert len(_catalog_checks(checked[after_second - start:])) == len(third_statements) - len(CALL)


async def test_a_catalog_changed_before_the_check_is_read_again_by_the_check(logged) -> None:
    """The check after a call finds DDL since the map was read: it reads the catalog again itself, and
    the next call uses the new map (no check, no catalog read of its own)."""
    from schema_architect.tools.run_scoped_query import run_scoped_query
    from schema_architect.tools.sqlsafe import ClassificationCache

    url, _ = logged
    cache = ClassificationCache(ttl=2.0)
    jobs: list = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await run_scoped_query(conn, "SELECT title FROM tasks", "u_alice", cache=cache, later=jobs.append)
        assert jobs == []  # a fresh map: nothing to check
        old = await cache.get(conn)
        await anyio.sleep(1.05)
        await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id))")
        try:
            await run_scoped_query(conn, "SELECT title FROM tasks", "u_alice", cache=cache, later=jobs.append)
            assert len(jobs) == 1
            await jobs[0](conn)
            fresh = await cache.get(conn)
            assert fresh is not old and fresh.catalog_version != old.catalog_version
            assert ("public", "notes") in fresh.relations and ("public", "notes") not in old.relations
            assert not cache.due(fresh) and not cache.revalidation_due(fresh)
        finally:
            await conn.execute("DROP TABLE notes")


async def test_a_policy_that_took_a_lock_is_reset_after_the_call(make_database, tmp_path: Path) -> None:
    """A call that reads plain tables is one implicit transaction with no reset: only built-ins ran. A table
    with row security runs its policies' code as the call reads it (here a policy that takes an advisory
    lock, as a role the policy binds): such a call keeps the reset, and the lock does not outlive it."""
    role = f"agent_rls_{uuid.uuid4().hex[:8]}"
    url = make_database("policy_lock", f"""
        CREATE TABLE users (id text PRIMARY KEY);
        CREATE TABLE notes (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), body text);
        INSERT INTO users VALUES ('u_alice'); INSERT INTO notes (user_id, body) VALUES ('u_alice', 'n');
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        CREATE ROLE {role} NOLOGIN; GRANT {role} TO CURRENT_USER;
        GRANT SELECT ON users, notes TO {role};
        CREATE POLICY locking ON notes TO {role} USING (pg_try_advisory_lock(4242) IS NOT NULL);
    """)
    try:
        settings = Settings(project=tmp_path, database_url=url, scoped_role=role, refuse_owner_role=False)
        async with Client(create_server(settings)) as client:
            for sql in ("SELECT count(*) FROM users", "SELECT count(*) FROM notes"):
                result = await client.call_tool("run_scoped_query", {"sql": sql, "user_id": "u_alice"})
                assert not result.is_error, result.content
                with psycopg.connect(url, autocommit=True) as admin:
                    held = admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
                assert held == (0,), sql
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP POLICY locking ON notes; DROP OWNED BY {role}; DROP ROLE {role}")


async def test_a_query_past_its_timeout_leaves_its_connection_reusable(logged, tmp_path: Path) -> None:
    """The timeout fails the query, which skips the ROLLBACK of its segment: the call rolls back in a
    statement of its own, and the next call runs on the same connection (none closed, none opened)."""
    url, _ = logged
    settings = Settings(project=tmp_path, database_url=url, statement_timeout_ms=200)
    slow = {"sql": "SELECT count(*) FROM tasks, generate_series(1, 100000000)", "user_id": "u_alice"}
    async with Client(create_server(settings)) as client:
        assert not (await client.call_tool("run_scoped_query", {"sql": "SELECT 1", "user_id": "u_alice"})).is_error
        timed_out = await client.call_tool("run_scoped_query", slow)
        after = await client.call_tool("run_scoped_query", {"sql": "SELECT count(*) FROM tasks", "user_id": "u_alice"})
        with psycopg.connect(url, autocommit=True) as admin:
            ours = admin.execute("SELECT state, backend_start FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND application_name = 'schema-architect'").fetchall()
    assert timed_out.is_error and "statement timeout" in timed_out.content[0].text, timed_out.content
    assert not after.is_error and "[[1]]" in after.structured_content["wrapped_rows"], after.content
    assert [state for state, _ in ours] == ["idle"], ours


async def _after_late_ddl(make_database, tmp_path: Path, name: str, ddl: str, undo: str,
                          as_owner: bool = False) -> list:
    """Two calls reading notes as a role (or, ``as_owner``, as the tables' owner, a superuser here), after
    ``ddl`` changed the catalog under the map the first call read ({role} in ``ddl`` and ``undo`` is the
    role); each call's results, each checked to leave no advisory lock behind it."""
    role = f"agent_{name}_{uuid.uuid4().hex[:8]}"
    url = make_database(name, f"""
        CREATE TABLE users (id text PRIMARY KEY);
        CREATE TABLE notes (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), body text);
        INSERT INTO users VALUES ('u_alice'); INSERT INTO notes (user_id, body) VALUES ('u_alice', 'n');
        CREATE ROLE {role} NOLOGIN; GRANT {role} TO CURRENT_USER;
        GRANT SELECT ON users, notes TO {role};
    """)
    call = {"sql": "SELECT count(*) FROM notes", "user_id": "u_alice"}
    results = []
    try:
        settings = Settings(project=tmp_path, database_url=url, scoped_role=None if as_owner else role,
                            refuse_owner_role=False)
        async with Client(create_server(settings)) as client:
            assert not (await client.call_tool("run_scoped_query", call)).is_error  # the map: notes is plain
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(ddl.format(role=role))
            for _ in range(2):  # the call on the stale map, then one on the fresh map
                results.append(result := await client.call_tool("run_scoped_query", call))
                with psycopg.connect(url, autocommit=True) as admin:
                    held = admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
                assert held == (0,), result.content
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(undo.format(role=role))
    return results


async def test_row_security_enabled_after_the_map_was_read_runs_no_policy_unreset(make_database,
                                                                                   tmp_path: Path) -> None:
    """The cached map says the table is plain; row security and a lock-taking policy arrive after it was
    read. The call's settings forbid policies (row_security off): the query fails before one runs, and
    the call reruns on a fresh map, which runs the policy and resets after it."""
    results = await _after_late_ddl(
        make_database, tmp_path, "policy_late",
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY; "
        "CREATE POLICY locking ON notes TO {role} USING (pg_try_advisory_lock(4243) IS NOT NULL)",
        "DROP POLICY IF EXISTS locking ON notes; DROP OWNED BY {role}; DROP ROLE {role}")
    assert not any(r.is_error for r in results), [r.content for r in results]


@pytest.mark.parametrize("as_owner", [False, True], ids=["read-only role", "owner"])
async def test_a_table_replaced_by_a_view_after_the_map_was_read_runs_no_code_unreset(
        make_database, tmp_path: Path, as_owner: bool) -> None:
    """The cached map says notes is a plain table; it is renamed away and a view with a lock-taking
    function takes its name (a new relation: nothing about the old one's oid changed but its name). The
    call's settings forbid views (restrict_nonsystem_relation_kind): the query fails before the view's
    code runs, and the call reruns on a fresh map, which refuses the view (it reads a user table with its
    owner's rights): the agent is told so, never shown PostgreSQL's restriction. The restriction binds
    the tables' owner too (a superuser with BYPASSRLS here), unlike row security."""
    results = await _after_late_ddl(
        make_database, tmp_path, "view_late_owner" if as_owner else "view_late",
        "ALTER TABLE notes RENAME TO notes_table; "
        "CREATE VIEW notes AS SELECT * FROM notes_table WHERE pg_try_advisory_lock(4244) IS NOT NULL; "
        "GRANT SELECT ON notes TO {role}",
        "DROP VIEW IF EXISTS notes; DROP OWNED BY {role}; DROP ROLE {role}", as_owner=as_owner)
    texts = [r.content[0].text for r in results]
    assert all(r.is_error for r in results) and not any("restricted" in t for t in texts), texts
    assert all("notes" in t and "view" in t for t in texts), texts
