"""Shared steps of the tests that reach a tool as an agent does, over an MCP client session."""

from __future__ import annotations

import re
from pathlib import Path

from mcp import Client
from mcp.types import Tool

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

REPO = Path(__file__).resolve().parents[1]


async def listed_tool(settings: Settings, name: str) -> Tool:
    """The tool ``name`` as tools/list shows it to a client."""
    async with Client(create_server(settings)) as client:
        return next(t for t in (await client.list_tools()).tools if t.name == name)


def assert_annotations_as_its_page_states(tool: Tool) -> None:
    """docs/tools/<name>.md says "Read-only: ...; destructive: ...; idempotent: ..."; the listing must agree."""
    page = (REPO / "docs" / "tools" / f"{tool.name}.md").read_text(encoding="utf-8")
    said = re.search(r"Read-only: (\w+); destructive: (\w+); idempotent: (\w+)\.", page).groups()
    hints = tool.annotations
    assert said == tuple("yes" if flag else "no" for flag in (
        hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint)), (tool.name, said)


async def diff_models_vs_spec(project: Path, **arguments) -> dict:
    """diff_models_vs_spec's structured result on ``project`` with no database; a tool error fails the test."""
    async with Client(create_server(Settings(project=project, embedded=False))) as client:
        result = await client.call_tool("diff_models_vs_spec", arguments)
    assert not result.is_error, result.content
    return result.structured_content
