"""One behaviour per condition (issue 33): the conditions x tools table of docs/errors.md, generated from
tools/schema/errors.py, and one call through MCP per cell of it; plus each example of the issue."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from mcp import Client, MCPError

import schema_architect.server
import schema_architect.tools
from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.schema.errors import CONDITIONS, TOOLS, AgentError, render_errors_doc
from schema_architect.tools.spec.reader import parse_spec

from conftest import REPO

pytestmark = pytest.mark.anyio

DOC = REPO / "docs" / "errors.md"
DOWN = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"


def error_tree() -> str:
    """The "Error classes" section: every AgentError subclass of tools/ and server/, as a tree by first base.

    Read from the classes themselves (every module of both imported; classes defined elsewhere, in tests say,
    left out), so a new error class shows up here and docs/errors.md is stale until it is regenerated."""
    for package in (schema_architect.tools, schema_architect.server):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name.rpartition(".")[2] not in ("__main__", "_child", "_reaper"):  # scripts, not modules
                importlib.import_module(module.name)

    def where(cls: type) -> str:
        return cls.__module__.removeprefix("schema_architect.").replace(".", "/") + ".py"

    def rule(cls: type) -> str:
        return cls.rule if cls.rule != AgentError.rule else "rule id given when raised"

    def children(cls: type) -> list[type]:  # a class is drawn once, under its first base
        ours = ("schema_architect.tools.", "schema_architect.server.")
        return sorted((c for c in cls.__subclasses__() if c.__bases__[0] is cls and c.__module__.startswith(ours)),
                      key=lambda c: c.__name__)

    rows: list[tuple[str, str, str]] = []

    def draw(cls: type, prefix: str, last: bool, top: bool) -> None:
        also = [b.__name__ for b in cls.__bases__[1:] if issubclass(b, AgentError)]
        name = cls.__name__ + (f" (also {', '.join(also)})" if also else "")
        rows.append((name if top else f"{prefix}{'└── ' if last else '├── '}{name}", rule(cls), where(cls)))
        below = children(cls)
        for i, child in enumerate(below):
            draw(child, "" if top else prefix + ("    " if last else "│   "), i == len(below) - 1, False)

    draw(AgentError, "", True, True)
    width = max(len(r[0]) for r in rows) + 2
    rule_width = max(len(r[1]) for r in rows) + 2
    tree = [f"{n.ljust(width)}{r.ljust(rule_width)}{w}".rstrip() for n, r, w in rows]
    return "\n".join([
        "## Error classes", "",
        "<!-- Generated from the classes by tests/test_errors.py (error_tree) -->", "",
        "Every expected error is an `AgentError` (tools/schema/errors.py, layer 0): a class, its rule id, its module. "
        "Catch the class; the agent sees the rule id.", "",
        "```", *tree, "```", "",
    ])


def test_errors_doc_is_generated_from_the_code() -> None:
    text = render_errors_doc() + "\n" + error_tree()
    if os.environ.get("SCHEMA_ARCHITECT_WRITE_DOCS"):
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, \
        "docs/errors.md is stale: SCHEMA_ARCHITECT_WRITE_DOCS=1 pytest tests/test_errors.py"


# --- the project and the database the cells use ------------------------------------------------------

def project(tmp_path: Path, spec: bool = True, models: bool = True) -> Path:
    root = tmp_path / "project"
    if root.exists():
        return root
    (root / "specs" / "database").mkdir(parents=True)
    if spec:
        shutil.copy(REPO / "specs" / "database" / "schema.md", root / "specs" / "database" / "schema.md")
    if models:
        (root / "backend").mkdir()
        shutil.copy(REPO / "specs" / "database" / "models.py", root / "backend" / "models.py")
    return root


@pytest.fixture(scope="module")
def ref_url(make_database) -> str:
    url = make_database("errors")
    spec = parse_spec((REPO / "specs/database/schema.md").read_text()).schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
    return url


async def call(settings: Settings, tool: str, arguments: dict):
    async with Client(create_server(settings)) as client:
        result = await client.call_tool(tool, arguments)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    return result, text


def error_of(result, text: str, rule: str) -> str:
    assert result.is_error, text
    assert f"[{rule}]" in text, text
    assert "\n" not in text and "errors.pydantic.dev" not in text and "Traceback" not in text, text
    return text


# --- one scenario per cell ---------------------------------------------------------------------------

Cell = Callable[[Path, str], Awaitable[None]]
CELLS: dict[tuple[str, str], Cell] = {}


def cell(rule: str, tool: str):
    def register(fn: Cell) -> Cell:
        CELLS[(rule, tool)] = fn
        return fn
    return register


REQUIRED = {"read_schema_spec": {}, "diff_models_vs_spec": {}, "explain_indexes": {},
            "propose_table": {"name": "notes", "purpose": "Short notes a user keeps"},
            "run_scoped_query": {"sql": "SELECT title FROM tasks", "user_id": "u1"}}


def _unknown(tool: str) -> Cell:
    async def run(tmp_path: Path, url: str) -> None:
        result, text = await call(Settings(project=project(tmp_path), embedded=False), tool,
                                  {**REQUIRED[tool], "tabels": ["tasks"]})
        error_of(result, text, "argument-unknown")
        assert "`tabels`" in text and "Its arguments:" in text
    return run


for _tool in TOOLS:
    CELLS[("argument-unknown", _tool)] = _unknown(_tool)

INVALID = {"read_schema_spec": ("tables", "tasks"), "diff_models_vs_spec": ("include_database", "maybe"),
           "explain_indexes": ("source", "live"), "propose_table": ("user_owned", "perhaps"),
           "run_scoped_query": ("limit", 0)}


def _invalid(tool: str) -> Cell:
    async def run(tmp_path: Path, url: str) -> None:
        name, value = INVALID[tool]
        result, text = await call(Settings(project=project(tmp_path), embedded=False), tool,
                                  {**REQUIRED[tool], name: value})
        error_of(result, text, "argument-invalid")
        assert f"`{name}`" in text and f"Given: {name}={json.dumps(value)}" in text and "Expected" in text
    return run


for _tool in TOOLS:
    CELLS[("argument-invalid", _tool)] = _invalid(_tool)


@cell("spec-unreadable", "read_schema_spec")
async def _(tmp_path: Path, url: str) -> None:
    root = project(tmp_path, spec=False)
    result, text = await call(Settings(project=root, embedded=False), "read_schema_spec", {})
    error_of(result, text, "spec-unreadable")
    assert str(root.resolve()) in text and "`path`" in text


@cell("spec-unreadable", "propose_table")
async def _(tmp_path: Path, url: str) -> None:
    root = project(tmp_path, spec=False)
    result, text = await call(Settings(project=root, embedded=False), "propose_table", REQUIRED["propose_table"])
    assert not result.is_error, text
    assert f"[spec-unreadable] No spec file at specs/database/schema.md in the project root {root.resolve()}" \
        in result.structured_content["message"]


@cell("spec-unreadable", "diff_models_vs_spec")
async def _(tmp_path: Path, url: str) -> None:
    root = project(tmp_path, spec=False)
    result, text = await call(Settings(project=root, database_url=url), "diff_models_vs_spec",
                              {"include_database": True})
    assert not result.is_error, text
    finding = next(f for f in result.structured_content["findings"] if f["rule"] == "spec-unreadable")
    assert str(root.resolve()) in finding["message"] and "`spec`" in finding["fix"]
    assert [s["side"] for s in result.structured_content["sides"]] == ["models", "database"]


@cell("spec-unreadable", "explain_indexes")
async def _(tmp_path: Path, url: str) -> None:
    root = project(tmp_path, spec=False)
    result, text = await call(Settings(project=root, database_url=url), "explain_indexes", {})
    assert not result.is_error, text
    assert result.structured_content["source"] == "database"
    assert result.structured_content["notes"][0].startswith("[spec-unreadable] The database's indexes alone")


@cell("spec-unreadable", "run_scoped_query")
async def _(tmp_path: Path, url: str) -> None:
    root = project(tmp_path, spec=False)
    result, text = await call(Settings(project=root, database_url=None, embedded=True), "run_scoped_query",
                              REQUIRED["run_scoped_query"])
    error_of(result, text, "spec-unreadable")
    assert str(root.resolve()) in text
    assert not (root / ".schema-architect").exists(), "the embedded database was started in the wrong folder"


@cell("path-outside-project", "read_schema_spec")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(Settings(project=project(tmp_path), embedded=False), "read_schema_spec",
                              {"path": "../elsewhere.md"})
    error_of(result, text, "path-outside-project")


@cell("path-outside-project", "diff_models_vs_spec")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(Settings(project=project(tmp_path), embedded=False), "diff_models_vs_spec",
                              {"models": "../elsewhere.py"})
    error_of(result, text, "path-outside-project")


UNKNOWN_TABLE = {"read_schema_spec": {"tables": ["taks"]}, "diff_models_vs_spec": {"tables": ["taks"]},
                 "explain_indexes": {"table": "taks"},
                 "propose_table": {**REQUIRED["propose_table"], "references": ["taks"]}}


def _unknown_table(tool: str) -> Cell:
    async def run(tmp_path: Path, url: str) -> None:
        result, text = await call(Settings(project=project(tmp_path), embedded=False), tool, UNKNOWN_TABLE[tool])
        error_of(result, text, "unknown-table")
        assert "'taks'" in text and "'tasks'" in text  # the closest table
    return run


for _tool in UNKNOWN_TABLE:
    CELLS[("unknown-table", _tool)] = _unknown_table(_tool)


def _down(root: Path) -> Settings:
    return Settings(project=root, database_url=DOWN, connect_timeout_s=0.5)


@cell("database-unavailable", "read_schema_spec")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(_down(project(tmp_path)), "read_schema_spec", {})
    assert not result.is_error, text


@cell("database-unavailable", "propose_table")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(_down(project(tmp_path)), "propose_table", REQUIRED["propose_table"])
    assert not result.is_error, text
    message = result.structured_content["message"]
    assert message.count("[database-unavailable] No dry run:") == 1, message
    assert "no database is configured" not in message and "hunter2" not in message


@cell("database-unavailable", "diff_models_vs_spec")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(_down(project(tmp_path)), "diff_models_vs_spec", {"include_database": True})
    assert not result.is_error, text
    data = result.structured_content
    assert [s["side"] for s in data["sides"]] == ["spec", "models"]
    assert [f["rule"] for f in data["findings"]] == ["database-unavailable"]
    assert "hunter2" not in text


@cell("database-unavailable", "explain_indexes")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(_down(project(tmp_path)), "explain_indexes", {})
    assert not result.is_error, text
    assert result.structured_content["source"] == "spec"
    assert result.structured_content["notes"][0].startswith("[database-unavailable] The spec alone was explained")
    result, text = await call(_down(project(tmp_path)), "explain_indexes", {"source": "both"})
    error_of(result, text, "database-unavailable")  # asked for the database: no silent fallback


@cell("database-unavailable", "run_scoped_query")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(_down(project(tmp_path)), "run_scoped_query", REQUIRED["run_scoped_query"])
    error_of(result, text, "database-unavailable")
    assert "hunter2" not in text


@cell("sql-*", "run_scoped_query")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(Settings(project=project(tmp_path), database_url=url), "run_scoped_query",
                              {"sql": "SELEC title FROM tasks WHERE title = 'BOB_SECRET'", "user_id": "u1"})
    error_of(result, text, "sql-parse-error")
    assert 'near "SELEC"' in text and "BOB_SECRET" not in text


@cell("sql-*", "explain_indexes")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(Settings(project=project(tmp_path), embedded=False), "explain_indexes",
                              {"queries": ["SELEC title FROM tasks"]})
    error_of(result, text, "sql-parse-error")
    assert 'near "SELEC"' in text


def _cursor(tool: str) -> Cell:
    async def run(tmp_path: Path, url: str) -> None:
        result, text = await call(Settings(project=project(tmp_path), embedded=False), tool, {"cursor": "garbage"})
        error_of(result, text, "cursor-invalid")
    return run


for _tool in ("read_schema_spec", "diff_models_vs_spec", "explain_indexes"):
    CELLS[("cursor-invalid", _tool)] = _cursor(_tool)


@cell("stale-content-hash", "propose_table")
async def _(tmp_path: Path, url: str) -> None:
    result, text = await call(Settings(project=project(tmp_path), embedded=False), "propose_table",
                              {**REQUIRED["propose_table"], "apply": True, "expected_spec_hash": "sha256:0"})
    error_of(result, text, "stale-content-hash")


def test_every_cell_has_its_test() -> None:
    cells = {(rule, tool) for rule, row in CONDITIONS.items() for tool, what in row.items() if what != "-"}
    assert cells == set(CELLS), (sorted(cells - set(CELLS)), sorted(set(CELLS) - cells))


@pytest.mark.parametrize("key", sorted(CELLS), ids=lambda k: f"{k[0]}-{k[1]}")
async def test_cell(key: tuple[str, str], tmp_path: Path, ref_url: str) -> None:
    await CELLS[key](tmp_path, ref_url)


# --- the other examples of the issue -----------------------------------------------------------------

async def test_a_missing_spec_names_the_tools_own_argument(tmp_path: Path) -> None:
    root = project(tmp_path)
    result, text = await call(Settings(project=root, embedded=False), "diff_models_vs_spec", {"spec": "nope.md"})
    error_of(result, text, "spec-unreadable")
    assert "Given: spec='nope.md'" in text and "`path`" not in text and str(root.resolve()) in text


async def test_an_unknown_prompt_is_invalid_params_naming_the_closest(tmp_path: Path) -> None:
    async with Client(create_server(Settings(project=project(tmp_path), embedded=False))) as client:
        with pytest.raises(MCPError) as info:
            await client.get_prompt("index-reviewr", {})
    assert info.value.code == -32602
    assert "[prompt-unknown]" in str(info.value) and "'index-reviewer'" in str(info.value)


async def test_explain_indexes_is_read_only_only_where_it_cannot_build(tmp_path: Path, ref_url: str) -> None:
    for settings, read_only in ((Settings(project=project(tmp_path), embedded=False), True),
                                (Settings(project=tmp_path / "project", database_url=ref_url), False)):
        async with Client(create_server(settings)) as client:
            tool = next(t for t in (await client.list_tools()).tools if t.name == "explain_indexes")
        assert tool.annotations.read_only_hint is read_only
        assert tool.annotations.destructive_hint is False


async def test_explain_indexes_builds_nothing_on_a_users_database_unless_asked(tmp_path: Path, make_database) -> None:
    from conftest import load_reference_without_newest_index

    url = make_database("errors_build")
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone()[0]:
            pytest.skip("hypopg is created here: nothing would be built anyway")
        load_reference_without_newest_index(conn, users=20, tasks=20_000)
    settings = Settings(project=project(tmp_path), database_url=url)
    result, text = await call(settings, "explain_indexes", {"table": "tasks"})
    assert not result.is_error, text
    recs = result.structured_content.get("recommendations", [])
    assert recs and all(not r.get("checked_how", "").startswith("transaction") for r in recs), recs
    assert any("build=true" in n for n in result.structured_content["notes"])
    result, text = await call(settings, "explain_indexes", {"table": "tasks", "build": True})
    assert any(r.get("checked_how") == "transaction" for r in result.structured_content["recommendations"])


async def test_defaults_are_left_out_of_results(tmp_path: Path, ref_url: str) -> None:
    root = project(tmp_path)
    spec = (await call(Settings(project=root, embedded=False), "read_schema_spec", {"tables": ["tasks"]}))[0]
    assert not {"warnings", "conflicts"} & set(spec.structured_content)
    diff = (await call(Settings(project=root, embedded=False), "diff_models_vs_spec", {}))[0]
    assert "findings" not in diff.structured_content
    query = (await call(Settings(project=root, database_url=ref_url), "run_scoped_query",
                        REQUIRED["run_scoped_query"]))[0]
    data = query.structured_content
    assert "truncated" not in data and "untrusted_data_notice" not in data
    assert data["wrapped_rows"].count("untrusted data between") == 1  # the notice, once


async def test_the_live_table_resource_is_compact(tmp_path: Path, ref_url: str) -> None:
    async with Client(create_server(Settings(project=project(tmp_path), database_url=ref_url))) as client:
        text = (await client.read_resource("schema://database/tasks")).contents[0].text
    assert "\n" not in text and '"nullable":true' not in text
    assert len(text) < 2500, len(text)
    assert json.loads(text)["name"] == "tasks"


CHECK_SPEC = """# Database schema

