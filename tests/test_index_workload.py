"""explain_indexes' workload advice (issue 30): every table of a join, one set for the whole workload.

A todo schema (users, tasks, tags, task_tags) with the owner and foreign-key indexes only, small enough
to stay fast (40 users, 20,000 tasks, 60,000 tags). The same data on Debian's PostgreSQL 15 with hypopg created, and
on the embedded PostgreSQL 18 without it (rolled-back builds, and skip scan).
"""

from __future__ import annotations

import psycopg
import pytest
from workload_schema import WORKLOAD_SCHEMA

from schema_architect.tools.explain_indexes import explain_indexes
from schema_architect.tools.explain_indexes.reading import needs_per_table
from schema_architect.tools.schema.model import Column, Schema, Table

from pgservers import PgServer, create_database, missing

pytestmark = pytest.mark.anyio

SCHEMA = WORKLOAD_SCHEMA + """
INSERT INTO users SELECT 'u' || g, 'u' || g || '@example.com' FROM generate_series(1, 40) g;
INSERT INTO tasks (user_id, title, completed, priority, due_at, created_at)
  SELECT 'u' || (g % 40 + 1), 'task ' || g, g % 3 = 0, (ARRAY['low','medium','high'])[g % 3 + 1],
         now() + (g % 90) * interval '1 day', now() - g * interval '1 minute' FROM generate_series(1, 20000) g;
INSERT INTO tags (user_id, name) SELECT 'u' || (g % 40 + 1), 'tag' || (g / 40) FROM generate_series(1, 60000) g;
INSERT INTO task_tags SELECT g, (g * 7 % 60000) + 1 FROM generate_series(1, 20000) g;
"""


