"""propose_table as an agent calls it, over an MCP client session.

What tests/test_propose_table.py does not already show through the server: one reference adding its
column, foreign key and index; an index designed from a query pattern given as SQL; what the summary
leaves out and full gives; the fields that say where the section would go and how to ship it; and the
annotations the tool's page states.
"""

from __future__ import annotations

import hashlib

import pytest
from mcp import Client
from through_mcp import assert_annotations_as_its_page_states, listed_tool

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio

TASK_NOTES = {
    "name": "task_notes",
    "purpose": "Notes a user writes on a task.",
    "references": ["tasks"],
    "columns": [{"name": "body", "type": "text", "required": True}],
    "query_patterns": ["SELECT * FROM task_notes WHERE task_id = $1 ORDER BY created_at DESC"],
}


async def propose(*arguments: dict) -> list:
    """Calls in one session against the reference project, no database: nothing is written (no apply)."""
    async with Client(create_server(Settings(project=REPO, embedded=False))) as client:
        return [await client.call_tool("propose_table", a) for a in arguments]


async def test_a_reference_adds_its_column_key_and_the_index_a_sql_pattern_needs() -> None:
    before = (REPO / "specs/database/schema.md").read_bytes()
    summary, full = await propose(TASK_NOTES, {**TASK_NOTES, "detail": "full"})
    assert (REPO / "specs/database/schema.md").read_bytes() == before
    assert not summary.is_error and not full.is_error, (summary.content, full.content)
    table = full.structured_content["table"]
    assert "table" not in summary.structured_content  # the summary leaves the model out, full has it
    columns = {c["name"]: c for c in table["columns"]}
    assert columns["task_id"]["type"] == "integer" and columns["task_id"]["nullable"] is False
    assert {(tuple(fk["columns"]), fk["ref_table"], fk["on_delete"]) for fk in table["foreign_keys"]} == {
        (("user_id",), "users", "CASCADE"), (("task_id",), "tasks", "CASCADE")}
    by_columns = {tuple((c["name"], c.get("descending", False)) for c in ix["columns"]): ix for ix in table["indexes"]}
    from_pattern = by_columns[(("task_id", False), ("created_at", True))]
    assert from_pattern["reason"].startswith("serves: SELECT * FROM task_notes WHERE task_id = $1")
    data = summary.structured_content
    rules = [(r["rule"], r["added"]) for r in data["rules_applied"]]
    assert ("reference", "task_id integer NOT NULL → tasks.id ON DELETE CASCADE") in rules
    assert ("index-from-query", "index (task_id, created_at DESC)") in rules
    assert data["spec_section"].startswith("## Table: task_notes")
    assert "- task_id → tasks.id ON DELETE CASCADE" in data["spec_section"]
    assert "class TaskNote(SQLModel, table=True)" in data["sqlmodel_code"]
    assert data["ddl"][0].startswith("CREATE TABLE task_notes (")
    assert any("(task_id, created_at DESC)" in statement for statement in data["ddl"])
    assert set(data["referenced_tables"]) >= {"tasks"}
    assert data["spec_path"] == "specs/database/schema.md"
    assert "alembic revision --autogenerate -m 'add task_notes'" in data["migration_note"]
    assert "applied" not in data  # nothing was written: the spec's hash is still the one it had
    assert data["spec_hash"] == "sha256:" + hashlib.sha256(before).hexdigest()


async def test_user_owned_false_has_no_owner_and_says_why() -> None:
    [result] = await propose({"name": "currencies", "purpose": "A shared list of ISO currency codes.",
                              "user_owned": False, "detail": "full",
                              "columns": [{"name": "code", "type": "char(3)", "required": True, "unique": True}]})
    assert not result.is_error, result.content
    data = result.structured_content
    assert "user_id" not in [c["name"] for c in data["table"]["columns"]]
    assert "owner-column" not in {r["rule"] for r in data["rules_applied"]}
    code = next(c for c in data["table"]["columns"] if c["name"] == "code")
    assert code["type"] == "char(3)" and code["unique"] is True


async def test_listed_with_the_annotations_its_page_states() -> None:
    tool = await listed_tool(Settings(project=REPO, embedded=False), "propose_table")
    assert_annotations_as_its_page_states(tool)
    assert {"name", "purpose"} <= set(tool.input_schema["required"])
