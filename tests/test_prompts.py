"""The architect roles: MCP prompts (prompts/*.md) and Claude Code subagents (agents/*.md).

What is checked: the front-matter subset parser, loading, rendering with arguments and its errors,
placeholders in the files, that every tool (and tool parameter or result field) a text names exists,
the subagents' front matter and tool grants, and the prompts served over MCP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from schema_architect.prompts.loader import (
    FrontMatterError,
    PromptArgumentError,
    PromptDef,
    PromptFileError,
    load_prompts,
    parse_front_matter,
    parse_prompt,
    placeholders,
    register_prompts,
    render,
    split_front_matter,
)

REPO = Path(__file__).resolve().parents[1]
AGENTS = REPO / "agents"

#: The public contract: the five tools, and the parameters each takes.
TOOLS: dict[str, set[str]] = {
    "read_schema_spec": {"path", "tables"},
    "propose_table": {"name", "purpose", "columns", "user_owned", "references", "query_patterns", "apply",
                      "expected_spec_hash", "replace", "confirm_breaking"},
    "diff_models_vs_spec": {"spec", "models", "include_database", "tables", "include_managed"},
    "explain_indexes": {"table", "queries", "source", "hypothetical"},
    "run_scoped_query": {"sql", "user_id", "params", "limit"},
}
ROLES = {"database-architect", "schema-designer", "database-engineer", "index-reviewer", "data-inspector"}
MCP_PREFIX = "mcp__schema-architect__"
#: Result fields the texts mention, checked against the real result models below.
RESULT_FIELDS = {"content_hash", "spec_hash", "rules_applied", "sqlmodel_code", "rewritten_sql",
                 "wrapped_rows"}
#: Fields of a propose_table column.
COLUMN_FIELDS = {"max_length", "allowed_values"}
#: Other snake_case words the texts may use: columns, SQL settings, Alembic and SQLAlchemy names.
DOMAIN_WORDS = {"user_id", "created_at", "updated_at", "lock_timeout", "channel_binding", "pool_pre_ping",
                "autocommit_block", "get_context", "create_index", "drop_index", "postgresql_concurrently"}
SNAKE = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
BUILTIN_TOOLS = {"Read", "Grep", "Glob", "LS", "Edit", "MultiEdit", "Write", "Bash", "NotebookEdit",
                 "WebFetch", "WebSearch", "TodoWrite"}
WRITING_TOOLS = {"Edit", "MultiEdit", "Write", "NotebookEdit", "Bash"}


def vocabulary() -> set[str]:
    return set(TOOLS).union(*TOOLS.values(), RESULT_FIELDS, COLUMN_FIELDS, DOMAIN_WORDS)


def unknown_names(text: str, allowed: set[str]) -> set[str]:
    """snake_case words that are neither a tool, a parameter, a result field nor a known word."""
    text = re.sub(re.escape(MCP_PREFIX) + r"(\w+)", r"\1", text)
    return {word for word in SNAKE.findall(text) if word not in allowed}


def tools_named(text: str) -> set[str]:
    return {word for word in SNAKE.findall(text.replace(MCP_PREFIX, " ")) if word in TOOLS}


# --- front matter -----------------------------------------------------------------------------------

def test_front_matter_subset() -> None:
    text = """\
# a comment
name: index-reviewer
title: 'It''s quoted'
description: "JSON \\"escapes\\" work: yes"
flag: true
off_flag: false
words:
  - first
  - second one
arguments:
  - name: table
    description: The table, or every table
    required: false

  - name: queries
    required: true
