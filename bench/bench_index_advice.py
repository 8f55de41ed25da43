"""Index advice for a whole workload (issue 30): our set against none and against one index per column.

A todo schema (users, tasks, tags, task_tags) with 300,000 tasks over 2,000 users, only the primary keys
and the owner / foreign-key indexes the house rules require. Eight typical queries: a user's newest tasks,
open tasks, a tag join, a due-date range, a count, an ILIKE search, a dashboard aggregate, a CTE.

1. explain_indexes (hypopg, PostgreSQL 15 as on Neon) proposes its set for the workload.
2. In a scratch database (the same data), three index sets are created for real, one after the other:
   ``none`` (the required indexes only), ``per-column`` (one index on every column the workload filters
   on) and ``ours``; for each, every query runs with EXPLAIN (ANALYZE, BUFFERS) (median of 5 runs, one
   warm-up, the first user's values), the added indexes' size is read, and the WAL of 2,000 single-row
   INSERTs into tasks is measured (pg_current_wal_insert_lsn before and after, full-page images
   excluded by a CHECKPOINT first and writes to already-touched pages).

Figures only, no pass/fail.

    python bench/bench_index_advice.py              # starts Debian's PostgreSQL 15 (tests/pgservers.py)
    python bench/bench_index_advice.py --tasks 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from workload_schema import WORKLOAD_SCHEMA  # noqa: E402

from schema_architect.tools.explain_indexes import explain_indexes  # noqa: E402


def load(url: str, users: int, tasks: int) -> None:
    tags = users * 20
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WORKLOAD_SCHEMA)
        conn.execute("INSERT INTO users SELECT 'u' || g, 'u' || g || '@example.com' FROM generate_series(1, %s) g",
                     (users,))
        conn.execute("INSERT INTO tasks (user_id, title, completed, priority, due_at, created_at) "
                     "SELECT 'u' || (g %% %s + 1), 'task ' || g || CASE WHEN g %% 50 = 0 THEN ' invoice' ELSE '' END, "
                     "(g / %s) %% 4 <> 0, (ARRAY['low','medium','high'])[g %% 3 + 1], "
                     "now() + (((g / %s) * 37) %% 120 - 30) * interval '1 day', now() - g * interval '1 minute' "
                     "FROM generate_series(1, %s) g", (users, users, users, tasks))
        conn.execute("INSERT INTO tags (user_id, name) SELECT 'u' || (g %% %s + 1), 'tag' || (g / %s) "
                     "FROM generate_series(1, %s) g", (users, users, tags))
        conn.execute("INSERT INTO task_tags SELECT g, ((g::bigint * 7919) %% %s) + 1 FROM generate_series(1, %s) g",
                     (tags, tasks))
        conn.execute("VACUUM ANALYZE")


#: (name, SQL as the app sends it, the values the bench runs it with)
WORKLOAD = [
    ("newest", "SELECT * FROM tasks WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50", ["u7"]),
    ("open newest", "SELECT * FROM tasks WHERE user_id = $1 AND completed = false ORDER BY created_at DESC LIMIT 50",
     ["u7"]),
    ("tag join", "SELECT t.id, t.title FROM tasks t JOIN task_tags tt ON tt.task_id = t.id JOIN tags g "
                 "ON g.id = tt.tag_id WHERE g.user_id = $1 AND g.name = $2 ORDER BY t.created_at DESC LIMIT 50",
     ["u7", "tag3"]),
    ("due range", "SELECT id, title, due_at FROM tasks WHERE user_id = $1 AND due_at >= $2 AND due_at < $3 "
                  "ORDER BY due_at", ["u7", "now()", "now() + interval '7 days'"]),
    ("count open", "SELECT count(*) FROM tasks WHERE user_id = $1 AND completed = false", ["u7"]),
    ("ilike", "SELECT id, title FROM tasks WHERE user_id = $1 AND title ILIKE '%' || $2 || '%' LIMIT 20",
     ["u7", "invoice"]),
    ("dashboard", "SELECT priority, count(*) FILTER (WHERE completed) AS done, count(*) AS total FROM tasks "
                  "WHERE user_id = $1 AND created_at >= $2 GROUP BY priority", ["u7", "now() - interval '90 days'"]),
    ("cte recent", "WITH recent AS (SELECT id FROM tasks WHERE user_id = $1 AND created_at >= $2) "
                   "SELECT count(*) FROM recent JOIN task_tags tt ON tt.task_id = recent.id",
     ["u7", "now() - interval '30 days'"]),
]


def _literal(sql: str, values: list[str]) -> str:
    for i in range(len(values), 0, -1):
        v = values[i - 1]
        sql = sql.replace(f"${i}", v if v.startswith("now()") else "'" + v.replace("'", "''") + "'")
    return sql


def per_column_set() -> list[str]:
    """One single-column index on every column the workload filters on (not already indexed)."""
    return ["CREATE INDEX bench_pc_1 ON tasks (completed)", "CREATE INDEX bench_pc_2 ON tasks (created_at)",
            "CREATE INDEX bench_pc_3 ON tasks (due_at)", "CREATE INDEX bench_pc_4 ON tags (name)",
            "CREATE INDEX bench_pc_5 ON task_tags (task_id)", "CREATE INDEX bench_pc_6 ON tasks (title)"]


def measure(url: str, ddl: list[str], label: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        before = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        for statement in ddl:
            conn.execute(statement.replace(" CONCURRENTLY", ""))
        conn.execute("VACUUM ANALYZE")
        added = [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
                 if r[0] not in before]
        size = sum(conn.execute("SELECT pg_relation_size(%s::regclass)", (n,)).fetchone()[0] for n in added)
        queries = {}
        for name, sql, values in WORKLOAD:
            text = _literal(sql, values)
            conn.execute(text).fetchall()  # warm-up
            runs = []
            for _ in range(5):
                plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {text}").fetchone()[0][0]
                root = plan["Plan"]
                blocks = root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0)
                runs.append((plan["Execution Time"], blocks))
            queries[name] = {"ms": statistics.median(r[0] for r in runs), "buffers": runs[-1][1]}
        # WAL per insert: a checkpoint first, then a warm-up batch so the pages are already in the WAL
        # once (no full-page images in the measured batch)
        insert = ("INSERT INTO tasks (user_id, title, priority, due_at) SELECT 'u' || (g % 2000 + 1), 'new ' || g, "
                  "'low', now() FROM generate_series(1, 2000) g")
        conn.execute("CHECKPOINT")
        with conn.transaction():
            for _ in range(1):
                conn.execute(insert)
        lsn0 = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        with conn.transaction():
            conn.execute(insert)
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn0,)).fetchone()[0]
        conn.execute("DELETE FROM tasks WHERE title LIKE 'new %'")
        for n in added:
            conn.execute(f'DROP INDEX "{n}"')
        conn.execute("VACUUM ANALYZE")
    return {"label": label, "ddl": ddl, "size": size, "wal_per_insert": float(wal) / 2000, "queries": queries}


async def advise(url: str) -> tuple[object, float]:
    started = time.monotonic()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        result = await explain_indexes(spec=None, conn=conn, queries=[sql for _, sql, _ in WORKLOAD])
    return result, time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--tasks", type=int, default=300_000)
    ap.add_argument("--json", help="write the raw figures here")
    args = ap.parse_args()
    from pgservers import PgServer, create_database

    t0 = time.monotonic()
    with PgServer() as pg:
        advice_url = create_database(pg.admin_url, "advice")
        scratch_url = create_database(pg.admin_url, "scratch")
        with psycopg.connect(advice_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")
        load(advice_url, args.users, args.tasks)
        load(scratch_url, args.users, args.tasks)
        result, seconds = asyncio.run(advise(advice_url))
        ours = [r.ddl for r in result.recommendations]
        print(f"explain_indexes: {seconds:.2f} s, {result.round_trips} round trips, server {result.server_version}")
        for r in result.recommendations:
            print(f"  {r.ddl}\n    serves {len(r.serves)}: {r.serves}\n    size {r.size_bytes}, WAL/insert "
                  f"{r.wal_bytes_per_insert}, workload without it {r.workload_cost_without}")
        if result.workload:
            w = result.workload
            print(f"  workload cost {w.cost_before:.0f} -> {w.cost_after:.0f}; {w.considered}")
        sets = [measure(scratch_url, [], "none"), measure(scratch_url, per_column_set(), "per-column"),
                measure(scratch_url, ours, "ours")]
    print()
    print("| query | " + " | ".join(f"{s['label']} buffers | {s['label']} ms" for s in sets) + " |")
    print("|---|" + "---:|---:|" * len(sets))
    for name, _, _ in WORKLOAD:
        print(f"| {name} | " + " | ".join(f"{s['queries'][name]['buffers']} | {s['queries'][name]['ms']:.2f}"
                                         for s in sets) + " |")
    print("| **added index size** | " + " | ".join(f"{s['size'] / 1024 / 1024:.1f} MB | " for s in sets) + "|")
    print("| **WAL per insert (bytes)** | " + " | ".join(f"{s['wal_per_insert']:.0f} | " for s in sets) + "|")
    print(f"\ntotal {time.monotonic() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"sets": sets, "advice": result.model_dump(mode="json")}, indent=1))


if __name__ == "__main__":
    main()
