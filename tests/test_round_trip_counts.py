"""Round trips per call of every tool, counted at a proxy between the server and PostgreSQL (issue 31).

Calls go through MCP (the in-memory client) to a server whose DATABASE_URL points at tests/pgproxy.py,
which delays each direction by a few milliseconds and counts the client's turns: a write carrying a
Sync or a Query after the server has answered the previous one. Each tool's count for the example call
of its docs/tools page (tests/test_tool_docs.py's EXAMPLES) is held to the ROUND_TRIPS its module
declares and the page shows, after a pause: every pooled connection counts as idle long enough to be
checked, and none is.
"""

from __future__ import annotations

import importlib

import psycopg
import pytest
from mcp import Client

from schema_architect.server import db as db_module
from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from pgproxy import PgProxy, through, unix_target
from test_tool_docs import EXAMPLES, project  # noqa: F401 (project: the fixture, the same reference project)

pytestmark = pytest.mark.anyio

#: Each direction's delay: far longer than a client takes to write a batch, short enough for a test.
DELAY_S = 0.004


def declared(tool: str) -> int:
    return importlib.import_module(f"schema_architect.tools.{tool}").ROUND_TRIPS[0]


async def test_the_proxy_counts_waits_not_statements(pg_url: str) -> None:
    async with (PgProxy(unix_target(pg_url), delay_s=DELAY_S) as proxy,
                await psycopg.AsyncConnection.connect(through(pg_url, proxy), autocommit=True) as conn):
        before = proxy.snapshot()
        async with conn.pipeline():  # three statements, no wait between them
            for _ in range(3):
                await conn.execute("SELECT 1", prepare=False)
        piped = proxy.snapshot() - before
        before = proxy.snapshot()
        for _ in range(3):  # three statements, each awaited
            await (await conn.execute("SELECT %s::int", [1], prepare=False)).fetchall()
        apart = proxy.snapshot() - before
        before = proxy.snapshot()
        await conn.execute("SELECT 1; SELECT 2")  # one Query message
        simple = proxy.snapshot() - before
    assert piped.round_trips == 1 and piped.executes == 3
    assert apart.round_trips == 3 and apart.syncs == 3
    assert simple.round_trips == 1


async def test_every_tool_takes_its_declared_round_trips_after_any_pause(project, monkeypatch) -> None:  # noqa: F811
    root, url = project
    monkeypatch.setattr(db_module, "CHECK_AFTER_IDLE_S", 0.0)  # every reuse is "after a pause"
    async with PgProxy(unix_target(url), delay_s=DELAY_S) as proxy:
        settings = Settings(project=root, database_url=through(url, proxy), embedded=False)
        async with Client(create_server(settings)) as client:
            first = {}
            for name, arguments in EXAMPLES.items():  # a connection opened, the role read, each shape checked
                before = proxy.snapshot()
                assert not (await client.call_tool(name, arguments)).is_error
                first[name] = (proxy.snapshot() - before).round_trips
            measured, results = {}, {}
            for name, arguments in EXAMPLES.items():
                before = proxy.snapshot()
                result = await client.call_tool(name, arguments)
                assert not result.is_error, (name, result.content)
                counted = proxy.snapshot() - before
                measured[name], results[name] = counted.round_trips, result.structured_content
                assert counted.connections == 0, name
            before = proxy.snapshot()
            await client.read_resource("schema://database/tasks")
            resource = proxy.snapshot() - before
            new_shape = {"sql": "SELECT count(*) FROM tasks", "user_id": "u_alice"}
            before = proxy.snapshot()
            assert not (await client.call_tool("run_scoped_query", new_shape)).is_error
            shape_first = (proxy.snapshot() - before).round_trips
            before = proxy.snapshot()
            assert not (await client.call_tool("run_scoped_query", new_shape)).is_error
            shape_again = (proxy.snapshot() - before).round_trips
    assert measured == {name: declared(name) for name in EXAMPLES}, measured
    assert resource.round_trips == 1
    assert measured["explain_indexes"] == results["explain_indexes"]["round_trips"]  # the result says so too
    assert measured["propose_table"] == 3 + len(results["propose_table"]["dry_run"]["statements"])
    assert (shape_first, shape_again) == (2, 1)  # a new shape: PostgreSQL's analysis of it, once
    # the server's first call of run_scoped_query: the role report and the tables' classification too
    assert first["run_scoped_query"] == 1 + 1 + 2, first


async def test_a_callers_queries_are_checked_in_the_catalogs_round_trip(project) -> None:  # noqa: F811
    root, url = project
    queries = ["SELECT id FROM tasks WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20"]
    async with PgProxy(unix_target(url), delay_s=DELAY_S) as proxy:
        settings = Settings(project=root, database_url=through(url, proxy), embedded=False)
        async with Client(create_server(settings)) as client:
            plain = await client.call_tool("explain_indexes", {"table": "tasks", "hypothetical": False})
            before = proxy.snapshot()
            given = await client.call_tool("explain_indexes", {"table": "tasks", "queries": queries,
                                                                "hypothetical": False})
            counted = (proxy.snapshot() - before).round_trips
            refused = await client.call_tool("explain_indexes", {
                "table": "tasks", "queries": ["SELECT current_setting('app.settings.jwt_secret')::int FROM tasks"]})
    assert not plain.is_error and not given.is_error, given.content
    assert counted == given.structured_content["round_trips"] == plain.structured_content["round_trips"]
    assert refused.is_error
