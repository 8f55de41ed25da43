"""read_schema_spec through an MCP client session, as an agent calls it."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE_SPEC = REPO / "specs" / "database" / "schema.md"

SMALL_SPEC = """\
# Schema

## Table: tasks

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | SERIAL | PRIMARY KEY | Task id |
| user_id | TEXT | NOT NULL | Owner |
| title | VARCHAR(200) | NOT NULL | Title |
"""


def make_project(tmp_path: Path, spec_text: str | None = SMALL_SPEC) -> Path:
    if spec_text is not None:
        spec = tmp_path / "specs" / "database" / "schema.md"
        spec.parent.mkdir(parents=True)
        spec.write_text(spec_text)
    return tmp_path


def client_for(project: Path) -> Client:
    return Client(create_server(Settings(project=project, embedded=False)))


async def call(project: Path, arguments: dict | None = None):
    async with client_for(project) as client:
        return await client.call_tool("read_schema_spec", arguments or {})


async def test_tool_is_listed_read_only_with_an_output_schema(tmp_path: Path) -> None:
    async with client_for(make_project(tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools["read_schema_spec"]
    assert tool.annotations.read_only_hint is True
    assert tool.annotations.destructive_hint is False
    assert {"tables", "content_hash", "lint", "warnings", "conflicts", "er_diagram"} <= set(
        tool.output_schema["properties"]
    )
    assert set(tool.input_schema["properties"]) == {"path", "tables", "detail", "cursor"}


async def test_reads_the_default_spec_with_hash_and_diagram(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = await call(project, {"detail": "full"})
    assert not result.is_error, result.content
    data = result.structured_content
    raw = (project / "specs/database/schema.md").read_bytes()
    assert data["content_hash"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert data["path"] == "specs/database/schema.md"
    [table] = data["tables"]
    assert table["name"] == "tasks"
    columns = {c["name"]: c for c in table["columns"]}
    assert columns["title"]["type"] == "varchar(200)"
    assert columns["title"]["nullable"] is False
    assert columns["id"]["identity"] == "serial"
    assert columns["title"]["location"] == {"file": "specs/database/schema.md", "line": 9}
    assert data["er_diagram"].startswith("erDiagram")
    # the small spec breaks conventions on purpose: lint must say so
    rules = {f["rule"] for f in data["lint"]}
    assert rules, "a tasks table without created_at or a user_id FK must have lint findings"


async def test_reference_spec_is_clean_and_complete() -> None:
    result = await call(REPO)
    assert not result.is_error, result.content
    data = result.structured_content
    # an empty list is a default, left out (README: what an agent receives)
    assert "warnings" not in data and "conflicts" not in data
    assert "lint" not in data, data.get("lint")
    names = {t["name"] for t in data["tables"]}
    assert {"tasks", "tags", "task_tags", "conversations", "messages"} <= names
    users = next(t for t in data["tables"] if t["name"] in ("users", "user"))
    assert users["managed_by"] == "better-auth"


async def test_tables_filter_and_unknown_table(tmp_path: Path) -> None:
    result = await call(REPO, {"tables": ["tasks"]})
    assert [t["name"] for t in result.structured_content["tables"]] == ["tasks"]
    result = await call(REPO, {"tables": ["nope"]})
    assert result.is_error
    assert "[unknown-table] No table 'nope'" in result.content[0].text
    assert "tasks" in result.content[0].text  # lists what exists


@pytest.mark.parametrize("path", ["../outside.md", "/etc/passwd", "specs/../../outside.md"])
async def test_paths_outside_the_project_are_refused(tmp_path: Path, path: str) -> None:
    project = make_project(tmp_path / "p")
    (tmp_path / "outside.md").write_text(SMALL_SPEC)
    result = await call(project, {"path": path})
    assert result.is_error
    assert "outside the project root" in result.content[0].text


async def test_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (tmp_path / "secret.md").write_text(SMALL_SPEC)
    os.symlink(tmp_path / "secret.md", project / "link.md")
    result = await call(project, {"path": "link.md"})
    assert result.is_error
    assert "outside the project root" in result.content[0].text


async def test_missing_binary_and_huge_files_get_clear_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path, spec_text=None)
    result = await call(project)
    assert result.is_error and "No spec file at specs/database/schema.md" in result.content[0].text

    (project / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    result = await call(project, {"path": "binary.md"})
    assert result.is_error and "looks binary" in result.content[0].text

    with open(project / "huge.md", "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    result = await call(project, {"path": "huge.md"})
    assert result.is_error and "50.0 MB" in result.content[0].text

    (project / "latin1.md").write_bytes("caf\xe9 table".encode("latin-1"))
    result = await call(project, {"path": "latin1.md"})
    assert result.is_error and "not UTF-8" in result.content[0].text


async def test_prose_only_spec_is_a_hint_not_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path, "# Data\n\nUsers own tasks. Each task has a title.\n")
    result = await call(project)
    assert not result.is_error
    data = result.structured_content
    assert data["tables"] == []
    assert [w["rule"] for w in data["warnings"]] == ["spec-no-tables"]


async def test_spawned_stdio_server_answers(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    exe = shutil.which("schema-architect", path=str(Path(sys.executable).parent))
    assert exe, "the console script must be installed next to the interpreter"
    params = StdioServerParameters(command=exe, args=["--project", str(project), "serve"],
                                   env={"SCHEMA_ARCHITECT_EMBEDDED": "false"})
    async with Client(params) as client:
        result = await client.call_tool("read_schema_spec", {"tables": ["tasks"]})
    assert not result.is_error, result.content
    assert result.structured_content["tables"][0]["name"] == "tasks"


# --- the reader's formats and the write hand-off, through the tool (tests/test_spec_reader.py checks the
# --- parser directly; these check what an agent receives) ------------------------------------------------

SQL_SPEC = """\
# Schema

