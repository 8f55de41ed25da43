"""propose_table through MCP: designs by the conventions, proven on a real database, written safely."""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
import pytest
from mcp import Client
from mcp.types import ElicitResult

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.propose_table import proof as propose_check
from schema_architect.tools.spec.file import content_hash
from schema_architect.tools.spec.reader import parse_spec

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE = (REPO / "specs" / "database" / "schema.md").read_text()


def without_sections(text: str, *names: str) -> str:
    """The reference spec minus some table sections (so they can be proposed anew)."""
    for name in names:
        text = re.sub(rf"## Table: {name}\n.*?(?=\n## Table: |\Z)", "", text, flags=re.S)
    return text


@pytest.fixture(scope="module")
def todo_db(make_database) -> str:
    """A database holding the reference schema without tags and task_tags."""
    url = make_database("propose")
    schema = parse_spec(without_sections(REFERENCE, "tags", "task_tags")).schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(schema):
            conn.execute(statement)
    return url


def make_project(tmp_path: Path, spec_text: str) -> Path:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_text(spec_text)
    return tmp_path


def catalog_fingerprint(url: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT relname, relkind FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace "
                            "WHERE nspname = 'public' ORDER BY 1").fetchall()


TAGS = {
    "name": "tags",
    "purpose": "Labels a user can attach to tasks.",
    "columns": [{"name": "name", "type": "string", "required": True, "max_length": 50,
                 "description": "Label text"},
                {"name": "color", "type": "str", "allowed_values": ["red", "green", "blue"]}],
    "query_patterns": ["list a user's tags by name"],
}


async def propose(settings: Settings, arguments: dict, **client_options):
    async with Client(create_server(settings), **client_options) as client:
        return await client.call_tool("propose_table", arguments)


async def test_tags_proposal_is_proven_and_lint_clean(tmp_path: Path, todo_db: str) -> None:
    project = make_project(tmp_path, without_sections(REFERENCE, "tags", "task_tags"))
    before = catalog_fingerprint(todo_db)
    result = await propose(Settings(project=project, database_url=todo_db), {**TAGS, "detail": "full"})
    assert not result.is_error, result.content
    data = result.structured_content
    assert "lint" not in data  # none: an empty list is left out
    assert data["dry_run"]["ok"] is True, data["dry_run"]
    assert data["dry_run"]["code_matches_ddl"] is True
    assert catalog_fingerprint(todo_db) == before  # rolled back: nothing left behind
    columns = {c["name"]: c for c in data["table"]["columns"]}
    assert columns["user_id"]["type"] == "text" and columns["user_id"]["nullable"] is False
    assert columns["name"]["type"] == "varchar(50)"
    assert columns["color"]["allowed_values"] == ["red", "green", "blue"]
    assert columns["created_at"]["type"] == "timestamptz" and columns["created_at"]["default"] == "now()"
    [fk] = data["table"]["foreign_keys"]
    assert (fk["ref_table"], fk["on_delete"]) == ("users", "CASCADE")
    [index] = data["table"]["indexes"]
    assert [c["name"] for c in index["columns"]] == ["user_id", "name"]
    assert index["reason"].startswith("serves: list a user's tags by name")
    rules = {r["rule"] for r in data["rules_applied"]}
    assert {"primary-key", "owner-column", "max-length", "fixed-value-set", "timestamps", "index-from-query"} <= rules
    assert "class Tag(SQLModel, table=True)" in data["sqlmodel_code"]
    assert "class TagCreate(SQLModel)" in data["sqlmodel_code"]
    assert data["ddl"][0].startswith("CREATE TABLE tags (")
    assert any("CREATE TRIGGER" in s for s in data["updated_at_trigger"])
    assert "applied" not in data  # false, its default, is left out
    # the spec section reads back as the same table
    reread = parse_spec(data["spec_section"]).schema.table("tags")
    assert [c.name for c in reread.columns] == [c["name"] for c in data["table"]["columns"]]


async def test_link_table_and_non_user_table(tmp_path: Path, todo_db: str) -> None:
    project = make_project(tmp_path, without_sections(REFERENCE, "task_tags"))
    settings = Settings(project=project, database_url=todo_db)
    link = await propose(settings, {"name": "task_tags", "purpose": "Which tags are on which tasks.",
                                    "references": ["tasks", "tags"], "detail": "full"})
    assert not link.is_error, link.content
    data = link.structured_content
    assert data["table"]["primary_key"] == ["task_id", "tag_id"]
    assert data["dry_run"]["ok"] is True, data["dry_run"]
    assert data["dry_run"]["created_for_the_check"] == ["tags"]  # from the spec, inside the rollback
    assert {fk["ref_table"] for fk in data["table"]["foreign_keys"]} == {"users", "tasks", "tags"}

    lookup = await propose(settings, {
        "name": "countries", "purpose": "A shared lookup table of ISO country codes.", "user_owned": False,
        "columns": [{"name": "code", "type": "char(2)", "required": True, "unique": True},
                    {"name": "name", "type": "varchar(100)", "required": True}], "detail": "full"})
    data = lookup.structured_content
    assert not lookup.is_error, lookup.content
    assert "user_id" not in [c["name"] for c in data["table"]["columns"]]
    assert data["dry_run"]["ok"] is True, data["dry_run"]
    assert "lint" not in data  # none: an empty list is left out


