"""The attack suite run through run_scoped_query against a real PostgreSQL: the project's own cases
(EXTRA, below) always, and the shared cases of ../shared/attacks when they are beside the project.

The fixture database is the project's own (tests/fixtures/attacks/fixture.sql), so the suite runs on a
plain clone; without ../shared, test_shared_attack_cases_are_here says so as a skip (a failure in CI).

Every case runs twice: connected as app_owner (owns the tables, BYPASSRLS: Neon's default role, so
the rewriter alone must hold) and as agent_ro (plain read-only role, RLS applies too). The expected
answer of an ``allow`` case is the original SQL run by a superuser on a copy of the database that
holds only the caller's rows.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from pglast import parse_sql
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from schema_architect.tools.run_scoped_query import json_safe, run_scoped_query
from schema_architect.tools.sqlsafe import ClassificationCache, QueryFailed, QueryRefused

from conftest import SHARED, require, shared_missing, with_database

pytestmark = pytest.mark.anyio

SHARED_CASES = SHARED / "attacks" / "cases.json"
CASES = json.loads(SHARED_CASES.read_text()) if SHARED_CASES.is_file() else []
FIXTURE = (Path(__file__).resolve().parent / "fixtures" / "attacks" / "fixture.sql").read_text()
CANARIES = ("BOB_", "bob@", "CANARY")
TIMEOUT_MS = 1000

# Our own cases, beyond the sample: same format.
EXTRA = [
    # CTE scoping: a CTE named like a table, declared later / in a sibling subquery, must not
    # stop the real table from being filtered.
    {"id": "own-cte-001", "expect": "scoped", "sql": "WITH b AS (SELECT * FROM tasks), tasks AS (SELECT 1 AS x) SELECT b.title FROM b"},
    {"id": "own-cte-002", "expect": "scoped", "sql": "SELECT (WITH tasks AS (SELECT 1 AS title) SELECT count(*) FROM tasks) AS a, (SELECT string_agg(title, ',') FROM tasks) AS b"},
    {"id": "own-cte-003", "expect": "allow", "sql": "WITH tasks AS (SELECT * FROM public.tasks WHERE completed) SELECT count(*) FROM tasks"},
    {"id": "own-cte-004", "expect": "scoped", "sql": "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT r.n, t.title FROM r JOIN tasks t ON t.id % 3 = r.n - 1 ORDER BY t.id LIMIT 9"},
    {"id": "own-cte-005", "expect": "scoped", "sql": "WITH x AS (WITH tasks AS (SELECT 1 AS title) SELECT title FROM tasks) SELECT title FROM tasks UNION ALL SELECT title::text FROM x"},
    # Spellings of the table
    {"id": "own-name-001", "expect": "scoped", "sql": "SELECT title FROM \"public\".\"tasks\" WHERE title LIKE 'BOB%'"},
    {"id": "own-name-002", "expect": "scoped", "sql": "SELECT title FROM U&\"!0074asks\" UESCAPE '!' WHERE title LIKE 'BOB%'"},
    {"id": "own-name-003", "expect": "scoped", "sql": "SELECT * FROM tasks* AS t WHERE t.user_id = 'u_bob'"},
    {"id": "own-name-004", "expect": "reject", "sql": "SELECT * FROM current_database_does_not_matter.public.tasks"},
    {"id": "own-name-005", "expect": "reject", "sql": "SELECT * FROM pg_temp.tasks"},
    # Filters the agent writes must not reach other users' rows (planner fence)
    {"id": "own-fence-001", "expect": "scoped", "sql": "SELECT count(*) FROM tasks WHERE title::int > 0"},
    {"id": "own-fence-002", "expect": "scoped", "sql": "SELECT t1.id FROM tasks t1 JOIN tasks t2 ON t2.id = t1.id WHERE 1 / (CASE WHEN t2.user_id = 'u_bob' THEN 0 ELSE 1 END) = 1 LIMIT 3"},
    {"id": "own-fence-003", "expect": "scoped", "sql": "SELECT count(*) FROM tags g JOIN task_tags tt ON tt.tag_id = g.id WHERE g.name LIKE 'BOB%' OR true"},
    {"id": "own-scope-001", "expect": "scoped", "sql": "SELECT title FROM tasks UNION SELECT email FROM users UNION SELECT name FROM tags"},
    {"id": "own-scope-002", "expect": "scoped", "sql": "SELECT json_agg(t) FROM tasks t WHERE t.user_id = 'u_bob'"},
    {"id": "own-scope-003", "expect": "scoped", "sql": "SELECT user_id, count(*) FROM tasks GROUP BY user_id"},
    {"id": "own-scope-004", "expect": "scoped", "sql": "SELECT * FROM tasks WHERE id = ANY($1::int[])", "params": [[1, 2, 3, 4, 5, 6]]},
    {"id": "own-scope-005", "expect": "scoped", "user_id": "u_alice' OR '1'='1", "sql": "SELECT count(*) FROM tasks"},
    {"id": "own-scope-006", "expect": "scoped", "sql": "SELECT current_setting('app.user_id') AS me, count(*) FROM tasks"},
    {"id": "own-scope-007", "expect": "scoped", "user_id": "u_bob", "sql": "SELECT count(*) FROM tasks WHERE title LIKE 'alice%'"},
    {"id": "own-scope-008", "expect": "scoped", "sql": "SELECT * FROM tasks NATURAL JOIN task_tags"},
    # Functions in every position and spelling
    {"id": "own-fn-001", "expect": "reject", "sql": "SELECT * FROM \"pg_read_file\"('/etc/hostname')"},
    {"id": "own-fn-002", "expect": "reject", "sql": "SELECT * FROM pg_catalog.pg_read_file('/etc/hostname')"},
    {"id": "own-fn-003", "expect": "reject", "sql": "SELECT * FROM tasks, LATERAL pg_ls_dir('.') AS d"},
    {"id": "own-fn-004", "expect": "reject", "sql": "SELECT * FROM query_to_xml('select 1', true, true, '')"},
    {"id": "own-fn-005", "expect": "reject", "sql": "SELECT * FROM ROWS FROM (generate_series(1, 2), pg_sleep(5))"},
    {"id": "own-fn-006", "expect": "reject", "sql": "SELECT \"set_config\"('app.user_id', 'u_bob', true)"},
    {"id": "own-fn-007", "expect": "reject", "sql": "SELECT current_setting('app.settings.jwt_secret')"},
    {"id": "own-fn-008", "expect": "reject", "sql": "SELECT count_all_tasks()"},
    {"id": "own-fn-009", "expect": "reject", "sql": "SELECT pg_logical_emit_message(false, 'x', 'y')"},
    {"id": "own-fn-010", "expect": "reject", "sql": "SELECT txid_current()"},
    {"id": "own-fn-011", "expect": "reject", "sql": "SELECT 1 WHERE 1 OPERATOR(public.=) 1"},
    {"id": "own-fn-012", "expect": "reject", "sql": "SELECT * FROM tasks WHERE id IN (SELECT lo_import('/etc/hostname'))"},
    {"id": "own-fn-013", "expect": "reject", "sql": "SELECT xmlelement(name x, title) FROM tasks"},
    # Statements and clauses
    {"id": "own-stmt-001", "expect": "reject", "sql": "SELECT * INTO TEMP loot FROM tasks"},
    {"id": "own-stmt-002", "expect": "reject", "sql": "SELECT * FROM (SELECT * FROM tasks FOR UPDATE SKIP LOCKED) s"},
    {"id": "own-stmt-003", "expect": "reject", "sql": "EXPLAIN (ANALYZE) SELECT 1"},
    {"id": "own-stmt-004", "expect": "reject", "sql": "EXPLAIN (ANALYZE true, FORMAT JSON) SELECT * FROM tasks"},
    {"id": "own-stmt-005", "expect": "reject", "sql": "SELECT * FROM tasks TABLESAMPLE SYSTEM (50)"},
    {"id": "own-stmt-006", "expect": "reject", "sql": "SELECT ctid, title FROM tasks"},
    {"id": "own-stmt-007", "expect": "reject", "sql": "SELECT 1;\nSELECT 2"},
    {"id": "own-stmt-008", "expect": "reject", "sql": "WITH m AS (MERGE INTO tags USING tasks ON false WHEN NOT MATCHED THEN DO NOTHING) SELECT 1"},
    {"id": "own-stmt-009", "expect": "reject", "sql": "SELECT * FROM v_task_titles"},
    {"id": "own-stmt-010", "expect": "reject", "sql": "SELECT t.title FROM tasks t JOIN app_settings s ON s.key = t.title"},
    {"id": "own-stmt-011", "expect": "reject", "sql": "SELECT * FROM \"TASKS\""},
    {"id": "own-stmt-012", "expect": "reject", "sql": "SELECT * FROM pg_stat_statements"},
    # Legit queries that must keep working
    {"id": "own-allow-001", "expect": "allow", "sql": "SELECT g.name, count(*) AS n FROM tags g JOIN task_tags tt ON tt.tag_id = g.id GROUP BY g.name ORDER BY g.name"},
    {"id": "own-allow-002", "expect": "allow", "sql": "SELECT id, title FROM tasks WHERE id = ANY($1::int[]) ORDER BY id", "params": [[2, 4, 5, 6, 8]]},
    {"id": "own-allow-003", "expect": "allow", "sql": "SELECT u.name, count(t.id) FROM users u LEFT JOIN tasks t ON t.user_id = u.id GROUP BY u.name"},
    {"id": "own-allow-004", "expect": "allow", "sql": "SELECT DISTINCT ON (completed) completed, id, title FROM tasks ORDER BY completed, created_at DESC"},
    {"id": "own-allow-005", "expect": "allow", "sql": "VALUES (1, 'a'), (2, 'b')"},
    {"id": "own-allow-006", "expect": "allow", "sql": "SELECT id, title FROM tasks ORDER BY id FETCH FIRST 3 ROWS WITH TIES"},
    {"id": "own-allow-007", "expect": "allow", "sql": "SELECT to_char(created_at, 'YYYY-MM') AS m, count(*) FROM tasks t WHERE t.title ILIKE '%task 1%' GROUP BY 1 ORDER BY 1"},
    {"id": "own-allow-008", "expect": "allow", "sql": "SELECT * FROM (SELECT id, title FROM tasks WHERE completed ORDER BY id DESC LIMIT 3) s ORDER BY id"},
    {"id": "own-allow-009", "expect": "allow", "sql": "SELECT id FROM tasks WHERE id > $1 ORDER BY id LIMIT $2", "params": [100, 4]},
    {"id": "own-allow-010", "expect": "allow", "limit": 3, "acceptable": ["full_result", "capped_result"], "sql": "SELECT id, title FROM tasks ORDER BY id OFFSET 5"},
    # Canaries the agent types itself: nothing said back may contain them (no exception for the
    # agent's own text, since a reader cannot tell it from leaked data).
    {"id": "own-echo-001", "expect": "scoped", "sql": "SELECT * FROM tasks WHERE user_id = (SELECT id FROM users WHERE email = 'bob@example.com') OR title = 'BOB_SECRET task 1'"},
    {"id": "own-echo-002", "expect": "scoped", "sql": "/* CANARY BOB_ bob@example.com */ SELECT count(*) FROM tasks -- CANARY\nWHERE title <> 'x'"},
    {"id": "own-echo-003", "expect": "scoped", "sql": "SELECT count(*) FROM tasks WHERE title <> $tag$BOB_SECRET bob@example.com CANARY$tag$ AND title <> $$BOB_$$"},
    {"id": "own-echo-004", "expect": "scoped", "sql": "SELECT count(*) FROM tasks WHERE title NOT LIKE E'BOB\\x5F%' AND description IS DISTINCT FROM E'bob\\x40example.com'"},
    {"id": "own-echo-005", "expect": "scoped", "sql": "SELECT count(*) FROM tasks WHERE title NOT LIKE U&'BOB\\005F%' AND title <> U&'CANAR\\0059'"},
    {"id": "own-echo-006", "expect": "scoped", "sql": "SELECT id, 'BOB_SECRET'::int FROM tasks"},
    {"id": "own-echo-007", "expect": "scoped", "sql": "SELECT E'bob\\x40example.com'::int"},
    {"id": "own-echo-008", "expect": "scoped", "sql": "SELECT (E'x\\\" BOB_SECRET \\\"y')::int FROM tasks"},
    {"id": "own-echo-009", "expect": "scoped", "sql": "SELECT $1::int FROM tasks", "params": ["BOB_SECRET bob@example.com"]},
    {"id": "own-echo-010", "expect": "scoped", "sql": "SELECT now() AT TIME ZONE 'CANARY/Zone' FROM tasks"},
    {"id": "own-echo-011", "expect": "scoped", "sql": "SELECT to_date('bob@example.com', 'YYYY-MM-DD'), jsonb_path_query('{}', 'BOB_ ++ CANARY')"},
    {"id": "own-echo-012", "expect": "scoped", "sql": "SELECT t.\"BOB_col\", \"bob@col\" FROM tasks t"},
    {"id": "own-echo-013", "expect": "scoped", "sql": "SELECT 1::\"CANARY_type\", title COLLATE \"bob@coll\" FROM tasks"},
    {"id": "own-echo-014", "expect": "scoped", "sql": "SELECT '{\"a\": 1}'::jsonb -> 'BOB_key', ('BOB_' || 'x')::int FROM tasks"},
    {"id": "own-echo-015", "expect": "scoped", "sql": "EXPLAIN (VERBOSE) SELECT id FROM tasks WHERE title = 'BOB_SECRET task 1' OR title = upper('bob_x') OR description = $1", "params": ["bob@example.com CANARY"]},
    {"id": "own-echo-016", "expect": "scoped", "sql": "EXPLAIN (FORMAT JSON) SELECT id FROM tasks WHERE title LIKE 'BOB_SECRET%' OR title = $1", "params": ["CANARY"]},
    {"id": "own-echo-018", "expect": "scoped", "sql": "SELECT title COLLATE \"bob@coll\" FROM tasks"},
    {"id": "own-echo-019", "expect": "scoped", "sql": "SELECT count(*) FROM tasks WHERE description ~ '(BOB_' OR title = ANY('{BOB_x,\"bob@y\"}')"},
    {"id": "own-echo-017", "expect": "scoped", "sql": "SELECT id FROM tasks WHERE title = 'it''s BOB_'' CANARY' ORDER BY id"},
    # Made-up names that are quoted free text are refused (they would come back as column names).
    {"id": "own-echo-101", "expect": "reject", "sql": "SELECT title AS \"bob@x\" FROM tasks"},
    {"id": "own-echo-102", "expect": "reject", "sql": "SELECT \"BOB_t\".title FROM tasks AS \"BOB_t\""},
    {"id": "own-echo-103", "expect": "reject", "sql": "WITH \"CANARY\" AS (SELECT 1 AS x) SELECT x FROM \"CANARY\""},
    {"id": "own-echo-104", "expect": "reject", "sql": "SELECT * FROM tasks AS t(\"BOB_id\")"},
    {"id": "own-echo-105", "expect": "reject", "sql": "SELECT * FROM jsonb_to_record('{}') AS x(\"bob@a\" int)"},
    {"id": "own-echo-106", "expect": "reject", "sql": "SELECT count(*) OVER \"CANARY_w\" FROM tasks WINDOW \"CANARY_w\" AS ()"},
    {"id": "own-echo-107", "expect": "reject", "sql": "SELECT make_interval(\"BOB_days\" => 1)"},
    {"id": "own-echo-108", "expect": "reject", "sql": "SELECT 1 FROM tasks JOIN task_tags USING (id) AS \"BOB_j\""},
    # Refusals never quote the agent's literals, comments or quoted names.
    {"id": "own-echo-201", "expect": "reject", "sql": "SELECT 'BOB_SECRET bob@example.com"},
    {"id": "own-echo-202", "expect": "reject", "sql": "SELECT 1 /* CANARY bob@example.com"},
    {"id": "own-echo-203", "expect": "reject", "sql": "SELECT $x$BOB_SECRET"},
    {"id": "own-echo-204", "expect": "reject", "sql": "SELECT 'a' 'BOB_SECRET' FROM"},
    {"id": "own-echo-205", "expect": "reject", "sql": "SELECT 1BOB_SECRET"},
    {"id": "own-echo-206", "expect": "reject", "sql": "SELECT * FROM \"BOB_tasks\""},
    {"id": "own-echo-207", "expect": "reject", "sql": "SELECT \"CANARY_fn\"('bob@example.com')"},
    {"id": "own-echo-208", "expect": "reject", "sql": "SELECT * FROM \"bob@db\".\"BOB_s\".tasks"},
    {"id": "own-echo-209", "expect": "reject", "sql": "SELECT * FROM information_schema.\"CANARY_view\""},
    {"id": "own-echo-210", "expect": "reject", "sql": "EXPLAIN (\"BOB_opt\" true) SELECT 1"},
    {"id": "own-echo-211", "expect": "reject", "sql": "SELECT 1 OPERATOR(\"BOB_s\".=) 1"},
    {"id": "own-echo-212", "expect": "reject", "sql": "SELECT \"BOB_s\".lower('x')"},
    {"id": "own-echo-213", "expect": "reject", "sql": "SELECT current_setting('CANARY.bob@x')"},
    {"id": "own-echo-214", "expect": "reject", "sql": "SELECT * FROM tasks WHERE title = 'BOB_' AND id = $1"},
    # Calls the raw tree hides: attribute notation (x).f / t.f is f(x) (issue 25, class 1)
    {"id": "own-attr-001", "expect": "reject", "sql": "SELECT ('u_bob'::text).task_titles_for AS t"},
    {"id": "own-attr-002", "expect": "reject", "sql": "SELECT ('app.settings.jwt_secret'::text).current_setting AS s"},
    {"id": "own-attr-003", "expect": "reject", "sql": "SELECT (u.id).task_titles_for AS t FROM users u"},
    {"id": "own-attr-004", "expect": "reject", "sql": "SELECT ((4242)::bigint).pg_advisory_lock AS l"},
    {"id": "own-attr-005", "expect": "reject", "sql": "SELECT ((0.25)::float8).setseed AS s"},
    {"id": "own-attr-006", "expect": "reject", "sql": "SELECT (NULL::int).pg_stat_get_activity AS a"},
    {"id": "own-attr-007", "expect": "reject", "sql": "SELECT ((1)::int).pg_cancel_backend AS c"},
    {"id": "own-attr-008", "expect": "reject", "sql": "SELECT ('SELECT to_tsvector(title) FROM public.tasks'::text).ts_stat AS s"},
    {"id": "own-attr-009", "expect": "reject", "sql": "SELECT (t.title || '').current_setting AS s FROM tasks t"},
    {"id": "own-attr-010", "expect": "reject", "sql": "SELECT (title || '.z')::regclass AS r FROM tasks"},
    {"id": "own-attr-011", "expect": "reject", "sql": "SELECT (t.user_id::varchar).task_titles_for AS x FROM tasks t"},
    {"id": "own-attr-012", "expect": "scoped", "sql": "SELECT (t).title, (t.*).id FROM tasks t WHERE (t).title LIKE 'BOB%'"},
]
for _c in EXTRA:
    _c.setdefault("acceptable", {"reject": ["static_reject"], "scoped": ["scoped_result", "static_reject"],
                                 "allow": ["full_result"]}[_c["expect"]])
ALL_CASES = CASES + EXTRA


def _user(case: dict) -> str:
    return case.get("user_id", "u_alice")


def _admin(url: str):
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="module")
def attack_db(make_database, pg_admin_url):
    """The fixture database, plus one copy per caller holding only that caller's rows (the oracle)."""
    url = make_database("attacks")
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with _admin(url) as conn:
        for ext in ("dblink", "pg_stat_statements"):
            with contextlib.suppress(psycopg.Error):
                conn.execute(pgsql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(pgsql.Identifier(ext)))
        conn.execute(FIXTURE.replace("ALTER DATABASE neondb", f'ALTER DATABASE "{dbname}"'))
        conn.execute("GRANT agent_ro TO app_owner")  # as on Neon: the owner role may SET ROLE to it
    oracles = {}
    with _admin(pg_admin_url) as conn:
        for user in sorted({_user(c) for c in ALL_CASES}):
            name = f"{dbname}_o{len(oracles)}"
            conn.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE {}").format(pgsql.Identifier(name), pgsql.Identifier(dbname)))
            oracles[user] = with_database(pg_admin_url, name)
            with _admin(oracles[user]) as o:
                o.execute("DELETE FROM task_tags tt WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = tt.task_id AND t.user_id = %(u)s)"
                          " OR NOT EXISTS (SELECT 1 FROM tags g WHERE g.id = tt.tag_id AND g.user_id = %(u)s)", {"u": user})
                o.execute("DELETE FROM tasks WHERE user_id IS DISTINCT FROM %s", [user])
                o.execute("DELETE FROM tags WHERE user_id IS DISTINCT FROM %s", [user])
                o.execute("DELETE FROM users WHERE id IS DISTINCT FROM %s", [user])
    yield {"url": url, "oracles": oracles}
    with _admin(pg_admin_url) as conn:
        for o in oracles.values():
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                pgsql.Identifier(psycopg.conninfo.conninfo_to_dict(o)["dbname"])))


