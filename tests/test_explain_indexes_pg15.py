"""explain_indexes on Debian's PostgreSQL 15, directly and through PgBouncer in transaction mode.

PostgreSQL 15 has no ``EXPLAIN (GENERIC_PLAN)``, so every parameterised pattern takes the PREPARE path
(PREPARE, ``plan_cache_mode = force_generic_plan``, EXPLAIN EXECUTE with NULLs, DEALLOCATE): here it
runs for real, not by pretending the server is older. Through PgBouncer (transaction pooling, 2 server
sessions, as Neon's ``-pooler`` hosts) nothing may rely on session state across transactions: each
PREPARE is executed and deallocated inside the one transaction that uses it, so it reaches the same
server session, and none is left behind on any of them.
"""

from __future__ import annotations

import anyio
import psycopg
import pytest

from schema_architect.tools.explain_indexes import explain_indexes
from schema_architect.tools.spec.reader import parse_spec

from conftest import load_reference_without_newest_index, require
from pgservers import REPO, PgBouncer, PgServer, create_database, missing

pytestmark = pytest.mark.anyio

SPEC_PATH = "specs/database/schema.md"


def _spec():
    return parse_spec((REPO / SPEC_PATH).read_text(encoding="utf-8"), SPEC_PATH).schema


@pytest.fixture(scope="module")
def servers():
    require(missing())
    with PgServer() as pg:
        url = create_database(pg.admin_url, "neondb")
        with psycopg.connect(url, autocommit=True) as conn:
            load_reference_without_newest_index(conn, users=50, tasks=50_000)
        with PgBouncer(pg, pool_size=2) as bouncer:
            yield pg, bouncer


def _prepared_left(url: str, tries: int = 6) -> int:
    """Prepared statements on the server session(s) this URL reaches (several tries: several sessions)."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        return sum(conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] for _ in range(tries))


def _check(result) -> None:
    assert result.server_version is not None and result.server_version // 10000 == 15
    with_params = [e for e in result.evidence if "$1" in e.sql]
    assert with_params and all(e.planned_how.startswith("prepared generic plan") for e in with_params)
    newest = next(e for e in result.evidence if e.query == "List a user's tasks, newest first")
    assert newest.chosen is not None and newest.chosen.sort
    assert "idx_tasks_user_completed" in newest.chosen.indexes
    rec = next(r for r in result.recommendations if "(user_id, created_at DESC)" in r.ddl)
    assert rec.checked_how == "transaction"  # hypopg may be available, but this database has not created it
    assert rec.cost_before is not None and rec.cost_after is not None and rec.cost_after < rec.cost_before / 2
    assert all(q.uses_new_index for q in rec.queries)
    # catalog, evidence, the one build: a handful of round trips, however many statements
    assert result.round_trips <= 4 < result.statements


async def test_prepare_path_on_postgresql_15(servers) -> None:
    pg, _ = servers
    url = pg.url("neondb")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        result = await explain_indexes(spec=_spec(), conn=conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        left = await (await conn.execute("SELECT count(*) FROM pg_prepared_statements")).fetchone()
    assert left == (0,), "a PREPAREd statement outlived its transaction"
    _check(result)


async def test_prepare_path_when_the_caller_query_fails(servers) -> None:
    pg, _ = servers
    async with await psycopg.AsyncConnection.connect(pg.url("neondb"), autocommit=True) as conn:
        with pytest.raises(ValueError, match="cannot be planned.*no_such_column"):
            await explain_indexes(spec=None, conn=conn, queries=[
                "SELECT * FROM tasks WHERE user_id = $1", "SELECT * FROM tasks WHERE no_such_column = $1"])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        left = await (await conn.execute("SELECT count(*) FROM pg_prepared_statements")).fetchone()
    assert left == (0,)


async def test_through_pgbouncer_in_transaction_mode(servers) -> None:
    pg, bouncer = servers
    async with await psycopg.AsyncConnection.connect(pg.url("neondb"), autocommit=True) as conn:
        direct = await explain_indexes(spec=_spec(), conn=conn, hypothetical=False)
    url = bouncer.url("neondb")
    results = []

    async def call() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as conn:
            for _ in range(2):
                results.append(await explain_indexes(spec=_spec(), conn=conn))
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    async with anyio.create_task_group() as tg:  # 3 clients on 2 server sessions: they get mixed
        for _ in range(3):
            tg.start_soon(call)
    assert len(results) == 6
    for result in results:
        _check(result)
        assert [(e.query, e.planned_how, e.chosen, e.forced) for e in result.evidence] == \
            [(e.query, e.planned_how, e.chosen, e.forced) for e in direct.evidence]
    assert _prepared_left(url) == 0, "a PREPAREd statement was left on a pooled server session"
