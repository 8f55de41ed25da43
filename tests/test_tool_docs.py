"""docs/tools/<tool>.md: one page per tool, with a real request and response produced here.

Each page is rendered from the tool as the server lists it (description, arguments, result fields) and
from a real call against the reference project and a real database. The test fails when a page is stale;
regenerate with:

    SCHEMA_ARCHITECT_WRITE_DOCS=1 pytest tests/test_tool_docs.py
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import TOOLS, create_server
from schema_architect.server.settings import Settings
from schema_architect.server.tooling import EMBEDDED_DESCRIPTION
from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.spec.reader import parse_spec

from conftest import REPO

pytestmark = pytest.mark.anyio

DOCS = REPO / "docs" / "tools"

EXAMPLES: dict[str, dict] = {
    "read_schema_spec": {"tables": ["tags"]},
    "propose_table": {
        "name": "notes", "purpose": "Notes a user keeps on a task.",
        "columns": [{"name": "body", "type": "text", "required": True, "description": "The note"}],
        "references": ["tasks"], "query_patterns": ["list a task's notes newest first"],
    },
    "diff_models_vs_spec": {"include_database": True, "tables": ["tasks"]},
    "explain_indexes": {"table": "tasks", "hypothetical": True},
    "run_scoped_query": {
        "sql": "SELECT title, completed FROM tasks WHERE created_at >= $1::timestamptz ORDER BY title",
        "user_id": "u_alice", "params": ["2025-01-01T00:00:00Z"], "limit": 10,
    },
}

SEED = """
INSERT INTO users (id, email, name) VALUES ('u_alice', 'alice@example.com', 'Alice'), \
('u_bob', 'bob@example.com', 'Bob');
INSERT INTO tasks (user_id, title, completed, created_at) VALUES
  ('u_alice', 'Write the report', false, '2025-03-01'), ('u_alice', 'Pay the invoice', true, '2025-03-02'),
  ('u_bob', 'Bob''s private plan', false, '2025-03-03');
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory, make_database) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("docs_project")
    (root / "specs/database").mkdir(parents=True)
    shutil.copy(REPO / "specs/database/schema.md", root / "specs/database/schema.md")
    (root / "backend").mkdir()
    shutil.copy(REPO / "specs/database/models.py", root / "backend/models.py")
    url = make_database("docs")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(parse_spec((root / "specs/database/schema.md").read_text()).schema):
            conn.execute(statement)
        conn.execute(SEED)
        conn.execute("VACUUM ANALYZE")  # a settled visibility map: plans cannot change under a test
    return root, url


#: The example revision of docs/tools/diff_models_vs_spec.md: the reference database with these differences.
DRIFTED = ["ALTER TABLE tasks DROP COLUMN due_date", "DROP INDEX idx_tasks_user_completed",
           "ALTER TABLE tasks ALTER COLUMN completed DROP DEFAULT"]


@pytest.fixture(scope="module")
def drifted_url(project, make_database) -> str:
    url = make_database("docs_drifted")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(parse_spec((project[0] / "specs/database/schema.md").read_text()).schema):
            conn.execute(statement)
        for statement in DRIFTED:
            conn.execute(statement)
    return url


async def revision_example(root: Path, url: str) -> str:
    """A second real call, against a drifted copy: the migration's Alembic revision, as the page shows it."""
    async with Client(create_server(Settings(project=root, database_url=url, embedded=False))) as client:
        result = await client.call_tool("diff_models_vs_spec", EXAMPLES["diff_models_vs_spec"])
    assert not result.is_error, result.content
    migration = result.structured_content["migration"]
    assert "needs no more fixes" in migration["proof"], migration["proof"]
    return "\n".join([
        "", "## Example: the migration, as an Alembic revision", "",
        "The same request against the reference database with three differences planted ("
        + "; ".join(f"`{s}`" for s in DRIFTED) + "). `migration.alembic`, proven on a copy before it is "
        "shown: Alembic's own operations where one says the statement exactly, `op.execute` with the SQL "
        "otherwise, CONCURRENTLY steps in `autocommit_block`; every step can run again:", "",
        "```python", migration["alembic"].rstrip(), "```", ""])


# Values that change from run to run (timings, hashes, planner costs, sizes) are shown as "…".
_VOLATILE_KEYS = {"versions", "elapsed_ms", "content_hash", "spec_hash", "size_bytes", "idx_scan", "stats_reset",
                  "last_idx_scan", "table_rows"}