async def test_apply_writes_only_that_section(tmp_path: Path, todo_db: str) -> None:
    original = without_sections(REFERENCE, "tags", "task_tags")
    project = make_project(tmp_path, original)
    spec = project / "specs/database/schema.md"
    result = await propose(Settings(project=project, database_url=todo_db),
                           {**TAGS, "apply": True, "expected_spec_hash": content_hash(original.encode())})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["applied"] is True
    written = spec.read_text()
    assert written.startswith(original.rstrip("\n"))  # everything before is byte-identical
    assert written[len(original.rstrip("\n")):].strip().startswith("## Table: tags")
    assert data["spec_hash"] == content_hash(written.encode())
    assert parse_spec(written).warnings == []


async def test_stale_hash_and_crash_leave_the_spec_untouched(tmp_path: Path, todo_db: str, monkeypatch) -> None:
    original = without_sections(REFERENCE, "tags", "task_tags")
    project = make_project(tmp_path, original)
    spec = project / "specs/database/schema.md"
    settings = Settings(project=project, database_url=todo_db)

    result = await propose(settings, {**TAGS, "apply": True, "expected_spec_hash": content_hash(b"older")})
    assert result.is_error and "changed since you read it" in result.content[0].text
    result = await propose(settings, {**TAGS, "apply": True})
    assert result.is_error and "expected_spec_hash" in result.content[0].text
    assert spec.read_text() == original

    def crash(src, dst):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    result = await propose(settings, {**TAGS, "apply": True, "expected_spec_hash": content_hash(original.encode())})
    assert result.is_error
    assert spec.read_text() == original
    assert sorted(p.name for p in spec.parent.iterdir()) == ["schema.md"]  # no temp file left


@pytest.mark.parametrize("arguments, words", [
    ({"name": "tasks", "purpose": "again"}, "already exists"),
    ({"name": "order", "purpose": "x"}, "reserved word"),
    ({"name": "Bad Name", "purpose": "x"}, "not a plain PostgreSQL identifier"),
    ({"name": "notes", "purpose": "x", "references": ["nope"]}, "[unknown-table] No table 'nope'"),
    ({"name": "notes", "purpose": "x", "columns": [{"name": "a", "type": "blob of joy"}]}, "Cannot map the type"),
    ({"name": "notes", "purpose": "x", "columns": [{"name": "a", "type": "text"}, {"name": "A", "type": "int"}]},
     "Duplicate column"),
])
async def test_refusals(tmp_path: Path, arguments: dict, words: str) -> None:
    project = make_project(tmp_path, REFERENCE)
    result = await propose(Settings(project=project, embedded=False), arguments)
    assert result.is_error
    assert words in result.content[0].text


async def test_without_a_database_the_dry_run_is_reported_missing(tmp_path: Path) -> None:
    project = make_project(tmp_path, without_sections(REFERENCE, "tags", "task_tags"))
    result = await propose(Settings(project=project, embedded=False), TAGS)
    data = result.structured_content
    assert "dry_run" not in data  # null fields are left out
    assert "not run" in data["message"]


async def test_replacing_a_section_needs_confirmation(tmp_path: Path, todo_db: str) -> None:
    project = make_project(tmp_path, REFERENCE)
    settings = Settings(project=project, database_url=todo_db)
    spec = project / "specs/database/schema.md"
    replace = {**TAGS, "apply": True, "replace": True, "expected_spec_hash": content_hash(REFERENCE.encode())}

    refused = await propose(settings, replace)  # this client cannot be asked
    assert refused.is_error and "confirm_breaking=true" in refused.content[0].text
    assert spec.read_text() == REFERENCE

    asked: list[str] = []

    async def decline(context, params):
        asked.append(params.message)
        return ElicitResult(action="decline")

    declined = await propose(settings, replace, elicitation_callback=decline)
    assert declined.is_error and asked and "breaking" in asked[0]
    assert spec.read_text() == REFERENCE

    async def accept(context, params):
        return ElicitResult(action="accept", content={"confirm": True, "asked": True})

    accepted = await propose(settings, replace, elicitation_callback=accept)
    assert not accepted.is_error, accepted.content
    assert accepted.structured_content["applied"] is True
    assert "| color |" in spec.read_text()

    forced = await propose(settings, {**replace, "expected_spec_hash": content_hash(spec.read_bytes()),
                                      "confirm_breaking": True})
    assert not forced.is_error, forced.content


async def test_the_proof_catches_code_that_disagrees_with_the_ddl(tmp_path: Path, todo_db: str,
                                                                  monkeypatch) -> None:
    real = propose_check.sqlmodel_code
    monkeypatch.setattr(propose_check, "sqlmodel_code",
                        lambda table, **kw: real(table, **kw).replace("max_length=50", "max_length=40"))
    project = make_project(tmp_path, without_sections(REFERENCE, "tags", "task_tags"))
    result = await propose(Settings(project=project, database_url=todo_db), TAGS)
    dry = result.structured_content["dry_run"]
    assert dry["ok"] is False and dry["code_matches_ddl"] is False
    assert any(d["object"] == "tags.name" and d["kind"] == "column-length" for d in dry["drifts"])
