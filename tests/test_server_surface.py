"""What a client sees of the server: five tools, five prompts, the spec resources, and `init`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import psycopg
import pytest
from mcp import Client, MCPError

from schema_architect.server.app import create_server
from schema_architect.server.cli import run
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio

TOOLS = {"read_schema_spec", "propose_table", "diff_models_vs_spec", "explain_indexes", "run_scoped_query"}
PROMPTS = {"database-architect", "schema-designer", "database-engineer", "index-reviewer", "data-inspector"}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_prompts_and_resources_are_listed(mode: str) -> None:
    async with Client(create_server(Settings(project=REPO, embedded=False)), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        resources = {r.uri for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert set(tools) == TOOLS
    assert all(t.output_schema for t in tools.values()), "every tool has an output schema"
    assert tools["propose_table"].annotations.read_only_hint is False  # it can write the spec
    assert all(tools[n].annotations.read_only_hint for n in TOOLS - {"propose_table"})
    assert prompts == PROMPTS
    assert resources == {"schema://spec"}
    assert templates == {"schema://spec/{table}", "schema://database/{table}"}


async def test_prompt_renders_with_arguments() -> None:
    async with Client(create_server(Settings(project=REPO, embedded=False))) as client:
        prompt = await client.get_prompt("data-inspector", {"user_id": "u_42", "symptom": "sees no tasks"})
        text = prompt.messages[0].content.text
        assert "u_42" in text and "run_scoped_query" in text
        with pytest.raises(MCPError):
            await client.get_prompt("data-inspector", {"symptom": "missing user_id"})


async def test_spec_resources() -> None:
    async with Client(create_server(Settings(project=REPO, embedded=False))) as client:
        whole = (await client.read_resource("schema://spec")).contents[0].text
        tasks = (await client.read_resource("schema://spec/tasks")).contents[0].text
        with pytest.raises(MCPError):
            await client.read_resource("schema://spec/nope")
        with pytest.raises(MCPError):
            await client.read_resource("schema://database/tasks")  # no database configured
    assert whole == (REPO / "specs/database/schema.md").read_text()
    assert tasks.startswith("## Table: tasks") and "| user_id | text |" in tasks


async def test_live_table_resource(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)")
    async with Client(create_server(Settings(project=REPO, database_url=pg_url))) as client:
        text = (await client.read_resource("schema://database/notes")).contents[0].text
    table = json.loads(text)
    assert table["name"] == "notes"
    assert [c["name"] for c in table["columns"]] == ["id", "body"]


def test_init_sets_up_a_project(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(["--project", str(tmp_path), "init"], out, err) == 0, err.getvalue()
    config = json.loads((tmp_path / ".mcp.json").read_text())
    assert config["mcpServers"]["schema-architect"]["args"][-1] == "serve"
    assert {p.stem for p in (tmp_path / ".claude/agents").glob("*.md")} == PROMPTS
    (tmp_path / ".mcp.json").write_text("{not json")
    out, err = io.StringIO(), io.StringIO()
    assert run(["--project", str(tmp_path), "init"], out, err) == 1
    assert "Nothing was changed" in err.getvalue()


def _span_middleware(server) -> list:
    from schema_architect.server.app import SDK_SPANS

    return [m for m in server.middleware if type(m).__name__ == SDK_SPANS]


@pytest.fixture
def untraced(monkeypatch):
    """No exporter named in the environment (the tracer provider is the API's default in tests)."""
    from schema_architect.server.app import TRACING_VARIABLES

    for name in TRACING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_the_sdk_span_per_message_is_dropped_when_nothing_records_it(untraced) -> None:
    """With no tracer provider set (the OpenTelemetry API alone, as the SDK installs it), every span is a
    no-op: the server leaves it out, and still answers. The SDK must still install it by that name, or this
    would silently keep it."""
    from mcp.server.mcpserver import MCPServer

    assert _span_middleware(MCPServer("probe")), "the SDK no longer adds its span middleware under that name"
    server = create_server(Settings(project=REPO, embedded=False))
    assert not _span_middleware(server)
    assert server.middleware, "only the span middleware is taken out (the SDK's request-state one stays)"
    async with Client(server) as client:
        assert not (await client.call_tool("read_schema_spec", {})).is_error


@pytest.mark.parametrize("how", ["exporter variable", "tracer provider"])
def test_the_sdk_span_per_message_stays_when_tracing_is_on(untraced, how: str) -> None:
    from opentelemetry import trace

    monkeypatch = untraced
    if how == "exporter variable":
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    else:  # what opentelemetry-instrument does before the server starts (not set globally: one per process)
        monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    assert _span_middleware(create_server(Settings(project=REPO, embedded=False)))


def test_the_settings_doc_names_what_keeps_the_spans() -> None:
    from schema_architect.server.app import TRACING_VARIABLES

    doc = (REPO / "docs" / "settings.md").read_text()
    assert all(f"`{name}`" in doc for name in TRACING_VARIABLES)
