"""explain_indexes on a real PostgreSQL: purposes, EXPLAIN evidence, problems, checked recommendations.

One database per module, built once: the reference todo spec (specs/database/schema.md) applied with
schema_ddl, then the (user_id, created_at DESC) index on tasks dropped; 50 users x 2,000 tasks so the
planner uses indexes. Every problem kind is tested through MCP only (tests/test_explain_indexes_through_mcp.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import psycopg
import pytest

from schema_architect.tools.explain_indexes import ExplainError, explain_indexes, session as explain_session
from schema_architect.tools.schema.errors import UnknownTable
from schema_architect.tools.spec.reader import parse_spec

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = "specs/database/schema.md"

pytestmark = pytest.mark.anyio


def _spec():
    return parse_spec((REPO / SPEC_PATH).read_text(encoding="utf-8"), SPEC_PATH).schema


@pytest.fixture(scope="module")
def ref_url(make_reference_database: Callable[..., str]) -> str:
    return make_reference_database("explain_ref", users=50, tasks=100_000)


async def _connect(url: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


FINGERPRINT = """
    SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
        SELECT concat_ws(':', c.oid, c.relname, c.relkind, c.relnamespace) AS x FROM pg_class c
        UNION ALL SELECT concat_ws(':', i.indexrelid, i.indrelid, i.indisvalid, i.indkey::text) FROM pg_index i
        UNION ALL SELECT 'ext:' || extname FROM pg_extension) q
