"""Checker and rewriter unit tests (no database: the catalog map is built from catalog-shaped rows)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pglast import parse_sql
from pglast.stream import RawStream

from schema_architect.tools.database.quoting import ident, literal
from schema_architect.tools.run_scoped_query import redact, scoped_role_ddl
from schema_architect.tools.sqlsafe import QueryRefused, UnknownRelation, check_sql, prepare, rewrite
from schema_architect.tools.sqlsafe.classify import REWRITE_CACHE_SIZE, build_map
from schema_architect.tools.sqlsafe.redact import elided_literals
from schema_architect.tools.sqlsafe.rewriter import MAX_CACHED_SQL_CHARS, OWN_LITERALS

CASES = Path(__file__).parent / "cases" / "sqlsafe"
_T = ["pg_catalog", "text"]
_I = ["pg_catalog", "int4"]


def _fk(col, table, ref="id", typ=_T):
    return {"cols": [col], "ref_schema": "public", "ref_name": table, "ref_cols": [ref], "ref_types": [typ]}


def _rel(name, kind="r", owner=None, fks=(), reads=(), id_type=_I):
    return {"schema": "public", "name": name, "kind": kind, "owner_type": owner, "id_type": id_type,
            "fks": list(fks), "reads": list(reads)}


CATALOG = {"db": "app", "search_path": ["public"], "types": {}, "relations": [
    _rel("users", id_type=_T),
    _rel("tasks", owner=_T, fks=[_fk("user_id", "users")]),
    _rel("tags", owner=_T, fks=[_fk("user_id", "users")]),
    _rel("task_tags", fks=[_fk("task_id", "tasks", typ=_I), _fk("tag_id", "tags", typ=_I)]),
    _rel("colors"),
    _rel("app_settings"),
    _rel("v_titles", kind="v", reads=['["public", "tasks"]']),
]}
MAP = build_map(CATALOG, "user_id", ["colors"])

GOOD = [
    "SELECT 1",
    "SELECT 1;",
    "-- comment\nSELECT count(*) FROM tasks WHERE NOT completed",
    "SELECT id FROM tasks WHERE title = 'DROP TABLE tasks; --'",
    "WITH x AS (SELECT * FROM tasks) SELECT date_trunc('week', created_at), count(*) FROM x GROUP BY 1",
    "SELECT id, lag(created_at) OVER (ORDER BY created_at) FROM tasks",
    "SELECT count(*) FILTER (WHERE completed) FROM tasks",
    "SELECT * FROM tasks WHERE id = ANY($1::int[])",
    "EXPLAIN (FORMAT JSON, COSTS false) SELECT * FROM tasks",
    "SELECT extract(epoch FROM now()), substring('abc' FROM 2), trim(both ' ' FROM 'x'), now() AT TIME ZONE 'UTC'",
    "SELECT coalesce(a, 1), nullif(a, 2), greatest(1, 2), ARRAY[1, 2], (1, 2), a IS NULL, a BETWEEN 1 AND 2 FROM t",
    "SELECT * FROM generate_series(1, 3) g, LATERAL unnest(ARRAY[g]) u",
    "SELECT current_setting('app.user_id')",
    "SELECT j->>'a' FROM t, jsonb_to_record('{}') AS x(a int)",
    "VALUES (1), (2)",
    "TABLE tasks",
]

BAD = [
    ("SELECT 1; SELECT 2", "sql-multiple-statements"),
    ("COMMIT; DROP TABLE tasks", "sql-multiple-statements"),
    ("SELECT 1\x00; DROP TABLE tasks", "sql-nul-byte"),
    ("", "sql-empty"),
    ("SELECT * FRMO tasks", "sql-parse-error"),
    ("SELECT 1；DROP TABLE tasks", "sql-parse-error"),
    ("DELETE FROM tasks", "sql-write-not-allowed"),
    ("WITH d AS (DELETE FROM tasks RETURNING *) SELECT * FROM d", "sql-write-not-allowed"),
    ("SELECT (SELECT 1 FROM (WITH u AS (UPDATE tasks SET title = 'x' RETURNING 1) SELECT 1) s)",
     "sql-write-not-allowed"),
    ("SELECT * INTO loot FROM tasks", "sql-write-not-allowed"),
    ("SELECT * FROM tasks FOR UPDATE", "sql-write-not-allowed"),
    ("SELECT * FROM (SELECT * FROM tasks FOR SHARE SKIP LOCKED) s", "sql-write-not-allowed"),
    ("EXPLAIN ANALYZE SELECT 1", "sql-write-not-allowed"),
    ("EXPLAIN (ANALYSE false) SELECT 1", "sql-write-not-allowed"),
    ("EXPLAIN DELETE FROM tasks", "sql-write-not-allowed"),
    ("COPY tasks TO STDOUT", "sql-write-not-allowed"),
    ("SET search_path TO pg_temp", "sql-statement-not-allowed"),
    ("RESET ALL", "sql-statement-not-allowed"),
    ("SHOW ALL", "sql-statement-not-allowed"),
    ("PREPARE p AS SELECT 1", "sql-statement-not-allowed"),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "sql-statement-not-allowed"),
    ("LISTEN x", "sql-statement-not-allowed"),
    ("NOTIFY x", "sql-statement-not-allowed"),
    ("DO $$ BEGIN END $$", "sql-statement-not-allowed"),
    ("CALL p()", "sql-statement-not-allowed"),
    ("BEGIN", "sql-statement-not-allowed"),
    ("SELECT set_config('app.user_id', 'u_bob', true)", "sql-function-not-allowed"),
    ("SELECT pg_catalog.set_config('a', 'b', false)", "sql-function-not-allowed"),
    ('SELECT "set_config"(\'a\', \'b\', true)', "sql-function-not-allowed"),
    ("SELECT * FROM tasks, LATERAL (SELECT set_config('app.user_id', 'u_bob', true)) s", "sql-function-not-allowed"),
    ("SELECT * FROM pg_sleep(1)", "sql-function-not-allowed"),
    ('SELECT * FROM "pg_read_file"(\'/etc/passwd\')', "sql-function-not-allowed"),
    ("SELECT * FROM ROWS FROM (generate_series(1, 2), pg_sleep(1))", "sql-function-not-allowed"),
    ("SELECT query_to_xml('select 1', true, true, '')", "sql-function-not-allowed"),
    ("SELECT dblink_exec('x', 'DROP TABLE t')", "sql-function-not-allowed"),
    ("SELECT lo_create(0)", "sql-function-not-allowed"),
    ("SELECT nextval('s')", "sql-function-not-allowed"),
    ("SELECT pg_advisory_lock(1)", "sql-function-not-allowed"),
    ("SELECT txid_current()", "sql-function-not-allowed"),
    ("SELECT pg_logical_emit_message(false, 'a', 'b')", "sql-function-not-allowed"),
    ("SELECT public.lower(title) FROM tasks", "sql-function-not-allowed"),
    ('SELECT "LOWER"(title) FROM tasks', "sql-function-not-allowed"),
    ("SELECT current_setting('app.settings.jwt_secret')", "sql-function-not-allowed"),
    ("SELECT current_setting(chr(97) || '.user_id')", "sql-function-not-allowed"),
    ("SELECT 1 OPERATOR(public.+) 1", "sql-function-not-allowed"),
    ("SELECT * FROM pg_stats", "sql-system-catalog"),
    ("SELECT * FROM pg_catalog.pg_class", "sql-system-catalog"),
    ("SELECT * FROM information_schema.tables", "sql-system-catalog"),
    ("SELECT * FROM pg_temp.tasks", "sql-system-catalog"),
    ("SELECT * FROM db.public.tasks", "sql-table-not-user-scoped"),
    ("SELECT ctid FROM tasks", "sql-system-column"),
    ("SELECT t.xmin FROM tasks t", "sql-system-column"),
    ("SELECT * FROM tasks TABLESAMPLE SYSTEM (10)", "sql-construct-not-allowed"),
    ("SELECT xmlelement(name a)", "sql-construct-not-allowed"),
]


@pytest.mark.parametrize("sql", GOOD)
def test_check_sql_good(sql: str) -> None:
    checked = check_sql(sql)
    out = rewrite(checked, MAP, checked.max_param + 1, row_cap=11) if "t," not in sql and "FROM t" not in sql else None
    if out is not None:
        again = check_sql(out.sql)  # the rewrite is itself a valid, checkable query
        assert len(parse_sql(out.sql)) == 1 and again.is_explain == checked.is_explain


@pytest.mark.parametrize("sql, rule", BAD)
def test_check_sql_bad(sql: str, rule: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql(sql)
    finding = info.value.finding
    assert finding.rule == rule
    assert finding.message and finding.fix  # what, why and what to do instead


def test_parse_error_has_line_and_column() -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql("SELECT 1\nFROM tasks WHERE (")
    assert "line 2, column" in info.value.finding.message
    assert info.value.finding.location.line == 2


@pytest.mark.parametrize("sql, rule", [
    ("SELECT * FROM app_settings", "sql-table-not-user-scoped"),
    ("SELECT t.title, (SELECT string_agg(value, ',') FROM app_settings) FROM tasks t", "sql-table-not-user-scoped"),
    ("SELECT * FROM v_titles", "sql-table-not-user-scoped"),
])
def test_rewrite_refuses_unscoped_relations(sql: str, rule: str) -> None:
    with pytest.raises(QueryRefused) as info:
        rewrite(check_sql(sql), MAP, 1)
    assert info.value.finding.rule == rule
    assert "public.tasks" in info.value.finding.fix


def _golden():
    for path in sorted(CASES.glob("*.sql")):
        blocks = path.read_text().split("\n\n")
        line = 1
        for block in blocks:
            if block.strip():
                src, _, expected = block.strip().partition("\n=\n")
                yield pytest.param(src, expected.strip(), id=f"{path.name}:{line}")
            line += block.count("\n") + 2


@pytest.mark.parametrize("src, expected", list(_golden()))
def test_rewrite_golden(src: str, expected: str) -> None:
    checked = check_sql(src)
    out = rewrite(checked, MAP, checked.max_param + 1, row_cap=101)
    assert out.sql == expected
    # Re-parse and re-check the output; every user-table reference sits in a caller filter.
    check_sql(out.sql)
    for table, alias in re.findall(r"public\.(tasks|tags|task_tags|users)\b( AS _sa\d+)?", out.sql):
        assert alias, f"public.{table} outside a caller filter"
    assert re.findall(r"public\.(?:tasks|tags|task_tags|users)\b", out.sql)


def test_caller_param_follows_agent_params_and_is_never_text() -> None:
    checked = check_sql("SELECT * FROM tasks WHERE title = $1 OR id = $2")
    out = rewrite(checked, MAP, 3)
    assert "$3" in out.sql and "u_alice" not in out.sql


def test_link_table_requires_every_parent_to_be_the_callers() -> None:
    assert MAP.relations[("public", "task_tags")].scope == "parent"
    parents = {p.parent for p in MAP.relations[("public", "task_tags")].parents}
    assert parents == {("public", "tasks"), ("public", "tags")}
    assert MAP.relations[("public", "users")].scope == "auth-users"
    assert MAP.relations[("public", "colors")].scope == "shared"
    assert MAP.relations[("public", "app_settings")].scope == "refused"


def test_redact_keeps_only_plain_names_the_query_uses() -> None:
    # Changed with the "no free text back" rule: a quoted name such as "Title" is redacted too
    # (it could hold any text); a plain name the query uses stays readable.
    sql = 'SELECT "Title"::int, title FROM tasks'
    msg = 'invalid input syntax for type integer: "BOB_SECRET 1" near "Title"'
    assert redact(msg, sql) == 'invalid input syntax for type integer: "<redacted>" near "<redacted>"'
    assert redact('column "title" is ambiguous', sql) == 'column "title" is ambiguous'
    assert redact('column "t.title" must appear in the GROUP BY', "SELECT t.title FROM tasks t") == \
        'column "t.title" must appear in the GROUP BY'
    assert redact('column "other" does not exist', sql) == 'column "<redacted>" does not exist'


@pytest.mark.parametrize("message, sqlstate, sql, expected", [
    # Data exceptions quote values: everything between the first and the last quote goes, so a
    # value holding quotes cannot leave part of itself outside the redaction.
    ('invalid input syntax for type integer: "x" BOB_SECRET "y"', "22P02", "SELECT 1",
     'invalid input syntax for type integer: "<redacted>"'),
    ('invalid input syntax for type integer: "title"', "22P02", "SELECT title FROM tasks",
     'invalid input syntax for type integer: "<redacted>"'),
    ('unterminated "BOB_SECRET', "42601", "SELECT 1", 'unterminated "<redacted>"'),
    # Unquoted echoes of the agent's quoted names and literal values are caught too.
    ("column t.BOB_col does not exist", "42703", 'SELECT t."BOB_col" FROM tasks t',
     "column t.<redacted> does not exist"),
    ("no match for bob@example.com here", "XX000", "SELECT 'bob@example.com'",
     "no match for <redacted> here"),
    ("division by zero", "22012", "SELECT 1/0", "division by zero"),
])
def test_redact_db_message(message, sqlstate, sql, expected) -> None:
    assert redact(message, sql, sqlstate) == expected


@pytest.mark.parametrize("literal, value", [
    ("'bob@example.com'", "bob@example.com"),
    ("E'BOB\\x5FSECRET'", "BOB_SECRET"),
    ("$$CANARY it's$$", "CANARY it's"),
    ("$q$CANARY$q$", "CANARY"),
    ("U&'CANAR\\0059'", "CANARY"),
    ("'it''s BOB_'", "it's BOB_"),
    ("'é ñ BOB_ ü'", "é ñ BOB_ ü"),  # character, not byte, offsets
])
def test_shown_sql_elides_every_kind_of_string_literal(literal: str, value: str) -> None:
    checked = check_sql(f"SELECT id, interval '1 day' FROM tasks WHERE title = {literal} -- CANARY")
    out = rewrite(checked, MAP, 1, row_cap=11)
    # What runs keeps the value; what is shown has every string literal as '…' and no comment.
    assert parse_sql(out.sql)[0].stmt.fromClause[0].subquery.whereClause.rexpr.val.sval == value  # inside the row bound
    assert out.shown_sql == out.sql.replace(_quote(value), "'…'").replace("'1 day'", "'…'")
    for canary in ("BOB_", "bob@", "CANARY", value):
        assert canary not in out.shown_sql
    check_sql(out.shown_sql)  # still a readable, parseable query
    with elided_literals(out.tree, keep=OWN_LITERALS):  # the lexer-based elision equals printing an elided tree
        assert RawStream()(out.tree) == out.shown_sql
    assert RawStream()(out.tree) == out.sql  # and the tree is left as it was


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize("sql", [
    "SELECT 'BOB_SECRET bob@example.com",
    "SELECT 1 /* CANARY bob@example.com",
    "SELECT $x$BOB_SECRET",
    "SELECT E'BOB_SECRET",
    "SELECT 'a' 'BOB_SECRET' FROM",
    "SELECT 1BOB_SECRET",
    'SELECT "BOB_SECRET',
    "SELECT 1 FROM tasks WHERE BOB_SECRET CANARY",
])
def test_parse_errors_never_quote_the_agents_text(sql: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql(sql)
    text = str(info.value) + info.value.finding.model_dump_json()
    assert info.value.finding.rule == "sql-parse-error"
    assert "line 1, column" in text
    for canary in ("BOB_", "bob@", "CANARY"):
        assert canary not in text


def test_parse_error_keeps_keywords_and_plain_names() -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql("SELECT * FROM tasks WHERE WHERE")
    assert 'at or near "WHERE"' in info.value.finding.message


@pytest.mark.parametrize("sql", [
    'SELECT title AS "bob@x" FROM tasks',
    'SELECT title AS "Title" FROM tasks',
    'SELECT 1 FROM tasks AS "BOB_t"',
    'SELECT * FROM tasks AS t("BOB_id")',
    'WITH "CANARY" AS (SELECT 1 AS x) SELECT x FROM "CANARY"',
    'WITH c("BOB_c") AS (SELECT 1) SELECT 1 FROM c',
    'SELECT * FROM jsonb_to_record(\'{}\') AS x("bob@a" int)',
    'SELECT count(*) OVER "W" FROM tasks WINDOW "W" AS ()',
    'SELECT make_interval("BOB_days" => 1)',
    'SELECT 1 FROM tasks JOIN tags USING (id) AS "BOB_j"',
    'SELECT (SELECT 1 AS "x y") AS z',
    'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) '
    'CYCLE n SET "BOB_mark" USING p SELECT n FROM r',
])
def test_quoted_invented_names_are_refused(sql: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql(sql)
    assert info.value.finding.rule == "sql-quoted-alias"
    text = str(info.value) + info.value.finding.model_dump_json()
    for canary in ("BOB_", "bob@", "CANARY", "Title", "x y"):
        assert canary not in text


@pytest.mark.parametrize("sql", [
    'SELECT "title" AS "title", t."id" FROM "tasks" AS "t"',  # quoted but plain
    'SELECT "Title" FROM tasks',  # a quoted reference is the schema's name, not invented
    'SELECT title COLLATE "C" FROM tasks',
    "SELECT count(*) AS total_tasks, sum(id) AS s$1 FROM tasks",
])
def test_plain_and_referenced_names_pass(sql: str) -> None:
    check_sql(sql)


@pytest.mark.parametrize("sql, hidden", [
    ('SELECT * FROM "BOB_tasks"', "BOB_"),
    ('SELECT "CANARY_fn"(1)', "CANARY"),
    ('SELECT "bob@s".lower(\'x\')', "bob@"),
    ('SELECT * FROM "bob@db"."BOB_s".tasks', "BOB_"),
    ('SELECT * FROM information_schema."CANARY_v"', "CANARY"),
    ('EXPLAIN ("BOB_opt" true) SELECT 1', "BOB_"),
    ('SELECT 1 OPERATOR("BOB_s".=) 1', "BOB_"),
    ("SELECT current_setting('CANARY.x')", "CANARY"),
])
def test_refusals_never_echo_quoted_names(sql: str, hidden: str) -> None:
    with pytest.raises((QueryRefused, UnknownRelation)) as info:
        rewrite(check_sql(sql), MAP, 1)
    exc = info.value
    text = str(exc) + (exc.finding.model_dump_json() if isinstance(exc, QueryRefused) else exc.name)
    assert hidden not in text


def test_prepare_caches_by_sql_caller_param_row_cap_and_setting() -> None:
    data = build_map(CATALOG, "user_id", ["colors"])
    sql = "SELECT id FROM tasks WHERE title = 'x' AND id = $1"
    first, hit = prepare(sql, data, 2, 101)
    assert not hit and first.sql == rewrite(check_sql(sql), data, 2, 101).sql
    again, hit = prepare(sql, data, 2, 101)
    assert hit and again is first
    assert "'…'" in first.shown_sql and "'x'" in first.sql and first.max_param == 1
    # Every key part matters.
    for args, kwargs in [((sql, data, 3, 101), {}), ((sql, data, 2, 11), {}),
                         ((sql, data, 2, 101), {"caller_setting": "app.other"}),
                         ((sql + " ", data, 2, 101), {})]:
        other, hit = prepare(*args, **kwargs)
        assert not hit and other is not first
    assert prepare(sql, data, 3, 101)[0].sql.count("$3") == 1
    assert "LIMIT 11)" in prepare(sql, data, 2, 11)[0].sql
    # A reloaded map (a new object, new version) starts empty: nothing outlives its catalog.
    fresh = build_map(CATALOG, "user_id", ["colors"])
    assert fresh.version != data.version and len(fresh.rewrites) == 0
    assert prepare(sql, fresh, 2, 101)[1] is False
    # Refusals and unknown names are not cached.
    for bad in ("SELECT * FROM app_settings", "SELECT * FROM nosuch", "DELETE FROM tasks"):
        for _ in range(2):
            with pytest.raises((QueryRefused, UnknownRelation)):
                prepare(bad, data, 1, 101)
    assert len(data.rewrites) == 5


def test_prepare_cache_is_bounded_and_least_recently_used() -> None:
    data = build_map(CATALOG, "user_id", ["colors"])
    keep = "SELECT 0 FROM tasks"
    prepare(keep, data, 1, 101)
    for i in range(1, REWRITE_CACHE_SIZE + 50):
        prepare(f"SELECT {i} FROM tasks", data, 1, 101)
        prepare(keep, data, 1, 101)  # used again: stays
    assert len(data.rewrites) == REWRITE_CACHE_SIZE
    assert prepare(keep, data, 1, 101)[1] is True
    assert prepare("SELECT 1 FROM tasks", data, 1, 101)[1] is False  # evicted long ago
    # Very long texts are not kept (memory bound), but are still rewritten correctly.
    long_sql = "SELECT id FROM tasks WHERE " + " OR ".join(f"id = {i}" for i in range(1200))
    assert len(long_sql) > MAX_CACHED_SQL_CHARS
    first, _ = prepare(long_sql, data, 1, 101)
    again, hit = prepare(long_sql, data, 1, 101)
    assert not hit and again.sql == first.sql and "_sa1.user_id" in first.sql


def test_scoped_role_ddl_quotes_identifiers() -> None:
    ddl = scoped_role_ddl('agent"; DROP ROLE x; --', user_tables=["tasks"])
    assert 'CREATE ROLE "agent""; DROP ROLE x; --" LOGIN' in ddl
    assert "NOBYPASSRLS" in ddl and "CREATE POLICY" in ddl
    assert "current_setting('app.user_id', true)" in ddl
    for stmt in parse_sql(ddl):
        assert type(stmt.stmt).__name__ in {"CreateRoleStmt", "AlterRoleSetStmt", "GrantStmt",
                                            "AlterTableStmt", "CreatePolicyStmt"}


def test_the_one_quoter_refuses_names_and_values_postgresql_cannot_hold() -> None:
    """Every caller quotes through tools/database/quoting.py: the role DDL keeps refusing an empty or
    NUL name and a NUL setting, and the DDL and lint quoting now refuse them too."""
    for bad in ("", "agent\x00x"):
        with pytest.raises(ValueError, match="empty or contains a NUL byte"):
            scoped_role_ddl(bad)
        with pytest.raises(ValueError, match="empty or contains a NUL byte"):
            ident(bad)
    with pytest.raises(ValueError, match="NUL byte"):
        scoped_role_ddl("reader", user_tables=["tasks"], setting="app.\x00user_id")
    # Quoted where PostgreSQL would read a keyword (the lint's quoter left column-name keywords bare).
    assert [ident(n) for n in ("tasks", "order", "position", "Tasks")] == ["tasks", '"order"', '"position"', '"Tasks"']
    assert literal("it's") == "'it''s'"
