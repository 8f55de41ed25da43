"""Every database tool through PgBouncer in transaction mode, as on Neon's ``-pooler`` hosts.

PgBouncer (Debian's) sits in front of PostgreSQL 15 with 2 server connections per database, so many
calls share the same two server sessions. Proves: the pooler really is in transaction mode (a
server-side prepared statement breaks through it); read_catalog, run_scoped_query and the diff with
include_database work through it; 60 scoped calls for 4 different users over the same server
connections each see only their own rows and leave no caller setting behind; a pooled URL (Neon's
-pooler host, or ?pgbouncer=true) turns psycopg's automatic prepares off.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.db import Database
from schema_architect.server.settings import Settings
from schema_architect.tools.database.catalog import read_catalog

from fence import rows_in_fence
from pgservers import TODO_USERS, PgBouncer, PgServer, make_project

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def servers(neon_pg15):
    with PgBouncer(neon_pg15, pool_size=2) as bouncer:
        yield neon_pg15, bouncer


def backends(pg: PgServer) -> int:
    """Server sessions PgBouncer holds to neondb (read directly on PostgreSQL)."""
    with psycopg.connect(pg.admin_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'neondb' "
                            "AND pid <> pg_backend_pid()").fetchone()[0]


def test_the_pooler_is_in_transaction_mode(servers) -> None:
    _, bouncer = servers
    with psycopg.connect(bouncer.url("pgbouncer"), autocommit=True) as admin:
        config = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}
    assert config["pool_mode"] == "transaction" and config["default_pool_size"] == "2"
    # Control: psycopg's default (prepare after 5 runs of a query) fails through it sooner or later.
    with (pytest.raises((psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement)),
          psycopg.connect(bouncer.url("neondb"), autocommit=True, prepare_threshold=0) as a,
          psycopg.connect(bouncer.url("neondb"), autocommit=True, prepare_threshold=0) as b):
        for _ in range(10):  # two clients, two server sessions: a statement lands on the other one
            a.execute("SELECT 1 FROM tasks WHERE id = %s", (1,))
            b.execute("SELECT 2 FROM tasks WHERE id = %s", (1,))


@pytest.mark.parametrize("hint", ["pgbouncer=true", "-pooler host"])
async def test_pooled_urls_never_prepare_on_the_server(servers, tmp_path: Path, hint: str) -> None:
    _, bouncer = servers
    if hint == "pgbouncer=true":
        url = bouncer.url("neondb", pgbouncer="true")
    else:  # a Neon-style -pooler host name resolving to loopback, as /etc/hosts would
        url = bouncer.url("neondb").replace("127.0.0.1", "localhost-pooler")
        url += "?hostaddr=127.0.0.1"
    db = Database(url, project=tmp_path, max_size=3, connect_timeout_s=10)
    try:
        async def worker() -> None:
            for _ in range(15):  # psycopg would prepare from the 5th run without prepare_threshold=None
                async with db.connection() as conn:
                    assert conn.prepare_threshold is None
                    await conn.execute("SELECT count(*) FROM tasks WHERE user_id = %s", ("u_alice",))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(worker)
    finally:
        await db.close()


async def test_read_catalog_through_the_pooler(servers, tmp_path: Path) -> None:
    _, bouncer = servers
    db = Database(bouncer.url("neondb"), project=tmp_path, connect_timeout_s=10)
    try:
        for _ in range(3):
            async with db.connection() as conn:
                read = await read_catalog(conn)
        names = {t.name for t in read.schema.tables}
        assert {"users", "tasks", "tags", "task_tags"} <= names
        assert read.server_version // 10000 == 15
    finally:
        await db.close()


async def test_scoped_queries_for_many_users_share_server_connections_without_leaks(
        servers, tmp_path: Path) -> None:
    pg, bouncer = servers
    settings = Settings(project=make_project(tmp_path), database_url=bouncer.url("neondb"),
                        pool_max_size=4, connect_timeout_s=10)
    users = [*TODO_USERS, "u_nobody"]
    seen: dict[str, list] = {u: [] for u in users}
    async with Client(create_server(settings)) as client:

        async def caller(k: int) -> None:
            for i in range(15):
                user = users[(k + i) % len(users)]
                result = await client.call_tool("run_scoped_query", {
                    "sql": "SELECT user_id, title FROM tasks ORDER BY id", "user_id": user})
                assert not result.is_error, result.content[0].text
                seen[user].append(rows_in_fence(result.structured_content))

        async with anyio.create_task_group() as tg:
            for k in range(4):
                tg.start_soon(caller, k)
        assert backends(pg) <= 2  # every call ran on one of PgBouncer's two server sessions

    for user, results in seen.items():
        assert results, user
        for rows in results:
            assert len(rows) == TODO_USERS.get(user, 0)
            assert all(row[0] == user for row in rows)
    # After 60 calls on 2 server sessions, no caller id survived outside its transaction.
    with psycopg.connect(bouncer.url("neondb"), autocommit=True, prepare_threshold=None) as conn:
        for _ in range(6):
            value = conn.execute("SELECT current_setting('app.user_id', true)").fetchone()[0]
            assert value in (None, ""), value


async def test_diff_with_the_database_through_the_pooler(servers, tmp_path: Path) -> None:
    _, bouncer = servers
    settings = Settings(project=make_project(tmp_path), database_url=bouncer.url("neondb", pgbouncer="true"),
                        connect_timeout_s=10)
    async with Client(create_server(settings)) as client:
        for _ in range(2):
            result = await client.call_tool("diff_models_vs_spec", {"include_database": True})
            assert not result.is_error, result.content[0].text
            data = result.structured_content
            assert [s["side"] for s in data["sides"]] == ["spec", "models", "database"]
            assert data["drifts"] == [], data["report"]
            assert re.fullmatch(r"127\.0\.0\.1:\d+/neondb", data["sides"][2]["source"])


async def test_neon_options_parameter_is_accepted_by_the_pooler(servers, tmp_path: Path) -> None:
    # Neon asks SNI-less clients to pass options=endpoint%3D<endpoint id>; the pooler takes it.
    _, bouncer = servers
    db = Database(bouncer.url("neondb", options="endpoint%3Dep-cool-123"), project=tmp_path,
                  connect_timeout_s=10)
    try:
        async with db.connection() as conn:
            assert (await (await conn.execute("SELECT count(*) FROM users")).fetchone()) == (len(TODO_USERS),)
    finally:
        await db.close()