def _checksums(url: str) -> dict[str, str]:
    with _admin(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        out = {t: conn.execute(pgsql.SQL("SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM public.{} x")
                               .format(pgsql.Identifier(t))).fetchone()[0] for t in tables}
        out["#largeobjects"] = str(conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0])
        out["#sequences"] = str(conn.execute("SELECT last_value FROM tasks_id_seq").fetchone()[0])
        return out


def _oracle_rows(url: str, case: dict, limit: int) -> list[list]:
    with psycopg.connect(url) as conn:
        conn.read_only = True
        conn.execute("SELECT set_config('app.user_id', %s, true)", [case.get("user_id", "u_alice")])
        cur = psycopg.RawCursor(conn).execute(case["sql"], case.get("params") or None, prepare=False)
        rows = cur.fetchmany(limit + 1)
        conn.rollback()
    return [[json_safe(v) for v in r] for r in rows]


def _ordered(sql: str) -> bool:
    stmt = parse_sql(sql)[0].stmt
    return bool(getattr(stmt, "sortClause", None))


def _leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def _strings(value) -> list[str]:
    """Every string in a dumped model, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _error_text(exc: QueryRefused) -> str:
    return "\n".join([str(exc), repr(exc), *map(str, exc.args), exc.finding.model_dump_json(),
                      *_strings(exc.finding.model_dump())])


async def _run_case(conn, case: dict, cache: ClassificationCache, oracles: dict) -> tuple[str, str | None]:
    """(outcome, problem or None)."""
    limit = case.get("limit", 100)
    try:
        result = await run_scoped_query(conn, case["sql"], _user(case), case.get("params"), limit,
                                        statement_timeout_ms=TIMEOUT_MS, cache=cache)
    except QueryFailed as exc:
        text = _error_text(exc)
        outcome = "timeout_error" if exc.finding.rule == "sql-timeout" else "runtime_error"
        if leaks := _leaks(text):
            return outcome, f"error text leaks {leaks}: {text[:200]}"
        if case["expect"] == "scoped" and outcome == "runtime_error":
            return outcome, None  # an error that leaks nothing is still scoped
        return outcome, None if outcome in case["acceptable"] else f"{outcome}: {exc}"
    except QueryRefused as exc:
        text = _error_text(exc)
        if leaks := _leaks(text):
            return "static_reject", f"refusal text leaks {leaks}"
        if "static_reject" not in case["acceptable"]:
            return "static_reject", f"refused: {exc.finding.rule}: {exc}"
        # Nothing was sent: with the catalog map warm, the refusal needs no connection at all. A refusal
        # from PostgreSQL's analysis (a hidden call) needs it by design: the query was analysed, never run.
        if conn.autocommit and not exc.analysed:
            try:
                await run_scoped_query(_CLOSED, case["sql"], _user(case), case.get("params"), limit, cache=_Warm(cache, conn))
                return "static_reject", "ran on a closed connection?"
            except QueryFailed as again:
                return "static_reject", f"refusal needed the database: {again}"
            except QueryRefused:
                pass
            except psycopg.Error as again:
                return "static_reject", f"refusal needed the database: {again}"
        return "static_reject", None
    # Every field, rewritten_sql included, even where the agent typed the canary itself.
    text = result.model_dump_json() + "\n".join(_strings(result.model_dump()))
    if leaks := _leaks(text):
        return "scoped_result", f"result leaks {leaks}: {text[:300]}"
    tag = re.search(r"<(untrusted-data-[0-9a-f]{16})>", result.wrapped_rows).group(1)
    body = result.wrapped_rows.split(f"<{tag}>\n", 1)[1].split(f"\n</{tag}>", 1)[0]
    assert json.loads(body)["rows"] == result.rows
    if case["expect"] == "reject":
        out = "capped_result" if result.truncated else "full_result"
        return out, None if out in case["acceptable"] else f"ran: {result.rows[:3]}"
    if case["sql"].lstrip().upper().startswith("EXPLAIN"):
        return ("full_result" if case["expect"] == "allow" else "scoped_result"), \
            None if result.rows and "BOB" not in text else "empty plan"
    try:
        expected = _oracle_rows(oracles[_user(case)], case, result.limit)
    except psycopg.Error as exc:
        if case["expect"] == "allow":
            return "full_result", f"oracle failed: {exc}"
        return "scoped_result", None  # no oracle answer (e.g. reads the caller setting); canaries checked
    ours = result.rows
    exp_trunc = len(expected) > result.limit
    expected = expected[: result.limit]
    if exp_trunc != result.truncated:
        return "full_result", f"truncated {result.truncated}, expected {exp_trunc}"
    if _ordered(case["sql"]) and not exp_trunc:
        same = ours == expected
    elif exp_trunc:
        # unordered and cut: which rows come first is up to the planner; compare the count
        same = len(ours) == len(expected) and (ours == expected if _ordered(case["sql"]) else True)
    else:
        same = sorted(map(json.dumps, ours)) == sorted(map(json.dumps, expected))
    outcome = ("capped_result" if result.truncated else "full_result") if case["expect"] == "allow" else "scoped_result"
    if case["expect"] == "allow" and outcome not in case["acceptable"]:
        return outcome, f"{outcome} not acceptable"
    return outcome, None if same else f"rows differ from the caller-only oracle: {ours[:3]} vs {expected[:3]}"


class _Closed:
    """Stand-in for a connection that must not be used: any attribute access fails loudly."""

    def __getattr__(self, name):
        raise psycopg.OperationalError(f"the refusal touched the connection ({name})")


_CLOSED = _Closed()


class _Warm(ClassificationCache):
    """A cache that answers from a warm map of ``conn`` and never reads the catalog."""

    def __init__(self, inner: ClassificationCache, conn) -> None:
        super().__init__()
        self.inner, self.conn = inner, conn

    async def get(self, conn, owner_column="user_id", shared_tables=(), *, refresh=False, sensitive=(),
                  stale_ok=False):
        m = self.inner.peek(self.conn, owner_column, shared_tables, sensitive)
        if m is None:
            raise psycopg.OperationalError("cold cache")
        return m


def _role_url(url: str, role: str) -> str:
    return make_conninfo(url, user=role)


async def _session_state(conn) -> dict:
    cur = await conn.execute(
        "SELECT (SELECT count(*) FROM pg_prepared_statements), "
        "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), "
        "(SELECT count(*) FROM pg_cursors), coalesce(current_setting('app.user_id', true), ''), "
        "current_setting('statement_timeout'), current_setting('search_path'), current_user, "
        "current_setting('transaction_read_only')")
    row = await cur.fetchone()
    if not conn.autocommit:
        await conn.rollback()
    return dict(zip(["prepared", "advisory", "cursors", "app.user_id", "statement_timeout", "search_path",
                     "current_user", "read_only"], row, strict=True))


def test_shared_attack_cases_are_here() -> None:
    """The shared cases run with ours when ../shared is beside the project (always in CI)."""
    require(shared_missing("attacks", "cases.json"))
    assert CASES, SHARED_CASES


@pytest.mark.parametrize("role, autocommit", [("app_owner", True), ("agent_ro", False)])
async def test_attack_suite(attack_db, role: str, autocommit: bool) -> None:
    url = attack_db["url"]
    before = _checksums(url)
    cache = ClassificationCache()
    outcomes: Counter = Counter()
    problems = []
    async with await psycopg.AsyncConnection.connect(_role_url(url, role), autocommit=autocommit,
                                                     prepare_threshold=None) as conn:
        state0 = await _session_state(conn)
        started = time.perf_counter()
        for case in ALL_CASES:
            outcome, problem = await _run_case(conn, case, cache, attack_db["oracles"])
            outcomes[(case["expect"], outcome, problem is None)] += 1
            if problem:
                problems.append(f"{case['id']} [{role}]: {problem}")
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE, case["id"]
            assert conn.autocommit == autocommit, case["id"]
        elapsed = time.perf_counter() - started
        state1 = await _session_state(conn)
    summary = {f"{e}/{o}/{'ok' if ok else 'FAIL'}": n for (e, o, ok), n in sorted(outcomes.items())}
    print(f"\n{role}: {len(ALL_CASES)} cases in {elapsed:.1f}s: {json.dumps(summary)}")
    assert not problems, "\n".join(problems)
    assert state1 == state0
    assert state1["prepared"] == state1["advisory"] == state1["cursors"] == 0
    assert _checksums(url) == before


async def test_five_million_rows_are_capped(attack_db) -> None:
    async with await psycopg.AsyncConnection.connect(_role_url(attack_db["url"], "agent_ro"), autocommit=True) as conn:
        result = await run_scoped_query(conn, "SELECT g, md5(g::text) FROM generate_series(1, 5000000) g", "u_alice",
                                        limit=100)
        assert result.row_count == 100 and result.truncated
        assert result.rows[0] == [1, "c4ca4238a0b923820dcc509a6f75849b"]
        # The cap is in the query the server ran, so it sends 101 rows, not five million.
        assert "LIMIT 101) AS _sa_rows" in result.rewritten_sql, result.rewritten_sql  # inside the row bound


@pytest.mark.parametrize("role", ["app_owner", "agent_ro"])
async def test_no_row_over_the_size_bound_leaves_the_server_in_either_role(attack_db, role: str, tmp_path: Path) -> None:
    """Through MCP, as either role: a row over MAX_ROW_BYTES as text is refused by PostgreSQL before it is
    sent (sql-row-too-large); the caller's own row under it comes back, its long value shortened."""
    from mcp import Client

    from schema_architect.server.app import create_server
    from schema_architect.server.settings import Settings

    url = re.sub(r"^(postgres(?:ql)?://)[^@/]*@", rf"\g<1>{role}@", attack_db["url"])
    settings = Settings(project=tmp_path, database_url=url, embedded=False)
    async with Client(create_server(settings)) as client:
        over = await client.call_tool("run_scoped_query", {
            "sql": "SELECT id, repeat(title, 100000) AS big FROM (SELECT id, title FROM tasks ORDER BY id LIMIT 2) t",
            "user_id": "u_alice"})
        under = await client.call_tool("run_scoped_query", {
            "sql": "SELECT id, repeat(title, 50000) AS big FROM (SELECT id, title FROM tasks ORDER BY id LIMIT 1) t",
            "user_id": "u_alice"})
    assert over.is_error and "[sql-row-too-large]" in over.content[0].text, over.content
    assert "alice task" not in over.content[0].text  # nothing of the row is said back
    assert not under.is_error, under.content
    assert under.structured_content["row_count"] == 1 and "alice task" in under.structured_content["wrapped_rows"]


