"""explain_indexes with hypopg, on Debian's PostgreSQL 15 and its postgresql-15-hypopg package (as on Neon).

Two databases on one server, each the reference schema (specs/database/schema.md) with the
(user_id, created_at DESC) index on tasks dropped, 50 users x 1,000 tasks:

* ``hypo``: the extension created (``CREATE EXTENSION hypopg``), owned by a login role that is not a
  superuser, as Neon's ``neondb_owner``. PostgreSQL 15's hypopg 1.3.1 is not a trusted extension, so the
  superuser creates it, as Neon does for its owners; the tool then runs as the owner.
* ``plain``: hypopg available on the server but not created in the database. The tool does not create
  it (that would change the database; inside a rolled-back transaction it would also leave the library
  and its hypothetical index in the session): the candidates are built in a rolled-back transaction.

hypopg keeps its hypothetical indexes in the server session's memory: a ROLLBACK does not remove them.
Each test looks at the very session the tool used (the same connection, or the one server session of a
PgBouncer pool of size 1) for anything left behind. hypopg 1.3.1 lists them in the view
``hypopg_list_indexes`` (a view, not a function).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import psycopg
import pytest

from schema_architect.tools.explain_indexes import explain_indexes, recommendations
from schema_architect.tools.explain_indexes.session import Stmt
from schema_architect.tools.spec.reader import parse_spec

from conftest import load_reference_without_newest_index, require
from pgservers import REPO, PgBouncer, PgServer, create_database, missing

pytestmark = pytest.mark.anyio

SPEC_PATH = "specs/database/schema.md"
HYPOPG_CONTROL = Path(os.environ.get("SCHEMA_ARCHITECT_HYPOPG_CONTROL",
                                    "/usr/share/postgresql/15/extension/hypopg.control"))
OWNER, OWNER_PASSWORD = "neondb_owner", "npg_0wnerPassw0rd"
NEWEST = "SELECT * FROM tasks WHERE user_id = 'u7' ORDER BY created_at DESC LIMIT 50"

FINGERPRINT = """
    SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
        SELECT concat_ws(':', c.oid, c.relname, c.relkind, c.relnamespace) AS x FROM pg_class c
        UNION ALL SELECT concat_ws(':', i.indexrelid, i.indrelid, i.indisvalid, i.indkey::text) FROM pg_index i
        UNION ALL SELECT 'ext:' || extname FROM pg_extension) q
"""


def _spec():
    return parse_spec((REPO / SPEC_PATH).read_text(encoding="utf-8"), SPEC_PATH).schema


def _build(pg: PgServer, name: str, hypopg: bool) -> None:
    url = create_database(pg.admin_url, name)
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO {OWNER}')
    if hypopg:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")
            # as if the owner had created it (on Neon it does): the listing view is then the owner's
            conn.execute(f"GRANT SELECT ON hypopg_list_indexes TO {OWNER}")
    with psycopg.connect(_owner_url(pg, name), autocommit=True) as conn:
        load_reference_without_newest_index(conn, users=50, tasks=50_000)


@pytest.fixture(scope="module")
def servers():
    require(missing())
    if not HYPOPG_CONTROL.exists():
        require(f"missing {HYPOPG_CONTROL}; install with: apt-get install -y --no-install-recommends "
                "postgresql-15-hypopg (.ci/run does this when it is missing)")
    with PgServer() as pg:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{OWNER_PASSWORD}'")
        _build(pg, "hypo", hypopg=True)
        _build(pg, "plain", hypopg=False)
        with PgBouncer(pg, pool_size=1) as bouncer:  # one server session: every client lands on it
            yield pg, bouncer


def _owner_url(pg: PgServer, db: str) -> str:
    return pg.url(db, user=OWNER, password=OWNER_PASSWORD)


def _fingerprint(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(FINGERPRINT).fetchone()[0]


async def _left_on(conn: psycopg.AsyncConnection) -> list[tuple]:
    """The hypothetical indexes on this connection's server session."""
    return await (await conn.execute("SELECT * FROM hypopg_list_indexes")).fetchall()