def _load(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("VACUUM ANALYZE")

TAG_JOIN = ("SELECT t.id, t.title FROM tasks t JOIN task_tags tt ON tt.task_id = t.id "
            "JOIN tags g ON g.id = tt.tag_id WHERE g.user_id = $1 AND g.name = $2 ORDER BY t.created_at DESC LIMIT 50")
NEWEST = "SELECT * FROM tasks WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50"
OPEN_NEWEST = "SELECT * FROM tasks WHERE user_id = $1 AND completed = false ORDER BY created_at DESC LIMIT 50"


@pytest.fixture(scope="module")
def pg15():
    if problem := missing():
        pytest.fail(problem)
    with PgServer() as pg:
        url = create_database(pg.admin_url, "workload")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")
        _load(url)
        yield url


@pytest.fixture(scope="module")
def pg18(make_database) -> str:
    url = make_database("workload18")
    _load(url)
    return url


async def _explain(url: str, queries: list[str], **kw):
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await explain_indexes(spec=None, conn=conn, queries=queries, **kw)


def _schema() -> Schema:
    def t(name: str, cols: list[str]) -> Table:
        return Table(name=name, columns=[Column(name=c, type="text") for c in cols])
    return Schema(tables=[t("tasks", ["id", "user_id", "title", "completed", "created_at"]),
                          t("tags", ["id", "user_id", "name"]), t("task_tags", ["task_id", "tag_id"])])


def _needs(sql: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for n in needs_per_table(sql, _schema(), "user_id"):
        out.setdefault(n.table.name, []).append([c.name + (" DESC" if c.descending else "") for c in n.columns])
    return out


# ---------------------------------------------------------------------------------------------------
# Reading each query per table (no database)


def test_a_join_is_read_on_every_table() -> None:
    needs = _needs(TAG_JOIN)
    assert needs["tags"] == [["user_id", "name"]]  # the filter is on tags, not on tasks
    assert needs["task_tags"] == [["task_id"], ["tag_id"]]  # reached through its join keys
    assert needs["tasks"] == [["id"]]  # no filter of its own: its ORDER BY cannot come from an index


def test_ctes_subqueries_and_sublinks_are_read() -> None:
    assert _needs("WITH r AS (SELECT id FROM tasks WHERE user_id = $1 AND created_at > now() - interval '7 days') "
                  "SELECT count(*) FROM r") == {"tasks": [["user_id", "created_at"]]}
    assert _needs("SELECT * FROM (SELECT * FROM tags WHERE user_id = $1) x") == {"tags": [["user_id"]]}
    assert _needs("SELECT * FROM tasks t WHERE t.user_id = $1 AND EXISTS "
                  "(SELECT 1 FROM task_tags tt WHERE tt.task_id = t.id AND tt.tag_id = $2)") == {
        "tasks": [["user_id"]], "task_tags": [["tag_id"]]}
    assert _needs("SELECT completed, count(*) FROM tasks WHERE user_id = $1 GROUP BY completed") == {
        "tasks": [["user_id", "completed"]]}


# ---------------------------------------------------------------------------------------------------
# PostgreSQL 15 with hypopg


async def test_the_join_gets_its_index_on_the_filtered_table(pg15: str) -> None:
    result = await _explain(pg15, [TAG_JOIN])
    [rec] = [r for r in result.recommendations if r.table == "public.tags"]
    assert "(user_id, name)" in rec.ddl and rec.checked_how == "hypopg"
    assert rec.size_bytes and rec.wal_bytes_per_insert and rec.wal_bytes_per_insert >= 56
    assert not [r for r in result.recommendations if r.table == "public.tasks"]
    assert result.workload is not None and result.workload.cost_after < result.workload.cost_before


async def test_one_index_serves_two_queries_that_share_a_prefix(pg15: str) -> None:
    result = await _explain(pg15, [NEWEST, OPEN_NEWEST])
    on_tasks = [r for r in result.recommendations if r.table == "public.tasks"]
    assert len(on_tasks) == 1, [r.ddl for r in on_tasks]
    [rec] = on_tasks
    assert "(user_id, " in rec.ddl and "created_at DESC" in rec.ddl and len(rec.serves) == 2
    w = result.workload
    assert w is not None and w.checked_how == "hypopg" and w.indexes == 1
    assert any("merged" in c or "left out" in c for c in w.considered), w.considered
    assert w.cost_after is not None and w.cost_after < w.cost_before / 2
    assert w.size_bytes and w.wal_bytes_per_insert["public.tasks"] == rec.wal_bytes_per_insert
    assert rec.workload_cost_without is not None and rec.workload_cost_without > w.cost_after


async def test_the_owner_index_is_never_offered_for_dropping(pg15: str) -> None:
    result = await _explain(pg15, [NEWEST, "SELECT count(*) FROM tasks WHERE user_id = $1 AND completed"])
    dropped = [p for p in result.problems if p.fix and "DROP INDEX" in p.fix]
    assert not [p for p in dropped if "ix_tasks_user_id" in (p.object or "")], dropped
    assert not [p for p in result.problems if p.rule == "unused-index" and "tags_user_id" in (p.object or "")]


# ---------------------------------------------------------------------------------------------------
# PostgreSQL 18 without hypopg: rolled-back builds, skip scan


async def test_without_hypopg_the_set_is_proved_by_rolled_back_builds(pg18: str) -> None:
    with psycopg.connect(pg18) as conn:
        before = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'").fetchone()
    result = await _explain(pg18, [NEWEST, OPEN_NEWEST, TAG_JOIN])
    assert result.workload is not None and result.workload.checked_how == "transaction"
    assert len([r for r in result.recommendations if r.table == "public.tasks"]) == 1
    assert any("(user_id, name)" in r.ddl for r in result.recommendations)
    with psycopg.connect(pg18) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'").fetchone() == before


async def test_skip_scan_is_accounted_for(pg18: str) -> None:
    """On 18 an index (completed, created_at) serves a range on created_at by skipping over completed:
    the planner uses it today, and the set without a new (created_at) index is planned too."""
    with psycopg.connect(pg18, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_tasks_completed_created ON tasks (completed, created_at)")
        conn.execute("ANALYZE tasks")
    try:
        result = await _explain(pg18, ["SELECT id FROM tasks WHERE created_at >= $1 AND created_at < $2"])
    finally:
        with psycopg.connect(pg18, autocommit=True) as conn:
            conn.execute("DROP INDEX ix_tasks_completed_created")
    assert result.server_version and result.server_version >= 180000
    [ev] = result.evidence[:1]
    assert ev.chosen is not None and "ix_tasks_completed_created" in ev.chosen.indexes
    recs = [r for r in result.recommendations if "(created_at)" in r.ddl]
    assert result.workload is not None and result.workload.considered[-1].startswith("2 set(s)")
    for r in recs:  # kept only when the planner finds it well below the skip scan
        assert r.workload_cost_without is not None
        assert result.workload.cost_after < r.workload_cost_without / 1.05
