"""What an agent receives (server/results.py), through an MCP client: small definitions, compact
results, and large results paged by table with a cursor that can be followed to the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.schema.model import Column, ForeignKey, Index, IndexColumn, Schema, Table
from schema_architect.tools.spec.writer import render_spec

from conftest import REPO

pytestmark = pytest.mark.anyio

PAGE = 12_000  # a small budget, so that a 60-table spec takes several pages


def size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def many_tables(count: int) -> str:
    tables = [Table(name="users", managed_by="better-auth", primary_key=["id"],
                    columns=[Column(name="id", type="text", nullable=False, primary_key=True)])]
    for i in range(count):
        name = f"items_{i:03d}"
        tables.append(Table(
            name=name, description=f"Item kind {i}.", primary_key=["id"],
            columns=[Column(name="id", type="integer", identity="serial", nullable=False, primary_key=True),
                     Column(name="user_id", type="text", nullable=False, description="Owner"),
                     Column(name="title", type="varchar(200)", nullable=False, description=f"Title {i}"),
                     Column(name="body", type="varchar", description="No length: a lint finding per table"),
                     Column(name="created_at", type="timestamptz", nullable=False, default="now()")],
            foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE")],
            indexes=[Index(name=f"idx_{name}_user_created", columns=[
                IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True)])]))
    return render_spec(Schema(tables=tables))


def project(tmp_path: Path, spec: str) -> Path:
    (tmp_path / "specs/database").mkdir(parents=True)
    (tmp_path / "specs/database/schema.md").write_text(spec)
    return tmp_path


async def test_tools_list_stays_small() -> None:
    """Clients put every tool definition into the model's context on every turn (issue 13: 12 KB)."""
    async with Client(create_server(Settings(project=REPO, embedded=False))) as client:
        listed = await client.list_tools()
    assert size(listed.model_dump(mode="json", by_alias=True, exclude_none=True)) <= 12 * 1024
    for tool in listed.tools:
        assert all("description" not in p for p in tool.output_schema["properties"].values()), tool.name
        assert "title" not in json.dumps(tool.input_schema).replace('"title":{', ""), tool.name


async def test_summary_leaves_out_defaults_and_locations_and_full_gives_them(tmp_path: Path) -> None:
    spec = (REPO / "specs/database/schema.md").read_text()
    async with Client(create_server(Settings(project=project(tmp_path, spec), embedded=False))) as client:
        summary = (await client.call_tool("read_schema_spec", {})).structured_content
        full = (await client.call_tool("read_schema_spec", {"detail": "full"})).structured_content
    assert size(summary) <= 1.5 * len(spec.encode())  # issue 13: at most 1.5x the spec itself
    tasks = next(t for t in summary["tables"] if t["name"] == "tasks")
    columns = {c["name"]: c for c in tasks["columns"]}
    assert "location" not in tasks and "location" not in columns["title"]
    assert "nullable" not in columns["description"]  # nullable, the default, is left out
    assert columns["title"]["nullable"] is False and columns["completed"]["default"] == "false"
    assert "primary_key" not in columns["title"] and "unique" not in columns["title"]
    assert "er_diagram" not in summary and "page" not in summary
    full_tasks = next(t for t in full["tables"] if t["name"] == "tasks")
    assert full_tasks["location"]["line"] > 0 and full["er_diagram"].startswith("erDiagram")
    assert [t["name"] for t in full["tables"]] == [t["name"] for t in summary["tables"]]


