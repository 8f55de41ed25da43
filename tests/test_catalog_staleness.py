"""The cached catalog map sees DDL by another session on the next call, and a one-table look reads one table.

Every test keeps one MCP session open across the DDL, so the server's cached map is warm and stale
when the second call arrives: a cache that is never refreshed fails each of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.database.catalog import read_catalog, read_table

from fence import rows_in_fence

pytestmark = pytest.mark.anyio

FIXTURE = """
CREATE TABLE users (id text PRIMARY KEY);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), title text NOT NULL);
CREATE TABLE notices (id serial PRIMARY KEY, body text NOT NULL);
CREATE TABLE drafts (id serial PRIMARY KEY, body text NOT NULL);
INSERT INTO users VALUES ('alice'), ('bob');
INSERT INTO tasks (user_id, title) VALUES ('alice', 'a1'), ('bob', 'b1');
INSERT INTO notices (body) VALUES ('for alice'), ('for bob');
INSERT INTO drafts (body) VALUES ('alice draft'), ('bob draft');
"""


@pytest.fixture
def db_url(make_database) -> str:
    return make_database("staleness", FIXTURE)


def ddl(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


async def query(client: Client, sql: str, user_id: str = "alice"):
    return await client.call_tool("run_scoped_query", {"sql": sql, "user_id": user_id})


async def test_a_new_user_table_is_seen_by_the_next_call(db_url: str, tmp_path: Path) -> None:
    settings = Settings(project=tmp_path, database_url=db_url, embedded=False)
    async with Client(create_server(settings)) as client:
        assert not (await query(client, "SELECT count(*) FROM tasks")).is_error  # the map is now cached
        ddl(db_url, "CREATE TABLE notes (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), "
                    "body text); INSERT INTO notes (user_id, body) VALUES ('alice', 'mine'), ('bob', 'BOB_NOTE')")
        result = await query(client, "SELECT body FROM notes")
    assert not result.is_error, result.content
    assert rows_in_fence(result.structured_content) == [["mine"]]
    assert result.structured_content["scoped_tables"] == ["public.notes"]


async def test_a_shared_table_that_gains_an_owner_column_is_filtered_at_once(db_url: str, tmp_path: Path) -> None:
    """The unsafe direction: a stale map would keep reading the table unfiltered (bob's rows)."""
    settings = Settings(project=tmp_path, database_url=db_url, embedded=False, shared_tables=["notices"])
    async with Client(create_server(settings)) as client:
        first = await query(client, "SELECT body FROM notices ORDER BY id")
        assert rows_in_fence(first.structured_content) == [["for alice"], ["for bob"]]
        assert first.structured_content["shared_tables"] == ["public.notices"]
        ddl(db_url, "ALTER TABLE notices ADD COLUMN user_id text REFERENCES users(id); "
                    "UPDATE notices SET user_id = CASE WHEN body = 'for alice' THEN 'alice' ELSE 'bob' END")
        again = await query(client, "SELECT body FROM notices ORDER BY id")
    assert not again.is_error, again.content
    assert rows_in_fence(again.structured_content) == [["for alice"]]
    assert again.structured_content["scoped_tables"] == ["public.notices"]


async def test_a_dropped_owner_column_turns_the_table_refused(db_url: str, tmp_path: Path) -> None:
    settings = Settings(project=tmp_path, database_url=db_url, embedded=False)
    async with Client(create_server(settings)) as client:
        assert rows_in_fence((await query(client, "SELECT title FROM tasks")).structured_content) == [["a1"]]
        ddl(db_url, "ALTER TABLE tasks DROP COLUMN user_id")
        result = await query(client, "SELECT title FROM tasks")
    assert result.is_error
    text = result.content[0].text
    assert "refused" in text and "user_id" in text, text  # a refusal, not "column does not exist"
    assert "rejected" not in text


async def test_a_renamed_owner_column_is_seen_when_the_stale_rewrite_fails(db_url: str, tmp_path: Path) -> None:
    """A filtered table's version is not checked on every call (its filter is in the SQL); the call
    whose cached rewrite no longer runs checks it, reloads the map and answers from the fresh one:
    renamed, the column is an FK to users like any other, so tasks is owned through that parent."""
    settings = Settings(project=tmp_path, database_url=db_url, embedded=False)
    async with Client(create_server(settings)) as client:
        assert rows_in_fence((await query(client, "SELECT title FROM tasks")).structured_content) == [["a1"]]
        ddl(db_url, "ALTER TABLE tasks RENAME COLUMN user_id TO owner_id")
        renamed = await query(client, "SELECT title FROM tasks")
        ddl(db_url, "ALTER TABLE tasks RENAME COLUMN owner_id TO user_id")
        back = await query(client, "SELECT title FROM tasks", "bob")
    assert not renamed.is_error, renamed.content
    assert rows_in_fence(renamed.structured_content) == [["a1"]]
    assert "owner_id" in renamed.structured_content["rewritten_sql"]
    assert not back.is_error, back.content
    assert rows_in_fence(back.structured_content) == [["b1"]]
    assert "owner_id" not in back.structured_content["rewritten_sql"]


async def test_a_refused_table_that_gains_an_owner_column_is_allowed(db_url: str, tmp_path: Path) -> None:
    settings = Settings(project=tmp_path, database_url=db_url, embedded=False)
    async with Client(create_server(settings)) as client:
        refused = await query(client, "SELECT body FROM drafts")
        assert refused.is_error and "refused" in refused.content[0].text
        ddl(db_url, "ALTER TABLE drafts ADD COLUMN user_id text REFERENCES users(id); "
                    "UPDATE drafts SET user_id = split_part(body, ' ', 1)")
        result = await query(client, "SELECT body FROM drafts", "bob")
    assert not result.is_error, result.content
    assert rows_in_fence(result.structured_content) == [["bob draft"]]


async def test_the_table_resource_reads_that_table_and_sees_new_columns(db_url: str, tmp_path: Path) -> None:
    settings = Settings(project=tmp_path, database_url=db_url, embedded=False)
    async with Client(create_server(settings)) as client:
        before = json.loads((await client.read_resource("schema://database/tasks")).contents[0].text)
        ddl(db_url, "ALTER TABLE tasks ADD COLUMN done boolean NOT NULL DEFAULT false")
        after = json.loads((await client.read_resource("schema://database/TASKS")).contents[0].text)
    assert [c["name"] for c in before["columns"]] == ["id", "user_id", "title"]
    assert [c["name"] for c in after["columns"]] == ["id", "user_id", "title", "done"]


async def test_read_table_matches_the_whole_catalog_for_that_table(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        one = await read_table(conn, "tasks")
        whole = await read_catalog(conn)
        missing = await read_table(conn, "nope")
    assert [t.name for t in one.schema.tables] == ["tasks"]
    assert one.statements == 1 and one.round_trips == 1
    assert one.schema.table("tasks") == whole.schema.table("tasks")
    assert missing.schema.tables == []


#: DDL that can change what a query reads or resolves to: each moves the catalog version (a pair: the
#: change, and what runs before the version is first read).
CHANGES = [
    "CREATE TABLE notes (id serial PRIMARY KEY, user_id text)",
    "ALTER TABLE tasks ADD COLUMN done boolean",
    "ALTER TABLE tasks RENAME COLUMN title TO name",
    "ALTER TABLE tasks ALTER COLUMN title TYPE varchar(200)",
    "ALTER TABLE notices ALTER COLUMN body DROP NOT NULL",
    "ALTER TABLE tasks DROP COLUMN title",
    "ALTER TABLE notices ADD CONSTRAINT body_short CHECK (length(body) < 500)",
    "ALTER TABLE drafts RENAME TO sketches",
    "DROP TABLE drafts; CREATE TABLE drafts (id serial PRIMARY KEY, body text NOT NULL)",
    "CREATE VIEW open_tasks AS SELECT * FROM tasks",
    "CREATE FUNCTION public.spy(text) RETURNS text LANGUAGE sql AS 'SELECT $1'",
    pytest.param("CREATE OR REPLACE FUNCTION public.spy(text) RETURNS text LANGUAGE sql AS 'SELECT upper($1)'",
                 "CREATE FUNCTION public.spy(text) RETURNS text LANGUAGE sql AS 'SELECT $1'", id="replace-function"),
    "CREATE TYPE mood AS ENUM ('ok')",
    "CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 10)",
    "CREATE SCHEMA extra",
    "ALTER TABLE tasks ENABLE ROW LEVEL SECURITY",
]

#: What an app does all day without changing its schema: the version stays, so the map is not re-read.
NOT_CHANGES = [
    "INSERT INTO tasks (user_id, title) VALUES ('alice', 'a2')",
    "UPDATE notices SET body = body || '!'",
    "VACUUM ANALYZE tasks",
    "CREATE TEMPORARY TABLE scratch (id int); INSERT INTO scratch VALUES (1)",
    "CREATE INDEX tasks_title ON tasks (title)",
]


@pytest.mark.parametrize(("change", "setup"), [(c, "") if isinstance(c, str) else c for c in CHANGES])
def test_the_catalog_version_moves_with_each_kind_of_ddl(db_url: str, change: str, setup: str) -> None:
    """The version each call past the map's age compares (classify.CATALOG_VERSION_SQL)."""
    if setup:
        ddl(db_url, setup)
    assert _version_across(db_url, change) is True


@pytest.mark.parametrize("change", NOT_CHANGES)
def test_the_catalog_version_stays_through_writes_statistics_and_temporary_tables(db_url: str, change: str) -> None:
    assert _version_across(db_url, change) is False


def _version_across(url: str, change: str) -> bool:
    """Whether the catalog version differs before and after ``change`` (run in its own session)."""
    from schema_architect.tools.sqlsafe.classify import CATALOG_VERSION_SQL

    read = "SELECT " + CATALOG_VERSION_SQL
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(url, autocommit=True) as other:
        before = conn.execute(read).fetchone()[0]
        for statement in change.split("; "):
            other.execute(statement)  # the temporary table lives on in ``other`` while the version is read
        after = conn.execute(read).fetchone()[0]
    return before != after
