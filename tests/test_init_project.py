"""`init`: .mcp.json written or merged, the subagents copied without clobbering the user's edits."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from schema_architect.server.cli import run
from schema_architect.tools.project.init import (
    InitError,
    InitReport,
    default_command,
    init_project,
    portable_command,
    shipped_agents,
)

REPO = Path(__file__).resolve().parents[1]
COMMAND = ["/opt/venv/bin/schema-architect", "serve"]
OURS = {"command": "/opt/venv/bin/schema-architect", "args": ["serve"]}
AGENT_NAMES = sorted(p.name for p in (REPO / "agents").glob("*.md"))
AGENT_PATHS = [f".claude/agents/{name}" for name in AGENT_NAMES]


def actions(report: InitReport) -> dict[str, str]:
    return {f.path: f.action for f in report.files}


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_shipped_agents_are_the_repository_files() -> None:
    shipped = shipped_agents()
    assert sorted(shipped) == AGENT_NAMES and len(AGENT_NAMES) == 5
    for name, text in shipped.items():
        assert text == (REPO / "agents" / name).read_text(encoding="utf-8")


def test_fresh_project(tmp_path: Path) -> None:
    report = init_project(tmp_path, command=COMMAND)
    assert report.lines() == [".mcp.json: created"] + [f"{p}: created" for p in AGENT_PATHS]
    assert report.changed and not report.kept
    assert json.loads((tmp_path / ".mcp.json").read_text()) == {"mcpServers": {"schema-architect": OURS}}
    for name in AGENT_NAMES:
        assert (tmp_path / ".claude/agents" / name).read_bytes() == (REPO / "agents" / name).read_bytes()
    assert not [p for p in tmp_path.rglob("*.tmp")], "no temporary files left behind"


def test_rerun_is_idempotent(tmp_path: Path) -> None:
    init_project(tmp_path, command=COMMAND)
    before = snapshot(tmp_path)
    report = init_project(tmp_path, command=COMMAND)
    assert set(actions(report).values()) == {"unchanged"}
    assert len(report.files) == 1 + len(AGENT_NAMES)
    assert not report.changed
    assert snapshot(tmp_path) == before


def test_user_modified_agent_is_kept(tmp_path: Path) -> None:
    init_project(tmp_path, command=COMMAND)
    edited = tmp_path / ".claude/agents/data-inspector.md"
    edited.write_text(edited.read_text() + "\nAlso check the audit table.\n")
    mine = edited.read_bytes()
    report = init_project(tmp_path, command=COMMAND)
    assert actions(report)[".claude/agents/data-inspector.md"] == "kept"
    assert (".claude/agents/data-inspector.md: kept (differs from ours: yours, or changed by you; rename yours "
            "to keep both, or run init --as PREFIX to install ours as PREFIX-<name>)") in report.lines()
    assert [f.path for f in report.kept] == [".claude/agents/data-inspector.md"]
    assert edited.read_bytes() == mine
    others = {path: action for path, action in actions(report).items() if "data-inspector" not in path}
    assert set(others.values()) == {"unchanged"}


def test_deleted_agent_is_created_again(tmp_path: Path) -> None:
    init_project(tmp_path, command=COMMAND)
    (tmp_path / ".claude/agents/index-reviewer.md").unlink()
    report = init_project(tmp_path, command=COMMAND)
    assert actions(report)[".claude/agents/index-reviewer.md"] == "created"
    assert (tmp_path / ".claude/agents/index-reviewer.md").is_file()


def test_crlf_copy_counts_as_unchanged(tmp_path: Path) -> None:
    init_project(tmp_path, command=COMMAND)
    path = tmp_path / ".claude/agents/schema-designer.md"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert actions(init_project(tmp_path, command=COMMAND))[".claude/agents/schema-designer.md"] == "unchanged"


def test_force_overwrites_changed_agents_and_entry(tmp_path: Path) -> None:
    init_project(tmp_path, command=COMMAND)
    edited = tmp_path / ".claude/agents/database-engineer.md"
    edited.write_text("my own engineer\n")
    config = tmp_path / ".mcp.json"
    config.write_text(json.dumps({"mcpServers": {"schema-architect": {
        "command": "old", "args": ["x"], "env": {"DATABASE_URL": "postgresql://localhost/app"}}}}))
    report = init_project(tmp_path, command=COMMAND, force=True)
    assert actions(report)[".claude/agents/database-engineer.md"] == "updated"
    assert actions(report)[".mcp.json"] == "updated"
    assert edited.read_bytes() == (REPO / "agents/database-engineer.md").read_bytes()
    entry = json.loads(config.read_text())["mcpServers"]["schema-architect"]
    assert entry == {**OURS, "env": {"DATABASE_URL": "postgresql://localhost/app"}}  # env kept
    others = [f.action for f in report.files if f.path not in (".mcp.json", ".claude/agents/database-engineer.md")]
    assert set(others) == {"unchanged"}


def test_existing_config_with_another_server_is_merged(tmp_path: Path) -> None:
    original = {
        "mcpServers": {"github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                                  "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}},
        "someOtherKey": [1, 2, 3],
    }
    (tmp_path / ".mcp.json").write_text(json.dumps(original))
    report = init_project(tmp_path, command=COMMAND)
    assert actions(report)[".mcp.json"] == "updated"
    merged = json.loads((tmp_path / ".mcp.json").read_text())
    assert merged == {"mcpServers": {**original["mcpServers"], "schema-architect": OURS},
                      "someOtherKey": [1, 2, 3]}
    assert list(merged) == ["mcpServers", "someOtherKey"]  # key order kept
    assert actions(init_project(tmp_path, command=COMMAND))[".mcp.json"] == "unchanged"


def test_config_without_servers_gets_the_key(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text('{"note": "hi"}')
    assert actions(init_project(tmp_path, command=COMMAND))[".mcp.json"] == "updated"
    assert json.loads((tmp_path / ".mcp.json").read_text()) == {
        "note": "hi", "mcpServers": {"schema-architect": OURS}}


def test_different_entry_is_kept_without_force(tmp_path: Path) -> None:
    text = json.dumps({"mcpServers": {"schema-architect": {"command": "uvx", "args": ["schema-architect",
                                                                                       "serve"]}}})
    (tmp_path / ".mcp.json").write_text(text)
    report = init_project(tmp_path, command=COMMAND)
    assert actions(report)[".mcp.json"] == "kept"
    assert report.lines()[0] == ".mcp.json: kept (has a different schema-architect server; use --force to replace it)"
    assert (tmp_path / ".mcp.json").read_text() == text
    assert all(f.action == "created" for f in report.files[1:])  # the agents are still installed


def test_same_entry_with_extra_keys_is_unchanged(tmp_path: Path) -> None:
    text = json.dumps({"mcpServers": {"schema-architect": {**OURS, "env": {"X": "1"}}}}, indent=4)
    (tmp_path / ".mcp.json").write_text(text)
    assert actions(init_project(tmp_path, command=COMMAND))[".mcp.json"] == "unchanged"
    assert (tmp_path / ".mcp.json").read_text() == text  # not even reformatted


@pytest.mark.parametrize(("content", "message"), [
    ('{"mcpServers": {', r"is not valid JSON \(.* at line 1 column \d+\)"),
    ("", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object .* not an array"),
    ('{"mcpServers": ["github"]}', '"mcpServers" must be a JSON object .* not an array'),
    (b"\xff\xfe{}", "is not UTF-8"),
])
def test_invalid_config_is_a_clear_error_that_changes_nothing(tmp_path: Path, content, message: str) -> None:
    config = tmp_path / ".mcp.json"
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content)
    before = snapshot(tmp_path)
    with pytest.raises(InitError, match=message) as info:
        init_project(tmp_path, command=COMMAND, force=True)
    assert "Nothing was changed" in str(info.value)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / ".claude").exists()


def test_bad_project_or_command(tmp_path: Path) -> None:
    with pytest.raises(InitError, match="is not a folder"):
        init_project(tmp_path / "missing", command=COMMAND)
    with pytest.raises(InitError, match="command must be a non-empty list"):
        init_project(tmp_path, command=[])
    with pytest.raises(InitError, match="command must be a non-empty list"):
        init_project(tmp_path, command=["", "serve"])
    (tmp_path / ".claude").write_text("a file where a folder belongs")
    with pytest.raises(InitError, match="is not a folder"):
        init_project(tmp_path, command=COMMAND)
    assert not (tmp_path / ".mcp.json").exists()  # checked before writing anything


def test_default_command_launches_this_installation() -> None:
    command = default_command()
    assert Path(command[0]).is_absolute() and Path(command[0]).exists()
    assert command[-1] == "serve"


def test_the_command_written_is_the_bare_one_when_it_is_on_path(tmp_path: Path, monkeypatch) -> None:
    """pipx / `uv tool install` put schema-architect on PATH: .mcp.json (committed by the team) then holds
    the bare command, which works on every machine; init says what it wrote and why."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "schema-architect"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    command, why = portable_command()
    assert command == ["schema-architect", "serve"] and "on PATH" in why
    project = tmp_path / "app"
    project.mkdir()
    out, err = io.StringIO(), io.StringIO()
    assert run(["--project", str(project), "init"], out, err) == 0, err.getvalue()
    config = json.loads((project / ".mcp.json").read_text())
    assert config["mcpServers"]["schema-architect"] == {"command": "schema-architect", "args": ["serve"]}
    assert ".mcp.json runs: schema-architect serve (`schema-architect` is on PATH" in out.getvalue()

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    command, why = portable_command()
    assert Path(command[0]).is_absolute() and "not on PATH" in why and "uv tool install" in why


def test_a_name_clash_keeps_theirs_and_says_rename_or_install_ours_under_a_prefix(tmp_path: Path) -> None:
    agents = tmp_path / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "index-reviewer.md").write_text("---\nname: index-reviewer\n---\nThe team's own reviewer.\n")
    out, err = io.StringIO(), io.StringIO()
    assert run(["--project", str(tmp_path), "init"], out, err) == 0
    assert "--force" not in out.getvalue() and "Rename yours" in out.getvalue() and "--as PREFIX" in out.getvalue()
    assert (agents / "index-reviewer.md").read_text().endswith("The team's own reviewer.\n")

    report = init_project(tmp_path, command=COMMAND, prefix="sa")
    assert ".claude/agents/sa-index-reviewer.md: created" in report.lines()
    ours = (agents / "sa-index-reviewer.md").read_text()
    assert ours.startswith("---\nname: sa-index-reviewer\n")
    assert (agents / "index-reviewer.md").read_text().endswith("The team's own reviewer.\n")
    with pytest.raises(InitError, match="--as"):
        init_project(tmp_path, command=COMMAND, prefix="Bad Prefix")
