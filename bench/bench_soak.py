"""Soak over streamable HTTP: quick callers, slow callers and clients that leave, for a while. Loopback only.

Run: python bench/bench_soak.py            (60 s)
     python bench/bench_soak.py --long     (10 minutes)
     python bench/bench_soak.py --seconds N

Starts a private embedded PostgreSQL with the reference spec's todo schema (_common.py's seed), then
``schema-architect serve --transport http`` on a free loopback port, pool of 5, statement timeout 5 s, and
runs for the duration, all at once:

- QUICK (10) clients, each its own session, calling run_scoped_query (a user's 20 newest tasks) in a loop;
- SLOW (4) clients, each its own session, each keeping four queries that run into the statement timeout
  in flight (more than their share: the server answers some "busy");
- LEAVERS (3) loops, each opening a client, starting a query that would run to the timeout, and leaving
  after 0.3 s (the query must be cancelled in PostgreSQL, its slot kept until then).

Every 10 s it prints one line of the curve: quick calls done, their p50/p99 in that window, slow and busy
answers, leavers gone, the most backends of ours seen on the server (pg_stat_activity, sampled every
50 ms; never above the pool), and the server's RSS. A leak shows as RSS climbing window after window;
the pool's fair shares show as the quick p50 staying flat while the slow callers keep every share they
may have. At the end: the whole run's figures, and exit 1 if a quick call failed or backends exceeded
the pool.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import anyio
import psutil
import psycopg
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OurBackends, TodoServer, pct  # noqa: E402

POOL_MAX, TIMEOUT_MS = 5, 5000
QUICK, SLOW_EACH = 10, 4
SLOW, LEAVERS = int(os.environ.get("BENCH_SLOW", 4)), int(os.environ.get("BENCH_LEAVERS", 3))  # 0 0: the baseline
WINDOW_S = 10.0
QUICK_SQL = "SELECT id, title FROM tasks WHERE NOT completed ORDER BY created_at DESC LIMIT 20"
ENDLESS = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


class Stats:
    def __init__(self) -> None:
        self.quick: list[float] = []
        self.quick_errors: list[str] = []
        self.slow = self.busy = self.left = 0
        self.backends_max = 0

    def take(self) -> Stats:
        """This window's figures; the counters start again."""
        out, fresh = Stats(), Stats()
        out.__dict__.update(self.__dict__)
        self.__dict__.update(fresh.__dict__)
        return out


class Backends(OurBackends):
    """Our backends on the server, every 50 ms, the most also kept in each of ``stats_of``."""

    def __init__(self, admin_url: str, stats_of: list[Stats]) -> None:
        super().__init__(admin_url, every_s=0.05)
        self.stats_of = stats_of

    def seen(self, n: int) -> None:
        for stats in self.stats_of:
            stats.backends_max = max(stats.backends_max, n)


