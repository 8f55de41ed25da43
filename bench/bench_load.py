"""Load over streamable HTTP: 200 concurrent tool calls from 20 clients. Run: python bench/bench_load.py

Starts a private embedded PostgreSQL with the reference spec's todo schema (20 users, 50 tasks each),
then ``schema-architect serve --transport http`` as a subprocess on a free loopback port with
DATABASE_URL pointing at it and a pool of at most 5 connections. 20 MCP clients connect and send 200
calls at once (10 each), mixed: run_scoped_query (each call a different user), read_schema_spec, and
diff_models_vs_spec with include_database. Twice: a warm-up round, then the measured round.
BENCH_ONLY=run_scoped_query sends that tool alone; BENCH_CALLS sets the calls per client.

Prints: calls answered / errors / lost, p50 and p99 latency (overall and per tool), the most
connections our server held (pg_stat_activity rows with application_name=schema-architect, sampled
every 20 ms during the run), and the server's RSS before and after each round (psutil).
Exits 1 if a call is lost or fails, or if the pool held more than 5 connections.
"""

from __future__ import annotations

import os
import sys
import time

import anyio
import psutil
from _common import USERS, OurBackends, TodoServer, pct
from mcp import Client

CLIENTS, POOL_MAX = int(os.environ.get("BENCH_CLIENTS", 20)), 5
CALLS_PER_CLIENT = int(os.environ.get("BENCH_CALLS", 10))
ONLY = os.environ.get("BENCH_ONLY")  # e.g. run_scoped_query: that tool alone
CALL_TIMEOUT_S = 120.0
DIFF_SHARE = int(os.environ.get("BENCH_DIFF_SHARE", 1))  # in 20


def call_for(i: int) -> tuple[str, dict]:
    kind = i % 20  # 1 in 20 a diff: each imports the models in a child Python process (~1 s of CPU)
    if ONLY == "run_scoped_query":
        kind = 7
    if kind < DIFF_SHARE:
        return "diff_models_vs_spec", {"include_database": True}
    if kind < 7:
        return "read_schema_spec", {}
    return "run_scoped_query", {
        "sql": "SELECT id, title FROM tasks WHERE NOT completed ORDER BY created_at DESC LIMIT 20",
        "user_id": f"u{i % USERS}"}


async def round_(url: str) -> tuple[dict[str, list[float]], list[str], int]:
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    lost: list[str] = []
    answered = 0

    async def client_run(k: int) -> None:
        try:
            async with Client(url, read_timeout_seconds=CALL_TIMEOUT_S) as client:

                async def one(i: int) -> None:
                    nonlocal answered
                    name, arguments = call_for(i)
                    started = time.perf_counter()
                    try:
                        with anyio.fail_after(CALL_TIMEOUT_S):
                            result = await client.call_tool(name, arguments)
                    except Exception as exc:  # noqa: BLE001 (a lost call is counted, not fatal)
                        lost.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                        return
                    latencies.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                    answered += 1
                    if result.is_error:
                        errors.append(f"{name}: {result.content[0].text[:200]}")

                async with anyio.create_task_group() as tg:
                    for j in range(CALLS_PER_CLIENT):
                        tg.start_soon(one, k * CALLS_PER_CLIENT + j)
        except Exception as exc:  # noqa: BLE001 (the client's transport failed: its open calls are lost)
            leaves = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            while any(isinstance(e, BaseExceptionGroup) for e in leaves):
                leaves = [x for e in leaves for x in (e.exceptions if isinstance(e, BaseExceptionGroup) else [e])]
            lost.append(f"client {k} transport failed: {', '.join(type(e).__name__ for e in leaves)}")

    async with anyio.create_task_group() as tg:
        for k in range(CLIENTS):
            tg.start_soon(client_run, k)
    return latencies, errors + lost, answered


def main() -> int:
    served = TodoServer("load", {"SCHEMA_ARCHITECT_POOL_MAX_SIZE": str(POOL_MAX)})
    try:
        if not served.start():
            return 1
        print(f"server listening after {served.listening_ms:.0f} ms "
              f"(pool max {POOL_MAX}; {CLIENTS} clients x {CALLS_PER_CLIENT} calls)")
        mcp_url = served.mcp_url
        rss = psutil.Process(served.proc.pid)
        ok = True
        for label in ("warm-up", "measured"):
            before = rss.memory_info().rss
            sampler = OurBackends(served.admin_url, every_s=0.02)
            sampler.start()
            t0 = time.perf_counter()
            latencies, errors, answered = anyio.run(round_, mcp_url)
            wall = time.perf_counter() - t0
            sampler.stop.set()
            sampler.join(timeout=5)
            after = rss.memory_info().rss
            total = CLIENTS * CALLS_PER_CLIENT
            every = [x for xs in latencies.values() for x in xs]
            print(f"\n[{label}] {answered}/{total} answered, {len(errors)} errors, {total - answered} lost, "
                  f"{wall:.1f} s wall, {answered / wall:.1f} calls/s")
            print(f"  all calls: p50 {pct(every, 0.5):.0f} ms, p99 {pct(every, 0.99):.0f} ms")
            for name, xs in sorted(latencies.items()):
                print(f"  {name:22s} n={len(xs):3d}  p50 {pct(xs, 0.5):7.1f} ms  p99 {pct(xs, 0.99):7.1f} ms")
            print(f"  our connections on the server: max {sampler.max} (pool max {POOL_MAX}; "
                  f"{sampler.samples} samples)")
            print(f"  server RSS: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after "
                  f"({(after - before) / 2**20:+.1f} MiB)")
            for line in errors[:5]:
                print(f"  error: {line}")
            ok = ok and not errors and answered == total and sampler.max <= POOL_MAX
        if not ok:
            print("server stderr (tail):\n" + served.log.read_text(errors="replace")[-3000:])
        return 0 if ok else 1
    finally:
        served.stop()


if __name__ == "__main__":
    sys.exit(main())