async def test_slow_query_is_cut_and_connection_reusable(attack_db) -> None:
    async with await psycopg.AsyncConnection.connect(_role_url(attack_db["url"], "app_owner"), autocommit=False) as conn:
        with pytest.raises(QueryFailed) as info:
            await run_scoped_query(conn, "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
                                   "u_alice", statement_timeout_ms=300)
        assert info.value.finding.rule == "sql-timeout"  # PostgreSQL cancelled it (SQLSTATE 57014)
        with _admin(attack_db["url"]) as admin:  # and its backend runs nothing any more: idle, not active
            state = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s",
                                  [conn.info.backend_pid]).fetchone()
        assert state == ("idle",), state
        result = await run_scoped_query(conn, "SELECT count(*) FROM tasks", "u_alice")
        assert result.rows == [[3002]]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and not conn.autocommit


async def test_runtime_error_is_redacted(attack_db) -> None:
    async with await psycopg.AsyncConnection.connect(_role_url(attack_db["url"], "app_owner"), autocommit=True) as conn:
        with pytest.raises(QueryFailed) as info:
            await run_scoped_query(conn, "SELECT title::int FROM tasks ORDER BY id", "u_alice")
        text = str(info.value)
        # raised on a row's value: the condition and SQLSTATE only (docs/tools/run_scoped_query.md)
        assert "alice task" not in text and "invalid text representation (SQLSTATE 22P02)" in text
        with pytest.raises(QueryFailed) as info:
            await run_scoped_query(conn, "SELECT nosuchcolumn FROM tasks", "u_alice")
        assert '"nosuchcolumn"' in str(info.value)  # the agent's own identifier stays readable