async def soak(url: str, seconds: float, window: Stats, whole: Stats, rss: psutil.Process) -> list[str]:
    stop_at = time.monotonic() + seconds
    curve: list[str] = []

    def both(attr: str, value=1) -> None:
        for s in (window, whole):
            setattr(s, attr, getattr(s, attr) + value)

    async def quick(k: int) -> None:
        async with Client(url) as client:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                result = await client.call_tool("run_scoped_query", {"sql": QUICK_SQL, "user_id": f"u{k}"})
                elapsed = (time.perf_counter() - started) * 1000
                if result.is_error:
                    text = result.content[0].text[:200]
                    window.quick_errors.append(text)
                    whole.quick_errors.append(text)
                else:
                    window.quick.append(elapsed)
                    whole.quick.append(elapsed)

    async def slow(k: int) -> None:
        async with Client(url, mode="legacy") as client:  # a session: the server's unit of fair shares

            async def one() -> None:
                while time.monotonic() < stop_at:
                    result = await client.call_tool("run_scoped_query", {"sql": ENDLESS, "user_id": f"u{k}"})
                    if result.is_error and "Busy" in result.content[0].text:
                        both("busy")
                        await anyio.sleep(0.2)
                    else:
                        both("slow")

            async with anyio.create_task_group() as tg:
                for _ in range(SLOW_EACH):
                    tg.start_soon(one)

    async def leaver(k: int) -> None:
        while time.monotonic() < stop_at:
            with anyio.move_on_after(0.3):
                try:
                    async with Client(url) as client:
                        await client.call_tool("run_scoped_query", {"sql": ENDLESS, "user_id": f"u{k}"})
                except Exception:  # noqa: BLE001 (leaving is the point)
                    pass
            both("left")
            await anyio.sleep(0.2)

    async def report() -> None:
        t0 = time.monotonic()
        while time.monotonic() < stop_at:
            await anyio.sleep(WINDOW_S)
            w = window.take()
            line = (f"{time.monotonic() - t0:6.0f} s  quick {len(w.quick):5d} calls p50 {pct(w.quick, 0.5):6.1f} ms "
                    f"p99 {pct(w.quick, 0.99):7.1f} ms, errors {len(w.quick_errors)}; slow {w.slow:3d} busy "
                    f"{w.busy:3d}; left {w.left:3d}; backends max {w.backends_max}; "
                    f"RSS {rss.memory_info().rss / 2**20:6.1f} MiB")
            print(line, flush=True)
            curve.append(line)

    async with anyio.create_task_group() as tg:
        tg.start_soon(report)
        for k in range(QUICK):
            tg.start_soon(quick, k)
        for k in range(SLOW):
            tg.start_soon(slow, 10 + k)
        for k in range(LEAVERS):
            tg.start_soon(leaver, 14 + k)
    return curve


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long", action="store_true", help="10 minutes")
    parser.add_argument("--seconds", type=float, default=None)
    ns = parser.parse_args()
    seconds = ns.seconds or (600.0 if ns.long else 60.0)
    served = TodoServer("soak", {"SCHEMA_ARCHITECT_POOL_MAX_SIZE": str(POOL_MAX),
                                 "SCHEMA_ARCHITECT_STATEMENT_TIMEOUT_MS": str(TIMEOUT_MS)}, "--host", "127.0.0.1")
    try:
        if not served.start():
            return 1
        proc = served.proc
        rss = psutil.Process(proc.pid)
        print(f"soak {seconds:g} s: {QUICK} quick clients, {SLOW} slow clients x {SLOW_EACH} endless queries, "
              f"{LEAVERS} leaving loops; pool {POOL_MAX}, statement timeout {TIMEOUT_MS} ms; "
              f"RSS at start {rss.memory_info().rss / 2**20:.1f} MiB", flush=True)
        window, whole = Stats(), Stats()
        sampler = Backends(served.admin_url, [window, whole])
        sampler.start()
        anyio.run(soak, served.mcp_url, seconds, window, whole, rss)
        time.sleep(1.0)
        sampler.stop.set()
        sampler.join(timeout=5)
        with psycopg.connect(served.admin_url, autocommit=True) as c:
            active = c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'schema-architect' "
                               "AND state = 'active'").fetchone()[0]
        started = time.monotonic()
        proc.terminate()
        code = proc.wait(timeout=30)
        print(f"\nwhole run: quick {len(whole.quick)} calls, p50 {pct(whole.quick, 0.5):.1f} ms, "
              f"p99 {pct(whole.quick, 0.99):.1f} ms, {len(whole.quick_errors)} errors; slow answered "
              f"{whole.slow}, busy {whole.busy}; clients that left {whole.left}; backends max {sampler.max} "
              f"(pool {POOL_MAX}); still active 1 s after the end: {active}; SIGTERM -> exit {code} in "
              f"{time.monotonic() - started:.1f} s")
        for line in whole.quick_errors[:5]:
            print(f"  quick error: {line}")
        return 0 if not whole.quick_errors and sampler.max <= POOL_MAX and code == 0 else 1
    finally:
        served.stop()


if __name__ == "__main__":
    sys.exit(main())