async def follow(client: Client, tool: str, arguments: dict) -> list[dict]:
    pages = []
    cursor = None
    while True:
        result = await client.call_tool(tool, {**arguments, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error, result.content
        pages.append(result.structured_content)
        cursor = result.structured_content.get("page", {}).get("next_cursor")
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not move on"


async def test_a_large_spec_is_paged_by_table_and_every_table_comes_once(tmp_path: Path) -> None:
    root = project(tmp_path, many_tables(60))
    settings = Settings(project=root, embedded=False, page_bytes=PAGE)
    async with Client(create_server(settings)) as client:
        pages = await follow(client, "read_schema_spec", {})
    async with Client(create_server(Settings(project=root, embedded=False, page_bytes=0))) as client:
        everything = (await client.call_tool("read_schema_spec", {})).structured_content
    assert "page" not in everything
    assert len(pages) >= 3
    assert all(size(p) <= PAGE for p in pages), [size(p) for p in pages]
    names = [t["name"] for p in pages for t in p["tables"]]
    assert names == [t["name"] for t in everything["tables"]]  # each once, in order
    paged_lint = sorted(json.dumps(f, sort_keys=True) for p in pages for f in p["lint"])
    assert paged_lint == sorted(json.dumps(f, sort_keys=True) for f in everything["lint"])  # each once
    for p in pages:  # and on the page of its table
        assert {f["object"].split(".")[0] for f in p["lint"] if "object" in f} <= {t["name"] for t in p["tables"]}
    assert all(p["page"]["of"] == 61 for p in pages) and sum(p["page"]["tables"] for p in pages) == 61
    assert pages[1]["page"]["after"] == pages[0]["tables"][-1]["name"]
    assert all(p["content_hash"] == everything["content_hash"] for p in pages)


async def test_explain_indexes_spec_only_is_paged_too(tmp_path: Path) -> None:
    settings = Settings(project=project(tmp_path, many_tables(60)), embedded=False, page_bytes=PAGE)
    async with Client(create_server(settings)) as client:
        pages = await follow(client, "explain_indexes", {"source": "spec"})
    assert len(pages) >= 2 and all(size(p) <= PAGE for p in pages)
    indexes = [i["name"] for p in pages for i in p["indexes"]]
    assert len(indexes) == len(set(indexes)) and "idx_items_059_user_created" in indexes
    for p in pages:  # an index comes on the page of its table
        assert {i["table"] for i in p["indexes"]} <= set(p["tables"])


async def test_pages_come_from_one_reading_while_it_is_kept(tmp_path: Path) -> None:
    root = project(tmp_path, many_tables(60))
    async with Client(create_server(Settings(project=root, embedded=False, page_bytes=PAGE))) as client:
        first = (await client.call_tool("read_schema_spec", {})).structured_content
        (root / "specs/database/schema.md").write_text(many_tables(30))  # half the tables gone meanwhile
        second = await client.call_tool("read_schema_spec", {"cursor": first["page"]["next_cursor"]})
        other_arguments = await client.call_tool("read_schema_spec", {"detail": "full",
                                                                      "cursor": first["page"]["next_cursor"]})
    assert not second.is_error, second.content
    # The next page of the same reading: its tables follow the first page's, none repeated or skipped.
    after = first["tables"][-1]["name"]
    assert second.structured_content["tables"][0]["name"] == f"items_{int(after[-3:]) + 1:03d}"
    assert second.structured_content["content_hash"] == first["content_hash"]
    # A cursor is not a key to other arguments' reading: that one is computed afresh, and the tables moved.
    assert other_arguments.is_error and "changed since that cursor" in other_arguments.content[0].text


async def test_a_cursor_from_before_an_edit_or_made_up_is_refused_clearly(tmp_path: Path) -> None:
    root = project(tmp_path, many_tables(60))
    settings = Settings(project=root, embedded=False, page_bytes=PAGE)
    async with Client(create_server(settings)) as client:
        first = (await client.call_tool("read_schema_spec", {})).structured_content
    cursor = first["page"]["next_cursor"]
    (root / "specs/database/schema.md").write_text(many_tables(61))  # a table added between pages
    async with Client(create_server(settings)) as client:  # a new server: the first reading is not kept
        stale = await client.call_tool("read_schema_spec", {"cursor": cursor})
        made_up = await client.call_tool("read_schema_spec", {"cursor": "not-a-cursor"})
    assert stale.is_error and "changed since that cursor" in stale.content[0].text
    assert "without cursor" in stale.content[0].text
    assert made_up.is_error and "not one this server gave" in made_up.content[0].text
    assert "Traceback" not in stale.content[0].text + made_up.content[0].text


async def test_every_page_of_a_long_drift_validates_against_the_published_schema(tmp_path: Path) -> None:
    """The client checks each result against outputSchema: later pages lack the first page's fields,
    so those must not be required. Drift on every table, spec against models, paged."""
    spec = many_tables(40)
    root = project(tmp_path, spec.replace("| title |", "| heading |"))
    models = ["from sqlmodel import Field, SQLModel", ""]
    for i in range(40):
        models += [f"class Item{i:03d}(SQLModel, table=True):", f"    __tablename__ = 'items_{i:03d}'",
                   "    id: int | None = Field(default=None, primary_key=True)", "    title: str", ""]
    (root / "models.py").write_text("\n".join(models))
    settings = Settings(project=root, embedded=False, page_bytes=PAGE)
    async with Client(create_server(settings)) as client:  # Client validates every result it receives
        pages = await follow(client, "diff_models_vs_spec", {"models": "models.py"})
    assert len(pages) >= 2 and "sides" in pages[0] and "sides" not in pages[1]
    drifted = {d["object"].split(".")[0] for p in pages for d in p["drifts"]}
    assert drifted == {f"items_{i:03d}" for i in range(40)}