"""


def _fingerprint(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(FINGERPRINT).fetchone()[0]


def _hypopg(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()[0])


# ---------------------------------------------------------------------------------------------------
# Done: the reference schema with the newest-first index dropped


async def test_reference_schema_every_index_explained_and_missing_one_found(ref_url: str) -> None:
    before = _fingerprint(ref_url)
    async with await _connect(ref_url) as conn:
        result = await explain_indexes(spec=_spec(), conn=conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _fingerprint(ref_url) == before, "explain_indexes left something behind"

    assert result.source == "both" and result.database and "db=" in result.database
    names = {e.name for e in result.indexes}
    assert {"tasks_pkey", "idx_tasks_user_completed", "uq_tags_user_name", "idx_task_tags_tag_id",
            "idx_messages_conversation_created", "users_pkey"} <= names
    assert "idx_tasks_user_created" not in names
    for entry in result.indexes:
        assert entry.purposes and entry.evidence, entry.name
        assert entry.size_bytes is not None and entry.idx_scan is not None
        assert "database" in entry.declared_in
    completed = next(e for e in result.indexes if e.name == "idx_tasks_user_completed")
    assert "specs/database/schema.md:42" in completed.declared_in
    assert any("equality on user_id, completed" in p for p in completed.purposes)
    assert any(p.startswith("covers the foreign key (user_id) -> users") for p in completed.purposes)
    assert any("chosen by the planner" in ev for ev in completed.evidence)

    newest = next(e for e in result.evidence if e.query == "List a user's tasks, newest first")
    assert newest.planned_how.startswith("generic plan")
    assert newest.chosen is not None and newest.chosen.sort
    assert "idx_tasks_user_completed" in newest.chosen.indexes

    missing = [p for p in result.problems if p.rule == "index-missing-in-database"]
    assert [p.object for p in missing] == ["tasks.idx_tasks_user_created"]
    assert missing[0].location is not None and missing[0].location.line == 41
    assert "CONCURRENTLY" in (missing[0].fix or "")

    rec = next(r for r in result.recommendations if "(user_id, created_at DESC)" in r.ddl)
    assert rec.ddl.startswith("CREATE INDEX CONCURRENTLY idx_tasks_user_created ON tasks")
    assert rec.checked_how == ("hypopg" if _hypopg(ref_url) else "transaction")
    assert rec.cost_before is not None and rec.cost_after is not None
    assert rec.cost_after < rec.cost_before / 2
    assert all(q.uses_new_index for q in rec.queries)
    assert any("cannot run inside a transaction" in n for n in rec.notes)
    # Nothing else on tasks is worth an index, and the small tables get no cost-based advice.
    assert all(r.table == "public.tasks" for r in result.recommendations)


async def test_small_table_says_planner_prefers_seq_scan_and_forces_it(ref_url: str) -> None:
    async with await _connect(ref_url) as conn:
        result = await explain_indexes(spec=_spec(), conn=conn, table="tags")
    ev = next(e for e in result.evidence if e.query == "List a user's tags by name")
    assert ev.chosen is not None and "tags" in ev.chosen.seq_scans
    assert ev.forced is not None and "uq_tags_user_name" in ev.forced.indexes
    assert "prefers a sequential scan" in ev.verdict and "can serve this query" in ev.verdict
    assert any("tags holds about" in n for n in result.notes)
    uq = next(e for e in result.indexes if e.name == "uq_tags_user_name")
    assert any(s.startswith("usable for") for s in uq.evidence)


async def test_caller_queries_and_the_prepared_fallback_agree(ref_url: str, monkeypatch) -> None:
    sql = "SELECT id, title FROM tasks WHERE user_id = $1 AND completed = $2"
    async with await _connect(ref_url) as conn:
        generic = await explain_indexes(spec=None, conn=conn, table="tasks", queries=[sql])
        monkeypatch.setattr(explain_session, "GENERIC_PLAN_MIN_VERSION", 10**9)
        prepared = await explain_indexes(spec=None, conn=conn, table="tasks", queries=[sql])
    assert generic.source == "database"
    mine = [e for e in generic.evidence if e.origin == "caller"]
    assert len(mine) == 1 and mine[0].needs == ["user_id", "completed"]
    other = next(e for e in prepared.evidence if e.origin == "caller")
    assert mine[0].planned_how.startswith("generic plan")
    assert other.planned_how.startswith("prepared generic plan")
    assert mine[0].chosen and other.chosen
    assert mine[0].chosen.indexes == other.chosen.indexes == ["idx_tasks_user_completed"]
    # The caller's queries replace the spec's patterns: no convention query was planned.
    assert {e.origin for e in generic.evidence} == {"caller", "foreign key"}


async def test_spec_and_database_disagree_both_ways(ref_url: str) -> None:
    spec = _spec()
    tasks = spec.table("tasks")
    tasks.indexes = [ix for ix in tasks.indexes if ix.name != "idx_tasks_user_completed"]
    async with await _connect(ref_url) as conn:
        result = await explain_indexes(spec=spec, conn=conn, table="tasks")
    rules = {(p.rule, p.object) for p in result.problems}
    assert ("index-missing-in-spec", "tasks.idx_tasks_user_completed") in rules
    assert ("index-missing-in-database", "tasks.idx_tasks_user_created") in rules
    # Primary keys and unique constraints the spec implies are not reported as missing.
    assert not any(p.object == "tasks.tasks_pkey" for p in result.problems)


# ---------------------------------------------------------------------------------------------------
# Spec only


async def test_spec_only_mode_gives_purposes_and_static_problems() -> None:
    spec = _spec()
    task_tags = spec.table("task_tags")
    task_tags.indexes = [ix for ix in task_tags.indexes if ix.name != "idx_task_tags_tag_id"]
    result = await explain_indexes(spec=spec, conn=None)
    assert result.source == "spec" and result.database is None and result.statements == 0
    assert result.evidence == []
    assert ("fk-not-indexed", "task_tags.tag_id") in {(p.rule, p.object) for p in result.problems}
    created = next(e for e in result.indexes if e.name == "idx_tasks_user_created")
    assert created.declared_in == ["specs/database/schema.md:41"]
    assert any("rows already in created_at DESC order" in p for p in created.purposes)
    assert any(e.name == "task_tags_pkey" and e.primary for e in result.indexes)
    rec = next(r for r in result.recommendations if "task_tags (tag_id)" in r.ddl)
    assert rec.checked_how.startswith("not checked: no database")


# ---------------------------------------------------------------------------------------------------
# Hypothetical builds: limits and locks


async def test_build_limits_are_respected(ref_url: str) -> None:
    async with await _connect(ref_url) as conn:
        off = await explain_indexes(spec=_spec(), conn=conn, table="tasks", hypothetical=False)
        big = await explain_indexes(spec=_spec(), conn=conn, table="tasks", max_build_rows=10)
    rec = next(r for r in off.recommendations if "created_at DESC" in r.ddl)
    assert rec.checked_how == "not checked: hypothetical=false" and rec.cost_after is None
    if not _hypopg(ref_url):
        rec = next(r for r in big.recommendations if "created_at DESC" in r.ddl)
        assert rec.checked_how.startswith("not checked:") and "max_build_rows=10" in rec.checked_how


async def test_locked_table_gives_up_within_lock_timeout_and_writer_is_not_held(ref_url: str) -> None:
    if _hypopg(ref_url):
        pytest.skip("hypopg takes no lock; the transaction fallback is what this test is about")
    before = _fingerprint(ref_url)
    lock_ms = 600
    holder = await _connect(ref_url)
    writer = await _connect(ref_url)
    await holder.set_autocommit(False)
    await holder.execute("UPDATE tasks SET title = title WHERE id = 1")  # an open writer: ROW EXCLUSIVE
    seen: dict[str, list] = {}
    result = None

    async def run() -> None:
        nonlocal result
        async with await _connect(ref_url) as conn:
            result = await explain_indexes(spec=_spec(), conn=conn, table="tasks", lock_timeout_ms=lock_ms)

    async def locks_on_tasks() -> list[tuple[str, bool]]:
        return await (await holder.execute(
            "SELECT mode, granted FROM pg_locks WHERE relation = 'tasks'::regclass AND pid <> pg_backend_pid()"
            " ORDER BY mode, granted")).fetchall()

    async def write() -> None:
        while ("ShareLock", False) not in (locks := await locks_on_tasks()):
            if result is not None:  # the call ended without ever queueing a test build
                seen["queued"] = locks
                return
            await anyio.sleep(0.02)
        seen["queued"] = locks  # the test build waits behind the holder: an INSERT now queues behind it
        # The holder lets go only after both tasks, so what lets the INSERT through is the build giving up at
        # its lock_timeout. Should it wait on, the writer's own lock_timeout (far longer) ends the wait as an
        # error (SQLSTATE 55P03) rather than a hang.
        await writer.execute(f"SET lock_timeout = {lock_ms * 20}")
        try:
            await writer.execute("INSERT INTO tasks (user_id, title) VALUES ('u1', 'written meanwhile')")
            seen["insert"] = ["inserted while the holder held on"]
        except psycopg.errors.LockNotAvailable:
            seen["insert"] = ["held up until its own lock_timeout"]
        seen["after_insert"] = await locks_on_tasks()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(write)
    finally:
        await holder.rollback()
        await writer.execute("DELETE FROM tasks WHERE title = 'written meanwhile'")
        await holder.close()
        await writer.close()
    assert result is not None
    rec = next(r for r in result.recommendations if "created_at DESC" in r.ddl)
    assert rec.checked_how.startswith("not checked:") and f"lock_timeout={lock_ms} ms" in rec.checked_how
    assert rec.cost_before is not None and rec.cost_after is None
    assert ("ShareLock", False) in seen["queued"], seen
    assert seen["insert"] == ["inserted while the holder held on"], seen
    assert [mode for mode, granted in seen["after_insert"] if not granted] == [], seen  # nothing waits any more
    assert _fingerprint(ref_url) == before


# ---------------------------------------------------------------------------------------------------
# Bad input


async def test_bad_input_raises_explain_error(ref_url: str) -> None:
    async with await _connect(ref_url) as conn:
        with pytest.raises(UnknownTable, match="No table 'nope'") as unknown:
            await explain_indexes(spec=_spec(), conn=conn, table="nope")
        assert "tasks" in unknown.value.for_agent()
        with pytest.raises(ExplainError, match="not valid SQL"):
            await explain_indexes(spec=_spec(), conn=conn, queries=["SELEC * FROM tasks"])
        with pytest.raises(ExplainError, match="exactly one SELECT"):
            await explain_indexes(spec=_spec(), conn=conn, queries=["DELETE FROM tasks"])
        with pytest.raises(ExplainError, match="cannot be planned.*no_such_column"):
            await explain_indexes(spec=_spec(), conn=conn, queries=["SELECT * FROM tasks WHERE no_such_column = 1"])
        with pytest.raises(ExplainError, match="source must be"):
            await explain_indexes(spec=_spec(), conn=conn, source="live")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with pytest.raises(ExplainError, match="needs a reachable database"):
        await explain_indexes(spec=_spec(), conn=None, source="database")
    with pytest.raises(ExplainError, match="Nothing to explain"):
        await explain_indexes(spec=None, conn=None)
    assert issubclass(ExplainError, ValueError)


# ---------------------------------------------------------------------------------------------------
# Round trips: on Neon each costs 5-100 ms


async def test_a_full_call_takes_a_constant_number_of_round_trips(ref_url: str) -> None:
    # A real build (the fallback without hypopg) refreshes the table's pg_class counts in place even when
    # rolled back, so stale counts from an earlier test's writes would change the plans between the calls.
    with psycopg.connect(ref_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    before = _fingerprint(ref_url)
    async with await _connect(ref_url) as conn:
        full = await explain_indexes(spec=_spec(), conn=conn)
        off = await explain_indexes(spec=_spec(), conn=conn, hypothetical=False)
        one = await explain_indexes(spec=_spec(), conn=conn, table="tags")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _fingerprint(ref_url) == before
    checked = [r for r in full.recommendations if r.checked_how in ("hypopg", "transaction")]
    assert checked
    # catalog + index stats + hypopg state; every plan; one transaction per real build (all at once with hypopg)
    assert full.round_trips <= 2 + len(checked), (full.round_trips, full.statements)
    assert off.round_trips == 2 and one.round_trips == 2
    assert full.statements > 10 * full.round_trips  # many statements, few waits
    # Same evidence whether or not candidates are checked: the plans do not depend on the batching.
    checked_plans = [(e.query, e.chosen, e.forced) for e in full.evidence]
    assert checked_plans == [(e.query, e.chosen, e.forced) for e in off.evidence]


async def test_a_connection_inside_a_transaction_is_left_as_it_was(ref_url: str) -> None:
    async with await _connect(ref_url) as conn:
        alone = await explain_indexes(spec=_spec(), conn=conn, table="tasks")
        await conn.set_autocommit(False)
        await conn.execute("SELECT 1")  # the caller's own transaction is open
        inside = await explain_indexes(spec=_spec(), conn=conn, table="tasks")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        await conn.rollback()
        idle = await explain_indexes(spec=_spec(), conn=conn, table="tasks")  # not autocommit, idle
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    for other in (inside, idle):
        assert [(e.query, e.chosen, e.forced) for e in other.evidence] == \
            [(e.query, e.chosen, e.forced) for e in alone.evidence]
        assert [(r.ddl, r.cost_before, r.cost_after) for r in other.recommendations] == \
            [(r.ddl, r.cost_before, r.cost_after) for r in alone.recommendations]