```sql
CREATE TYPE note_state AS ENUM ('draft', 'final');

CREATE TABLE users (id TEXT PRIMARY KEY);

CREATE TABLE notes (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state note_state NOT NULL DEFAULT 'draft',
    body TEXT CHECK (length(body) < 5000),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_notes_user_created ON notes (user_id, created_at DESC);
CREATE UNIQUE INDEX uq_notes_draft ON notes (user_id, body) WHERE state = 'draft';
CREATE TABLE broken (id INT PRIMARY KEY,, oops);
```
"""

# The same column said twice: a markdown table and a SQL block disagree on user_id's type.
TWO_SAYINGS = """\
# Schema

## Table: notes

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | SERIAL | PRIMARY KEY | |
| user_id | TEXT | NOT NULL | |

```sql
CREATE TABLE notes (
  id SERIAL PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL REFERENCES users(id)
);
```
"""

BULLETS = """\
# Schema

## Table: notes

- id: serial, primary key
- user_id: text, not null
- title: varchar(120), not null, unique

### Relationships

- user_id → users.id ON DELETE CASCADE
"""


async def test_a_sql_ddl_spec_is_read_with_enums_checks_indexes_and_a_warning_by_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, SQL_SPEC)
    result = await call(project, {"detail": "full"})
    assert not result.is_error, result.content
    data = result.structured_content
    assert [t["name"] for t in data["tables"]] == ["users", "notes"]
    notes = data["tables"][1]
    columns = {c["name"]: c for c in notes["columns"]}
    assert (columns["id"]["type"], columns["id"]["identity"]) == ("bigint", "bigserial")
    assert columns["state"]["type"] == "note_state" and columns["state"]["allowed_values"] == ["draft", "final"]
    assert columns["state"]["default"] == "'draft'" and columns["user_id"]["location"]["line"] == 10
    [fk] = notes["foreign_keys"]
    assert (fk["columns"], fk["ref_table"], fk["on_delete"]) == (["user_id"], "users", "CASCADE")
    [check] = notes["checks"]
    assert (check["expression"], check["columns"]) == ("length(body) < 5000", ["body"])
    indexes = {i["name"]: i for i in notes["indexes"]}
    assert indexes["idx_notes_user_created"]["columns"] == [{"name": "user_id"},
                                                            {"name": "created_at", "descending": True}]
    assert indexes["uq_notes_draft"]["unique"] is True and indexes["uq_notes_draft"]["where"] == "state = 'draft'"
    assert [(e["name"], e["values"]) for e in data["enums"]] == [("note_state", ["draft", "final"])]
    [warning] = data["warnings"]
    assert (warning["rule"], warning["location"]["line"]) == ("spec-sql-unparsable", 17)
    assert "Write it as PostgreSQL DDL" in warning["fix"]
    assert data["summary"].startswith("2 table(s) read from specs/database/schema.md")


async def test_a_column_said_twice_is_a_conflict_naming_the_winner(tmp_path: Path) -> None:
    result = await call(make_project(tmp_path, TWO_SAYINGS), {"detail": "full"})
    assert not result.is_error, result.content
    data = result.structured_content
    [conflict] = data["conflicts"]
    assert (conflict["object"], conflict["aspect"]) == ("notes.user_id", "type")
    assert (conflict["winner"], conflict["loser"]) == ("text", "varchar(36)")
    assert (conflict["winner_location"]["line"], conflict["loser_location"]["line"]) == (8, 13)
    assert "markdown table wins over SQL DDL" in conflict["why"]
    user_id = next(c for c in data["tables"][0]["columns"] if c["name"] == "user_id")
    assert user_id["type"] == "text"  # the winner is what the table says
    assert "1 conflict(s)" in data["summary"]


async def test_bullets_and_a_relationships_section_make_one_table(tmp_path: Path) -> None:
    result = await call(make_project(tmp_path, BULLETS), {"tables": ["notes"]})
    assert not result.is_error, result.content
    [notes] = result.structured_content["tables"]
    columns = {c["name"]: c for c in notes["columns"]}
    assert columns["title"]["type"] == "varchar(120)" and columns["title"]["unique"] is True
    assert columns["title"]["nullable"] is False and columns["id"]["identity"] == "serial"
    [fk] = notes["foreign_keys"]
    assert (fk["ref_table"], fk["on_delete"]) == ("users", "CASCADE")
    assert "warnings" not in result.structured_content


async def test_the_content_hash_read_is_what_a_write_expects(tmp_path: Path) -> None:
    """The documented hand-off: content_hash from read_schema_spec, passed as expected_spec_hash."""
    project = make_project(tmp_path)
    proposal = {"name": "notes", "purpose": "A user's notes.", "columns": [{"name": "body", "type": "text"}],
                "apply": True}
    async with client_for(project) as client:
        read_hash = (await client.call_tool("read_schema_spec", {})).structured_content["content_hash"]
        first = await client.call_tool("propose_table", {**proposal, "expected_spec_hash": read_hash})
        assert not first.is_error, first.content
        stale = await client.call_tool("propose_table", {**proposal, "name": "memos", "expected_spec_hash": read_hash})
        again = await client.call_tool("read_schema_spec", {"tables": ["notes"]})
    assert first.structured_content["applied"] is True
    assert again.structured_content["content_hash"] == first.structured_content["spec_hash"] != read_hash
    assert stale.is_error and "[stale-content-hash]" in stale.content[0].text
    assert "changed since you read it" in stale.content[0].text
