"""explain_indexes as an agent calls it, over an MCP client session on a real PostgreSQL.

The behaviours tests/test_explain_indexes.py checks on the Python function, here through the server: every
problem kind, the planner's choice against the forced plan, the caller's own queries, the spec and the
database disagreeing both ways, spec-only mode, unchecked recommendations, bad queries as tool errors,
and nothing left behind in the database.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE_SPEC = (REPO / "specs" / "database" / "schema.md").read_text(encoding="utf-8")

# One table per problem kind: a duplicate, a prefix-redundant, a boolean, an unused index, an FK covered
# only by a partial index, and an INVALID unique index left by a failed CONCURRENTLY build.
PROBLEM_KINDS = """
CREATE TABLE users (id text PRIMARY KEY);
CREATE TABLE boards (
    id serial PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    pinned boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX boards_user ON boards (user_id);
CREATE INDEX boards_user_created ON boards (user_id, created_at DESC);
CREATE INDEX boards_user_created_again ON boards (user_id, created_at DESC);
CREATE INDEX boards_pinned ON boards (pinned);
CREATE TABLE cards (
    id serial PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    board_id integer NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    body text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_user_created ON cards (user_id, created_at DESC);
CREATE INDEX cards_board_when_body ON cards (board_id) WHERE body IS NOT NULL;
CREATE TABLE labels (id serial PRIMARY KEY, code text NOT NULL);
INSERT INTO users SELECT 'u' || g FROM generate_series(1, 50) g;
INSERT INTO boards (user_id, name, pinned, created_at)
    SELECT 'u' || (g % 50 + 1), 'b' || g, g % 2 = 0, now() - g * interval '1 hour' FROM generate_series(1, 5000) g;
INSERT INTO cards (user_id, board_id, body)
    SELECT 'u' || (g % 50 + 1), g % 5000 + 1, CASE WHEN g % 10 = 0 THEN NULL ELSE 'c' END
    FROM generate_series(1, 10000) g;
INSERT INTO labels (code) SELECT 'l' || (g % 3) FROM generate_series(1, 12) g;
"""

# Every relation, index (with its validity) and extension: equal before and after means nothing was left.
FINGERPRINT = """
    SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
        SELECT concat_ws(':', c.oid, c.relname, c.relkind) AS x FROM pg_class c
        UNION ALL SELECT concat_ws(':', i.indexrelid, i.indisvalid) FROM pg_index i
        UNION ALL SELECT 'ext:' || extname FROM pg_extension) q
"""


@pytest.fixture(scope="module")
def ref_url(make_reference_database) -> str:
    """The reference schema with 20 users x 1,000 tasks, minus the (user_id, created_at DESC) index."""
    return make_reference_database("explain_mcp_ref", users=20, tasks=20_000)


@pytest.fixture(scope="module")
def kinds_url(make_database) -> str:
    url = make_database("explain_mcp_kinds", PROBLEM_KINDS)
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):  # leaves an INVALID index behind
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY labels_code_uq ON labels (code)")
        conn.execute("VACUUM ANALYZE")
    return url


def fingerprint(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(FINGERPRINT).fetchone()[0]


def project_with_spec(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_text(text, encoding="utf-8")
    return tmp_path


def without_index_row(name: str) -> str:
    """The reference spec with one row of an Indexes table removed."""
    text = re.sub(rf"^\| {name} \|.*\n", "", REFERENCE_SPEC, flags=re.M)
    assert text != REFERENCE_SPEC
    return text


async def call(settings: Settings, arguments: dict):
    async with Client(create_server(settings)) as client:
        return await client.call_tool("explain_indexes", arguments)


async def explained(settings: Settings, arguments: dict) -> dict:
    result = await call(settings, {**arguments, "detail": "full"})
    assert not result.is_error, result.content
    return result.structured_content


async def test_every_problem_kind_is_named_with_its_fix(kinds_url: str, tmp_path: Path) -> None:
    with psycopg.connect(kinds_url, autocommit=True) as other:  # one real scan of cards_board_when_body
        other.execute("SET enable_seqscan = off")
        other.execute("SELECT * FROM cards WHERE board_id = 1 AND body IS NOT NULL").fetchall()
        other.execute("SELECT pg_stat_force_next_flush()")
    before = fingerprint(kinds_url)
    # No spec in this project: the database's indexes alone are explained, and a note says so.
    data = await explained(Settings(project=tmp_path, database_url=kinds_url), {"source": "database"})
    assert fingerprint(kinds_url) == before
    found = {(p["rule"], p["object"]) for p in data["problems"]}
    assert ("fk-not-indexed", "cards.board_id") in found  # the partial index does not cover the FK
    assert ("duplicate-index", "boards.boards_user_created_again") in found
    assert ("redundant-index", "boards.boards_user") in found
    assert ("boolean-index", "boards.boards_pinned") in found
    assert ("invalid-index", "labels.labels_code_uq") in found
    assert ("unused-index", "boards.boards_pinned") in found
    assert ("unused-index", "cards.cards_board_when_body") not in found  # it was scanned above
    assert not any(p["rule"] == "unused-index" and p["object"].endswith("_pkey") for p in data["problems"])
    assert all(p["fix"] and p["severity"] in ("error", "warning", "info") for p in data["problems"])
    pinned = next(e for e in data["indexes"] if e["name"] == "boards_pinned")
    assert {"boolean-index", "unused-index"} <= set(pinned["problems"])
    invalid = next(e for e in data["indexes"] if e["name"] == "labels_code_uq")
    assert invalid["valid"] is False and "invalid-index" in invalid["problems"]
    assert any("neon" in n.lower() and "restart" in n for n in data["notes"])
    assert data["source"] == "database"
    fk = next(r for r in data["recommendations"] if "cards (board_id)" in r["ddl"])
    assert fk["ddl"].startswith("CREATE INDEX CONCURRENTLY")
    assert fk["cost_before"] is not None and fk["cost_after"] < fk["cost_before"]
    assert not fk["checked_how"].startswith("not checked")


async def test_the_planners_choice_and_the_forced_plan_are_both_shown(ref_url: str) -> None:
    """tags is empty: the planner picks a sequential scan; the forced plan shows the index can serve it."""
    data = await explained(Settings(project=REPO, database_url=ref_url), {"table": "tags"})
    assert data["tables"] == ["public.tags"]
    by_name = next(e for e in data["evidence"] if e["query"] == "List a user's tags by name")
    assert by_name["origin"] == "spec" and by_name["location"]["file"] == "specs/database/schema.md"
    assert "tags" in by_name["chosen"]["seq_scans"]
    assert "uq_tags_user_name" in by_name["forced"]["indexes"]
    assert "prefers a sequential scan" in by_name["verdict"] and "can serve this query" in by_name["verdict"]
    unique = next(e for e in data["indexes"] if e["name"] == "uq_tags_user_name")
    assert "specs/database/schema.md:74" in unique["declared_in"] and "database" in unique["declared_in"]
    assert any(s.startswith("usable for") for s in unique["evidence"])


async def test_the_missing_index_is_found_and_every_index_explained(ref_url: str) -> None:
    before = fingerprint(ref_url)
    data = await explained(Settings(project=REPO, database_url=ref_url), {"table": "tasks", "build": True})
    assert fingerprint(ref_url) == before, "a rolled-back build left something behind"
    assert data["source"] == "both" and "/explain_mcp_ref_" in data["database"]
    assert "idx_tasks_user_created" not in {e["name"] for e in data["indexes"]}
    completed = next(e for e in data["indexes"] if e["name"] == "idx_tasks_user_completed")
    assert "specs/database/schema.md:42" in completed["declared_in"]
    assert any("equality on user_id, completed" in p for p in completed["purposes"])
    assert any("chosen by the planner" in e for e in completed["evidence"])
    [missing] = [p for p in data["problems"] if p["rule"] == "index-missing-in-database"]
    assert missing["object"] == "tasks.idx_tasks_user_created" and missing["location"]["line"] == 41
    assert "CONCURRENTLY" in missing["fix"]
    newest = next(r for r in data["recommendations"] if "(user_id, created_at DESC)" in r["ddl"])
    assert newest["checked_how"] in ("hypopg", "transaction")
    assert newest["cost_after"] < newest["cost_before"]


async def test_the_callers_queries_replace_the_patterns(ref_url: str) -> None:
    sql = "SELECT id, title FROM tasks WHERE user_id = $1 AND completed = $2"
    data = await explained(Settings(project=REPO, database_url=ref_url), {"table": "tasks", "queries": [sql]})
    mine = [e for e in data["evidence"] if e["origin"] == "caller"]
    assert len(mine) == 1 and mine[0]["sql"] == sql
    assert mine[0]["needs"] == ["user_id", "completed"]
    assert mine[0]["chosen"]["indexes"] == ["idx_tasks_user_completed"]
    # the spec's query patterns and the conventions' usual queries were not planned
    assert {e["origin"] for e in data["evidence"]} <= {"caller", "foreign key"}


async def test_spec_and_database_disagree_both_ways(ref_url: str, tmp_path: Path) -> None:
    project = project_with_spec(tmp_path, without_index_row("idx_tasks_user_completed"))
    data = await explained(Settings(project=project, database_url=ref_url), {"table": "tasks"})
    found = {(p["rule"], p["object"]) for p in data["problems"]}
    assert ("index-missing-in-spec", "tasks.idx_tasks_user_completed") in found
    assert ("index-missing-in-database", "tasks.idx_tasks_user_created") in found
    assert not any(p["object"] == "tasks.tasks_pkey" for p in data["problems"])  # implied by the spec


async def test_spec_only_gives_purposes_static_problems_and_unchecked_advice(tmp_path: Path) -> None:
    project = project_with_spec(tmp_path, without_index_row("idx_task_tags_tag_id"))
    data = await explained(Settings(project=project, embedded=False), {})
    assert data["source"] == "spec" and "database" not in data
    assert not data.get("evidence")
    assert ("fk-not-indexed", "task_tags.tag_id") in {(p["rule"], p["object"]) for p in data["problems"]}
    created = next(e for e in data["indexes"] if e["name"] == "idx_tasks_user_created")
    assert created["declared_in"] == ["specs/database/schema.md:41"]
    assert any("rows already in created_at DESC order" in p for p in created["purposes"])
    rec = next(r for r in data["recommendations"] if "task_tags (tag_id)" in r["ddl"])
    assert rec["checked_how"].startswith("not checked: no database")
    assert any("database-unavailable" in note for note in data["notes"])  # says what it skipped


async def test_hypothetical_false_leaves_the_advice_unchecked(ref_url: str) -> None:
    data = await explained(Settings(project=REPO, database_url=ref_url), {"table": "tasks", "hypothetical": False})
    newest = next(r for r in data["recommendations"] if "created_at DESC" in r["ddl"])
    assert newest["checked_how"] == "not checked: hypothetical=false"
    assert newest.get("cost_after") is None and newest["cost_before"] is not None


@pytest.mark.parametrize("arguments, words", [
    ({"queries": ["SELEC * FROM tasks"]}, ["[sql-parse-error]", "'SELEC * FROM tasks' is not valid SQL",
                                           "Pass one SELECT"]),
    ({"queries": ["DELETE FROM tasks"]}, ["[sql-statement-not-allowed]", "exactly one SELECT",
                                          "write the WHERE of an UPDATE/DELETE as a SELECT"]),
    ({"queries": ["SELECT * FROM tasks WHERE no_such_column = 1"]},
     ["[query-invalid]", "cannot be planned", "no_such_column", "Pass queries the app really runs"]),
    ({"source": "live"}, ["[argument-invalid]", "source", "'spec', 'database' or 'both'"]),
    ({"table": "taks"}, ["[unknown-table]", "'taks'", "tasks"]),
    ({"queries": "SELECT 1"}, ["[argument-invalid]", "queries"]),
])
async def test_bad_arguments_are_tool_errors_saying_what_to_change(ref_url: str, arguments: dict,
                                                                   words: list[str]) -> None:
    before = fingerprint(ref_url)
    result = await call(Settings(project=REPO, database_url=ref_url), arguments)
    assert result.is_error
    text = result.content[0].text
    assert all(w in text for w in words), text
    assert "Traceback" not in text
    assert fingerprint(ref_url) == before


async def test_asking_for_the_database_without_one_is_an_error_not_the_spec(tmp_path: Path) -> None:
    result = await call(Settings(project=REPO, embedded=False), {"source": "database"})
    assert result.is_error
    assert "[database-unavailable]" in result.content[0].text


async def test_nothing_to_explain_without_a_spec_or_a_database(tmp_path: Path) -> None:
    result = await call(Settings(project=tmp_path, embedded=False), {})
    assert result.is_error
    text = result.content[0].text
    assert "[spec-unreadable]" in text and "specs/database/schema.md" in text, text


NEWEST = "SELECT * FROM tasks WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20"
OPEN_NEWEST = "SELECT * FROM tasks WHERE user_id = $1 AND NOT completed ORDER BY created_at DESC LIMIT 20"


# pg_class counts, the indexes and their scan counts: a build, even rolled back, would change one of them.
TOUCHED = """
    SELECT (SELECT string_agg(indexname || ':' || indexdef, ',' ORDER BY indexname) FROM pg_indexes
            WHERE schemaname = 'public'),
           (SELECT string_agg(indexrelname || ':' || idx_scan, ',' ORDER BY indexrelname) FROM pg_stat_user_indexes),
           (SELECT string_agg(concat_ws(':', relname, relpages, reltuples, relallvisible), ',' ORDER BY relname)
            FROM pg_class WHERE relname = 'tasks')
"""


async def test_by_default_one_index_for_two_queries_is_proved_on_a_scratch_copy(ref_url: str,
                                                                                 tmp_path: Path) -> None:
    """No hypopg, build left out: the set of candidates is proved on a copy on the server's own scratch
    PostgreSQL, and the user's database is not touched; two queries sharing a prefix get one index."""
    with psycopg.connect(ref_url, autocommit=True) as conn:
        before = conn.execute(TOUCHED).fetchone()
    data = await explained(Settings(project=tmp_path, database_url=ref_url),
                           {"table": "tasks", "queries": [NEWEST, OPEN_NEWEST]})
    with psycopg.connect(ref_url, autocommit=True) as conn:
        assert conn.execute(TOUCHED).fetchone() == before
    [rec] = [r for r in data["recommendations"] if r["table"] == "public.tasks"]
    assert rec["ddl"].startswith("CREATE INDEX CONCURRENTLY") and "(user_id, created_at DESC)" in rec["ddl"]
    assert len(rec["serves"]) == 2
    assert rec["checked_how"].startswith("on a scratch copy with 20000 synthetic rows")
    assert rec["cost_after"] < rec["cost_before"] / 2
    workload = data["workload"]
    assert workload["indexes"] == 1 and workload["checked_how"] == rec["checked_how"]
    assert [q["query"] for q in workload["queries"]] == [NEWEST, OPEN_NEWEST]
    assert any(c.startswith("left out tasks (user_id, completed, created_at DESC)") for c in workload["considered"])
    assert any("proved on a scratch copy" in note and "build=true" in note for note in data["notes"])
