"""The resources and prompts as an agent's client reads them, over an MCP client session.

tests/test_server_surface.py reads each resource once; these add what goes wrong (no spec, no table, no
database, an unreachable one) and that the error says what to do without a password, and render every
shipped prompt through prompts/get as tests/test_prompts.py renders it directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def notes_url(make_database) -> str:
    return make_database("resources_mcp", "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, "
                                          "created_at timestamptz NOT NULL DEFAULT now());"
                                          "CREATE INDEX notes_created ON notes (created_at DESC);")


async def read_error(settings: Settings, uri: str) -> str:
    async with Client(create_server(settings)) as client:
        with pytest.raises(MCPError) as info:
            await client.read_resource(uri)
    return str(info.value)


async def test_the_spec_resource_without_a_spec_says_where_it_looked(tmp_path: Path) -> None:
    text = await read_error(Settings(project=tmp_path, embedded=False), "schema://spec")
    assert "specs/database/schema.md" in text, text


async def test_a_table_section_is_found_whatever_its_case_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    async with Client(create_server(Settings(project=REPO, embedded=False))) as client:
        upper = (await client.read_resource("schema://spec/TASKS")).contents[0]
    assert upper.mime_type == "text/markdown" and upper.text.startswith("## Table: tasks")
    text = await read_error(Settings(project=REPO, embedded=False), "schema://spec/taks")
    assert "No table 'taks' in the spec" in text, text


async def test_the_live_table_resource_names_what_is_missing(notes_url: str, tmp_path: Path) -> None:
    async with Client(create_server(Settings(project=tmp_path, database_url=notes_url))) as client:
        notes = (await client.read_resource("schema://database/Notes")).contents[0]
    assert notes.mime_type == "application/json"
    table = json.loads(notes.text)
    assert [c["name"] for c in table["columns"]] == ["id", "body", "created_at"]
    assert "notes_created" in [i["name"] for i in table["indexes"]]
    text = await read_error(Settings(project=tmp_path, database_url=notes_url), "schema://database/nope")
    assert "No table 'nope' in" in text and "resources_mcp_" in text, text
    text = await read_error(Settings(project=tmp_path, embedded=False), "schema://database/notes")
    assert "No database is configured: set DATABASE_URL" in text, text


async def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    settings = Settings(project=tmp_path, database_url="postgresql://app:hunter2@127.0.0.1:1/app",
                        connect_timeout_s=1)
    text = await read_error(settings, "schema://database/notes")
    assert "127.0.0.1:1" in text and "hunter2" not in text, text


async def test_every_prompt_renders_with_its_required_arguments_and_with_all(tmp_path: Path) -> None:
    async with Client(create_server(Settings(project=REPO, embedded=False))) as client:
        prompts = (await client.list_prompts()).prompts
        assert len(prompts) == 5
        for prompt in prompts:
            required = {a.name: f"value_of_{a.name}" for a in prompt.arguments or [] if a.required}
            every = {a.name: f"value_of_{a.name}" for a in prompt.arguments or []}
            for arguments in (required, every):
                result = await client.get_prompt(prompt.name, arguments)
                [message] = result.messages
                assert message.role == "user", prompt.name
                text = message.content.text
                assert all(value in text for value in arguments.values()), (prompt.name, arguments)
                assert "{{" not in text and "}}" not in text, f"a placeholder left in {prompt.name}"
