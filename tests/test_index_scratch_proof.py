"""Issue 30: without hypopg and without build=true, the candidates are proved on a scratch copy.

The database has no hypopg (the embedded PostgreSQL 18 has none) and ~20,000 rows; a query wants
(user_id, created_at). explain_indexes checks the recommendation on a copy made on its own scratch server,
with synthetic rows shaped like the live statistics, and leaves the user's database as it was: no new
index, no index built (pg_stat_user_indexes and pg_class unchanged), and the copy dropped afterwards.
"""

from __future__ import annotations

import psycopg
import pytest

from schema_architect.tools.drift.scratch import scratch_admin_url
from schema_architect.tools.explain_indexes import explain_indexes

pytestmark = pytest.mark.anyio

SCHEMA = """
CREATE TYPE event_kind AS ENUM ('click', 'view', 'buy');
CREATE TABLE users (id text PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     user_id text NOT NULL REFERENCES users ON DELETE CASCADE,
                     kind event_kind NOT NULL, amount integer CHECK (amount >= 0), note varchar(40),
                     created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ix_events_user_id ON events (user_id);
INSERT INTO users SELECT 'u' || g, 'u' || g || '@example.com' FROM generate_series(1, 100) g;
INSERT INTO events (user_id, kind, amount, note, created_at)
  SELECT 'u' || (g % 100 + 1), (ARRAY['click','view','buy'])[g % 3 + 1]::event_kind,
         CASE WHEN g % 4 = 0 THEN NULL ELSE g % 50 END, 'note ' || (g % 7),
         now() - g * interval '1 minute' FROM generate_series(1, 20000) g;
"""

NEWEST = "SELECT * FROM events WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20"


@pytest.fixture(scope="module")
def url(make_database) -> str:
    url = make_database("scratch_proof", SCHEMA)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def _state(url: str) -> tuple:
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                               "ORDER BY 1").fetchall()
        usage = conn.execute("SELECT indexrelname, idx_scan FROM pg_stat_user_indexes ORDER BY 1").fetchall()
        # a build (even rolled back) refreshes the table's relpages/relallvisible in place
        pages = conn.execute("SELECT relname, relpages, reltuples, relallvisible FROM pg_class "
                             "WHERE relname IN ('events', 'users') ORDER BY 1").fetchall()
        hypopg = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone()
    return indexes, usage, pages, hypopg


def _scratch_databases() -> list[str]:
    with psycopg.connect(scratch_admin_url(), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'sa_indexes_%'")]


async def test_candidates_are_proved_on_a_scratch_copy(url: str) -> None:
    before = _state(url)
    assert before[3] == (0,), "the database must not have hypopg for this test"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        result = await explain_indexes(spec=None, conn=conn, queries=[NEWEST], build=False)
    [rec] = [r for r in result.recommendations if r.table == "public.events"]
    assert "(user_id, created_at DESC)" in rec.ddl
    assert rec.checked_how.startswith("on a scratch copy with 20")  # 20,000 events + 100 users
    assert rec.checked_how.endswith("synthetic rows shaped like the live statistics")
    assert rec.cost_before is not None and rec.cost_after is not None and rec.cost_after < rec.cost_before / 2
    assert rec.queries and rec.queries[0].uses_new_index
    assert rec.size_bytes and any("scratch copy" in n for n in rec.notes)
    assert not any("SHARE lock" in n for n in rec.notes)
    assert result.workload is not None and result.workload.checked_how == rec.checked_how
    assert any("proved on a scratch copy" in n and "events 20000" in n for n in result.notes)
    # the user's database: nothing built, nothing new, no statistics touched
    assert _state(url) == before
    # and the copy is gone
    assert _scratch_databases() == []


async def test_the_copy_plans_like_the_database(url: str) -> None:
    """The copy's synthetic rows follow the live statistics closely enough that its costs, before and
    after, are those of a real (rolled-back, build=true) build on the database itself, within 15%."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        on_copy = await explain_indexes(spec=None, conn=conn, queries=[NEWEST], build=False)
        built = await explain_indexes(spec=None, conn=conn, queries=[NEWEST], build=True)
    [a] = [r for r in on_copy.recommendations if r.table == "public.events"]
    [b] = [r for r in built.recommendations if r.table == "public.events"]
    assert b.checked_how == "transaction" and a.ddl == b.ddl
    assert a.cost_before == pytest.approx(b.cost_before, rel=0.15)
    assert a.cost_after == pytest.approx(b.cost_after, rel=0.15)
