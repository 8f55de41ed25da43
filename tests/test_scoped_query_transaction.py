"""The one-round-trip transaction of run_scoped_query: read-only before the agent's SQL runs, and
nothing anything inside it did (a view's function included) survives the call.

The call sends set_config(... 'transaction_read_only' ...), the query and ROLLBACK in one pipeline
with no BEGIN (tools/run_scoped_query: layer 3). These tests hold it to what BEGIN READ ONLY ...
ROLLBACK promised, on a connection in autocommit mode and on one that is not.
"""

from __future__ import annotations

import psycopg
import pytest

from schema_architect.tools.run_scoped_query import run_scoped_query
from schema_architect.tools.sqlsafe import ClassificationCache, QueryFailed

pytestmark = pytest.mark.anyio

# Views owned by the app, listed as shared, run functions the agent could not call itself: one that
# changes session settings, one that writes. Both are the database owner's code, which the read-only transaction
# must contain all the same.
FIXTURE = """
CREATE TABLE users (id text PRIMARY KEY);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), title text NOT NULL);
CREATE TABLE audit (id serial PRIMARY KEY, note text);
INSERT INTO users VALUES ('alice'), ('bob');
INSERT INTO tasks (user_id, title) VALUES ('alice', 'a1'), ('bob', 'b1');
CREATE FUNCTION touch_settings() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('app.leak', 'left behind', false);
  PERFORM set_config('statement_timeout', '1', false);
  PERFORM set_config('search_path', 'nowhere', false);
  RETURN 'touched';
END $$;
CREATE FUNCTION write_audit() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit (note) VALUES ('written');
  RETURN 'wrote';
END $$;
CREATE TABLE notices (id serial PRIMARY KEY, body text NOT NULL);
INSERT INTO notices (body) VALUES ('hello');
CREATE VIEW notice_settings AS SELECT n.body, public.touch_settings() AS effect FROM public.notices n;
CREATE VIEW notice_audit AS SELECT n.body, public.write_audit() AS effect FROM public.notices n;
"""


SHARED = ("notice_settings", "notice_audit")


@pytest.fixture(scope="module")
def db_url(make_database) -> str:
    return make_database("scoped_tx", FIXTURE)


SESSION_SQL = ("SELECT coalesce(current_setting('app.leak', true), ''), current_setting('statement_timeout'), "
               "current_setting('search_path'), current_setting('transaction_read_only'), "
               "coalesce(current_setting('app.user_id', true), '')")


@pytest.mark.parametrize("autocommit", [True, False])
async def test_settings_changed_inside_the_query_do_not_survive_it(db_url: str, autocommit: bool) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=autocommit) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(f"{diag.severity}: {diag.message_primary}"))
        result = await run_scoped_query(conn, "SELECT body, effect FROM notice_settings", "alice",
                                        shared_tables=SHARED, cache=ClassificationCache())
        assert result.rows == [["hello", "touched"]]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.autocommit == autocommit
        assert notices == []  # the ROLLBACK of the implicit transaction warns nobody
    with psycopg.connect(db_url, autocommit=True) as fresh:
        expected = fresh.execute(SESSION_SQL).fetchone()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=autocommit) as conn:
        await run_scoped_query(conn, "SELECT body, effect FROM notice_settings", "alice", shared_tables=SHARED,
                               cache=ClassificationCache())
        cur = await conn.execute(SESSION_SQL)
        assert await cur.fetchone() == expected
        assert expected[0] == "" and expected[3] == "off"


@pytest.mark.parametrize("autocommit", [True, False])
async def test_a_view_that_writes_is_stopped_by_the_read_only_transaction(db_url: str, autocommit: bool) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=autocommit) as conn:
        with pytest.raises(QueryFailed) as info:
            await run_scoped_query(conn, "SELECT body, effect FROM notice_audit", "alice", shared_tables=SHARED,
                                   cache=ClassificationCache())
        assert "25006" in str(info.value)  # read_only_sql_transaction
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        # The connection is usable at once, and still not read-only outside the call.
        cur = await conn.execute("SELECT current_setting('transaction_read_only')")
        assert (await cur.fetchone())[0] == "off"
        if not autocommit:
            await conn.rollback()
    with psycopg.connect(db_url, autocommit=True) as check:
        assert check.execute("SELECT count(*) FROM audit").fetchone()[0] == 0


STATEFUL = """
CREATE FUNCTION public.leave_state() RETURNS text LANGUAGE sql AS
  $f$ SELECT pg_advisory_lock(4242)::text || setseed(0.25)::text $f$;
CREATE VIEW notice_state AS SELECT n.body, public.leave_state() AS effect FROM public.notices n;
"""


async def test_nothing_a_call_did_survives_on_the_pooled_connection(db_url: str) -> None:
    """A shared view's function runs as its owner and may take a session advisory lock or seed the
    PRNG; the connection goes back reset (issue 25): no lock held, random() not the seeded sequence."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("DROP VIEW IF EXISTS notice_state; DROP FUNCTION IF EXISTS public.leave_state();" + STATEFUL)
        seeded = admin.execute("SELECT setseed(0.25), random()").fetchone()[1]
    for failing in (False, True):
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            # Failing on the row, after the view's function ran (a constant 1 / 0 fails at planning, before it).
            sql = "SELECT body, effect FROM notice_state" + (
                " WHERE length(effect) / (length(body) * 0) = 1" if failing else "")
            try:
                await run_scoped_query(conn, sql, "alice", shared_tables=("notice_state",), cache=ClassificationCache())
                assert not failing
            except QueryFailed as exc:
                assert failing and "22012" in str(exc), exc
            cur = await conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            assert (await cur.fetchone())[0] == 0
            cur = await conn.execute("SELECT random()")
            assert (await cur.fetchone())[0] != seeded