"""
    assert parse_front_matter(text) == {
        "name": "index-reviewer",
        "title": "It's quoted",
        "description": 'JSON "escapes" work: yes',
        "flag": True,
        "off_flag": False,
        "words": ["first", "second one"],
        "arguments": [{"name": "table", "description": "The table, or every table", "required": False},
                      {"name": "queries", "required": True}],
    }


@pytest.mark.parametrize(("text", "message"), [
    ("description: Use it: now", "must be quoted"),
    ("description: a comment # here", "must be quoted"),
    ("description: ends with:", "must be quoted"),
    ("description: [a, b]", "must be quoted"),
    ("description: *alias", "must be quoted"),
    ("description: yes", "quote it"),
    ("description: null", "quote it"),
    ("description: 12", "quote it"),
    ("description: 1.5", "quote it"),
    ("name: a\nname: b", "duplicate key"),
    ("name:\ttab", "tabs"),
    ("  name: indented", "unexpected indentation"),
    ("list:\nother: x", "no value and no list items"),
    ("list:", "no value and no list items"),
    ("args:\n  - name: a\n   description: misaligned", "aligned"),
    ("args:\n  - name: a\n    name: b", "duplicate key"),
    ("args:\n  - name:\n", "nested"),
    ("args:\n  -", "empty list item"),
    ('title: "unterminated', "double-quoted"),
    ("title: 'bad ' quote'", "single-quoted"),
    ("just words", "expected 'key: value'"),
])
def test_front_matter_rejects_what_yaml_would_read_differently(text: str, message: str) -> None:
    with pytest.raises(FrontMatterError, match=re.escape(message)):
        parse_front_matter(text, source="x.md")


def test_front_matter_errors_name_file_and_line() -> None:
    with pytest.raises(FrontMatterError, match=r"^x\.md:4: "):
        split_front_matter("---\nname: a\ntitle: b\ndescription: c: d\n---\nbody", "x.md")
    with pytest.raises(FrontMatterError, match="never closed"):
        split_front_matter("---\nname: a\n", "x.md")
    with pytest.raises(FrontMatterError, match="must start with a '---' line"):
        split_front_matter("name: a\n---\n", "x.md")


# --- prompt files -----------------------------------------------------------------------------------

def prompt_text(arguments: str = "", body: str = "Do {{task}}.", extra: str = "") -> str:
    arguments = arguments or ("arguments:\n  - name: task\n    description: The task\n    required: true\n"
                              "    shape: table\n")
    return f"---\nname: sample\ntitle: Sample\ndescription: A sample\n{extra}{arguments}---\n{body}\n"


def test_parse_prompt_reads_fields_and_template() -> None:
    prompt = parse_prompt(prompt_text(
        arguments="arguments:\n  - name: task\n    description: The task\n    required: true\n    shape: table\n"
                  "  - name: scope\n    description: Where\n    required: false\n    default: everywhere\n"
                  "    shape: path\n",
        body="\n\nDo {{task}} in {{scope}}; then {{task}} again.\n\n"))
    assert prompt.name == "sample" and prompt.title == "Sample" and prompt.description == "A sample"
    assert [(a.name, a.required, a.default) for a in prompt.arguments] == [
        ("task", True, None), ("scope", False, "everywhere")]
    assert prompt.template == "Do {{task}} in {{scope}}; then {{task}} again.\n"
    assert placeholders(prompt.template) == ["task", "scope"]


@pytest.mark.parametrize(("text", "message"), [
    (prompt_text(body="Do {{task}} for {{user}}."), "unknown placeholder {{user}}"),
    (prompt_text(body="Do {{ task }}."), "malformed placeholder"),
    (prompt_text(body="Do {{Task}} and {{task}}."), "malformed placeholder"),
    (prompt_text(body="Do {{task}."), "malformed placeholder"),
    (prompt_text(body="Nothing to do."), "declared but never used"),
    (prompt_text(body=""), "no text after its front matter"),
    (prompt_text(extra="model: x\n"), "unknown front-matter key"),
    (prompt_text().replace("name: sample", "name: Sample_Prompt"), "kebab-case"),
    (prompt_text().replace("title: Sample\n", ""), "'title'"),
    (prompt_text(arguments="arguments:\n  - name: task\n    description: The task\n"), "missing key(s) ['required']"),
    (prompt_text(arguments="arguments:\n  - name: task\n    description: The task\n    required: true\n"
                           "    kind: text\n"), "unknown key(s) ['kind']"),
    (prompt_text(arguments="arguments:\n  - name: task-name\n    description: T\n    required: true\n",
                 body="x"), "snake_case"),
    (prompt_text(arguments="arguments:\n  - name: task\n    description: T\n    required: \"yes\"\n"),
     "'required' must be true or false"),
    (prompt_text(arguments="arguments:\n  - name: task\n    description: T\n    required: true\n"
                           "    default: x\n"), "only an optional argument may have a default"),
    (prompt_text(arguments="arguments:\n  - name: task\n    description: T\n    required: true\n"
                           "  - name: task\n    description: U\n    required: false\n"), "declared twice"),
    (prompt_text(arguments="arguments: none\n"), "must be a list"),
])
def test_parse_prompt_rejects_bad_files(text: str, message: str) -> None:
    with pytest.raises(PromptFileError, match=re.escape(message)):
        parse_prompt(text, source="sample.md")


def test_unknown_placeholder_error_gives_the_line() -> None:
    text = prompt_text(body="First line {{task}}.\nSecond line {{oops}}.")
    lines = text.splitlines()
    expected = lines.index("Second line {{oops}}.") + 1
    with pytest.raises(PromptFileError, match=rf"^sample\.md:{expected}: unknown placeholder"):
        parse_prompt(text, source="sample.md")


def test_load_prompts_from_a_folder_checks_every_file(tmp_path: Path) -> None:
    (tmp_path / "sample.md").write_text(prompt_text(), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a prompt", encoding="utf-8")
    assert [p.name for p in load_prompts(tmp_path)] == ["sample"]
    (tmp_path / "other.md").write_text(prompt_text(body="Do {{task}} with {{tool}}."), encoding="utf-8")
    with pytest.raises(PromptFileError, match=r"other\.md:\d+: unknown placeholder \{\{tool\}\}"):
        load_prompts(tmp_path)
    (tmp_path / "other.md").write_text(prompt_text(), encoding="utf-8")  # declares the name "sample"
    with pytest.raises(PromptFileError, match="name the file sample.md"):
        load_prompts(tmp_path)


# --- the shipped prompts ----------------------------------------------------------------------------

try:
    PROMPTS = load_prompts()
    LOAD_ERROR: Exception | None = None
except (FrontMatterError, PromptFileError) as exc:  # reported by the test below, not as a collection error
    PROMPTS, LOAD_ERROR = [], exc
BY_NAME = {p.name: p for p in PROMPTS}


def test_shipped_prompts_load() -> None:
    assert LOAD_ERROR is None, str(LOAD_ERROR)


def sample_arguments(prompt: PromptDef, *, optional: bool = True) -> dict[str, str]:
    """Free text may hold anything; an identifier must have its shape (tests/test_prompt_arguments.py)."""
    return {a.name: f"<{a.name.upper()} VALUE>" if a.shape == "text" else f"{a.name}_value"
            for a in prompt.arguments if a.required or optional}


def test_the_five_roles_are_listed_once_each() -> None:
    assert [p.name for p in PROMPTS] == sorted(ROLES)
    for prompt in PROMPTS:
        assert prompt.title.strip() and prompt.description.strip()
        assert prompt.arguments, f"{prompt.name}: a role prompt takes at least one argument"
        assert all(a.description.strip() for a in prompt.arguments)
        assert (REPO / "prompts" / f"{prompt.name}.md").is_file()


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.name)
def test_every_placeholder_is_a_declared_argument(prompt: PromptDef) -> None:
    # identifiers are placed in the text; free text is only ever quoted in the request fence below it
    assert set(placeholders(prompt.template)) == {a.name for a in prompt.arguments if a.shape != "text"}
    leftover = re.sub(r"\{\{[a-z][a-z0-9_]*\}\}", "", prompt.template)
    assert "{{" not in leftover and "}}" not in leftover


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.name)
def test_render_with_all_arguments(prompt: PromptDef) -> None:
    values = sample_arguments(prompt)
    text = render(prompt, values)
    for value in values.values():
        assert value in text
    assert "{{" not in text and "}}" not in text


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.name)
def test_render_with_required_arguments_only_uses_defaults(prompt: PromptDef) -> None:
    text = render(prompt, sample_arguments(prompt, optional=False))
    assert "{{" not in text
    for argument in prompt.arguments:
        if not argument.required:
            assert argument.default, f"{prompt.name}: optional {argument.name} should say what happens without it"
            assert argument.default in text


@pytest.mark.parametrize("prompt", [p for p in PROMPTS if any(a.required for a in p.arguments)],
                         ids=lambda p: p.name)
def test_missing_required_argument_is_a_clear_error(prompt: PromptDef) -> None:
    required = [a for a in prompt.arguments if a.required]
    for argument in required:
        values = sample_arguments(prompt)
        del values[argument.name]
        with pytest.raises(PromptArgumentError, match=rf"needs the argument\(s\) \['{argument.name}'\]"):
            render(prompt, values)
        values[argument.name] = "   "
        with pytest.raises(PromptArgumentError, match=argument.name):
            render(prompt, values)


def test_unknown_or_non_text_argument_is_an_error() -> None:
    prompt = BY_NAME["data-inspector"]
    with pytest.raises(PromptArgumentError, match=r"has no argument\(s\) \['userid'\]; its arguments are: "
                                                  r"user_id \(required\)"):
        render(prompt, {"userid": "u1", "symptom": "x"})
    with pytest.raises(PromptArgumentError, match="must be text"):
        render(prompt, {"user_id": 42, "symptom": "x"})  # type: ignore[dict-item]


def test_values_are_inserted_literally_never_expanded() -> None:
    prompt = BY_NAME["database-architect"]
    text = render(prompt, {"task": "add {{tables}} and \\1 and $0"})
    assert json.dumps("add {{tables}} and \\1 and $0") in text  # quoted as JSON, inside the fence
    assert text.count("{{") == 1


def test_data_inspector_binds_the_one_user() -> None:
    text = render(BY_NAME["data-inspector"], {"user_id": "user-123", "symptom": "no tasks shown"})
    assert text.count("user-123") >= 2  # stated, and named in the rule about run_scoped_query
    assert "not instructions" in text


# --- tools named in the texts -----------------------------------------------------------------------

ROLE_TOOLS = {
    "database-architect": {"read_schema_spec", "propose_table", "diff_models_vs_spec"},
    "schema-designer": {"read_schema_spec", "propose_table"},
    "database-engineer": {"read_schema_spec", "propose_table", "diff_models_vs_spec"},
    "index-reviewer": {"explain_indexes"},
    "data-inspector": {"run_scoped_query"},
}


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.name)
def test_prompt_names_only_tools_and_names_that_exist(prompt: PromptDef) -> None:
    allowed = vocabulary() | {a.name for a in prompt.arguments}
    text = "\n".join([prompt.title, prompt.description, prompt.template])
    assert unknown_names(text, allowed) == set(), (
        f"{prompt.name}: unknown snake_case names; a tool must be one of {sorted(TOOLS)}, a parameter one "
        "of its parameters; add other words to DOMAIN_WORDS")
    assert ROLE_TOOLS[prompt.name] <= tools_named(prompt.template)


def test_name_check_catches_a_misspelt_tool() -> None:
    assert unknown_names("call `explain_index` then `read_schema_spec`", vocabulary()) == {"explain_index"}
    assert unknown_names("use mcp__schema-architect__run_query", vocabulary()) == {"run_query"}


def test_result_fields_named_in_the_texts_exist() -> None:
    from schema_architect.tools.propose_table import ProposeTableResult
    from schema_architect.tools.propose_table.design import ProposedColumn
    from schema_architect.tools.read_schema_spec import ReadSchemaSpecResult
    from schema_architect.tools.run_scoped_query import ScopedQueryResult

    fields = set().union(*(m.model_fields for m in (ProposeTableResult, ReadSchemaSpecResult, ScopedQueryResult)))
    assert fields >= RESULT_FIELDS, RESULT_FIELDS - fields
    assert set(ProposedColumn.model_fields) >= COLUMN_FIELDS


@pytest.mark.anyio
async def test_parameter_list_matches_the_server(tmp_path: Path) -> None:
    """TOOLS is the contract; where the server registers a tool, its parameters must include ours."""
    from schema_architect.server.app import create_server
    from schema_architect.server.settings import Settings

    tools = await create_server(Settings(project=tmp_path, embedded=False)).list_tools()
    registered = {tool.name: set(tool.input_schema.get("properties", {})) for tool in tools}
    assert set(registered) <= set(TOOLS)
    assert set(TOOLS) - set(registered) <= {"explain_indexes"}  # the one being written now
    for name, parameters in registered.items():
        assert TOOLS[name] <= parameters, (name, TOOLS[name] - parameters)


# --- subagents --------------------------------------------------------------------------------------

AGENT_FILES = sorted(AGENTS.glob("*.md"))


def read_agent(path: Path) -> tuple[dict, str]:
    fields, body, _ = split_front_matter(path.read_text(encoding="utf-8"), path.name)
    return fields, body


def agent_tools(fields: dict) -> list[str]:
    return [t.strip() for t in fields["tools"].split(",")]


def test_agents_are_the_five_roles_with_unique_kebab_case_names() -> None:
    names = [read_agent(path)[0].get("name") for path in AGENT_FILES]
    assert len(names) == len(set(names))
    assert set(names) == ROLES
    for path, name in zip(AGENT_FILES, names, strict=True):
        assert re.fullmatch(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*", name)
        assert path.stem == name


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.stem)
def test_agent_front_matter_and_tool_grants(path: Path) -> None:
    fields, body = read_agent(path)
    assert set(fields) <= {"name", "description", "tools", "model", "color"}
    assert {"name", "description", "tools"} <= set(fields)
    assert isinstance(fields["description"], str) and len(fields["description"]) > 40
    assert isinstance(fields["tools"], str)
    tools = agent_tools(fields)
    assert len(tools) == len(set(tools)), "a tool is listed twice"
    mcp = [t.removeprefix(MCP_PREFIX) for t in tools if t.startswith("mcp__")]
    assert all(t.startswith(MCP_PREFIX) for t in tools if t.startswith("mcp__"))
    assert set(mcp) <= set(TOOLS), set(mcp) - set(TOOLS)
    assert set(tools) - {MCP_PREFIX + t for t in mcp} <= BUILTIN_TOOLS
    # a tool the body tells the agent to use must be one it is granted
    assert tools_named(body) <= set(mcp), tools_named(body) - set(mcp)
    assert ROLE_TOOLS[fields["name"]] <= set(mcp)
    assert body.strip(), "the body is the subagent's system prompt"
    assert unknown_names(body + fields["description"], vocabulary()) == set()


def test_read_only_roles_get_no_writing_tools() -> None:
    grants = {read_agent(p)[0]["name"]: set(agent_tools(read_agent(p)[0])) for p in AGENT_FILES}
    # spec-only: the spec is written through propose_table (atomic, hash-checked, confirms breaking
    # replaces); Edit/Write cannot be limited to one path, and Bash could write anything
    assert not grants["database-engineer"] & WRITING_TOOLS
    # a shell would reach the database around run_scoped_query's scoping
    assert not grants["data-inspector"] & WRITING_TOOLS
    assert not grants["index-reviewer"] & WRITING_TOOLS
    assert {"Edit", "Write"} <= grants["database-architect"]


# --- over MCP -----------------------------------------------------------------------------------------

@pytest.fixture
def prompt_server():
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("prompt-test")
    assert register_prompts(server) == sorted(ROLES)
    return server


@pytest.mark.anyio
async def test_prompts_over_mcp(prompt_server) -> None:
    from mcp import Client

    async with Client(prompt_server) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(listed) == ROLES
        inspector = listed["data-inspector"]
        assert inspector.title == "Data inspector"
        assert [(a.name, a.required) for a in inspector.arguments] == [
            ("user_id", True), ("symptom", True), ("app_query", False)]
        result = await client.get_prompt("data-inspector", {"user_id": "u-42", "symptom": "empty list"})
        assert len(result.messages) == 1 and result.messages[0].role == "user"
        text = result.messages[0].content.text
        boundary = re.search(r"<(request-[0-9a-f]{16})>", text).group(1)  # random per call
        assert text == render(BY_NAME["data-inspector"], {"user_id": "u-42", "symptom": "empty list"}, boundary)


@pytest.mark.anyio
async def test_bad_prompt_arguments_over_mcp_are_clear_errors(prompt_server) -> None:
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    async with Client(prompt_server) as client:
        with pytest.raises(MCPError, match=r"needs the argument\(s\) \['user_id'\]: user_id: The id") as info:
            await client.get_prompt("data-inspector", {"symptom": "empty list"})
        assert info.value.code == -32602
        with pytest.raises(MCPError, match=r"needs the argument\(s\) \['user_id'\]"):
            await client.get_prompt("data-inspector", {"user_id": " ", "symptom": "empty list"})
        with pytest.raises(MCPError, match=r"has no argument\(s\) \['tenant'\]"):
            await client.get_prompt("data-inspector", {"user_id": "u", "symptom": "s", "tenant": "t"})