## Table: tasks

- id: integer, primary key
- title: varchar(200)
"""

CHECK_MODELS = '''from sqlmodel import Field, SQLModel


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
'''


def test_check_says_each_object_once_and_never_both_compared_and_not(tmp_path: Path, make_database) -> None:
    """The spec is silent on tasks.title's nullability; the models say NOT NULL, the database NULL: a drift
    between those two, and not also "not compared"."""
    import io

    from schema_architect.server.cli import run

    url = make_database("errors_check", "CREATE TABLE tasks (id integer PRIMARY KEY, title varchar(200))")
    root = tmp_path / "check"
    (root / "specs" / "database").mkdir(parents=True)
    (root / "specs" / "database" / "schema.md").write_text(CHECK_SPEC)
    (root / "backend").mkdir()
    (root / "backend" / "models.py").write_text(CHECK_MODELS)
    (root / ".env").write_text(f"DATABASE_URL={url}\n")
    out, err = io.StringIO(), io.StringIO()
    run(["--project", str(root), "check", "--database"], out, err)
    report = out.getvalue()
    lines = [line for line in report.splitlines() if line.startswith("[")]
    assert any(line.startswith("[degraded] tasks.title: ") and "nullability" in line for line in lines), report
    assert not [line for line in lines if line.count("tasks.title:") > 1], report
    not_compared = [line for line in report.splitlines() if line.startswith("Not stated, so not compared")]
    assert not any("tasks.title nullability" in line for line in not_compared), report
