"""explain_indexes through MCP: live evidence with a database, static purposes without one."""

from __future__ import annotations

import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio



@pytest.fixture(scope="module")
def todo_db(make_reference_database) -> str:
    """The reference schema with 20 users x 1,000 tasks, minus the (user_id, created_at DESC) index."""
    return make_reference_database("explain_tool", users=20, tasks=20_000)


async def call(settings: Settings, arguments: dict, progress: list | None = None):
    async def on_progress(value, total, message):
        progress.append(message)

    async with Client(create_server(settings)) as client:
        return await client.call_tool("explain_indexes", arguments,
                                      progress_callback=on_progress if progress is not None else None)


async def test_missing_index_found_with_its_benefit(todo_db: str) -> None:
    progress: list = []
    # build: a database of the user's; without hypopg the candidate is built only when the call asks
    result = await call(Settings(project=REPO, database_url=todo_db), {"table": "tasks", "build": True}, progress)
    assert not result.is_error, result.content
    data = result.structured_content
    [rec] = [r for r in data["recommendations"] if "created_at" in r["ddl"]]
    assert rec["ddl"].startswith("CREATE INDEX CONCURRENTLY")
    assert rec["cost_after"] < rec["cost_before"]
    assert {p["rule"] for p in data["problems"]} >= {"index-missing-in-database"}
    assert all(entry["purposes"] for entry in data["indexes"])
    assert progress, "long work reports progress"
    assert "/explain_tool_" in data["database"]


async def test_without_a_database_it_explains_the_spec(tmp_path) -> None:
    result = await call(Settings(project=REPO, embedded=False), {"table": "messages"})
    assert not result.is_error, result.content
    data = result.structured_content
    names = {entry["name"] for entry in data["indexes"]}
    assert "idx_messages_conversation_created" in names
    assert data["recommendations"] == [] or all("CONCURRENTLY" in r["ddl"] for r in data["recommendations"])


async def test_unknown_table_is_a_clear_error() -> None:
    result = await call(Settings(project=REPO, embedded=False), {"table": "nope"})
    assert result.is_error and "nope" in result.content[0].text