async def _later_plan_indexes(conn: psycopg.AsyncConnection) -> list[str]:
    """Index names in the plan of a query another tool might EXPLAIN next on this session."""
    plan = (await (await conn.execute(f"EXPLAIN (FORMAT JSON) {NEWEST}")).fetchone())[0]
    return [part.split('"')[0] for part in json.dumps(plan).split('"Index Name": "')[1:]]


async def _hypothetical_in_later_plan(conn: psycopg.AsyncConnection) -> list[str]:
    """Hypothetical indexes (hypopg names them ``<oid>...``) a later EXPLAIN on this session would use."""
    return [name for name in await _later_plan_indexes(conn) if name.startswith("<")]


def _newest_rec(result):
    return next(r for r in result.recommendations if "(user_id, created_at DESC)" in r.ddl)


# ---------------------------------------------------------------------------------------------------
# hypopg created in the database


async def test_hypopg_checks_the_missing_index_and_leaves_nothing_behind(servers) -> None:
    pg, _ = servers
    url = _owner_url(pg, "hypo")
    before = _fingerprint(url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        plan_before = await _later_plan_indexes(conn)
        result = await explain_indexes(spec=_spec(), conn=conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert await _left_on(conn) == [], "a hypothetical index outlived explain_indexes on its session"
        assert await _later_plan_indexes(conn) == plan_before, "a later EXPLAIN on the session changed"
        assert await _hypothetical_in_later_plan(conn) == []
        again = await explain_indexes(spec=_spec(), conn=conn)  # a second call sees the same database
        assert await _left_on(conn) == []
    assert _fingerprint(url) == before, "explain_indexes changed the catalog"

    assert result.server_version is not None and result.server_version // 10000 == 15
    rec = _newest_rec(result)
    assert rec.checked_how == "hypopg"
    assert rec.cost_before is not None and rec.cost_after is not None and rec.cost_after < rec.cost_before
    assert rec.cost_after < rec.cost_before / 2
    assert all(q.uses_new_index for q in rec.queries)
    assert not any("Built for real" in n for n in rec.notes)
    assert not any("hypopg" in n for n in result.notes), result.notes
    # The evidence of the second call is not skewed by a leftover of the first.
    assert [(e.query, e.chosen, e.forced) for e in again.evidence] == \
        [(e.query, e.chosen, e.forced) for e in result.evidence]
    assert [(r.ddl, r.cost_before, r.cost_after) for r in again.recommendations] == \
        [(r.ddl, r.cost_before, r.cost_after) for r in result.recommendations]
    # catalog, plans, every candidate's hypopg transaction in one message
    assert result.round_trips <= 3 < result.statements


async def test_hypopg_takes_no_table_lock(servers) -> None:
    """An open writer holds ROW EXCLUSIVE on tasks: a test build (SHARE) would wait for it and give up
    after lock_timeout; hypopg checks the index anyway, and a second writer is never held up."""
    pg, _ = servers
    url = _owner_url(pg, "hypo")
    before = _fingerprint(url)
    lock_ms = 500
    holder = await psycopg.AsyncConnection.connect(url)
    writer = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await holder.execute("UPDATE tasks SET title = title WHERE id = 1")  # open transaction: ROW EXCLUSIVE
    # A writer queued behind a SHARE request would wait the call's whole lock_timeout: its own, shorter one
    # turns any such wait into an error (SQLSTATE 55P03) instead of a delay to measure.
    await writer.execute(f"SET lock_timeout = {lock_ms // 5}")
    written: list[str] = []
    result = None

    async def run() -> None:
        nonlocal result
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            result = await explain_indexes(spec=_spec(), conn=conn, table="tasks", lock_timeout_ms=lock_ms)
            assert await _left_on(conn) == []

    async def write() -> None:
        for _ in range(10):  # writes all along the call
            try:
                await writer.execute("INSERT INTO tasks (user_id, title) VALUES ('u1', 'written meanwhile')")
                written.append("inserted")
            except psycopg.errors.LockNotAvailable:
                written.append("held up by a lock")
            await anyio.sleep(0.02)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(write)
        locks = await (await holder.execute(
            "SELECT mode FROM pg_locks WHERE relation = 'tasks'::regclass AND pid <> pg_backend_pid()")).fetchall()
    finally:
        await holder.rollback()
        await writer.execute("DELETE FROM tasks WHERE title = 'written meanwhile'")
        await holder.close()
        await writer.close()
    assert locks == []  # nobody else still holds or waits for a lock on tasks
    assert result is not None
    rec = _newest_rec(result)
    assert rec.checked_how == "hypopg", rec.checked_how  # not "not checked: ... locked by another transaction"
    assert rec.cost_after is not None and rec.cost_before is not None and rec.cost_after < rec.cost_before
    assert written == ["inserted"] * 10, written  # the writer never waited on a lock
    assert _fingerprint(url) == before


async def test_a_failed_hypopg_transaction_leaves_nothing_behind(servers, monkeypatch) -> None:
    """A statement failing after hypopg_create_index skips the hypopg_reset() at the end of the
    transaction: the clean-up after the rollback must reset it."""
    pg, _ = servers
    url = _owner_url(pg, "hypo")
    real = recommendations._trial_body

    def failing(run, t, use_hypopg):
        real(run, t, use_hypopg)
        t.body.insert(t.create_at + 1, Stmt("SELECT 1 / 0"))

    monkeypatch.setattr(recommendations, "_trial_body", failing)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        result = await explain_indexes(spec=_spec(), conn=conn, table="tasks")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert await _left_on(conn) == [], "a failed check left its hypothetical index on the session"
        assert await _hypothetical_in_later_plan(conn) == []
    rec = _newest_rec(result)
    assert rec.checked_how.startswith("not checked:") and "division by zero" in rec.checked_how


async def test_through_pgbouncer_no_hypothetical_index_stays_on_the_pooled_session(servers) -> None:
    pg, bouncer = servers
    url = bouncer.url("hypo")  # pool of 1: every client below shares one server session

    async def call() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as conn:
            result = await explain_indexes(spec=_spec(), conn=conn, table="tasks")
            assert _newest_rec(result).checked_how == "hypopg"

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(call)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as conn:
        assert await _left_on(conn) == [], "a hypothetical index was left on the pooled server session"
        assert await _hypothetical_in_later_plan(conn) == []


# ---------------------------------------------------------------------------------------------------
# hypopg available on the server, not created in the database


async def test_hypopg_available_but_not_created_is_not_created(servers) -> None:
    """Even as the superuser (who could create it), the tool neither creates hypopg nor loads its library
    into the session: it builds the candidate in a rolled-back transaction and says how to get hypopg."""
    pg, _ = servers
    before = _fingerprint(pg.url("plain"))
    for url in (pg.url("plain"), _owner_url(pg, "plain")):
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            result = await explain_indexes(spec=_spec(), conn=conn)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            loaded = await (await conn.execute(
                "SELECT count(*) FROM pg_settings WHERE name LIKE 'hypopg.%'")).fetchone()
            assert loaded == (0,), "hypopg's library was loaded into the session"
            assert await _hypothetical_in_later_plan(conn) == []
        rec = _newest_rec(result)
        assert rec.checked_how == "transaction"
        assert rec.cost_before is not None and rec.cost_after is not None and rec.cost_after < rec.cost_before
        assert any("Built for real" in n for n in rec.notes)
        assert any("not created in this database" in n and "CREATE EXTENSION hypopg" in n for n in result.notes)
        assert result.round_trips <= 4
    assert _fingerprint(pg.url("plain")) == before, "the extension (or an index) was created"
    with psycopg.connect(pg.url("plain"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() == (1,)