def stable(value, key: str | None = None):
    if key is not None and value is not None and (key in _VOLATILE_KEYS or "cost" in key):
        return "…"
    if isinstance(value, dict):
        return {k: stable(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, str):
        value = re.sub(r"docs_[0-9a-f]{8}", "app", value)
        value = re.sub(r"untrusted-data-[0-9a-f]+", "untrusted-data-…", value)
        value = re.sub(r"\b(cost|size|bytes|scans?)([=: ]+)[0-9][0-9.,]*", r"\1\2…", value)
    return value


def _type(spec: dict) -> str:
    if "$ref" in spec:
        return spec["$ref"].rpartition("/")[2]
    if "anyOf" in spec:
        return " or ".join(_type(s) for s in spec["anyOf"])
    if spec.get("type") == "array":
        return f"array of {_type(spec.get('items', {}))}"
    if "enum" in spec:
        return " / ".join(json.dumps(v) for v in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    kind = spec.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _field_rows(schema: dict, omitted: dict[str, str] | None = None) -> list[str]:
    rows = ["| field | type | when left out | description |", "|---|---|---|---|"]
    for name, spec in schema.get("properties", {}).items():
        if name in (omitted or {}):
            left_out = omitted[name]
        elif "default" in spec:
            left_out = f"at its default `{json.dumps(spec['default'])}`"
        elif name in schema.get("required", ()):
            left_out = "never"
        else:
            left_out = "when empty"
        rows.append(f"| `{name}` | {_type(spec)} | {left_out} | {spec.get('description', '')} |")
    return rows


def result_contract(tool) -> list[str]:
    """The result as agents receive it: top-level fields, then every nested object, from the model."""
    declared = next(t for t in TOOLS if t.name == tool.name)
    model, shape = declared.result, declared.shape
    schema = model.model_json_schema(mode="serialization")
    lines = ["", "## Result", "",
             "Compact JSON (server/results.py): a field at its default is left out, and `detail=\"summary\"` "
             "(the default) also leaves out the fields marked *in summary*"
             + (f" and, inside them, {', '.join(sorted({k for v in shape.summary_omits.values() if v for k in v}))}"
                if any(shape.summary_omits.values()) else "") + "."
             + (" A result over the page budget is paged by table: `page` says how many tables are on this page "
                "and of how many, and `page.next_cursor` is passed back as `cursor` for the next."
                if shape.per_table else ""), ""]
    for name, spec in schema["properties"].items():
        assert spec.get("description"), f"{tool.name} result field {name} needs a description"
    # The server adds `embedded` to results that touched the embedded database (server/tooling.py).
    added = {"embedded"} if declared.touches_database else set()
    assert set(tool.output_schema["properties"]) - {"page"} == set(schema["properties"]) | added
    omitted = {name: "after the first page" for name in shape.first_page_only}
    omitted |= {name: "when paged" for name in shape.whole_only}
    omitted |= {name: "in summary" + (", and when paged" if name in shape.whole_only else "")
                for name, keys in shape.summary_omits.items() if keys is None}
    lines += _field_rows(schema, omitted)
    if added:
        lines.append(f"| `embedded` | object | unless the embedded database answered | {EMBEDDED_DESCRIPTION}: "
                     "`holds`, `spec_hash`, `managed_tables_created`, `rows`, `scoped_role`, `finding` "
                     "([embedded-spec-not-applied](../findings.md#embedded-spec-not-applied)) |")
    for name, definition in sorted(schema.get("$defs", {}).items()):
        lines += ["", f"### {name}", ""] + ([definition["description"].split("\n\n")[0], ""]
                                            if definition.get("description") else []) + _field_rows(definition)
    return lines


def round_trips(tool: str) -> tuple[int, str]:
    """The tool's ROUND_TRIPS (tools/<tool>/__init__.py): the example's count and what a call costs."""
    import importlib

    return importlib.import_module(f"schema_architect.tools.{tool}").ROUND_TRIPS


def render_page(tool, arguments: dict, response: dict) -> str:
    lines = [f"# {tool.name}", "", f"*{tool.title}*" if tool.title else "", "", inspect.cleandoc(tool.description), ""]
    hints = tool.annotations
    lines += [f"Read-only: {'yes' if hints.read_only_hint else 'no'}; destructive: "
              f"{'yes' if hints.destructive_hint else 'no'}; idempotent: {'yes' if hints.idempotent_hint else 'no'}.",
              "", f"Round trips to the database: {round_trips(tool.name)[1]} (The example below, made again after a "
              f"pause: {round_trips(tool.name)[0]}, counted at a proxy by tests/test_round_trip_counts.py.)",
              "", "## Arguments", "", "| name | type | default | description |", "|---|---|---|---|"]
    required = set(tool.input_schema.get("required", []))
    for name, spec in tool.input_schema["properties"].items():
        kind = _type(spec)
        default = "required" if name in required else f"`{json.dumps(spec.get('default'))}`"
        lines.append(f"| `{name}` | {kind} | {default} | {spec.get('description', '')} |")
    lines += result_contract(tool)
    lines += ["", "## Example", "", "A real call, made by `tests/test_tool_docs.py` against the reference project "
              "(specs/database/schema.md, its models, and a PostgreSQL database built from the spec).",
              "", "Request:", "", "```json", json.dumps(arguments, indent=2, ensure_ascii=False), "```", "",
              "Response (structured content; values that change between runs are shown as `…`):", "",
              "```json", json.dumps(stable(response), indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


async def test_every_tool_page_is_current(project, drifted_url) -> None:
    root, url = project
    settings = Settings(project=root, database_url=url, embedded=False)
    async with Client(create_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == set(EXAMPLES), "every tool needs an example here and a page in docs/tools/"
        pages = {}
        for name, arguments in EXAMPLES.items():
            result = await client.call_tool(name, arguments)
            assert not result.is_error, (name, result.content)
            # The text block is the structured result's own JSON, once: no second, differently shaped copy.
            [block] = result.content
            assert json.loads(block.text) == result.structured_content, name
            pages[name] = render_page(tools[name], arguments, result.structured_content)
    pages["diff_models_vs_spec"] += await revision_example(root, drifted_url)
    if os.environ.get("SCHEMA_ARCHITECT_WRITE_DOCS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        for name, text in pages.items():
            (DOCS / f"{name}.md").write_text(text)
    stale = [name for name, text in pages.items()
             if not (DOCS / f"{name}.md").exists() or (DOCS / f"{name}.md").read_text() != text]
    assert not stale, (f"docs/tools pages are stale for {', '.join(stale)}: regenerate with "
                       "SCHEMA_ARCHITECT_WRITE_DOCS=1 pytest tests/test_tool_docs.py")
