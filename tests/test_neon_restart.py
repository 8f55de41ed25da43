"""Cold starts, idle cuts and restarts, in one MCP session (in-memory Client) on PostgreSQL 15 over TLS.

Proves: a server restart between two tool calls does not surface as an error on the next call, and
leaves no connection behind (pg_stat_activity rows with application_name=schema-architect: at most the
pool size during the session, none after it); connections cut while idle (as Neon does) are replaced
without an error; a database that is down when a call starts but comes up within connect_timeout_s
answers that call (retries with backoff); one that stays down gives a clear error within the bound
while tools that need no database keep working.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.db import APPLICATION_NAME
from schema_architect.server.settings import Settings

from fence import rows_in_fence
from pgservers import PASSWORD, PgServer, make_project

pytestmark = pytest.mark.anyio

QUERY = {"sql": "SELECT title FROM tasks ORDER BY id", "user_id": "u_alice"}


@pytest.fixture(scope="module")
def pg(neon_pg15):
    return neon_pg15


@pytest.fixture
def settings(pg: PgServer, tmp_path: Path) -> Settings:
    return Settings(project=make_project(tmp_path), database_url=pg.url("neondb", sslmode="require"),
                    pool_max_size=3, connect_timeout_s=10)


def ours(pg: PgServer) -> int:
    """Our connections on the server, by application_name."""
    with psycopg.connect(pg.admin_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            (APPLICATION_NAME,)).fetchone()[0]


async def burst(client: Client, n: int = 6) -> None:
    """n concurrent scoped queries: fills the pool with idle connections afterwards."""
    async def one() -> None:
        result = await client.call_tool("run_scoped_query", QUERY)
        assert not result.is_error, result.content[0].text
        assert len(rows_in_fence(result.structured_content)) == 3

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)


async def test_restart_between_two_calls_is_invisible_and_leaks_nothing(pg: PgServer, settings: Settings,
                                                                        connect_attempts: list[str]) -> None:
    async with Client(create_server(settings)) as client:
        await burst(client)
        assert 1 <= ours(pg) <= settings.pool_max_size
        await anyio.to_thread.run_sync(pg.restart)
        assert ours(pg) == 0  # the restart cut every idle connection the pool holds
        before = len(connect_attempts)
        result = await client.call_tool("run_scoped_query", QUERY)
        assert not result.is_error, result.content[0].text  # the very next call succeeds
        new = connect_attempts[before:]
        assert new and "failed" not in new, new  # the dead connections were replaced, nothing waited on a retry
        await burst(client)
        diff = await client.call_tool("diff_models_vs_spec", {"include_database": True})
        assert not diff.is_error, diff.content[0].text
        assert ours(pg) <= settings.pool_max_size
    assert ours(pg) == 0  # the session closed every connection it opened


async def test_connections_cut_while_idle_are_replaced(pg: PgServer, settings: Settings) -> None:
    async with Client(create_server(settings)) as client:
        await burst(client)
        with psycopg.connect(pg.admin_url) as admin:  # what Neon's idle cut does
            cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = %s", (APPLICATION_NAME,)).fetchone()[0]
        assert cut >= 1
        deadline = time.monotonic() + 5  # pg_terminate_backend only signals: wait until they are gone
        while ours(pg) and time.monotonic() < deadline:
            await anyio.sleep(0.05)
        assert ours(pg) == 0
        for _ in range(3):
            result = await client.call_tool("run_scoped_query", QUERY)
            assert not result.is_error, result.content[0].text
        await burst(client)
    assert ours(pg) == 0


async def test_a_database_that_comes_up_within_the_bound_answers_the_waiting_call(
        pg: PgServer, settings: Settings, connect_attempts: list[str]) -> None:
    async with Client(create_server(settings)) as client:
        await burst(client, 2)
        await anyio.to_thread.run_sync(pg.stop_server)
        try:
            async with anyio.create_task_group() as tg:
                outcome: list = []

                async def call() -> None:
                    outcome.append(await client.call_tool("run_scoped_query", QUERY))

                tg.start_soon(call)
                await anyio.sleep(1.5)  # a cold start: the call waits, retrying
                assert not outcome
                await anyio.to_thread.run_sync(pg.start_server)
        finally:
            if not (pg.data / "postmaster.pid").exists():
                pg.start_server()
        [result] = outcome
        assert not result.is_error, result.content[0].text
        # It waited through the cold start (no answer after 1.5 s), retrying, and the server's return ended it.
        assert connect_attempts.count("failed") >= 2 and connect_attempts[-1] == "ok", connect_attempts
    assert ours(pg) == 0


async def test_a_database_that_stays_down_is_a_clear_error_within_the_bound(
        pg: PgServer, settings: Settings, connect_attempts: list[str]) -> None:
    settings = settings.model_copy(update={"connect_timeout_s": 2.0})
    await anyio.to_thread.run_sync(pg.stop_server)
    try:
        async with Client(create_server(settings)) as client:
            result = await client.call_tool("run_scoped_query", QUERY)
            assert result.is_error
            message = result.content[0].text
            assert f"Cannot connect to 127.0.0.1:{pg.port}/neondb within 2 s" in message, message
            assert "Connection refused" in message and PASSWORD not in message
            # Retried with backoff until connect_timeout_s (the message says the bound), not refused at once.
            assert len(connect_attempts) >= 2 and set(connect_attempts) == {"failed"}, connect_attempts
            # Tools that need no database answer at once: they do not even try to connect.
            tried = len(connect_attempts)
            spec = await client.call_tool("read_schema_spec", {})
            assert not spec.is_error and len(connect_attempts) == tried
            diff = await client.call_tool("diff_models_vs_spec", {})
            assert not diff.is_error, diff.content[0].text
    finally:
        await anyio.to_thread.run_sync(pg.start_server)