async def test_scoped_role_and_rls_keyed_on_caller_setting(attack_db) -> None:
    """As agent_ro, the RLS policies see app.user_id = caller; SET LOCAL ROLE via the role option."""
    async with await psycopg.AsyncConnection.connect(_role_url(attack_db["url"], "app_owner"), autocommit=True) as conn:
        result = await run_scoped_query(conn, "SELECT current_user::text, current_setting('app.user_id') , count(*) FROM tasks",
                                        "u_alice", role="agent_ro")
        assert result.rows == [["agent_ro", "u_alice", 3002]]
        assert (await (await conn.execute("SELECT current_user::text")).fetchone())[0] == "app_owner"


async def test_shown_sql_elides_literals_but_the_real_ones_run(attack_db) -> None:
    async with await psycopg.AsyncConnection.connect(_role_url(attack_db["url"], "app_owner"), autocommit=True) as conn:
        cache = ClassificationCache()
        sql = "SELECT id, title FROM tasks WHERE title IN ('alice task 2', $$alice task 4$$, E'alice\\x20task 6') ORDER BY id"
        result = await run_scoped_query(conn, sql, "u_alice", cache=cache)
        assert [r[1] for r in result.rows] == ["alice task 2", "alice task 4", "alice task 6"]
        assert "alice" not in result.rewritten_sql and result.rewritten_sql.count("'…'") == 3
        # The same text again is served from the map's rewrite cache, with the same answer.
        data = cache.peek(conn, "user_id", ())
        assert len(data.rewrites) == 1
        again = await run_scoped_query(conn, sql, "u_alice", cache=cache)
        assert again.rows == result.rows and again.rewritten_sql == result.rewritten_sql
        assert len(data.rewrites) == 1
        # A reload of the catalog map (after a migration) starts a fresh, empty rewrite cache.
        cache.clear()
        third = await run_scoped_query(conn, sql, "u_bob", cache=cache)
        assert cache.peek(conn, "user_id", ()) is not data and third.rows == []


async def test_runtime_error_points_into_the_agents_query(attack_db) -> None:
    async with await psycopg.AsyncConnection.connect(_role_url(attack_db["url"], "app_owner"), autocommit=True) as conn:
        sql = "SELECT id,\n       'BOB_SECRET bob@example.com CANARY'::int AS n\nFROM tasks"
        with pytest.raises(QueryFailed) as info:
            await run_scoped_query(conn, sql, "u_alice")
        message = info.value.finding.message
        assert message == ('The database rejected the query: invalid input syntax for type integer: '
                           '"<redacted>" (SQLSTATE 22P02, at line 2, column 8 of the query).')
        assert info.value.finding.location.line == 2
        with pytest.raises(QueryFailed) as info:
            await run_scoped_query(conn, "SELECT id FROM tasks t\nWHERE t.nosuch = 1 AND title = 'BOB_'", "u_alice")
        assert "column t.nosuch does not exist" in info.value.finding.message
        assert "line 2, column 7 of the query" in info.value.finding.message
