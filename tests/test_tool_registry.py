"""Tools at module level (issue 32): each tool is its folder's ``TOOL``, registered by one adapter
(server/tooling.py), so a new tool is its folder and one line; the server's caches and memories are per
server; read_schema_spec's cache never hands out what it keeps."""

from __future__ import annotations

from typing import Annotated

import pytest
from mcp import Client
from pydantic import BaseModel, Field

from schema_architect.server.app import TOOLS, create_server
from schema_architect.server.settings import Settings
from schema_architect.server.tooling import register_tool
from schema_architect.tools.schema.call import READ_ONLY, ToolCall, ToolSpec

from conftest import REPO

pytestmark = pytest.mark.anyio


class Counted(BaseModel):
    calls: int = Field(description="Calls this server has counted")
    word: str = Field(description="The word given")


class Counter:
    def __init__(self) -> None:
        self.calls = 0


async def count_calls(call: ToolCall, word: Annotated[str, Field(description="Any word")]) -> Counted:
    """Count this server's calls."""
    counter = call.kept(Counter)
    counter.calls += 1
    return Counted(calls=counter.calls, word=word)


#: A tool as a tool's folder declares one: what a line in server/app.py's TOOLS registers.
COUNT_CALLS = ToolSpec(count_calls, title="Count calls", hints=READ_ONLY, result=Counted, detail=False)


def server_with_the_new_tool():
    settings = Settings(project=REPO, embedded=False)
    server = create_server(settings)
    register_tool(server, COUNT_CALLS, settings)
    return server


def test_every_tool_is_its_folders_tool_module() -> None:
    assert [t.fn.__module__ for t in TOOLS] == [f"schema_architect.tools.{t.name}.tool" for t in TOOLS]


async def test_a_new_tool_is_listed_and_called_as_its_folder_declares_it() -> None:
    async with Client(server_with_the_new_tool()) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}["count_calls"]
        result = await client.call_tool("count_calls", {"word": "hi"})
        unknown = await client.call_tool("count_calls", {"word": "hi", "wrod": "x"})
    assert listed.title == "Count calls" and listed.description == "Count this server's calls."
    assert listed.annotations.read_only_hint is True and listed.annotations.destructive_hint is False
    assert listed.input_schema == {"type": "object",
                                   "properties": {"word": {"description": "Any word", "type": "string"}},
                                   "required": ["word"], "additionalProperties": False}
    assert listed.output_schema == {"type": "object", "properties": {"calls": {"type": "integer"},
                                                                     "word": {"type": "string"}},
                                    "required": ["calls", "word"]}
    assert not result.is_error and result.structured_content == {"calls": 1, "word": "hi"}
    assert result.content[0].text == '{"calls":1,"word":"hi"}'  # the JSON once, compact
    assert unknown.is_error and "Did you mean `word`?" in unknown.content[0].text


async def test_what_a_tool_keeps_is_per_server_and_outlives_a_session() -> None:
    first, second = server_with_the_new_tool(), server_with_the_new_tool()
    counts = []
    for server in (first, first, second):  # two sessions of the first server, then the second server
        async with Client(server) as client:
            counts.append((await client.call_tool("count_calls", {"word": "x"})).structured_content["calls"])
    assert counts == [1, 2, 1]


def test_read_schema_spec_never_hands_out_what_it_keeps() -> None:
    """An agent's second read must not see what a caller did to the first one's objects."""
    from schema_architect.tools.read_schema_spec import ParsedSpecs, read_schema_spec

    for cache in (None, ParsedSpecs()):
        first = read_schema_spec(REPO, cache=cache)
        expected = ([len(t.columns) for t in first.tables], [f.message for f in first.lint])
        for table in first.tables:
            table.columns.clear()
        for finding in first.lint:
            finding.message = "changed by a caller"
        again = read_schema_spec(REPO, cache=cache)
        assert ([len(t.columns) for t in again.tables], [f.message for f in again.lint]) == expected
