"""An MCP client we did not write: the MCP Inspector CLI (npm @modelcontextprotocol/inspector).

It lists the tools, prompts and resources and calls each tool, over stdio and over streamable HTTP.
The Inspector comes from the npm registry, so this test is opt-in: .ci/run installs it when the registry
is reachable and points SCHEMA_ARCHITECT_INSPECTOR at its `mcp-inspector` command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from test_http import free_port, http_server

INSPECTOR = os.environ.get("SCHEMA_ARCHITECT_INSPECTOR")
EXE = str(Path(sys.executable).parent / "schema-architect")

pytestmark = pytest.mark.skipif(not INSPECTOR, reason="opt-in: set SCHEMA_ARCHITECT_INSPECTOR to mcp-inspector")

CALLS = {
    "read_schema_spec": ["tables=[\"tasks\"]"],
    "propose_table": ["name=notes", "purpose=Notes a user keeps on a task.", "references=[\"tasks\"]",
                      "columns=[{\"name\": \"body\", \"type\": \"text\", \"required\": true}]"],
    "diff_models_vs_spec": ["models=backend/models.py", "include_database=true"],
    "explain_indexes": ["table=tasks"],
    "run_scoped_query": ["sql=SELECT count(*) AS n FROM tasks", "user_id=u_alice"],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh user project set up by `schema-architect init`, with the reference spec and models; the
    embedded database starts on first use."""
    root = tmp_path_factory.mktemp("inspector_project")
    (root / "specs/database").mkdir(parents=True)
    shutil.copy(REPO / "specs/database/schema.md", root / "specs/database/schema.md")
    (root / "backend").mkdir()
    shutil.copy(REPO / "specs/database/models.py", root / "backend/models.py")
    subprocess.run([EXE, "--project", str(root), "init"], check=True, capture_output=True, timeout=60)
    return root


def launch_command(project: Path) -> list[str]:
    """The server command exactly as `init` wrote it into .mcp.json (run from the project folder)."""
    entry = json.loads((project / ".mcp.json").read_text())["mcpServers"]["schema-architect"]
    return [entry["command"], "--project", str(project), *entry["args"]]


def inspector(target: list[str], *args: str) -> dict:
    proc = subprocess.run([INSPECTOR, "--cli", *target, "--connect-timeout", "60000", *args],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{args}: rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def check_everything(target: list[str]) -> None:
    tools = {t["name"] for t in inspector(target, "--method", "tools/list")["tools"]}
    assert tools == set(CALLS)
    prompts = {p["name"] for p in inspector(target, "--method", "prompts/list")["prompts"]}
    assert len(prompts) == 5
    resources = {r["uri"] for r in inspector(target, "--method", "resources/list")["resources"]}
    assert "schema://spec" in resources
    for tool, arguments in CALLS.items():
        result = inspector(target, "--method", "tools/call", "--tool-name", tool, "--tool-arg", *arguments)
        assert result.get("isError") is False, (tool, result)
        assert result["structuredContent"], tool


def test_inspector_over_stdio(project: Path) -> None:
    check_everything(launch_command(project))


def test_inspector_over_http(project: Path) -> None:
    port = free_port()
    with http_server("127.0.0.1", port, project, SCHEMA_ARCHITECT_EMBEDDED="true"):
        check_everything([f"http://127.0.0.1:{port}/mcp", "--transport", "http"])
